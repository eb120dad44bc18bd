"""The ``keepstone`` command line."""
