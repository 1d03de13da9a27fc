"""Situation detection: rules that turn events and signals into life situations."""

from __future__ import annotations

from collections.abc import Collection


def situations_detect(*, customer_ids: Collection[int], event_types: Collection[str] | None = None):
    """PLACEHOLDER — implemented by the situation-detection work."""
