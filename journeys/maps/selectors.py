"""Reads of personas and journey maps, always scoped to the asking user.

Access helpers (``get_*_for``, ``can_edit``, ``can_share``) answer the same 404 whether a
record is missing or belongs to another department; the figures and the overlay are a
handful of set-based queries each, whatever the size of the segment.
"""

from __future__ import annotations

import datetime as dt
import itertools
from dataclasses import dataclass, field
from decimal import Decimal

from django.core.cache import cache
from django.db import connection
from django.db.models import (
    Count,
    F,
    Prefetch,
    Q,
    QuerySet,
    Sum,
)
from django.http import Http404
from django.utils import timezone
from django.utils.translation import gettext as _

from config.org.models import Role
from config.org.selectors import get_visible_or_404
from customers.models import Customer, LifeEvent, SegmentMembership
from experience.models import Event, OrderLine, Survey, SurveyResponse, Touchpoint
from experience.nps import nps_counts, nps_score
from journeys.maps.cells import CELLS, cell_display, cell_value
from journeys.models import Campaign, Comment, Journey, Persona, Revision, Stage
from journeys.selectors import journey_list

# --- Access -------------------------------------------------------------------------------


def get_persona_for(user, pk) -> Persona:
    """A persona the user may see, else 404."""
    return get_visible_or_404(
        Persona.objects.select_related("owner_department", "segment"), user, pk=pk
    )


def get_journey_for(user, pk) -> Journey:
    """A journey the user may see, else 404."""
    return get_visible_or_404(
        Journey.objects.select_related("owner_department", "persona"), user, pk=pk
    )


def get_stage_for(user, pk) -> Stage:
    """A stage of a journey the user may see, else 404."""
    try:
        return Stage.objects.select_related("journey", "journey__owner_department").get(
            pk=pk, journey__in=Journey.objects.visible_to(user).values("pk")
        )
    except (Stage.DoesNotExist, ValueError, TypeError) as exc:
        raise Http404 from exc


def get_record_for(user, kind: str, pk: int) -> Persona | Journey | Stage:
    """The persona, journey or stage ``kind``/``pk`` the user may see; 404 for unknown kinds."""
    getter = {"persona": get_persona_for, "journey": get_journey_for, "stage": get_stage_for}
    if kind not in getter:
        raise Http404
    return getter[kind](user, pk)


def on_visible_maps(user, prefix: str = "") -> Q:
    """Rows that hang on a persona or a journey the user may see (revisions, comments…);
    ``prefix`` reaches them through a relation, e.g. ``"comment__"``."""
    return Q(**{f"{prefix}persona__in": Persona.objects.visible_to(user).values("pk")}) | Q(
        **{f"{prefix}journey__in": Journey.objects.visible_to(user).values("pk")}
    )


def get_revision_for(user, pk) -> Revision:
    """A revision of a persona or journey the user may see; missing and not-yours: 404."""
    revision = (
        Revision.objects.select_related("persona", "journey", "stage")
        .filter(on_visible_maps(user), pk=pk)
        .first()
    )
    if revision is None:
        raise Http404
    return revision


def _owning_record(record) -> Persona | Journey:
    """The department-owned record that decides access: a stage answers to its journey."""
    return record.journey if isinstance(record, Stage) else record


def can_edit(user, record) -> bool:
    """True if the user may change the record: editor or manager of the owner department,
    or of a department it is shared with for editing (a stage follows its journey)."""
    if not (user and user.is_authenticated):
        return False
    owner = _owning_record(record)
    if user.is_superuser:
        return True
    if user.has_role(owner.owner_department_id, Role.EDITOR):
        return True
    return type(owner).objects.editable_by(user).filter(pk=owner.pk).exists()


def can_share(user, record) -> bool:
    """True for managers of the owner department and for the administrator."""
    if not (user and user.is_authenticated):
        return False
    owner = _owning_record(record)
    return user.is_superuser or user.has_role(owner.owner_department_id, Role.MANAGER)


# --- Lists ----------------------------------------------------------------------------------


def journey_templates(user) -> QuerySet[Journey]:
    """Template journeys the user can see, offered as starting points for new maps."""
    return journey_list(user).filter(is_template=True)


def persona_journeys(persona: Persona, *, user) -> QuerySet[Journey]:
    """The persona's journeys that the user can see (a journey may be shared more narrowly)."""
    return journey_list(user).filter(persona=persona)


def journey_stages(journey: Journey, *, user) -> list[Stage]:
    """The journey's stages in order, with touchpoints, experience values and owner loaded,
    and ``linked_campaigns``: the campaigns aimed at each stage that the user can see."""
    campaigns = Campaign.objects.visible_to(user).order_by("name", "pk")
    return list(
        journey.stages.order_by("position")
        .select_related("owner")
        .prefetch_related(
            "touchpoints",
            "experience_values",
            Prefetch("campaigns", queryset=campaigns, to_attr="linked_campaigns"),
        )
    )


# --- Persona figures ------------------------------------------------------------------------

CHANNEL_DAYS = 90
PRODUCT_DAYS = 365
SITUATION_DAYS = 365
TOP = 5


@dataclass
class PersonaFigures:
    """What the data says about the segment behind a persona (see :func:`persona_figures`)."""

    size: int
    share: float | None
    average_ltv: Decimal | None
    nps: float | None
    nps_responses: int
    promoters: int
    passives: int
    detractors: int
    f2_rate: float | None
    first_buyers: int
    repeat_buyers: int
    top_channels: list[tuple[str, int]] = field(default_factory=list)
    top_products: list[tuple[str, int]] = field(default_factory=list)
    situations: list[tuple[str, int]] = field(default_factory=list)
    computed_at: dt.datetime | None = None


def persona_figures(persona: Persona, *, now: dt.datetime | None = None) -> PersonaFigures | None:
    """The live figures of the persona's segment; ``None`` when no segment is linked.

    Members are the segment's SegmentMembership rows. ``size`` counts them; ``share`` is
    size / customers not merged into another profile; ``average_ltv`` the mean
    ``revenue_total`` (members without metrics count as 0); NPS over the members' latest
    score (``last_nps``) with :mod:`experience.nps`; ``f2_rate`` members with two or more
    orders / members with at least one; top channels by the members' events of the last
    90 days, top products by ordered quantity in the last 365 days, situations by distinct
    members per life-event kind in the last 365 days (top 5 each). Five queries, all
    set-based over a subquery of the membership.
    """

    if persona.segment_id is None:
        return None
    now = now or timezone.now()
    memberships = SegmentMembership.objects.filter(segment_id=persona.segment_id)
    members = memberships.values("customer_id")

    totals = memberships.annotate(score=F("customer__metrics__last_nps")).aggregate(
        size=Count("pk"),
        revenue=Sum("customer__metrics__revenue_total"),
        first_buyers=Count("pk", filter=Q(customer__metrics__order_count__gte=1)),
        repeat_buyers=Count("pk", filter=Q(customer__metrics__order_count__gte=2)),
        **nps_counts(),
    )
    size = totals["size"]
    customers = Customer.objects.filter(merged_into__isnull=True).count()

    channel_labels = dict(Touchpoint.Channel.choices)
    channels = (
        Event.objects.filter(
            customer_id__in=members,
            occurred_at__gt=now - dt.timedelta(days=CHANNEL_DAYS),
            occurred_at__lte=now,
            touchpoint__isnull=False,
        )
        .values("touchpoint__channel")
        .annotate(n=Count("pk"))
        .order_by("-n", "touchpoint__channel")[:TOP]
    )
    products = (
        OrderLine.objects.filter(
            order__customer_id__in=members,
            order__ordered_at__gt=now - dt.timedelta(days=PRODUCT_DAYS),
            order__ordered_at__lte=now,
        )
        .values("product_id", "product__name")
        .annotate(quantity=Sum("quantity"))
        .order_by("-quantity", "product__name", "product_id")[:TOP]
    )
    kind_labels = dict(LifeEvent.Kind.choices)
    situations = (
        LifeEvent.objects.filter(
            customer_id__in=members,
            detected_at__gt=now - dt.timedelta(days=SITUATION_DAYS),
            detected_at__lte=now,
        )
        .values("kind")
        .annotate(people=Count("customer_id", distinct=True))
        .order_by("-people", "kind")[:TOP]
    )

    responses = totals["total"]
    return PersonaFigures(
        size=size,
        share=size / customers if customers else None,
        average_ltv=(totals["revenue"] or Decimal(0)) / size if size else None,
        nps=nps_score(
            total=responses, promoters=totals["promoters"], detractors=totals["detractors"]
        ),
        nps_responses=responses,
        promoters=totals["promoters"],
        passives=responses - totals["promoters"] - totals["detractors"],
        detractors=totals["detractors"],
        f2_rate=(
            totals["repeat_buyers"] / totals["first_buyers"] if totals["first_buyers"] else None
        ),
        first_buyers=totals["first_buyers"],
        repeat_buyers=totals["repeat_buyers"],
        top_channels=[
            (
                str(channel_labels.get(row["touchpoint__channel"], row["touchpoint__channel"])),
                row["n"],
            )
            for row in channels
        ],
        top_products=[(row["product__name"], row["quantity"]) for row in products],
        situations=[
            (str(kind_labels.get(row["kind"], row["kind"])), row["people"]) for row in situations
        ],
        computed_at=now,
    )


# --- Data overlay of a journey --------------------------------------------------------------


@dataclass
class StageData:
    """What real events say about one stage in the window (see :func:`stage_overlay`)."""

    stage_id: int
    reach: int = 0
    next_conversion: float | None = None
    touchpoint_volumes: list[tuple[str, int]] = field(default_factory=list)
    nps: float | None = None
    nps_responses: int = 0
    converted: int = 0


def stage_overlay(
    journey: Journey, *, days: int = 90, now: dt.datetime | None = None
) -> dict[int, StageData]:
    """Stage id → reach, conversion to the next stage, touchpoint volumes and NPS.

    Population: the members of the persona's segment when one is linked, else every
    customer; window: the last ``days`` days. ``reach`` counts distinct people with an event
    at one of the stage's touchpoints; ``next_conversion`` the share of them with an event at
    one of the next stage's touchpoints after their first event at this stage (``None`` on
    the last stage or without reach); NPS from the NPS answers given at the stage's
    touchpoints. Five grouped queries per journey, whatever the number of people (the
    reach and conversion one in SQL, see :func:`_reach_and_conversion`).
    """

    now = now or timezone.now()
    start = now - dt.timedelta(days=days)
    stage_ids = list(journey.stages.order_by("position").values_list("pk", flat=True))
    if not stage_ids:
        return {}
    links = list(
        Stage.touchpoints.through.objects.filter(stage_id__in=stage_ids)
        .values_list("stage_id", "touchpoint_id", "touchpoint__name")
        .order_by("touchpoint__name", "touchpoint_id")
    )
    next_of = dict(itertools.pairwise(stage_ids))
    overlay = {pk: StageData(stage_id=pk) for pk in stage_ids}

    segment_id = journey.persona.segment_id
    population = Q()
    if segment_id is not None:
        members = SegmentMembership.objects.filter(segment_id=segment_id).values("customer_id")
        population = Q(customer_id__in=members)

    events = Event.objects.filter(
        population,
        occurred_at__gte=start,
        occurred_at__lte=now,
        touchpoint__stages__in=stage_ids,
    )
    for stage_id, reach, converted in _reach_and_conversion(
        stage_ids, next_of, start=start, end=now, segment_id=segment_id
    ):
        data = overlay[stage_id]
        data.reach, data.converted = reach, converted
        if stage_id in next_of and reach:
            data.next_conversion = converted / reach

    volumes = {
        (row["touchpoint__stages"], row["touchpoint_id"]): row["n"]
        for row in events.values("touchpoint__stages", "touchpoint_id")
        .annotate(n=Count("pk"))
        .order_by()
    }
    for stage_id, touchpoint_id, name in links:
        overlay[stage_id].touchpoint_volumes.append(
            (name, volumes.get((stage_id, touchpoint_id), 0))
        )
    for data in overlay.values():
        data.touchpoint_volumes.sort(key=lambda item: -item[1])

    nps_rows = (
        SurveyResponse.objects.filter(
            population,
            answered_at__gte=start,
            answered_at__lte=now,
            score__isnull=False,
            survey__kind=Survey.Kind.NPS,
            touchpoint__stages__in=stage_ids,
        )
        .values("touchpoint__stages")
        .annotate(**nps_counts())
        .order_by()
    )
    for row in nps_rows:
        data = overlay[row["touchpoint__stages"]]
        data.nps_responses = row["total"]
        data.nps = nps_score(
            total=row["total"], promoters=row["promoters"], detractors=row["detractors"]
        )
    return overlay


# --- History and activity -------------------------------------------------------------------


def revision_history(
    *, persona: Persona | None = None, journey: Journey | None = None, stage: Stage | None = None
) -> QuerySet[Revision]:
    """A record's change log, newest first, with authors: a journey's includes its stages'
    (also of stages since deleted); a stage's only its own."""
    revisions = Revision.objects.select_related("author", "stage").order_by("-created_at", "-pk")
    if stage is not None:
        return revisions.filter(stage=stage)
    if journey is not None:
        return revisions.filter(journey=journey)
    if persona is not None:
        return revisions.filter(persona=persona)
    raise ValueError("revision_history needs a persona, a journey or a stage")


def revision_kind(revision: Revision) -> str:
    """``"stage"``, ``"journey"`` or ``"persona"``: which kind of record the row changed."""
    if revision.stage_id is not None or revision.stage_name:
        return "stage"
    return "journey" if revision.journey_id is not None else "persona"


def value_before(revision: Revision) -> str:
    """The changed cell's value before the revision, as people read it ("" for whole-record
    rows such as create or delete)."""
    return _display(revision, revision.before)


def value_after(revision: Revision) -> str:
    """The changed cell's value after the revision, as people read it."""
    return _display(revision, revision.after)


def _display(revision: Revision, value) -> str:

    if not revision.field or value is None or isinstance(value, dict):
        return ""
    return cell_display(revision_kind(revision), revision.field, value)


def activity_feed(user, *, limit: int = 30) -> list[dict]:
    """The latest changes and comments on personas and journeys the user can see, newest
    first: two queries, merged. Each item: ``type`` ("revision" | "comment"), ``at``,
    ``actor``, ``persona``, ``journey``, ``stage_name``, ``field``, ``action`` (label),
    ``text`` (the comment), ``field_label`` and ``object`` (the row)."""
    if not (user and user.is_authenticated):
        return []
    scope = on_visible_maps(user)
    revisions = (
        Revision.objects.filter(scope)
        .select_related("author", "persona", "journey")
        .order_by("-created_at", "-pk")[:limit]
    )
    comments = (
        Comment.objects.filter(scope)
        .select_related("author", "persona", "journey", "stage")
        .order_by("-created_at", "-pk")[:limit]
    )
    items = [
        {
            "type": "revision",
            "at": revision.created_at,
            "actor": revision.author,
            "persona": revision.persona,
            "journey": revision.journey,
            "stage_name": revision.stage_name,
            "field": revision.field,
            "action": revision.get_action_display(),
            "text": "",
            "object": revision,
        }
        for revision in revisions
    ] + [
        {
            "type": "comment",
            "at": comment.created_at,
            "actor": comment.author,
            "persona": comment.persona,
            "journey": comment.journey,
            "stage_name": comment.stage.name if comment.stage_id else "",
            "field": comment.field,
            "action": _("replied") if comment.parent_id else _("commented"),
            "text": comment.body,
            "object": comment,
        }
        for comment in comments
    ]
    items.sort(key=lambda item: (item["at"], item["object"].pk), reverse=True)
    for item in items:
        item["field_label"] = _field_label(item)
    return items[:limit]


def _field_label(item: dict) -> str:
    """The cell's label in the reader's language ("" for whole-record changes)."""

    if not item["field"]:
        return ""
    kind = "stage" if item["stage_name"] else ("journey" if item["journey"] else "persona")
    spec = CELLS[kind].get(item["field"])
    return str(spec.label) if spec else item["field"]


# --- Export grid ----------------------------------------------------------------------------


OVERLAY_CACHE_SECONDS = 300


def stage_overlay_recent(journey: Journey, *, days: int = 90) -> dict[int, StageData]:
    """``stage_overlay`` up to now, kept for five minutes per map, period and layout.

    The overlay scans the event log (seconds for a whole customer base) and moves by the
    day, not by the second, so pages, polls and exports share one computation. The key
    carries ``journey.updated_at``, which every cell or layout change moves, so a new
    touchpoint on a stage shows at once. Daily rollups (circle ④) will replace the scan.
    """
    key = (
        f"journeys:overlay:{journey.pk}:{days}:{journey.persona.segment_id}:"
        f"{journey.updated_at.timestamp()}"
    )
    overlay = cache.get(key)
    if overlay is None:
        overlay = stage_overlay(journey, days=days)
        cache.set(key, overlay, OVERLAY_CACHE_SECONDS)
    return overlay


def journey_table(
    journey: Journey,
    *,
    user,
    overlay: dict[int, StageData] | None = None,
    days: int = 90,
    now: dt.datetime | None = None,
) -> list[list[str]]:
    """The journey map as rows of text for CSV and print: a header ``["", stage names…]``,
    one row per stage lane (``cell_display``, so grid, CSV and print read the same), then
    the linked campaigns the user can see and the data overlay (reach, conversion to the
    next stage, NPS) of the last ``days`` days. Pass ``overlay`` when already computed."""

    stages = journey_stages(journey, user=user)
    if overlay is None:
        overlay = (
            stage_overlay_recent(journey, days=days)
            if now is None
            else stage_overlay(journey, days=days, now=now)
        )
    rows = [[""] + [stage.name for stage in stages]]
    for name, spec in CELLS["stage"].items():
        if name == "name":
            continue
        rows.append(
            [str(spec.label)]
            + [cell_display("stage", name, cell_value(stage, name)) for stage in stages]
        )
    rows.append(
        [_("Linked campaigns")]
        + [", ".join(campaign.name for campaign in stage.linked_campaigns) for stage in stages]
    )
    empty = StageData(stage_id=0)
    data = [overlay.get(stage.pk, empty) for stage in stages]
    rows.append(
        [_("Reach (last %(days)s days)") % {"days": days}] + [str(item.reach) for item in data]
    )
    rows.append(
        [_("Conversion to the next stage")] + [_percent(item.next_conversion) for item in data]
    )
    rows.append(
        [_("NPS at the stage")]
        + [
            _("%(score)s (%(answers)s answers)")
            % {"score": f"{item.nps:+.1f}", "answers": item.nps_responses}
            if item.nps is not None
            else ""
            for item in data
        ]
    )
    return rows


def _percent(value: float | None) -> str:
    return "" if value is None else f"{value * 100:.1f}%"


def _reach_and_conversion(
    stage_ids: list[int],
    next_of: dict[int, int],
    *,
    start: dt.datetime,
    end: dt.datetime,
    segment_id: int | None,
) -> list[tuple[int, int, int]]:
    """(stage id, reach, converted) in one scan of the window's events.

    Per stage and person the first and the last event time; a person converts when their
    last event at the next stage comes after their first at this one (the same as "some
    later event"). A self-join of that small grouped table instead of a correlated
    subquery per event: about three times faster on the demo data.
    """

    quote = connection.ops.quote_name
    adapt = connection.ops.adapt_datetimefield_value
    event = quote(Event._meta.db_table)
    links = quote(Stage.touchpoints.through._meta.db_table)
    members = quote(SegmentMembership._meta.db_table)
    stage_params = ", ".join(["%s"] * len(stage_ids))
    params: list = [*stage_ids, adapt(start), adapt(end)]
    population = ""
    if segment_id is not None:
        population = (
            f"AND e.customer_id IN (SELECT customer_id FROM {members} WHERE segment_id = %s)"
        )
        params.append(segment_id)
    next_stage = "NULL"
    if next_of:
        whens = " ".join(["WHEN %s THEN %s"] * len(next_of))
        next_stage = f"CASE f.stage_id {whens} ELSE NULL END"
        params.extend(itertools.chain.from_iterable(next_of.items()))
    sql = f"""
        WITH firsts AS (
            SELECT l.stage_id AS stage_id, e.customer_id AS customer_id,
                   MIN(e.occurred_at) AS first_at, MAX(e.occurred_at) AS last_at
            FROM {event} e JOIN {links} l ON l.touchpoint_id = e.touchpoint_id
            WHERE l.stage_id IN ({stage_params}) AND e.occurred_at >= %s
              AND e.occurred_at <= %s {population}
            GROUP BY l.stage_id, e.customer_id
        )
        SELECT f.stage_id, COUNT(*), COUNT(n.customer_id)
        FROM firsts f LEFT JOIN firsts n ON n.customer_id = f.customer_id
            AND n.stage_id = ({next_stage}) AND n.last_at > f.first_at
        GROUP BY f.stage_id
    """  # Only quoted table names and placeholders are interpolated; values are parameters.
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return [(int(stage), int(reach), int(converted)) for stage, reach, converted in cursor]
