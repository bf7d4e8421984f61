"""The `tracking-api` connector (work in progress)."""
