"""Headwater: a self-hosted, plugin-based event pipeline."""

__version__ = "0.1.0"
