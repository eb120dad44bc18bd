"""Use cases: the one place operations live. Both wire dialects call these and nothing else."""
