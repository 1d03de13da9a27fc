"""django-q2 tasks of circle ②: thin, idempotent wrappers over services."""

from __future__ import annotations

from experience.pipeline import process_stored_events as _process


def process_stored_events(touched: dict[str, list[int]]) -> int:
    """Carts, favourites, situations, metrics and segments after events were stored."""
    return len(_process(touched))
