"""HTTP adapters: one module tree per wire dialect, over the same services."""
