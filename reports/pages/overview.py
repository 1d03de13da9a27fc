"""Placeholder: filled by this issue's work."""
