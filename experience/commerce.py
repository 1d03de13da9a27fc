"""Commerce state kept from events: carts, favourites, product price and stock changes."""

from __future__ import annotations

from collections.abc import Collection


def carts_rebuild(*, customer_ids: Collection[int]) -> None:
    """PLACEHOLDER — implemented by the commerce work."""


def favorites_sync(*, customer_ids: Collection[int]) -> None:
    """PLACEHOLDER — implemented by the commerce work."""
