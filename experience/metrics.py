"""Registered into circle ① at app start (see apps.py); filled in with issue 3."""
