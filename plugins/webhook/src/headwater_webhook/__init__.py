"""The `webhook` connector (work in progress)."""
