"""Circle ③'s part of the customer 360 timeline: campaign deliveries and staff tasks.

Registered into ``customers.timeline`` at app start (see apps.py). Every message and task the
person received is listed; the campaign's name only when the viewer may see the campaign.
"""

from __future__ import annotations

from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from customers.timeline import (
    TimelineCursor,
    TimelineEntry,
    TimelineFilters,
    cursor_q,
    register_timeline_source,
)
from experience.models import Touchpoint
from experience.timeline import visible_flag
from journeys.models import Campaign, Delivery, StaffTask


def deliveries_fetch(
    customer_id: int, *, before: TimelineCursor | None, limit: int, filters: TimelineFilters
) -> list[TimelineEntry]:
    """Campaign messages; index Delivery (customer, created_at)."""
    deliveries = Delivery.objects.filter(customer_id=customer_id).filter(
        cursor_q(before, source="deliveries", at_field="created_at")
    )
    if filters.channel:
        deliveries = deliveries.filter(campaign__channel=filters.channel)
    if filters.department_id:
        deliveries = deliveries.filter(campaign__owner_department_id=filters.department_id)
    deliveries = (
        deliveries.select_related("campaign__owner_department", "step")
        .annotate(campaign_visible=visible_flag(Campaign, "campaign_id", filters.viewer))
        .order_by("-created_at", "-pk")[:limit]
    )
    entries = []
    for delivery in deliveries:
        campaign = delivery.campaign
        department = campaign.owner_department.name
        if delivery.campaign_visible:
            title = campaign.name
            detail_parts = [delivery.step.name, str(delivery.get_status_display())]
        else:
            title = _("A campaign of %(department)s") % {"department": department}
            detail_parts = [str(delivery.get_status_display())]
        entries.append(
            TimelineEntry(
                at=delivery.created_at,
                source="deliveries",
                id=delivery.pk,
                kind=delivery.status,
                title=title,
                detail=" · ".join(part for part in detail_parts if part),
                channel=campaign.channel,
                channel_label=str(campaign.get_channel_display()),
                department=department,
                icon="delivery",
            )
        )
    return entries


def tasks_fetch(
    customer_id: int, *, before: TimelineCursor | None, limit: int, filters: TimelineFilters
) -> list[TimelineEntry]:
    """Staff tasks (calls, visits) for this customer, by when they were created.

    StaffTask has no (customer, created_at) index: the query uses the customer foreign-key
    index and sorts that person's tasks, which are few.
    """
    tasks = StaffTask.objects.filter(customer_id=customer_id).filter(
        cursor_q(before, source="tasks", at_field="created_at")
    )
    if filters.channel == Campaign.Channel.STAFF_TASK:
        tasks = tasks.filter(store__isnull=True)
    elif filters.channel:
        tasks = tasks.filter(store__channel=filters.channel)
    if filters.department_id:
        tasks = tasks.filter(
            Q(campaign__owner_department_id=filters.department_id)
            | Q(campaign__isnull=True, store__owner_department_id=filters.department_id)
        )
    tasks = (
        tasks.select_related("campaign__owner_department", "store__owner_department")
        .annotate(campaign_visible=visible_flag(Campaign, "campaign_id", filters.viewer))
        .order_by("-created_at", "-pk")[:limit]
    )
    entries = []
    for task in tasks:
        owner = task.campaign or task.store
        department = owner.owner_department.name if owner else ""
        if task.campaign is None or task.campaign_visible:
            title = task.title
        else:
            title = _("A staff task of %(department)s") % {"department": department}
        detail_parts = [str(task.get_status_display()), task.outcome]
        if task.due_at and task.status == StaffTask.Status.OPEN:
            due = timezone.localtime(task.due_at)
            detail_parts.append(_("due %(date)s") % {"date": f"{due:%Y-%m-%d}"})
        if task.store:
            channel, channel_label = task.store.channel, str(task.store.get_channel_display())
        else:
            channel = Campaign.Channel.STAFF_TASK
            channel_label = str(Campaign.Channel.STAFF_TASK.label)
        entries.append(
            TimelineEntry(
                at=task.created_at,
                source="tasks",
                id=task.pk,
                kind=task.status,
                title=title,
                detail=" · ".join(part for part in detail_parts if part),
                channel=channel,
                channel_label=channel_label,
                department=department,
                icon="task",
            )
        )
    return entries


register_timeline_source(
    "deliveries",
    deliveries_fetch,
    label=gettext_lazy("Campaign messages"),
    channels=Campaign.Channel.choices,
)
register_timeline_source(
    "tasks",
    tasks_fetch,
    label=gettext_lazy("Staff tasks"),
    channels=[
        (Campaign.Channel.STAFF_TASK.value, Campaign.Channel.STAFF_TASK.label),
        *Touchpoint.Channel.choices,
    ],
)
