"""Budding: a self-hosted word-of-mouth engine."""

__version__ = "0.1.0"
