"""The `postgres` connector (work in progress)."""
