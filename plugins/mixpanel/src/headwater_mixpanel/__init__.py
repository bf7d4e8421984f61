"""The `mixpanel` connector (work in progress)."""
