"""The demo company, Hanamori (花守), a Japanese flower and gift chain selling online, in its
app and in six stores: its logins, and seeding and removing it. ``seed_demo`` creates the
departments and logins and, through the ORM, the small reference tables of ``data``
(touchpoints, products, segments, personas, the journey map, campaigns, shares); ``simulate``
then writes the customers and their history through ``bulk``, and store staff get their call
lists. Everything is drawn from one ``random.Random(seed)`` with timestamps as offsets from
``now``, so the same seed and ``now`` give the same company and "last 30 days" figures are
always live.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import itertools
import random
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import NamedTuple

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group, Permission
from django.db import transaction
from django.db.models import Count, Model
from django.utils import timezone
from tqdm import tqdm

from config.demo.bulk import (
    COLUMNS,
    BulkWriter,
    delete_all,
    indexes_deferred,
    rare_sqlite_checkpoints,
    restart_ids,
)
from config.demo.data import (
    ATTRIBUTES,
    CAMPAIGNS,
    DEPARTMENTS,
    EVENT_TYPES,
    JOURNEY,
    PERSONAS,
    PRODUCT_LINES,
    SALES_EDITS,
    SEGMENTS,
    SIZE_PRICE_FACTOR,
    STAGES,
    STORES,
    SURVEY,
    TEMPLATE_JOURNEY_NAME,
    THREADS,
    TOUCHPOINTS,
    VISIT_OUTCOMES,
    CampaignSpec,
)
from config.demo.simulate import JST, CampaignPlan, Catalogue, CompanySimulator, DemoSize
from config.org.models import ApiToken, AuditLog, Department, Membership, Role
from config.org.services import audit_record, share_grant
from config.org.tokens import api_token_create
from customers.metrics import metrics_rebuild
from customers.models import AttributeDefinition, Customer, CustomerMetrics, Segment
from customers.segments import segment_refresh, segments_in_dependency_order
from experience.commerce import carts_rebuild
from experience.models import (
    Event,
    EventType,
    ExperienceValue,
    Product,
    SituationRule,
    Survey,
    Touchpoint,
)
from experience.pipeline import CART_EVENT_TYPES
from experience.situations import default_situation_rules
from journeys.engine import bucket_of
from journeys.models import (
    Campaign,
    CampaignRun,
    Delivery,
    Enrollment,
    Journey,
    Persona,
    Revision,
    StaffTask,
    Stage,
)
from reports.cohorts import cohorts_refresh
from reports.models import (
    CampaignOutcome,
    ClvFit,
    ClvSegmentValue,
    ClvSummary,
    Cohort,
    CohortMonth,
    CustomerPrediction,
    DailyAnswers,
    DailyDeliveries,
    DailyEvents,
    DailyOrders,
    DormancyDay,
    DormancyMonth,
    HeadlineSnapshot,
    RfmCell,
    RollupState,
)
from reports.outcomes import campaign_outcomes_refresh
from reports.predictions import predictions_refresh
from reports.rollups import rollups_rebuild

# --------------------------------------------------------------------------------------------
# Public constants: the logins and the sizes
# --------------------------------------------------------------------------------------------


class DemoLogin(NamedTuple):
    """A login printed by ``manage.py demo``; tests and the browser test sign in with these.

    ``sees_personal_data`` says whether customers' names and identifiers show unmasked: for
    department logins through ``PERSONAL_DATA_GROUP``, for ``admin`` as superuser.
    """

    username: str
    password: str
    department_slug: str | None
    role: str | None
    sees_personal_data: bool = False


DEMO_LOGINS: list[DemoLogin] = [
    DemoLogin("promo", "circle-promo-2026", "promotion", Role.MANAGER),
    DemoLogin("crm", "circle-crm-2026", "crm", Role.MANAGER, sees_personal_data=True),
    DemoLogin("sales", "circle-sales-2026", "sales", Role.MANAGER, sees_personal_data=True),
    DemoLogin("analytics", "circle-analytics-2026", "analytics", Role.MANAGER),
    DemoLogin("sales-viewer", "circle-sales-viewer-2026", "sales", Role.VIEWER),
    DemoLogin("admin", "circle-admin-2026", None, None, sees_personal_data=True),
]
# The web shop's published demo key for ``POST /api/v1/events`` (CRM's data, source web-shop).
DEMO_API_TOKEN = "cc_0000demo_hanamori-web-shop-demo-key-2026"
DEMO_API_TOKEN_SOURCE = "web-shop"
# Holds ``customers.view_pii`` for the teams that contact customers (CRM and sales).
PERSONAL_DATA_GROUP = "Personal data access"

SEED_AUDIT_ACTION = "demo.seed"

SIZES: dict[str, DemoSize] = {
    "small": DemoSize(customers=2_000, browse_per_year=3.0),
    "default": DemoSize(customers=50_000, browse_per_year=3.0),
    # The benchmark companies (issue 8): about 10 events and one order per customer.
    "medium": DemoSize(customers=100_000, browse_per_year=0.7, repeat_buyers=0.08),
    "large": DemoSize(customers=1_000_000, browse_per_year=0.7, repeat_buyers=0.08),
}


class DemoDataError(Exception):
    """The database holds data that is not the demo company's; seeding will not touch it."""


@dataclass
class SeedResult:
    """What one seeding run wrote, for the command to report."""

    counts: dict[str, int]
    seconds: float
    phases: dict[str, float] = dataclasses.field(default_factory=dict)  # wall seconds per stage


# --------------------------------------------------------------------------------------------
# Departments, logins, and whether the demo company is there
# --------------------------------------------------------------------------------------------


def ensure_departments() -> dict[str, Department]:
    """Create or refresh the four departments, keyed by slug."""
    departments = {}
    for slug, name, kind, description in DEPARTMENTS:
        departments[slug], _created = Department.objects.update_or_create(
            slug=slug, defaults={"name": name, "kind": kind, "description": description}
        )
    return departments


@transaction.atomic
def ensure_demo_logins() -> dict[str, Model]:
    """Create the demo logins, or put their passwords, roles and groups back as printed.

    Run on every ``demo`` start, so the banner is always true even after someone changed a
    password or a group in the demo database.
    """
    return _ensure_logins(ensure_departments())


def _ensure_logins(departments: dict[str, Department]) -> dict[str, Model]:
    personal_data = _ensure_personal_data_group()
    users = {}
    for login in DEMO_LOGINS:
        is_admin = login.department_slug is None
        user, _created = get_user_model().objects.update_or_create(
            username=login.username,
            defaults={
                "email": f"{login.username}@hanamori.example.jp",
                "is_staff": is_admin,
                "is_superuser": is_admin,
                "is_active": True,
            },
        )
        if not user.check_password(login.password):
            user.set_password(login.password)
            user.save(update_fields=["password"])
        if not is_admin:
            Membership.objects.update_or_create(
                user=user,
                department=departments[login.department_slug],
                defaults={"role": login.role},
            )
            if login.sees_personal_data:
                user.groups.add(personal_data)
            else:
                user.groups.remove(personal_data)
        users[login.username] = user
    return users


@transaction.atomic
def ensure_demo_api_token() -> ApiToken:
    """The web shop's demo API token, working and with the published secret; idempotent."""
    prefix = DEMO_API_TOKEN.split("_")[1]
    token = ApiToken.objects.filter(prefix=prefix).first()
    if token is not None:
        token.delete()  # put it back as printed, even if someone revoked it
    token, _secret = api_token_create(
        name="Web shop (demo)",
        department=ensure_departments()["crm"],
        source=DEMO_API_TOKEN_SOURCE,
        by=None,
        secret=DEMO_API_TOKEN,
    )
    return token


def _ensure_personal_data_group() -> Group:
    """The group whose members see customers' personal data unmasked (``can_view_pii``)."""
    view_pii = Permission.objects.get(content_type__app_label="customers", codename="view_pii")
    group, _created = Group.objects.get_or_create(name=PERSONAL_DATA_GROUP)
    group.permissions.add(view_pii)
    return group


def _is_demo_database() -> bool:
    """Seeding leaves an audit entry before its first row, so even a half-seeded run counts."""
    return AuditLog.objects.filter(action=SEED_AUDIT_ACTION).exists()


# Leaf tables of the demo company, emptied with one DELETE each (children before parents):
# the staff tasks and every table written raw, whose ``COLUMNS`` list parents first.
_BULK_TABLES: tuple[type[Model], ...] = (
    StaffTask,
    *reversed([model for model in COLUMNS if model is not Customer]),
)
# Roots removed through the ORM so cascades, shares and tables added later are honoured.
_ROOT_MODELS: tuple[type[Model], ...] = (
    SituationRule,
    Campaign,
    Journey,
    Persona,
    Segment,
    Survey,
    Customer,
    Product,
    Touchpoint,
    AttributeDefinition,
)
# Circle ④'s derived tables (rollups, cohorts, outcomes, predictions), children first: a
# reset empties them, and seeding computes them again.
_REPORT_TABLES: tuple[type[Model], ...] = (
    ClvSegmentValue,
    ClvSummary,
    DormancyMonth,
    DormancyDay,
    RfmCell,
    HeadlineSnapshot,
    CustomerPrediction,
    ClvFit,
    CampaignOutcome,
    Cohort,
    CohortMonth,
    DailyDeliveries,
    DailyAnswers,
    DailyOrders,
    DailyEvents,
    RollupState,
)


def demo_data_reset() -> None:
    """Delete the demo company's business data; departments, logins and audit stay.

    Refuses (``DemoDataError``) when customers exist that no demo seeding created.
    """
    if Customer.objects.exists() and not _is_demo_database():
        raise DemoDataError(
            "The database holds customers that were not created by seed_demo; "
            "refusing to delete them."
        )
    with transaction.atomic():
        delete_all(_REPORT_TABLES)
        delete_all(_BULK_TABLES)
        for model in _ROOT_MODELS:
            _delete_in_batches(model)
        audit_record(actor=None, action="demo.reset")


def _delete_in_batches(model: type[Model], batch: int = 5_000) -> None:
    """ORM delete that never loads a million rows at once."""
    while ids := list(model.objects.order_by("pk").values_list("pk", flat=True)[:batch]):
        model.objects.filter(pk__in=ids).delete()


# --------------------------------------------------------------------------------------------
# Seeding entry point
# --------------------------------------------------------------------------------------------


def seed_demo(
    *,
    size: str = "default",
    seed: int = 42,
    progress: bool = False,
    now: dt.datetime | None = None,
) -> SeedResult:
    """Create the demo company in an empty database (see ``demo_data_reset`` to start over).

    The history ends at ``now`` (default: the current time). The same seed and ``now`` give
    identical data; at another moment the same seed gives a company of the same shape and
    the same first customers, but not row for row the same history.
    """
    started = time.monotonic()
    now = now or timezone.now()
    plan = SIZES[size]
    rng = random.Random(seed)
    audit_record(actor=None, action=SEED_AUDIT_ACTION, detail={"size": size, "seed": seed})
    restart_ids(Campaign)
    writer = BulkWriter()
    phases: dict[str, float] = {}
    with _stage("Organisation & catalogue", 6, progress, phases) as bar:
        catalogue = _create_catalogue(rng, bar, now)
    simulator = CompanySimulator(rng=rng, catalogue=catalogue, plan=plan, writer=writer, now=now)
    with (
        _stage("Customers & behaviour", plan.customers, progress, phases, unit="customer") as bar,
        rare_sqlite_checkpoints(),
        indexes_deferred(COLUMNS),
    ):
        simulator.run(on_chunk=bar.update)
    with _stage("Staff tasks & statistics", 2, progress, phases) as bar:
        _create_campaign_runs(catalogue)
        bar.update()
        writer.finish()
        bar.update()
    with _stage("Customer metrics", plan.customers, progress, phases, unit="customer") as bar:
        metrics_rebuild(now=now, progress=lambda done, _total: bar.update(done - bar.n))
    with _stage("Carts", 1, progress, phases) as bar:
        _create_carts()
        bar.update()
    with _stage("Sales calls & detection rules", 2, progress, phases) as bar:
        _create_staff_tasks(rng, catalogue, now)
        bar.update()
        default_situation_rules(Department.objects.get(slug="crm"))
        bar.update()
    segments = segments_in_dependency_order(Segment.objects.all())
    with _stage("Segment members", len(segments), progress, phases) as bar:
        # Personas show their segment's figures and campaigns target members: the demo opens
        # with every segment computed rather than waiting for the worker's first refresh.
        for segment in segments:
            segment_refresh(segment=segment)
            bar.update()
    # Reports read rollups and predictions: the demo opens with them computed rather than
    # waiting for the worker's first schedules.
    with _stage("Report rollups & cohorts", 2, progress, phases) as bar:
        rollups_rebuild()
        bar.update()
        cohorts_refresh()
        bar.update()
    with _stage("Campaign outcomes & predicted value", 2, progress, phases) as bar:
        campaign_outcomes_refresh()
        bar.update()
        predictions_refresh(now=now)
        bar.update()
    phases["(raw inserts, within the stages)"] = writer.seconds
    return SeedResult(counts=writer.counts, seconds=time.monotonic() - started, phases=phases)


def _create_carts() -> None:
    """Carts of everyone with cart events, as the ingestion pipeline would have kept them."""
    cart_types = EventType.objects.filter(name__in=CART_EVENT_TYPES)
    customer_ids = (
        Event.objects.filter(event_type__in=cart_types)
        .order_by()
        .values_list("customer_id", flat=True)
        .distinct()
    )
    carts_rebuild(customer_ids=list(customer_ids))


@contextmanager
def _stage(
    desc: str, total: int, progress: bool, phases: dict[str, float], unit: str = "step"
) -> Iterator[tqdm]:
    """One progress bar per stage on stderr (silent when the caller asked for quiet); the
    stage's wall time goes into ``phases``."""
    started = time.monotonic()
    with tqdm(total=total, desc=desc, unit=unit, disable=not progress, leave=True) as bar:
        yield bar
    phases[desc] = time.monotonic() - started


# --------------------------------------------------------------------------------------------
# The catalogue: every small reference table, through the ORM
# --------------------------------------------------------------------------------------------


def _create_catalogue(rng: random.Random, bar: tqdm, now: dt.datetime) -> Catalogue:
    """Departments, logins and every small reference table, through the ORM."""
    departments = ensure_departments()
    users = _ensure_logins(departments)
    managers = {
        login.department_slug: users[login.username]
        for login in DEMO_LOGINS
        if login.role == Role.MANAGER
    }
    values = _ensure_experience_values()
    bar.update()
    touchpoints = _create_touchpoints(departments, values)
    event_types = _create_event_types(departments)
    bar.update()
    products = _create_products(rng)
    _create_attribute_definitions(departments)
    bar.update()
    segments = _create_segments(departments, managers)
    survey = Survey.objects.create(
        owner_department=departments["crm"], touchpoint=touchpoints["email-newsletter"], **SURVEY
    )
    bar.update()
    personas, journey = _create_personas_and_journey(
        departments, users, segments, touchpoints, values
    )
    _share_records(departments, managers, segments, personas, journey, touchpoints)
    _record_creation(personas, journey, users["crm"], now)
    _create_discussion(personas, journey, departments)
    bar.update()
    event_types.update(_message_event_types())
    campaigns = _create_campaigns(departments, managers, users, segments, journey, now)
    _share_campaigns(departments, managers)
    bar.update()
    weights = [1 / (rank + 4) for rank in range(len(products))]
    rng.shuffle(weights)
    by_category: dict[str, list[int]] = {}
    for index, (_pk, _sku, _price, category) in enumerate(products):
        by_category.setdefault(category, []).append(index)
    return Catalogue(
        event_types=event_types,
        touchpoints={code: tp.pk for code, tp in touchpoints.items()},
        touchpoint_value_bits={
            code: ExperienceValue.bits_for(value_codes)
            for code, _name, _channel, _kind, _owner, value_codes, _description in TOUCHPOINTS
        },
        products=products,
        product_cum_weights=list(itertools.accumulate(weights)),
        products_by_category=by_category,
        survey_id=survey.pk,
        campaigns=campaigns,
        workshop_segment_id=segments["workshop"].pk,
        users=users,
    )


def _ensure_experience_values() -> dict[str, ExperienceValue]:
    """The five values by code; a data migration creates them, but a test's flush empties them."""
    values = {}
    for position, code in enumerate(ExperienceValue.Code.values, start=1):
        values[code], _created = ExperienceValue.objects.get_or_create(
            code=code, defaults={"position": position}
        )
    return values


def _plain_fields(spec: dict, *relations: str) -> dict:
    """The model fields of a spec from ``data``, without the keys that name related rows."""
    return {key: value for key, value in spec.items() if key not in relations}


def _create_touchpoints(
    departments: dict[str, Department], values: dict[str, ExperienceValue]
) -> dict[str, Touchpoint]:
    touchpoints = {}
    for code, name, channel, kind, owner, value_codes, description in TOUCHPOINTS:
        touchpoint, _created = Touchpoint.objects.update_or_create(
            code=code,
            defaults={
                "name": name,
                "channel": channel,
                "kind": kind,
                "owner_department": departments[owner],
                "description": description,
            },
        )
        touchpoint.experience_values.set([values[c] for c in value_codes])
        touchpoints[code] = touchpoint
    return touchpoints


def _create_event_types(departments: dict[str, Department]) -> dict[str, int]:
    """The event registry is shared with ingestion, so existing types are updated, not doubled."""
    ids = {}
    for name, description, owner, schema in EVENT_TYPES:
        event_type, _created = EventType.objects.update_or_create(
            name=name,
            defaults={
                "description": description,
                "owner_department": departments[owner],
                "property_schema": schema,
            },
        )
        ids[name] = event_type.pk
    return ids


def _create_products(rng: random.Random) -> list[tuple[int, str, int, str]]:
    """About 200 products: every item of ``PRODUCT_LINES`` in each of its sizes."""
    rows = []
    for prefix, category_ja, category_en, items, sizes in PRODUCT_LINES:
        for number, (name_ja, name_en, base_price) in enumerate(items, start=1):
            for size_index, size in enumerate(sizes):
                price = round(base_price * SIZE_PRICE_FACTOR[size_index], -1)
                label = f" {size}" if size else ""
                rows.append(
                    Product(
                        sku=f"{prefix}{number:03d}{'-' + str(size_index + 1) if size else ''}",
                        name=f"{name_ja}{label} ({name_en})",
                        category=f"{category_ja} ({category_en})",
                        price=price,
                        stock=rng.choice((0, 3, 12, 25, 40, 80, 150)),
                        is_active=prefix != "SE" or rng.random() < 0.5,
                    )
                )
    Product.objects.bulk_create(rows)
    return [(p.pk, p.sku, int(p.price), p.sku[:2]) for p in Product.objects.order_by("pk")]


def _create_attribute_definitions(departments: dict[str, Department]) -> None:
    for key, label, kind, choices, purpose, owner in ATTRIBUTES:
        AttributeDefinition.objects.update_or_create(
            key=key,
            defaults={
                "label": label,
                "type": kind,
                "choices": choices,
                "purpose": purpose,
                "owner_department": departments[owner],
            },
        )


def _create_segments(
    departments: dict[str, Department], managers: dict[str, Model]
) -> dict[str, Segment]:
    """Rule-tree segments of CRM and analytics, and promotion's list of workshop attendees."""
    return {
        key: Segment.objects.create(
            owner_department=departments[spec["owner"]],
            created_by=managers[spec["owner"]],
            **_plain_fields(spec, "owner"),
        )
        for key, spec in SEGMENTS.items()
    }


def _create_personas_and_journey(
    departments: dict[str, Department],
    users: dict[str, Model],
    segments: dict[str, Segment],
    touchpoints: dict[str, Touchpoint],
    values: dict[str, ExperienceValue],
) -> tuple[list[Persona], Journey]:
    """Two personas written by CRM with sales, and the journey map of the gift-giver."""
    personas = {}
    for key, spec in PERSONAS.items():
        personas[key] = Persona.objects.create(
            owner_department=departments["crm"],
            segment=segments[spec["segment"]],
            **_plain_fields(spec, "segment", "experience_values"),
        )
        personas[key].experience_values.set([values[c] for c in spec["experience_values"]])
    journey = Journey.objects.create(
        owner_department=departments["crm"],
        persona=personas[JOURNEY["persona"]],
        **_plain_fields(JOURNEY, "persona"),
    )
    stages = {}
    for position, spec in enumerate(STAGES, start=1):
        stages[position] = Stage.objects.create(
            journey=journey,
            position=position,
            owner=users["crm"],
            **_plain_fields(spec, "touchpoints", "experience_values"),
        )
        stages[position].touchpoints.set([touchpoints[code] for code in spec["touchpoints"]])
        stages[position].experience_values.set([values[c] for c in spec["experience_values"]])
    return list(personas.values()), journey


def _record_creation(
    personas: list[Persona], journey: Journey, by: Model, now: dt.datetime
) -> None:
    """The history starts as if CRM had written the personas and the map a month ago."""
    from journeys.maps.cells import record_snapshot

    created = now - dt.timedelta(days=30)
    Persona.objects.filter(pk__in=[p.pk for p in personas]).update(
        created_by=by, created_at=created
    )
    Journey.objects.filter(pk=journey.pk).update(created_by=by, created_at=created)
    stages = list(journey.stages.prefetch_related("touchpoints", "experience_values"))
    rows = [
        *[
            Revision(persona=persona, action=Revision.Action.CREATE, after=record_snapshot(persona))
            for persona in personas
        ],
        Revision(journey=journey, action=Revision.Action.CREATE, after=record_snapshot(journey)),
        *[
            Revision(
                journey=journey,
                stage=stage,
                stage_name=stage.name,
                action=Revision.Action.CREATE,
                after={**record_snapshot(stage), "position": stage.position},
            )
            for stage in stages
        ],
    ]
    for row in rows:
        row.author, row.created_at = by, created
    Revision.objects.bulk_create(rows)


def _create_discussion(
    personas: list[Persona], journey: Journey, departments: dict[str, Department]
) -> None:
    """Sales staff's later edits, the threads with their @mentions and notifications, and
    the template journey. Runs after the sharing, which lets sales edit and comment."""
    from journeys.maps.discussion import comment_add, comment_resolve
    from journeys.maps.services import cell_save, journey_duplicate

    users = {
        user.username: user
        for user in get_user_model().objects.filter(
            username__in=[login.username for login in DEMO_LOGINS]
        )
    }
    by_key = dict(zip(PERSONAS, personas, strict=True))
    stages = {stage.position: stage for stage in journey.stages.all()}

    def record(where: str):
        kind, _sep, key = where.partition(":")
        if kind == "persona":
            return {"persona": by_key[key]}
        if kind == "stage":
            return {"stage": stages[int(key)]}
        return {"journey": journey}

    for where, field, author, value in SALES_EDITS:
        target = next(iter(record(where).values()))
        cell_save(
            record=target,
            field=field,
            value=value,
            base_version=target.versions.get(field, 0),
            by=users[author],
        )
    for where, field, comments, resolved_by in THREADS:
        first = None
        for author, body in comments:
            comment = comment_add(
                by=users[author], body=body, field=field, parent=first, **record(where)
            )
            first = first or comment
        if resolved_by:
            comment_resolve(comment=first, by=users[resolved_by])
    journey_duplicate(
        journey=journey,
        by=users["crm"],
        owner_department=departments["crm"],
        name=TEMPLATE_JOURNEY_NAME,
        as_template=True,
    )


def _message_event_types() -> dict[str, int]:
    """The event types campaign feedback writes (``message_sent``…), by name."""
    from journeys.feedback import event_types_ensure

    return {name: event_type.pk for name, event_type in event_types_ensure().items()}


def _slot(now: dt.datetime, days_back: int) -> dt.datetime:
    """10:00 JST ``days_back`` days before (negative: after) today, as a send slot."""
    day = now.astimezone(JST).date() - dt.timedelta(days=days_back)
    return dt.datetime.combine(day, dt.time(10), tzinfo=JST)


def _create_campaigns(
    departments: dict[str, Department],
    managers: dict[str, Model],
    users: dict[str, Model],
    segments: dict[str, Segment],
    journey: Journey,
    now: dt.datetime,
) -> list[CampaignPlan]:
    """Campaigns in every status, made and validated by the services as staff would.

    Their lifecycle (approval, start, completion) is then set where it stands today; the
    campaigns with a history get their enrolments and deliveries from the simulation.
    """
    from journeys.presets import preset_create
    from journeys.services import campaign_create

    stages = {stage.position: stage for stage in journey.stages.all()}
    plans = []
    for spec in CAMPAIGNS:
        by = managers[spec.owner]
        fields = dict(spec.fields)
        if "segment" in fields:
            fields["segment"] = segments[fields["segment"]]
        staff_task = fields.get("channel") == Campaign.Channel.STAFF_TASK
        if staff_task:
            fields["task_assignee"] = users["sales"]
        fields["journey_stage"] = stages[spec.stage]
        if spec.preset:
            campaign = preset_create(
                key=spec.preset, by=by, owner_department=departments[spec.owner], **fields
            )
        else:
            campaign = campaign_create(by=by, owner_department=departments[spec.owner], **fields)
        _set_lifecycle(campaign, spec, by, now)
        if spec.history and not staff_task:
            plans.append(_plan(campaign, spec))
    return plans


def _set_lifecycle(campaign: Campaign, spec: CampaignSpec, by: Model, now: dt.datetime) -> None:
    """Where the campaign's lifecycle stands today: requested, approved, started, done."""
    status = spec.status
    changes: dict = {"status": status}
    if spec.history:
        started = _slot(now, spec.history[0])
        if campaign.kind not in (Campaign.Kind.ONE_OFF, Campaign.Kind.RECURRING):
            started = now - dt.timedelta(days=spec.history[0])
    elif status == Campaign.Status.SCHEDULED and campaign.kind == Campaign.Kind.ONE_OFF:
        started = _slot(now, -14)
        changes["next_run_at"] = started
    else:
        started = now - dt.timedelta(days=3)
    if status == Campaign.Status.DRAFT:
        changes["approval_requested_at"] = now - dt.timedelta(hours=20)
    else:
        changes.update(
            approval_requested_at=started - dt.timedelta(days=4),
            approved_by=by,
            approved_at=started - dt.timedelta(days=3),
        )
        if campaign.kind == Campaign.Kind.ONE_OFF:
            changes["starts_at"] = started
    if campaign.kind == Campaign.Kind.RECURRING and status == Campaign.Status.SCHEDULED:
        from journeys.scheduling import next_run_after

        changes["next_run_at"] = next_run_after(campaign, now)
    Campaign.objects.filter(pk=campaign.pk).update(**changes)


def _plan(campaign: Campaign, spec: CampaignSpec) -> CampaignPlan:
    steps = [
        (step.pk, step.delay_minutes, [(v.pk, v.weight) for v in step.variants.all()])
        for step in campaign.steps.order_by("position").prefetch_related("variants")
    ]
    first, last = spec.history
    return CampaignPlan(
        campaign.pk,
        spec.code,
        campaign.channel,
        steps,
        first,
        last,
        campaign.holdout_percent,
        campaign.conversion_window_days,
    )


def _share_campaigns(departments: dict[str, Department], managers: dict[str, Model]) -> None:
    """Analysts measure every campaign: data circulates on purpose."""
    analytics = departments["analytics"]
    for campaign in Campaign.objects.select_related("owner_department"):
        share_grant(
            obj=campaign,
            department=analytics,
            can_edit=False,
            by=managers[campaign.owner_department.slug],
        )


def _create_campaign_runs(catalogue: Catalogue) -> None:
    """The run slot of each one-off that went out, with how many people it enrolled."""
    runs = []
    plans = [plan for plan in catalogue.campaigns if plan.code != "cart"]
    for plan in plans:
        occurrences = (
            Enrollment.objects.filter(campaign_id=plan.pk)
            .values_list("occurrence")
            .annotate(n=Count("pk"))
            .order_by()
        )
        for occurrence, enrolled in occurrences:
            at = dt.datetime.strptime(occurrence[1:], "%Y%m%d%H%M").replace(tzinfo=dt.UTC)
            runs.append(
                CampaignRun(
                    campaign_id=plan.pk, occurrence=occurrence, scheduled_for=at, enrolled=enrolled
                )
            )
    CampaignRun.objects.bulk_create(runs)


def _share_records(
    departments: dict[str, Department],
    managers: dict[str, Model],
    segments: dict[str, Segment],
    personas: list[Persona],
    journey: Journey,
    touchpoints: dict[str, Touchpoint],
) -> None:
    """Sharing as the teams would do it: CRM's segments to sales, personas co-edited…

    Runs before the campaigns are made, which may only use what their authors can see.
    """
    crm, sales, analytics = departments["crm"], departments["sales"], departments["analytics"]
    grants: list[tuple[Model, Department, bool, str]] = [
        *[(segments[key], sales, False, "crm") for key in ("cart", "app_first", "gift_regular")],
        *[(segments[key], crm, False, "analytics") for key in ("dormant", "promoters")],
        (segments["high_value"], sales, False, "analytics"),
        *[(persona, sales, True, "crm") for persona in personas],
        (journey, sales, True, "crm"),
        (journey, analytics, False, "crm"),
        *[(touchpoints[code], crm, False, "sales") for code in STORES],
        (touchpoints["web-shop"], departments["promotion"], False, "crm"),
        # Analysts measure every channel and every campaign: data circulates on purpose.
        *[
            (touchpoint, analytics, False, touchpoint.owner_department.slug)
            for touchpoint in touchpoints.values()
            if touchpoint.owner_department_id != analytics.pk
        ],
    ]
    for obj, department, can_edit, by in grants:
        share_grant(obj=obj, department=department, can_edit=can_edit, by=managers[by])


def _create_staff_tasks(rng: random.Random, catalogue: Catalogue, now: dt.datetime) -> None:
    """The VIP invitation's run: the top customers of each store, one delivery and one call
    each, most assigned to the sales login and some left to the customer's store.

    Runs after the metrics, which rank the customers by revenue.
    """
    campaign = Campaign.objects.get(
        channel=Campaign.Channel.STAFF_TASK, status=Campaign.Status.RUNNING
    )
    step = campaign.steps.prefetch_related("variants").get(position=1)
    variant = step.variants.all()[0]
    slot = campaign.starts_at
    occurrence = "r" + slot.astimezone(dt.UTC).strftime("%Y%m%d%H%M")
    top = (
        CustomerMetrics.objects.filter(customer__attributes__has_key="preferred_store")
        .order_by("-revenue_total", "customer_id")
        .values_list("customer_id", "customer__attributes")[:24]
    )
    sales = catalogue.users["sales"]
    top = list(top)
    enrollments = Enrollment.objects.bulk_create(
        Enrollment(
            campaign=campaign,
            customer_id=customer_id,
            occurrence=occurrence,
            entered_at=slot,
            bucket=bucket_of(campaign.pk, customer_id),
            status=Enrollment.Status.COMPLETED,
        )
        for customer_id, _attributes in top
    )
    deliveries = Delivery.objects.bulk_create(
        Delivery(
            campaign=campaign,
            step=step,
            customer_id=enrollment.customer_id,
            occurrence=occurrence,
            enrollment=enrollment,
            variant=variant,
            status=Delivery.Status.SENT,
            due_at=slot,
            attempts=1,
            sent_at=slot + dt.timedelta(seconds=rng.randint(1, 30)),
        )
        for enrollment in enrollments
    )
    tasks = []
    for index, ((customer_id, attributes), delivery) in enumerate(
        zip(top, deliveries, strict=True)
    ):
        done = index % 3 == 0
        outcome_code = rng.choice(
            (StaffTask.Outcome.VISITED, StaffTask.Outcome.NOT_HOME, StaffTask.Outcome.FOLLOW_UP)
        )
        tasks.append(
            StaffTask(
                campaign=campaign,
                delivery=delivery,
                department=campaign.owner_department,
                customer_id=customer_id,
                assignee=None if index % 4 == 3 else sales,
                store_id=catalogue.touchpoints[attributes["preferred_store"]],
                title="新作内覧会のご案内のお電話 (Call: new-season preview invitation)",
                instructions="新作内覧会（来週土曜）へご招待してください。"
                " Invite them to next Saturday's new-season preview.",
                due_at=now + dt.timedelta(days=rng.randint(-2, 7)),
                status=StaffTask.Status.DONE if done else StaffTask.Status.OPEN,
                outcome_code=outcome_code if done else "",
                outcome=rng.choice(VISIT_OUTCOMES) if done else "",
                completed_by=sales if done else None,
                completed_at=now - dt.timedelta(hours=rng.randint(2, 72)) if done else None,
            )
        )
    StaffTask.objects.bulk_create(tasks)
    CampaignRun.objects.create(
        campaign=campaign, occurrence=occurrence, scheduled_for=slot, enrolled=len(enrollments)
    )
