"""The `customerio` connector (work in progress)."""
