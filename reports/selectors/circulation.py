"""Reads of data circulation: whose data the segments and campaigns of each department use.

The measure of department walls coming down. Every thing a rule tree can name has an
owner department:

- event types (``EventType.owner_department``): ``event`` conditions, a campaign's trigger
  event and its ``unless`` events;
- touchpoints: the ``touchpoint`` of ``event`` and ``order`` conditions;
- attributes (``AttributeDefinition``): ``attribute`` conditions;
- surveys: ``nps`` conditions and the ``last_nps`` metric read the answers to NPS surveys
  (every NPS survey's owner contributes); an attribute a preference survey fills;
- segments: ``segment`` conditions, and a campaign's audience segment;
- import jobs: a completed customer import that filled the attribute a condition reads.

A **flow** is (data owner → user department, kind) with the number of segments and
campaigns of the user department that use such data, and the deliveries those campaigns
sent in the period. Rule trees are read as they are now; the "walls down" rate of a past
moment counts the segments and campaigns that existed then (by creation date).

Counts cover every segment and campaign; names only those the asking user can see.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from dataclasses import dataclass, field

from django.apps import apps
from django.contrib.contenttypes.models import ContentType
from django.db.models import Sum

from config.org.models import Department, DepartmentOwned, Share
from customers.importers import ATTRIBUTE_PREFIX
from customers.models import AttributeDefinition, ImportJob, Segment
from customers.segments import iter_conditions
from experience.models import EventType, Survey, Touchpoint
from journeys.models import Campaign
from reports.catalog import ReportFilters
from reports.models import DailyDeliveries

KINDS = ("event_type", "touchpoint", "attribute", "survey", "segment", "import")
MAX_NAMES = 5


@dataclass
class Flow:
    """Data of ``owner_id`` used by segments and campaigns of ``user_id``."""

    owner_id: int
    user_id: int
    kind: str
    segments: int = 0
    campaigns: int = 0
    sent: int = 0
    names: list[str] = field(default_factory=list)

    @property
    def is_cross(self) -> bool:
        return self.owner_id != self.user_id


@dataclass(frozen=True)
class WallsDown:
    """Segments and campaigns that use another department's data, among ``total``."""

    crossing: int
    total: int

    @property
    def rate(self) -> float | None:
        return self.crossing / self.total if self.total else None


@dataclass(frozen=True)
class SharePair:
    owner_id: int
    department_id: int
    kind: str
    shared: int
    can_edit: int
    new_in_period: int


@dataclass
class Circulation:
    departments: dict[int, str]
    flows: list[Flow]
    walls_down: WallsDown
    walls_down_before: WallsDown | None
    shares: list[SharePair]
    cross_sent: int = 0  # deliveries of campaigns using another department's data, once each


@dataclass(frozen=True)
class _User:
    """A segment or campaign that uses data: its department, creation time and name."""

    key: tuple[str, int]
    department_id: int
    created_at: dt.datetime
    name: str
    visible: bool


class _Owners:
    """Owner departments of every nameable thing, loaded once (small registry tables)."""

    def __init__(self) -> None:
        self.event_types = dict(
            EventType.objects.filter(owner_department__isnull=False).values_list(
                "name", "owner_department_id"
            )
        )
        self.touchpoints = dict(Touchpoint.objects.values_list("code", "owner_department_id"))
        self.attributes = dict(
            AttributeDefinition.objects.values_list("key", "owner_department_id")
        )
        self.segments = dict(Segment.objects.values_list("pk", "owner_department_id"))
        self.nps_surveys: set[int] = set()
        self.survey_attributes: dict[str, set[int]] = defaultdict(set)
        for kind, owner, key in Survey.objects.values_list(
            "kind", "owner_department_id", "attribute__key"
        ):
            if kind == Survey.Kind.NPS:
                self.nps_surveys.add(owner)
            if key:
                self.survey_attributes[key].add(owner)
        self.imports: dict[str, set[int]] = defaultdict(set)
        for owner, mapping in ImportJob.objects.filter(
            kind=ImportJob.Kind.CUSTOMERS, status=ImportJob.Status.DONE
        ).values_list("owner_department_id", "mapping"):
            for target in (mapping or {}).values():
                if isinstance(target, str) and target.startswith(ATTRIBUTE_PREFIX):
                    self.imports[target[len(ATTRIBUTE_PREFIX) :]].add(owner)

    def of_rules(self, rules) -> set[tuple[int, str]]:
        """(owner department, kind) of everything a rule tree names."""
        found: set[tuple[int, str]] = set()
        if not isinstance(rules, dict) or not rules:
            return found
        for condition in iter_conditions(rules):
            kind = condition.get("type")
            if kind == "event":
                self._add(found, self.event_types.get(condition.get("event")), "event_type")
            if kind in ("event", "order") and condition.get("touchpoint"):
                self._add(found, self.touchpoints.get(condition["touchpoint"]), "touchpoint")
            if kind == "attribute":
                key = condition.get("key")
                self._add(found, self.attributes.get(key), "attribute")
                for owner in self.survey_attributes.get(key, ()):
                    self._add(found, owner, "survey")
                for owner in self.imports.get(key, ()):
                    self._add(found, owner, "import")
            if kind == "nps" or (kind == "metric" and condition.get("field") == "last_nps"):
                for owner in self.nps_surveys:
                    self._add(found, owner, "survey")
            if kind == "segment":
                self._add(found, self.segments.get(condition.get("segment")), "segment")
        return found

    def of_trigger(self, trigger) -> set[tuple[int, str]]:
        found: set[tuple[int, str]] = set()
        if not isinstance(trigger, dict):
            return found
        names = [trigger.get("event_type"), *(trigger.get("unless") or [])]
        for name in names:
            if isinstance(name, str):
                self._add(found, self.event_types.get(name), "event_type")
        return found

    @staticmethod
    def _add(found: set, owner: int | None, kind: str) -> None:
        if owner is not None:
            found.add((owner, kind))


def _uses(user) -> list[tuple[_User, set[tuple[int, str]]]]:
    """Every segment and campaign with the (owner, kind) pairs of the data it uses."""
    owners = _Owners()
    visible_segments = set(Segment.objects.visible_to(user).values_list("pk", flat=True))
    visible_campaigns = set(Campaign.objects.visible_to(user).values_list("pk", flat=True))
    uses = []
    for pk, department_id, created_at, name, rules in Segment.objects.values_list(
        "pk", "owner_department_id", "created_at", "name", "rules"
    ):
        used = _User(("segment", pk), department_id, created_at, name, pk in visible_segments)
        uses.append((used, owners.of_rules(rules)))
    for (
        pk,
        department_id,
        created_at,
        name,
        segment_id,
        rules,
        trigger,
    ) in Campaign.objects.values_list(
        "pk", "owner_department_id", "created_at", "name", "segment_id", "audience_rules", "trigger"
    ):
        found = owners.of_rules(rules) | owners.of_trigger(trigger)
        if segment_id is not None:
            _Owners._add(found, owners.segments.get(segment_id), "segment")
        used = _User(("campaign", pk), department_id, created_at, name, pk in visible_campaigns)
        uses.append((used, found))
    return uses


def _walls_down(uses, *, before: dt.datetime, department_id: int | None) -> WallsDown:
    crossing = total = 0
    for used, found in uses:
        if used.created_at >= before:
            continue
        if department_id is not None and used.department_id != department_id:
            continue
        total += 1
        crossing += any(owner != used.department_id for owner, _kind in found)
    return WallsDown(crossing, total)


def data_circulation(*, user, filters: ReportFilters) -> Circulation:
    """Flows of data between departments, the walls-down rate at the end of the period (and
    of the comparison period) and the sharing between departments."""
    department_id = filters.department.pk if filters.department is not None else None
    uses = _uses(user)
    sent = dict(
        DailyDeliveries.objects.filter(day__gte=filters.period.start, day__lte=filters.period.end)
        .values_list("campaign_id")
        .annotate(sent=Sum("sent"))
        .order_by()
        .values_list("campaign_id", "sent")
    )
    period_end = filters.period.bounds()[1]
    flows: dict[tuple[int, int, str], Flow] = {}
    crossing_campaigns: set[int] = set()
    for used, found in uses:
        if used.created_at >= period_end:
            continue
        involved = department_id is None or department_id in {
            used.department_id,
            *(owner for owner, _kind in found),
        }
        crosses = any(owner != used.department_id for owner, _kind in found)
        if used.key[0] == "campaign" and crosses and involved:
            crossing_campaigns.add(used.key[1])
        for owner, kind in found:
            if department_id is not None and department_id not in (owner, used.department_id):
                continue
            flow = flows.setdefault(
                (owner, used.department_id, kind), Flow(owner, used.department_id, kind)
            )
            is_campaign = used.key[0] == "campaign"
            if is_campaign:
                flow.campaigns += 1
                flow.sent += sent.get(used.key[1], 0) or 0
            else:
                flow.segments += 1
            if used.visible and len(flow.names) < MAX_NAMES:
                flow.names.append(used.name)
    departments = dict(Department.objects.values_list("pk", "name"))
    ordered = sorted(
        flows.values(),
        key=lambda f: (
            not f.is_cross,
            departments.get(f.owner_id, ""),
            departments.get(f.user_id, ""),
            KINDS.index(f.kind),
        ),
    )
    before = (
        _walls_down(uses, before=filters.compare.bounds()[1], department_id=department_id)
        if filters.compare is not None
        else None
    )
    return Circulation(
        departments=departments,
        flows=ordered,
        walls_down=_walls_down(uses, before=period_end, department_id=department_id),
        walls_down_before=before,
        shares=department_shares(filters=filters),
        cross_sent=sum(sent.get(pk, 0) or 0 for pk in crossing_campaigns),
    )


def department_shares(*, filters: ReportFilters) -> list[SharePair]:
    """Share rows per (owner department → department shared with, kind of record): how
    many records, how many with edit rights, how many shared within the period."""
    department_id = filters.department.pk if filters.department is not None else None
    lo, hi = filters.period.bounds()
    rows = list(
        Share.objects.values_list(
            "content_type_id", "object_id", "department_id", "can_edit", "shared_at"
        )
    )
    by_type: dict[int, set[int]] = defaultdict(set)
    for content_type_id, object_id, *_rest in rows:
        by_type[content_type_id].add(object_id)
    owners: dict[tuple[int, int], int] = {}
    kinds: dict[int, str] = {}
    for content_type_id, ids in by_type.items():
        content_type = ContentType.objects.get_for_id(content_type_id)
        model = apps.get_model(content_type.app_label, content_type.model)
        if model is None or not issubclass(model, DepartmentOwned):
            continue
        kinds[content_type_id] = str(model._meta.verbose_name)
        for pk, owner in model._default_manager.filter(pk__in=ids).values_list(
            "pk", "owner_department_id"
        ):
            owners[(content_type_id, pk)] = owner
    pairs: dict[tuple[int, int, str], list[int]] = defaultdict(lambda: [0, 0, 0])
    for content_type_id, object_id, shared_with, can_edit, shared_at in rows:
        owner = owners.get((content_type_id, object_id))
        if owner is None:
            continue
        if department_id is not None and department_id not in (owner, shared_with):
            continue
        counts = pairs[(owner, shared_with, kinds[content_type_id])]
        counts[0] += 1
        counts[1] += bool(can_edit)
        counts[2] += lo <= shared_at < hi
    return [
        SharePair(owner, shared_with, kind, *counts)
        for (owner, shared_with, kind), counts in sorted(pairs.items(), key=lambda item: item[0])
    ]
