"""The `amplitude` connector (work in progress)."""
