"""The weekly e-mail of the four-circle overview: subscriptions, the due check and sending.

A subscription is due on its local weekday (Japan time) from its hour on, once per ISO
week: ``last_period`` holds the week last sent. Each due subscription is claimed (its
``last_period`` set to this week by a conditional UPDATE) before its mail goes out and
released if the mail server refuses it, so an hourly task that runs twice sends once, and a
refused mail is tried again at the next run of the same day.

The mail summarises the overview for the recipient: the same figures of the three stages
of the loop over the last 7 full days against the 7 before, and the recipient's
departments, with a link to the page. It is written in the recipient's language when the
user model has one, else the site's.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass
from urllib.parse import urlencode

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.mail import EmailMultiAlternatives, get_connection
from django.db import transaction
from django.db.models import Q, QuerySet
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone, translation
from django.utils.translation import gettext

from config.org.models import Department, Role
from config.org.services import audit_record
from reports.catalog import Period, ReportFilters
from reports.models import ReportSubscription
from reports.pages.overview import COMPANY_WIDE, STAGES, stage_metrics
from reports.selectors.overview import loop_overview

logger = logging.getLogger(__name__)


def iso_week(day: dt.date) -> str:
    """``2026-W47``: the ISO week a day falls in, as stored in ``last_period``."""
    year, week, _weekday = day.isocalendar()
    return f"{year}-W{week:02d}"


def managed_members(user) -> QuerySet:
    """The users ``user`` may subscribe: themselves, members of the departments they manage,
    everyone for the administrator."""
    users = get_user_model().objects.filter(is_active=True)
    if user.is_superuser:
        return users
    managed = user.department_ids_with_role(Role.MANAGER)
    return users.filter(Q(pk=user.pk) | Q(memberships__department_id__in=managed)).distinct()


def subscriptions_for(user) -> QuerySet[ReportSubscription]:
    """Subscriptions ``user`` may see and change: their own and those of people they manage."""
    return ReportSubscription.objects.filter(user__in=managed_members(user).values("pk"))


@transaction.atomic
def subscription_set(
    *,
    user,
    department: Department | None = None,
    weekday: int = 0,
    hour: int = 8,
    active: bool = True,
    by,
) -> ReportSubscription:
    """Create or change ``user``'s weekly overview e-mail (one per user and department).

    ``by`` is the user themselves, a manager of one of their departments or the
    administrator; anyone else gets ``PermissionDenied``.
    """
    if not managed_members(by).filter(pk=user.pk).exists():
        raise PermissionDenied
    if not 0 <= weekday <= 6:
        raise ValidationError({"weekday": gettext("Choose a day from Monday (0) to Sunday (6).")})
    if not 0 <= hour <= 23:
        raise ValidationError({"hour": gettext("Choose an hour from 0 to 23.")})
    subscription, created = ReportSubscription.objects.update_or_create(
        user=user,
        department=department,
        defaults={"weekday": weekday, "hour": hour, "is_active": active},
        create_defaults={
            "weekday": weekday,
            "hour": hour,
            "is_active": active,
            "created_by": by,
        },
    )
    audit_record(
        actor=by,
        action="report_subscription.set",
        target=subscription,
        department=department,
        detail={
            "user": user.pk,
            "weekday": weekday,
            "hour": hour,
            "active": active,
            "created": created,
        },
    )
    return subscription


# --- Sending ------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Claim:
    subscription: ReportSubscription
    last_period: str
    last_sent_at: dt.datetime | None


def due_subscriptions(*, now: dt.datetime) -> QuerySet[ReportSubscription]:
    """Active subscriptions of active users with an address, due at ``now`` and not yet sent
    this ISO week."""
    local = timezone.localtime(now)
    return (
        ReportSubscription.objects.filter(
            is_active=True,
            user__is_active=True,
            weekday=local.weekday(),
            hour__lte=local.hour,
        )
        .exclude(user__email="")
        .exclude(last_period=iso_week(local.date()))
        .select_related("user", "department")
        .order_by("pk")
    )


def _claim(subscription: ReportSubscription, *, week: str, now: dt.datetime) -> _Claim | None:
    """Mark one subscription as sent this week unless another run already did."""
    claimed = (
        ReportSubscription.objects.filter(pk=subscription.pk)
        .exclude(last_period=week)
        .update(last_period=week, last_sent_at=now)
    )
    if not claimed:
        return None
    return _Claim(subscription, subscription.last_period, subscription.last_sent_at)


def _release(claim: _Claim) -> None:
    ReportSubscription.objects.filter(pk=claim.subscription.pk).update(
        last_period=claim.last_period, last_sent_at=claim.last_sent_at
    )


def report_emails_send_due(*, now: dt.datetime | None = None) -> int:
    """Send the weekly overview to every subscription due now; returns how many were sent.

    Claims first, sends each mail on one connection, releases the claim of a mail the
    server refuses (logged; the others still go). A connection that cannot be opened
    releases every claim and raises, so the task's failure shows in the admin.
    """
    now = now or timezone.now()
    week = iso_week(timezone.localtime(now).date())
    claims = [
        claim
        for subscription in due_subscriptions(now=now)
        if (claim := _claim(subscription, week=week, now=now)) is not None
    ]
    if not claims:
        return 0
    sent = 0
    try:
        connection = get_connection()
        connection.open()
    except Exception:
        for claim in claims:
            _release(claim)
        raise
    try:
        for claim in claims:
            try:
                message = overview_email(subscription=claim.subscription, now=now)
                message.connection = connection
                sent += message.send() or 0
            except Exception:
                logger.exception(
                    "weekly overview to subscription %s not sent", claim.subscription.pk
                )
                _release(claim)
    finally:
        connection.close()
    return sent


def email_period(now: dt.datetime) -> Period:
    """The last 7 full local days before ``now``."""
    end = timezone.localtime(now).date() - dt.timedelta(days=1)
    return Period(end - dt.timedelta(days=6), end)


def overview_link(*, period: Period, department: Department | None) -> str:
    """The overview page with the e-mail's period and department, absolute when
    ``SITE_URL`` is set."""
    query = {"period": "custom", "start": period.start.isoformat(), "end": period.end.isoformat()}
    if department is not None:
        query["department"] = department.pk
    path = f"{reverse('reports:report', args=['overview'])}?{urlencode(query)}"
    return f"{settings.SITE_URL}{path}" if settings.SITE_URL else path


def overview_email(*, subscription: ReportSubscription, now: dt.datetime) -> EmailMultiAlternatives:
    """The weekly overview of one subscription: plain text with an HTML alternative."""
    user = subscription.user
    period = email_period(now)
    filters = ReportFilters(
        period=period, compare=period.previous(), department=subscription.department
    )
    data = loop_overview(user=user, filters=filters, with_days=False)
    own = set(user.department_ids) if not user.is_superuser else None
    departments = [
        row
        for row in data.departments
        if row.department_id is not None and (own is None or row.department_id in own)
    ]
    language = getattr(user, "language", "") or settings.LANGUAGE_CODE
    with translation.override(language):
        stages = []
        for key, title, _help, keys in STAGES:
            if subscription.department is not None:
                keys = tuple(item for item in keys if item[0] not in COMPANY_WIDE)
            stages.append(
                {
                    "key": key,
                    "title": str(title),
                    "metrics": stage_metrics(data.totals, data.previous, keys),
                }
            )
        context = {
            "user": user,
            "language": language,
            "subscription": subscription,
            "period": period,
            "previous": filters.compare,
            "stages": stages,
            "departments": departments,
            "link": overview_link(period=period, department=subscription.department),
            "manage_link": (
                f"{settings.SITE_URL}{reverse('reports:subscriptions')}"
                if settings.SITE_URL
                else reverse("reports:subscriptions")
            ),
        }
        subject = gettext("Your weekly overview: %(start)s – %(end)s") % {
            "start": period.start.isoformat(),
            "end": period.end.isoformat(),
        }
        if subscription.department is not None:
            subject = f"{subject} · {subscription.department.name}"
        text = render_to_string("reports/email/overview.txt", context)
        html = render_to_string("reports/email/overview.html", context)
    message = EmailMultiAlternatives(
        subject=subject, body=text, from_email=settings.DEFAULT_FROM_EMAIL, to=[user.email]
    )
    message.attach_alternative(html, "text/html")
    return message
