"""The "record a visit, call or meeting" panel of the customer 360 page.

Registered into ``customers.panels`` at app start (see apps.py): circle ① renders it
without importing this app. Editors of any department see the form; others see nothing.
"""

from __future__ import annotations

from django.urls import reverse

from config.org.models import Role
from config.org.selectors import has_role_anywhere
from customers.panels import ProfilePanel, register_profile_panel
from experience.forms import ActivityForm
from experience.selectors import touchpoints_for_activity


def activity_panel_context(*, user, customer, form=None, message: str = "") -> dict:
    """What ``experience/_activity_panel.html`` shows as ``panel``."""
    return {
        "form": form or ActivityForm(touchpoints=touchpoints_for_activity(user)),
        "message": message,
        "action": reverse("experience:activity_record", args=[customer.pk]),
        "timeline_url": reverse("customers:detail", args=[customer.pk]),
    }


def activity_panel(*, request, customer, show_pii: bool) -> dict | None:
    """The panel's context, or ``None`` for viewers (they cannot record anything)."""
    if not has_role_anywhere(request.user, Role.EDITOR) or customer.merged_into_id is not None:
        return None
    return activity_panel_context(user=request.user, customer=customer)


register_profile_panel(
    ProfilePanel(
        name="experience.activity",
        template="experience/_activity_panel.html",
        context=activity_panel,
        order=40,
    )
)
