"""Panels that outer circles add to the customer 360 page.

Circle ① cannot import the outer apps, yet the 360 page should show their side of the
person (the cart and favourites, survey answers, a form to record a visit or a call).
An outer app registers a :class:`ProfilePanel` in its ``AppConfig.ready``; the page
renders every registered panel, in ``order``, with the context its function returns.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

PanelContext = Callable[..., dict[str, Any] | None]


@dataclass(frozen=True)
class ProfilePanel:
    """A section of the 360 page: ``context(request=, customer=, show_pii=)`` returns the
    template's context, or ``None`` to leave the panel out for this person or viewer."""

    name: str
    template: str
    context: PanelContext
    order: int = 100


@dataclass(frozen=True)
class RenderedPanel:
    name: str
    template: str
    context: dict[str, Any]


_PANELS: dict[str, ProfilePanel] = {}


def register_profile_panel(panel: ProfilePanel) -> ProfilePanel:
    """Add (or replace, by name) a panel of the 360 page."""
    _PANELS[panel.name] = panel
    return panel


def profile_panels(*, request, customer, show_pii: bool) -> list[RenderedPanel]:
    """The panels to show on one customer's page, in order, with their contexts."""
    rendered = []
    for panel in sorted(_PANELS.values(), key=lambda p: (p.order, p.name)):
        context = panel.context(request=request, customer=customer, show_pii=show_pii)
        if context is not None:
            rendered.append(RenderedPanel(panel.name, panel.template, context))
    return rendered
