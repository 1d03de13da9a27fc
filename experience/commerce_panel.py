"""The "Cart and favourites" section of the customer 360 page (registered in ``ready``)."""

from __future__ import annotations

import datetime as dt

from django.utils import timezone

from customers.panels import ProfilePanel, register_profile_panel
from experience.commerce import customer_cart, customer_favorites

ABANDONED_AFTER = dt.timedelta(hours=1)
"""An open cart untouched this long is shown as abandoned."""
FAVORITES_SHOWN = 20


def cart_and_favorites(*, request, customer, show_pii: bool) -> dict | None:
    """The open cart (lines, value, last change, idle hours) and the latest favourites.

    Products are company-wide and carry no personal data, so nothing is masked here.
    Three queries at most: the cart, its lines with products (only when there is a cart),
    and the favourites with products.
    """
    cart, items = customer_cart(customer.pk)
    favorites = list(customer_favorites(customer.pk)[: FAVORITES_SHOWN + 1])
    idle_hours = None
    if cart is not None and items and cart.converted_at is None:
        idle = timezone.now() - cart.updated_at
        if idle >= ABANDONED_AFTER:
            idle_hours = int(idle.total_seconds() // 3600)
    return {
        "cart": cart,
        "items": [{"item": item, "line_total": item.quantity * item.unit_price} for item in items],
        "abandoned_hours": idle_hours,
        "favorites": favorites[:FAVORITES_SHOWN],
        "more_favorites": len(favorites) > FAVORITES_SHOWN,
    }


register_profile_panel(
    ProfilePanel(
        name="commerce",
        template="experience/_commerce_panel.html",
        context=cart_and_favorites,
        order=40,
    )
)
