"""Template filters for the results pages' rates."""

from __future__ import annotations

from django import template
from django.template.defaultfilters import floatformat

register = template.Library()


@register.filter
def percent(rate: float | None, digits: int = 1) -> str:
    """A share as a percentage with ``digits`` decimals (localised): 0.0291 → "2.9%"."""
    if rate is None:
        return "—"
    return f"{floatformat(rate * 100, digits)}%"
