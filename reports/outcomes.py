"""Campaign outcomes: what followed each campaign for its treatment and its holdout group.

Everything is counted over **enrolments** (one person's pass through a campaign), the unit
the holdout is drawn on, within the campaign's ``conversion_window_days`` after the
enrolment's ``entered_at``:

- ``enrolled``: enrolments of the group;
- ``converted``: enrolments with a converted delivery (the definition of
  ``journeys.selectors.campaign_results``' lift);
- ``buyers``: enrolments whose customer completed an order in the window; ``revenue`` the
  total of those orders; ``repeat_buyers`` the buyers who had completed an order before
  entry;
- ``promoters`` / ``passives`` / ``detractors``: NPS answers given in the window.

Each figure group is one aggregate query over all campaigns at once, grouped by campaign and
group; :func:`outcome_counts` also serves reports that restrict the enrolments to the members
of a segment.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from decimal import Decimal

from django.core.cache import cache
from django.db import transaction
from django.db.models import Count, DateTimeField, Exists, F, Func, Max, OuterRef, Q, Sum
from django.utils import timezone

from customers.models import SegmentMembership
from experience.models import Order, Survey
from experience.nps import DETRACTOR_MAX, PROMOTER_MIN
from journeys.models import Campaign, Delivery, Enrollment
from reports.models import CampaignOutcome

OUTCOME_FIELDS = (
    "enrolled",
    "converted",
    "buyers",
    "repeat_buyers",
    "revenue",
    "promoters",
    "passives",
    "detractors",
)
GROUP = ("campaign_id", "is_holdout")
# Outcomes over a segment's members are recomputed at most once per refresh of the stored
# outcomes (every 15 minutes), or after this many seconds.
SEGMENT_CACHE_SECONDS = 15 * 60

Counts = dict[str, int | Decimal]


def empty_counts() -> Counts:
    """All outcome figures at zero."""
    return {name: Decimal(0) if name == "revenue" else 0 for name in OUTCOME_FIELDS}


class PlusDays(Func):
    """A datetime column plus a whole number of days, in the database's own arithmetic.

    Django's ``F(...) + timedelta`` calls back into Python for every row on SQLite, which
    costs more than the whole join; SQLite's ``datetime()`` adds the days to the
    ``YYYY-MM-DD HH:MM:SS`` part of Django's text format and the fraction is kept as stored,
    so the result compares exactly like Django's own values. PostgreSQL adds an interval.
    """

    output_field = DateTimeField()
    arity = 1

    def __init__(self, expression, *, days: int):
        self.days = int(days)
        super().__init__(expression)

    def as_sql(self, compiler, connection, **extra_context):
        return super().as_sql(
            compiler,
            connection,
            template=f"(%(expressions)s + INTERVAL '{self.days} days')",
            **extra_context,
        )

    def as_sqlite(self, compiler, connection, **extra_context):
        column, params = compiler.compile(self.source_expressions[0])
        sql = f"(datetime(substr({column}, 1, 19), '+{self.days} days') || substr({column}, 20))"
        return sql, (*params, *params)


def _in_window(path: str, windows: dict[int, list[int]]) -> Q:
    """``path`` (a datetime reached from the enrolment) lies in
    ``[entered_at, entered_at + the campaign's window)``.

    Campaigns share few window lengths, so the window is one branch per length: plain
    datetime arithmetic that SQLite and PostgreSQL both index.
    """
    ends = Q()
    for days, campaign_ids in sorted(windows.items()):
        ends |= Q(campaign_id__in=campaign_ids) & Q(
            **{f"{path}__lt": PlusDays(F("entered_at"), days=days)}
        )
    return Q(**{f"{path}__gte": F("entered_at")}) & ends


def outcome_counts(
    *, campaign_ids: Iterable[int] | None = None, segment_id: int | None = None
) -> dict[tuple[int, bool], Counts]:
    """Outcome figures per ``(campaign_id, is_holdout)``, in three aggregate queries.

    ``campaign_ids`` None means every campaign; ``segment_id`` keeps only enrolments of the
    segment's members. Groups without enrolments are absent.
    """
    campaigns = Campaign.objects.all()
    if campaign_ids is not None:
        campaigns = campaigns.filter(pk__in=list(campaign_ids))
    windows: dict[int, list[int]] = defaultdict(list)
    for pk, days in campaigns.values_list("pk", "conversion_window_days"):
        windows[days].append(pk)
    if not windows:
        return {}
    enrolments = Enrollment.objects.filter(
        campaign_id__in=[pk for ids in windows.values() for pk in ids]
    )
    if segment_id is not None:
        enrolments = enrolments.filter(
            Exists(
                SegmentMembership.objects.filter(
                    segment_id=segment_id, customer_id=OuterRef("customer_id")
                )
            )
        )
    result: dict[tuple[int, bool], Counts] = defaultdict(empty_counts)

    def fold(rows) -> None:
        for row in rows:
            counts = result[(row.pop("campaign_id"), row.pop("is_holdout"))]
            counts.update({name: value or 0 for name, value in row.items()})

    converted = Exists(
        Delivery.objects.filter(enrollment_id=OuterRef("pk"), converted_at__isnull=False)
    )
    fold(
        enrolments.values(*GROUP)
        .annotate(enrolled=Count("pk"), converted=Count("pk", filter=Q(converted)))
        .order_by()
    )

    bought_before = Exists(
        Order.objects.filter(
            customer_id=OuterRef("customer_id"),
            status=Order.Status.COMPLETED,
            ordered_at__lt=OuterRef("entered_at"),
        )
    )
    fold(
        enrolments.filter(
            Q(customer__orders__status=Order.Status.COMPLETED)
            & _in_window("customer__orders__ordered_at", windows)
        )
        .values(*GROUP)
        .annotate(
            buyers=Count("pk", distinct=True),
            repeat_buyers=Count("pk", distinct=True, filter=Q(bought_before)),
            revenue=Sum("customer__orders__total"),
        )
        .order_by()
    )

    score = "customer__survey_responses__score"
    fold(
        enrolments.filter(
            Q(
                customer__survey_responses__survey__kind=Survey.Kind.NPS,
                customer__survey_responses__score__isnull=False,
            )
            & _in_window("customer__survey_responses__answered_at", windows)
        )
        .values(*GROUP)
        .annotate(
            promoters=Count(
                "customer__survey_responses", filter=Q(**{f"{score}__gte": PROMOTER_MIN})
            ),
            passives=Count(
                "customer__survey_responses",
                filter=Q(**{f"{score}__gt": DETRACTOR_MAX, f"{score}__lt": PROMOTER_MIN}),
            ),
            detractors=Count(
                "customer__survey_responses", filter=Q(**{f"{score}__lte": DETRACTOR_MAX})
            ),
        )
        .order_by()
    )
    for counts in result.values():
        counts["revenue"] = Decimal(counts["revenue"])
    return dict(result)


def segment_outcome_counts(
    *, campaign_ids: Iterable[int], segment_id: int
) -> dict[tuple[int, bool], Counts]:
    """:func:`outcome_counts` over the enrolments of a segment's members, cached until the
    stored outcomes of these campaigns are refreshed: as fresh as the unrestricted figures
    next to them."""
    ids = sorted(set(campaign_ids))
    if not ids:
        return {}
    stamp = CampaignOutcome.objects.filter(campaign_id__in=ids).aggregate(at=Max("computed_at"))[
        "at"
    ]
    key = "reports:outcomes:{}:{}:{}".format(
        segment_id, ",".join(map(str, ids)), stamp.timestamp() if stamp else "-"
    )
    counts = cache.get(key)
    if counts is None:
        counts = outcome_counts(campaign_ids=ids, segment_id=segment_id)
        cache.set(key, counts, SEGMENT_CACHE_SECONDS)
    return counts


@transaction.atomic
def campaign_outcomes_refresh(*, campaign_ids: Iterable[int] | None = None) -> int:
    """Recompute :class:`CampaignOutcome` whole for these campaigns (all when None).

    Writes one row per campaign and group (treatment, holdout), zeros where a group has no
    enrolments; idempotent. Returns the number of rows written.
    """
    campaigns = Campaign.objects.all()
    if campaign_ids is not None:
        campaigns = campaigns.filter(pk__in=list(campaign_ids))
    ids = list(campaigns.values_list("pk", flat=True))
    counts = outcome_counts(campaign_ids=ids) if ids else {}
    now = timezone.now()
    rows = [
        CampaignOutcome(
            campaign_id=pk,
            is_holdout=is_holdout,
            computed_at=now,
            **counts.get((pk, is_holdout), empty_counts()),
        )
        for pk in ids
        for is_holdout in (False, True)
    ]
    stale = CampaignOutcome.objects.all()
    if campaign_ids is not None:
        stale = stale.filter(campaign_id__in=ids)
    stale.delete()
    CampaignOutcome.objects.bulk_create(rows, batch_size=2_000)
    return len(rows)
