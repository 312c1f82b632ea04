"""Veil: self-hosted number masking."""

__version__ = "0.1.0"
