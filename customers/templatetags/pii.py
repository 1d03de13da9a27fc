"""Template filter for personal data: one masking rule for pages, API and exports."""

from __future__ import annotations

from django import template

from customers.selectors import mask_text

register = template.Library()


@register.filter
def pii(value, show: bool) -> str:
    """``{{ value|pii:show_pii }}``: the value itself, or its first character and ``***``."""
    text = "" if value is None else str(value)
    return text if show else mask_text(text)
