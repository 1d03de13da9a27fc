"""The demo company: Hanamori (花守), a Japanese flower and gift chain selling online, in its
app and in six stores.

Everything is generated from one ``random.Random(seed)`` so two runs with the same seed give
the same people, orders and answers; timestamps are offsets from ``timezone.now()`` so that
"last 30 days" figures are always live.

The large tables are written with raw ``executemany`` on explicit primary keys: the ORM's
``bulk_create`` builds a model instance per row and cannot stream a million events in the
two-minute budget of the default size. People are simulated and written one chunk at a time
(every row of a person lands in the same chunk), so memory stays bounded at any size.
"""

from __future__ import annotations

import datetime as dt
import itertools
import json
import random
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import NamedTuple

from django.contrib.auth import get_user_model
from django.core.management.color import no_style
from django.db import connection, transaction
from django.db.models import Max, Model
from django.utils import timezone
from tqdm import tqdm

from config.org.models import AuditLog, Department, Membership, Role
from config.org.services import audit_record, share_grant
from customers.models import (
    AttributeDefinition,
    Consent,
    ConsentChange,
    Customer,
    CustomerMetrics,
    Identity,
    ImportantDate,
    LifecycleStage,
    LifeEvent,
    Segment,
    SegmentMembership,
)
from experience.models import (
    Event,
    EventType,
    ExperienceValue,
    Favorite,
    Order,
    OrderLine,
    Product,
    Survey,
    SurveyResponse,
    Touchpoint,
)
from journeys.models import (
    Campaign,
    CampaignStep,
    Comment,
    Delivery,
    Journey,
    Persona,
    StaffTask,
    Stage,
)

# --------------------------------------------------------------------------------------------
# Public constants: the departments, the logins and the sizes
# --------------------------------------------------------------------------------------------


class DemoLogin(NamedTuple):
    """A login printed by ``manage.py demo``; tests and the browser test sign in with these."""

    username: str
    password: str
    department_slug: str | None
    role: str | None


DEMO_LOGINS: list[DemoLogin] = [
    DemoLogin("promo", "circle-promo-2026", "promotion", Role.MANAGER),
    DemoLogin("crm", "circle-crm-2026", "crm", Role.MANAGER),
    DemoLogin("sales", "circle-sales-2026", "sales", Role.MANAGER),
    DemoLogin("analytics", "circle-analytics-2026", "analytics", Role.MANAGER),
    DemoLogin("sales-viewer", "circle-sales-viewer-2026", "sales", Role.VIEWER),
    DemoLogin("admin", "circle-admin-2026", None, None),
]

DEPARTMENTS: list[tuple[str, str, str, str]] = [
    (
        "promotion",
        "Advertising & promotion",
        Department.Kind.ADVERTISING,
        "広告・販促部: ads, catalogues, workshops and seasonal promotions.",
    ),
    (
        "crm",
        "CRM & digital marketing",
        Department.Kind.CRM_DIGITAL,
        "CRM・デジタルマーケティング部: web shop, app, email, LINE and the customer data.",
    ),
    (
        "sales",
        "Sales planning",
        Department.Kind.SALES_PLANNING,
        "営業企画部: the six stores, the customer centre and corporate sales.",
    ),
    (
        "analytics",
        "Analytics",
        Department.Kind.ANALYTICS,
        "分析チーム: segments, NPS and reporting for every team.",
    ),
]

SEED_AUDIT_ACTION = "demo.seed"


@dataclass(frozen=True)
class DemoSize:
    """How big the company is; ``browse_per_year`` tunes events per customer."""

    customers: int
    browse_per_year: float


SIZES: dict[str, DemoSize] = {
    "small": DemoSize(customers=2_000, browse_per_year=3.0),
    "default": DemoSize(customers=50_000, browse_per_year=3.0),
    "large": DemoSize(customers=1_000_000, browse_per_year=0.2),
}

CUSTOMERS_PER_CHUNK = 2_000
ROWS_PER_EXECUTE = 20_000
HISTORY_DAYS = 730


class DemoDataError(Exception):
    """The database holds data that is not the demo company's; seeding will not touch it."""


@dataclass
class SeedResult:
    """What one seeding run wrote, for the command to report."""

    counts: dict[str, int]
    seconds: float


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
    """Create the demo logins, or reset their passwords and roles to the printed values.

    Run on every ``demo`` start, so the banner is always true even after someone changed a
    password in the demo database.
    """
    return _ensure_logins(ensure_departments())


def _ensure_logins(departments: dict[str, Department]) -> dict[str, Model]:
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
        users[login.username] = user
    return users


def _is_demo_database() -> bool:
    """Seeding leaves an audit entry before its first row, so even a half-seeded run counts."""
    return AuditLog.objects.filter(action=SEED_AUDIT_ACTION).exists()


# Leaf tables of the demo company, emptied with one DELETE each (children before parents).
_BULK_TABLES: tuple[type[Model], ...] = (
    SegmentMembership,
    Delivery,
    StaffTask,
    SurveyResponse,
    Favorite,
    OrderLine,
    Order,
    Event,
    CustomerMetrics,
    LifeEvent,
    ImportantDate,
    ConsentChange,
    Consent,
    Identity,
)
# Roots removed through the ORM so cascades, shares and tables added later are honoured.
_ROOT_MODELS: tuple[type[Model], ...] = (
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
        with connection.cursor() as cursor:
            for model in _BULK_TABLES:
                cursor.execute(f"DELETE FROM {connection.ops.quote_name(model._meta.db_table)}")
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
    writer = _BulkWriter()
    with _stage("Organisation & catalogue", 6, progress) as bar:
        catalogue = _create_catalogue(rng, bar, now)
    simulator = _CompanySimulator(rng=rng, catalogue=catalogue, plan=plan, writer=writer, now=now)
    with (
        _stage("Customers & behaviour", plan.customers, progress, unit="customer") as bar,
        _rare_sqlite_checkpoints(),
    ):
        simulator.run(on_chunk=bar.update)
    with _stage("Staff tasks & statistics", 2, progress) as bar:
        _create_staff_tasks(rng, catalogue, now)
        bar.update()
        writer.finish()
        bar.update()
    return SeedResult(counts=writer.counts, seconds=time.monotonic() - started)


@contextmanager
def _rare_sqlite_checkpoints() -> Iterator[None]:
    """Let SQLite's WAL grow to ~200 MB during the load instead of checkpointing every 4 MB.

    Each checkpoint copies pages back and fsyncs; at the default it halves the load speed.
    Durability is unchanged, and the WAL is folded back into the database at the end. Inside
    an outer transaction nothing is committed (so nothing checkpointed) until it ends anyway.
    """
    if connection.vendor != "sqlite" or connection.in_atomic_block:
        yield
        return
    with connection.cursor() as cursor:
        cursor.execute("PRAGMA wal_autocheckpoint")
        (previous,) = cursor.fetchone()
        cursor.execute("PRAGMA wal_autocheckpoint=50000")
    try:
        yield
    finally:
        with connection.cursor() as cursor:
            cursor.execute(f"PRAGMA wal_autocheckpoint={int(previous)}")
            cursor.execute("PRAGMA wal_checkpoint(TRUNCATE)")


def _stage(desc: str, total: int, progress: bool, unit: str = "step") -> tqdm:
    """One progress bar per stage on stderr; silent when the caller asked for quiet."""
    return tqdm(total=total, desc=desc, unit=unit, disable=not progress, leave=True)


# --------------------------------------------------------------------------------------------
# Raw bulk writes
# --------------------------------------------------------------------------------------------


class _BulkWriter:
    """Inserts ready-made row tuples with ``executemany`` and hands out explicit ids.

    Ids continue after the highest existing one, so a database with other rows still works;
    PostgreSQL sequences are moved past them in ``finish``.
    """

    def __init__(self) -> None:
        self.counts: dict[str, int] = {}
        self._ids: dict[type[Model], Iterator[int]] = {}
        self._sql: dict[type[Model], str] = {}

    def ids(self, model: type[Model]) -> Iterator[int]:
        """The id counter of a table, shared by every caller."""
        if model not in self._ids:
            highest = model.objects.aggregate(highest=Max("pk"))["highest"] or 0
            self._ids[model] = itertools.count(highest + 1)
        return self._ids[model]

    def insert(self, model: type[Model], rows: Sequence[tuple]) -> None:
        """Write rows whose values follow ``COLUMNS[model]``, already in database format."""
        if not rows:
            return
        sql = self._sql.get(model) or self._sql.setdefault(model, _insert_sql(model))
        with connection.cursor() as cursor:
            for start in range(0, len(rows), ROWS_PER_EXECUTE):
                cursor.executemany(sql, rows[start : start + ROWS_PER_EXECUTE])
        label = model._meta.label
        self.counts[label] = self.counts.get(label, 0) + len(rows)

    def finish(self) -> None:
        """Move id sequences past the explicit ids and refresh the planner's statistics."""
        with connection.cursor() as cursor:
            for statement in connection.ops.sequence_reset_sql(no_style(), list(self._ids)):
                cursor.execute(statement)
            cursor.execute("ANALYZE")


COLUMNS: dict[type[Model], tuple[str, ...]] = {
    Customer: (
        "id",
        "uuid",
        "family_name",
        "given_name",
        "family_name_kana",
        "given_name_kana",
        "birth_date",
        "gender",
        "postal_code",
        "prefecture",
        "city",
        "language",
        "lifecycle_stage",
        "is_anonymous",
        "attributes",
        "created_at",
        "updated_at",
    ),
    Identity: ("id", "customer", "kind", "value", "source", "first_seen_at", "last_seen_at"),
    Consent: ("id", "customer", "channel", "status", "source", "updated_at"),
    ConsentChange: ("id", "consent", "status", "source", "changed_at"),
    ImportantDate: ("id", "customer", "kind", "label", "month", "day", "year", "self_declared"),
    LifeEvent: ("id", "customer", "kind", "detected_at", "source", "confidence", "detail"),
    Order: ("id", "customer", "number", "ordered_at", "touchpoint", "status", "total", "source"),
    OrderLine: ("id", "order", "product", "quantity", "unit_price"),
    Event: (
        "id",
        "customer",
        "event_type",
        "touchpoint",
        "occurred_at",
        "source",
        "event_id",
        "properties",
        "received_at",
    ),
    Favorite: ("id", "customer", "product", "created_at"),
    SurveyResponse: ("id", "survey", "customer", "touchpoint", "score", "comment", "answered_at"),
    Delivery: (
        "id",
        "campaign",
        "step",
        "customer",
        "occurrence",
        "status",
        "created_at",
        "sent_at",
        "error",
    ),
    SegmentMembership: ("id", "segment", "customer", "added_at"),
    CustomerMetrics: (
        "customer",
        "identity_count",
        "order_count",
        "revenue_total",
        "first_order_at",
        "last_order_at",
        "event_count",
        "last_event_at",
        "last_nps",
        "updated_at",
    ),
}


def _insert_sql(model: type[Model]) -> str:
    """``INSERT INTO t (cols) VALUES (%s, …)`` for the field names in ``COLUMNS``."""
    quote = connection.ops.quote_name
    columns = [model._meta.get_field(name).column for name in COLUMNS[model]]
    return (
        f"INSERT INTO {quote(model._meta.db_table)} ({', '.join(map(quote, columns))}) "
        f"VALUES ({', '.join(['%s'] * len(columns))})"
    )


@dataclass(frozen=True)
class _DbFormat:
    """Turns epoch seconds, dates and UUIDs into what the database driver stores.

    Chosen once per run: SQLite keeps naive UTC text, PostgreSQL takes aware datetimes. This
    is the same conversion Django's field ``get_db_prep_value`` does, minus its per-value cost.
    """

    ts: Callable[[int | None], object]
    date: Callable[[dt.date | None], object]
    uuid: Callable[[uuid.UUID], object]


def _db_format() -> _DbFormat:
    if connection.vendor == "sqlite":
        return _DbFormat(
            ts=lambda e: None if e is None else time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(e)),
            date=lambda d: None if d is None else d.isoformat(),
            uuid=lambda u: u.hex,
        )
    return _DbFormat(
        ts=lambda e: None if e is None else dt.datetime.fromtimestamp(e, tz=dt.UTC),
        date=lambda d: d,
        uuid=lambda u: u,
    )


# --------------------------------------------------------------------------------------------
# Reference data: touchpoints, event types, products, attributes, marketing objects
# --------------------------------------------------------------------------------------------

STORES: dict[str, str] = {
    "store-ginza": "銀座本店 (Ginza flagship)",
    "store-shibuya": "渋谷店 (Shibuya)",
    "store-yokohama": "横浜店 (Yokohama)",
    "store-umeda": "梅田店 (Osaka Umeda)",
    "store-sakae": "栄店 (Nagoya Sakae)",
    "store-tenjin": "天神店 (Fukuoka Tenjin)",
}

# code, name, channel, kind, owner department, experience values, description
TOUCHPOINTS: list[tuple[str, str, str, str, str, tuple[str, ...], str]] = [
    (
        "web-shop",
        "花守オンラインショップ (Online shop)",
        "web",
        "online",
        "crm",
        ("convenience", "deal"),
        "Next-day delivery nationwide; message cards and gift wrapping.",
    ),
    (
        "app",
        "花守アプリ (Hanamori app)",
        "app",
        "app",
        "crm",
        ("convenience", "fun"),
        "Ordering, member card, points and flower-care tips.",
    ),
    (
        "email-newsletter",
        "メールマガジン (Email newsletter)",
        "email",
        "online",
        "crm",
        ("deal", "empathy"),
        "Weekly newsletter and campaign emails.",
    ),
    (
        "line-official",
        "LINE公式アカウント (LINE official account)",
        "line",
        "online",
        "crm",
        ("convenience", "empathy"),
        "Coupons, reminders before important dates, chat support.",
    ),
    (
        "app-push",
        "アプリ通知 (App push)",
        "push",
        "app",
        "crm",
        ("convenience",),
        "Order status and back-in-stock notifications.",
    ),
    (
        "sms-notice",
        "SMS配送通知 (SMS delivery notice)",
        "sms",
        "online",
        "crm",
        ("reassurance",),
        "Delivery-time notices for gift orders.",
    ),
    (
        "ads-search",
        "検索広告 (Search ads)",
        "ads",
        "online",
        "promotion",
        ("deal",),
        "Search ads for gift keywords.",
    ),
    (
        "ads-social",
        "Instagram広告 (Instagram ads)",
        "ads",
        "online",
        "promotion",
        ("fun", "empathy"),
        "Seasonal visual ads and reels.",
    ),
    *[
        (code, name, "store", "offline", "sales", ("reassurance", "empathy"), "Flower shop.")
        for code, name in STORES.items()
    ],
    (
        "call-centre",
        "お客様センター (Customer centre)",
        "call_center",
        "offline",
        "sales",
        ("reassurance",),
        "Phone orders and enquiries, 9:00–20:00.",
    ),
    (
        "sales-visit",
        "法人営業 (Corporate sales visits)",
        "sales_visit",
        "offline",
        "sales",
        ("reassurance",),
        "Orchids and opening gifts for companies.",
    ),
    (
        "flower-workshop",
        "フラワーアレンジ教室 (Flower workshop)",
        "event",
        "offline",
        "promotion",
        ("fun", "empathy"),
        "Monthly arrangement workshops in the stores.",
    ),
    (
        "dm-catalogue",
        "季節のカタログ (Seasonal catalogue)",
        "dm",
        "offline",
        "promotion",
        ("deal",),
        "Printed catalogue mailed four times a year.",
    ),
]

# name, description, owner department, property schema
EVENT_TYPES: list[tuple[str, str, str, dict[str, str]]] = [
    ("page_view", "A page of the web shop was viewed.", "crm", {"path": "string"}),
    ("ad_click", "An ad was clicked.", "promotion", {"medium": "string"}),
    ("search", "A product search.", "crm", {"query": "string"}),
    ("product_view", "A product page was viewed.", "crm", {"sku": "string", "price": "number"}),
    ("favorite_added", "A product was marked as favourite.", "crm", {"sku": "string"}),
    (
        "add_to_cart",
        "A product was put in the cart.",
        "crm",
        {"sku": "string", "price": "number", "quantity": "number"},
    ),
    ("checkout_started", "Checkout was opened.", "crm", {"cart_value": "number"}),
    (
        "purchase",
        "An order was placed (any channel).",
        "crm",
        {"order_number": "string", "total": "number", "campaign_id": "number"},
    ),
    ("app_open", "The app was opened.", "crm", {"os": "string"}),
    ("push_opened", "A push notification was opened.", "crm", {"topic": "string"}),
    ("email_opened", "A campaign email was opened.", "crm", {"campaign_id": "number"}),
    (
        "email_clicked",
        "A link in a campaign email was clicked.",
        "crm",
        {"campaign_id": "number", "url": "string"},
    ),
    ("line_clicked", "A LINE message link was clicked.", "crm", {"campaign_id": "number"}),
    ("store_visit", "A member card was scanned in a store.", "sales", {"store": "string"}),
    ("call", "A call with the customer centre.", "sales", {"reason": "string"}),
    ("meeting", "A corporate sales meeting.", "sales", {"purpose": "string"}),
    ("event_attended", "Attended a workshop.", "promotion", {"event": "string"}),
    (
        "review_posted",
        "A product review was posted.",
        "crm",
        {"sku": "string", "rating": "number"},
    ),
    ("referral", "A friend was invited with a referral code.", "promotion", {"code": "string"}),
]

# prefix, Japanese category, English category, [(Japanese, English, price)], sizes
PRODUCT_LINES: list[tuple[str, str, str, list[tuple[str, str, int]], tuple[str, ...]]] = [
    (
        "BQ",
        "花束",
        "Bouquets",
        [
            ("季節の花束", "Seasonal bouquet", 3300),
            ("バラの花束", "Rose bouquet", 4400),
            ("ひまわりの花束", "Sunflower bouquet", 3850),
            ("かすみ草の花束", "Baby's-breath bouquet", 3300),
            ("チューリップの花束", "Tulip bouquet", 3520),
            ("ガーベラの花束", "Gerbera bouquet", 3080),
            ("ユリの花束", "Lily bouquet", 4950),
            ("白のスタイリッシュブーケ", "White stylish bouquet", 5500),
            ("誕生日ブーケ", "Birthday bouquet", 4400),
            ("お祝いブーケ", "Celebration bouquet", 5500),
            ("カーネーションの花束", "Carnation bouquet", 3850),
            ("ドライミックスブーケ", "Dried mixed bouquet", 3960),
        ],
        ("S", "M", "L"),
    ),
    (
        "AR",
        "アレンジメント",
        "Arrangements",
        [
            ("季節のアレンジ", "Seasonal arrangement", 3850),
            ("バスケットアレンジ", "Basket arrangement", 4950),
            ("ボックスフラワー", "Flower box", 5500),
            ("お供えアレンジ", "Memorial arrangement", 5500),
            ("開店祝いアレンジ", "Shop-opening arrangement", 11000),
            ("ハートアレンジ", "Heart arrangement", 4400),
            ("和風アレンジ", "Japanese-style arrangement", 5280),
            ("テーブルアレンジ", "Table arrangement", 3300),
            ("スタンド花", "Standing flower display", 16500),
            ("フルーツ＆フラワー", "Fruit and flowers", 7700),
        ],
        ("S", "M", "L"),
    ),
    (
        "PL",
        "鉢植え・観葉植物",
        "Plants",
        [
            ("モンステラ", "Monstera", 4950),
            ("パキラ", "Pachira", 3850),
            ("サンスベリア", "Sansevieria", 4400),
            ("ガジュマル", "Ficus microcarpa", 3300),
            ("オリーブの木", "Olive tree", 6600),
            ("ポトス", "Pothos", 2750),
            ("シクラメン", "Cyclamen", 3520),
            ("アジサイ", "Hydrangea", 4950),
            ("ポインセチア", "Poinsettia", 3300),
            ("ミニ盆栽", "Mini bonsai", 5500),
            ("多肉植物の寄せ植え", "Succulent planter", 3080),
            ("エバーフレッシュ", "Everfresh", 6050),
            ("ゴムの木", "Rubber plant", 4400),
            ("胡蝶蘭ミディ", "Mini phalaenopsis", 5500),
        ],
        ("5号", "7号"),
    ),
    (
        "OR",
        "胡蝶蘭",
        "Orchids",
        [
            ("白の胡蝶蘭", "White phalaenopsis", 22000),
            ("ピンクの胡蝶蘭", "Pink phalaenopsis", 24200),
            ("大輪胡蝶蘭", "Large-flowered phalaenopsis", 33000),
            ("ミディ胡蝶蘭", "Midi phalaenopsis", 16500),
        ],
        ("3本立", "5本立", "7本立"),
    ),
    (
        "PR",
        "プリザーブド・ドライ",
        "Preserved & dried",
        [
            ("プリザーブドローズ", "Preserved rose", 4400),
            ("ハーバリウム", "Herbarium bottle", 3300),
            ("ドライフラワースワッグ", "Dried-flower swag", 3850),
            ("プリザーブドボックス", "Preserved flower box", 6600),
            ("フラワーフレーム", "Flower frame", 5500),
            ("ドライリース", "Dried wreath", 4950),
            ("ソープフラワー", "Soap flowers", 2970),
            ("ガラスドーム", "Glass-dome rose", 7700),
            ("ミニブーケチャーム", "Mini bouquet charm", 1980),
            ("アロマフラワー", "Aroma flowers", 3300),
        ],
        ("S", "L"),
    ),
    (
        "SW",
        "ギフトスイーツ",
        "Gift sweets",
        [
            ("焼き菓子セット", "Baked sweets set", 2700),
            ("花のマカロン", "Flower macarons", 2160),
            ("和三盆", "Wasanbon sugar sweets", 1944),
            ("紅茶ギフト", "Tea gift", 3240),
            ("はちみつギフト", "Honey gift", 3780),
            ("チョコレート詰め合わせ", "Chocolate assortment", 3240),
            ("バウムクーヘン", "Baumkuchen", 2592),
            ("フルーツゼリー", "Fruit jelly", 3024),
            ("花のクッキー缶", "Flower cookie tin", 2376),
            ("スパークリングジュース", "Sparkling juice", 2200),
            ("ワインとお花", "Wine and flowers", 6600),
            ("バスギフト", "Bath gift", 2970),
        ],
        ("単品", "花束セット"),
    ),
    (
        "GD",
        "花器・雑貨",
        "Vases & goods",
        [
            ("ガラスの花瓶", "Glass vase", 2750),
            ("陶器の花器", "Ceramic vase", 3850),
            ("一輪挿し", "Bud vase", 1650),
            ("メッセージカード", "Message card", 220),
            ("ギフトラッピング", "Gift wrapping", 330),
            ("延命剤", "Flower food", 330),
            ("じょうろ", "Watering can", 1980),
            ("園芸はさみ", "Garden scissors", 2420),
            ("鉢カバー", "Pot cover", 1650),
            ("フラワーベース木製", "Wooden flower stand", 3300),
            ("花のカレンダー", "Flower calendar", 1320),
            ("アロマキャンドル", "Aroma candle", 2200),
            ("ポストカードセット", "Postcard set", 660),
            ("エコバッグ", "Tote bag", 1100),
        ],
        ("",),
    ),
    (
        "SB",
        "定期便",
        "Subscriptions",
        [
            ("お花の定期便", "Flower subscription", 2200),
            ("グリーンの定期便", "Green subscription", 2750),
            ("季節の枝もの定期便", "Seasonal branch subscription", 3300),
        ],
        ("隔週", "毎週", "月1回"),
    ),
    (
        "SE",
        "季節限定",
        "Seasonal",
        [
            ("母の日カーネーション", "Mother's Day carnations", 4400),
            ("父の日ひまわり", "Father's Day sunflowers", 4400),
            ("敬老の日ギフト", "Respect-for-the-Aged Day gift", 4950),
            ("クリスマスリース", "Christmas wreath", 5500),
            ("お正月飾り", "New Year arrangement", 4950),
            ("バレンタインローズ", "Valentine roses", 4400),
            ("卒業式の花束", "Graduation bouquet", 3300),
            ("お盆のお供え花", "Obon offering flowers", 4400),
        ],
        ("S", "M", "L"),
    ),
]
SIZE_PRICE_FACTOR = {0: 1.0, 1: 1.6, 2: 2.4}
GIFT_CATEGORIES = ("BQ", "AR", "PR", "SW", "SE")

ATTRIBUTES: list[tuple[str, str, str, list[str], str, str]] = [
    (
        "member_rank",
        "会員ランク (Member rank)",
        AttributeDefinition.Type.CHOICE,
        ["regular", "silver", "gold", "platinum"],
        "Benefits and service level; from completed revenue of the last 12 months.",
        "crm",
    ),
    (
        "preferred_store",
        "よく使う店舗 (Preferred store)",
        AttributeDefinition.Type.CHOICE,
        list(STORES),
        "Store staff tasks and local invitations.",
        "sales",
    ),
    (
        "gift_purpose",
        "主な購入目的 (Main purpose)",
        AttributeDefinition.Type.CHOICE,
        ["self", "family", "partner", "friends", "business"],
        "Self-declared at sign-up; tailors gift suggestions.",
        "crm",
    ),
    (
        "corporate_account",
        "法人アカウント (Corporate account)",
        AttributeDefinition.Type.BOOLEAN,
        [],
        "Invoices and corporate sales follow-up.",
        "sales",
    ),
]


@dataclass
class _CampaignPlan:
    """A campaign whose deliveries the people simulation creates."""

    pk: int
    code: str
    channel: str
    steps: list[tuple[int, int]]  # (step id, wait days)
    start_day: int  # day offsets back from today (bigger is older)
    end_day: int
    holdout_percent: int


@dataclass
class _Catalogue:
    """Ids of the reference rows that people's rows point at."""

    event_types: dict[str, int]
    touchpoints: dict[str, int]
    products: list[tuple[int, str, int, str]]  # id, sku, price, category prefix
    product_cum_weights: list[float]
    products_by_category: dict[str, list[int]]  # prefix → indexes into ``products``
    survey_id: int
    campaigns: list[_CampaignPlan]
    workshop_segment_id: int
    staff_campaign_id: int
    users: dict[str, Model]


def _create_catalogue(rng: random.Random, bar: tqdm, now: dt.datetime) -> _Catalogue:
    """Departments, logins and every small reference table, through the ORM."""
    departments = ensure_departments()
    users = _ensure_logins(departments)
    bar.update()
    touchpoints = _create_touchpoints(departments)
    event_types = _create_event_types(departments)
    bar.update()
    products = _create_products(rng)
    _create_attribute_definitions(departments)
    bar.update()
    segments = _create_segments(departments, users)
    survey = Survey.objects.create(
        owner_department=departments["crm"],
        name="購入後NPS調査 (Post-purchase NPS)",
        question="花守を友人や家族にすすめる可能性はどのくらいありますか？ "
        "(How likely are you to recommend Hanamori to a friend or family member?)",
        touchpoint=touchpoints["email-newsletter"],
    )
    bar.update()
    personas, journey = _create_personas_and_journey(departments, users, segments, touchpoints)
    campaigns, staff_campaign = _create_campaigns(departments, users, segments, journey, now)
    bar.update()
    _share_records(departments, users, segments, personas, journey, touchpoints)
    bar.update()
    weights = [1 / (rank + 4) for rank in range(len(products))]
    rng.shuffle(weights)
    by_category: dict[str, list[int]] = {}
    for index, (_pk, _sku, _price, category) in enumerate(products):
        by_category.setdefault(category, []).append(index)
    return _Catalogue(
        event_types=event_types,
        touchpoints={code: tp.pk for code, tp in touchpoints.items()},
        products=products,
        product_cum_weights=list(itertools.accumulate(weights)),
        products_by_category=by_category,
        survey_id=survey.pk,
        campaigns=campaigns,
        workshop_segment_id=segments["workshop"].pk,
        staff_campaign_id=staff_campaign.pk,
        users=users,
    )


def _experience_values() -> dict[str, ExperienceValue]:
    return {value.code: value for value in ExperienceValue.objects.all()}


def _create_touchpoints(departments: dict[str, Department]) -> dict[str, Touchpoint]:
    values = _experience_values()
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


def _rule(rule_type: str, /, **params) -> dict:
    return {"type": rule_type, **params}


def _create_segments(
    departments: dict[str, Department], users: dict[str, Model]
) -> dict[str, Segment]:
    """A few segments as plausible AND/OR/NOT rule trees, owned by CRM and analytics."""
    specs = {
        "cart": (
            "crm",
            "カゴ落ち（7日以内） Cart abandoners, last 7 days",
            "Added to cart in the last 7 days without buying; email consent granted.",
            {
                "op": "and",
                "rules": [
                    _rule("event", event="add_to_cart", within_days=7, min_count=1),
                    {"op": "not", "rules": [_rule("event", event="purchase", within_days=7)]},
                    _rule("consent", channel="email", status="granted"),
                ],
            },
        ),
        "app_first": (
            "crm",
            "初回アプリ購入者 First-time app buyers",
            "Exactly one order, placed in the app.",
            {
                "op": "and",
                "rules": [
                    _rule("metric", field="order_count", op="eq", value=1),
                    _rule("order", touchpoint="app", within_days=365),
                ],
            },
        ),
        "gift_regular": (
            "crm",
            "記念日ギフトの常連 Gift-giving regulars",
            "Three or more orders and an anniversary or spouse's birthday on file.",
            {
                "op": "and",
                "rules": [
                    _rule("metric", field="order_count", op="gte", value=3),
                    {
                        "op": "or",
                        "rules": [
                            _rule("important_date", kind="anniversary"),
                            _rule("important_date", kind="spouse_birthday"),
                        ],
                    },
                ],
            },
        ),
        "dormant": (
            "analytics",
            "休眠顧客 Dormant customers",
            "No order for 180 days after buying at least once.",
            {
                "op": "and",
                "rules": [
                    _rule("metric", field="order_count", op="gte", value=1),
                    _rule("metric", field="last_order_at", op="older_than_days", value=180),
                ],
            },
        ),
        "promoters": (
            "analytics",
            "推奨者 NPS promoters",
            "Last NPS answer 9 or 10.",
            _rule("metric", field="last_nps", op="gte", value=9),
        ),
        "high_value": (
            "analytics",
            "優良顧客 High-value customers",
            "¥50,000 or more in completed orders.",
            _rule("metric", field="revenue_total", op="gte", value=50000),
        ),
    }
    segments = {
        key: Segment.objects.create(
            owner_department=departments[owner],
            name=name,
            description=description,
            rules=rules,
            created_by=users[owner],
        )
        for key, (owner, name, description, rules) in specs.items()
    }
    segments["workshop"] = Segment.objects.create(
        owner_department=departments["promotion"],
        name="フラワー教室参加者 Workshop attendees",
        description="Snapshot of everyone who attended a flower workshop.",
        kind=Segment.Kind.STATIC,
        created_by=users["promo"],
    )
    return segments


STAGES: list[dict] = [
    {
        "name": "認知 Awareness",
        "customer_goal": "記念日を忘れずに思い出す / Remember the date in time",
        "actions": "Instagram広告やLINEのリマインドを見る / Sees ads and a LINE reminder",
        "thoughts": "「今年は何を贈ろう？」 'What shall I give this year?'",
        "emotion": 0,
        "pain_points": "リマインドが直前すぎる / Reminders come too late",
        "opportunities": "登録された記念日の14日前にLINEで案内 / LINE 14 days ahead",
        "kpi": "LINE click rate",
        "touchpoints": ("ads-social", "line-official"),
        "values": ("empathy",),
    },
    {
        "name": "検討 Consideration",
        "customer_goal": "相手に合う花と予算を決める / Pick flowers and a budget",
        "actions": "ギフトガイドを見てサイズを比べる / Browses the gift guide",
        "thoughts": "「配達日に間に合う？」 'Will it arrive on the day?'",
        "emotion": -1,
        "pain_points": "サイズ感と配達日がわかりにくい / Size and delivery date unclear",
        "opportunities": "実物大の写真と配達カレンダー / True-size photos, delivery calendar",
        "kpi": "Add-to-cart rate",
        "touchpoints": ("web-shop", "app", "store-ginza"),
        "values": ("convenience", "reassurance"),
    },
    {
        "name": "購入 Purchase",
        "customer_goal": "メッセージを添えて確実に注文 / Order with a message card",
        "actions": "配達日とカードを指定して決済 / Chooses date and card, pays",
        "thoughts": "「カードの文字数が足りない」 'The card is too short'",
        "emotion": 1,
        "pain_points": "カードの文字数制限 / Card length limit",
        "opportunities": "手書き風カードとポイント還元 / Handwritten-style card, points",
        "kpi": "Checkout conversion rate",
        "touchpoints": ("web-shop", "app", "store-shibuya"),
        "values": ("deal", "convenience"),
    },
    {
        "name": "利用 Use",
        "customer_goal": "相手に喜んでもらう / Make the recipient happy",
        "actions": "配達通知を受け取り、写真を送ってもらう / Gets delivery notice, photo",
        "thoughts": "「ちゃんと届いてよかった」 'Glad it arrived safely'",
        "emotion": 2,
        "pain_points": "配達状況が見えない / Delivery status not visible",
        "opportunities": "SMSで配達完了と写真を通知 / SMS with delivery photo",
        "kpi": "On-time delivery rate",
        "touchpoints": ("sms-notice", "call-centre"),
        "values": ("reassurance", "fun"),
    },
    {
        "name": "継続 Loyalty",
        "customer_goal": "来年も同じお店で贈る / Give again next year",
        "actions": "会員ランクとお手入れ情報を受け取る / Receives rank and care tips",
        "thoughts": "「覚えていてくれて嬉しい」 'Nice that they remember'",
        "emotion": 1,
        "pain_points": "同じ商品ばかり勧められる / Same suggestions every time",
        "opportunities": "前年の贈り物を踏まえた提案 / Suggest based on last year's gift",
        "kpi": "F2 rate, NPS",
        "touchpoints": ("email-newsletter", "app-push", "line-official"),
        "values": ("empathy", "deal"),
    },
]


def _create_personas_and_journey(
    departments: dict[str, Department],
    users: dict[str, Model],
    segments: dict[str, Segment],
    touchpoints: dict[str, Touchpoint],
) -> tuple[list[Persona], Journey]:
    """Two personas written by CRM with sales, and the journey map of the gift-giver."""
    values = _experience_values()
    app_buyer = Persona.objects.create(
        owner_department=departments["crm"],
        name="初めてのアプリ購入者 First-time app buyer",
        initials="FA",
        color="#2a6f97",
        profile="28歳・会社員・東京都在住。自分用の花をアプリで初めて購入。 "
        "28, office worker in Tokyo; bought flowers for herself in the app for the first time.",
        goals="部屋に季節の花を飾りたい / Fresh seasonal flowers at home",
        pains="お手入れ方法がわからない / Unsure how to care for flowers",
        situations="引越し直後、新生活 / Just moved, new life",
        values="便利・楽しい / Convenience, fun",
        preferred_channels="App, push, Instagram",
        quotes="「アプリだと2分で頼めるのがいい」(渋谷店スタッフ聞き取り)",
        segment=segments["app_first"],
    )
    app_buyer.experience_values.set([values["convenience"], values["fun"]])
    gift_giver = Persona.objects.create(
        owner_department=departments["crm"],
        name="記念日ギフトの常連 Gift-giving regular",
        initials="GR",
        color="#b5446e",
        profile="45歳・既婚・神奈川県在住。母の日、妻の誕生日、結婚記念日に毎年贈る。 "
        "45, married, Kanagawa; gives flowers every Mother's Day, birthday and anniversary.",
        goals="失敗しない贈り物を確実に届けたい / A gift that arrives on time, every time",
        pains="毎年同じになりがち / Gifts feel repetitive",
        situations="記念日の2週間前 / Two weeks before an important date",
        values="安心・共感 / Reassurance, empathy",
        preferred_channels="LINE, web shop, Ginza store",
        quotes="「去年と違うものを提案してほしい」(銀座本店)",
        segment=segments["gift_regular"],
    )
    gift_giver.experience_values.set([values["reassurance"], values["empathy"]])
    journey = Journey.objects.create(
        owner_department=departments["crm"],
        name="記念日ギフトのジャーニー Anniversary gift journey",
        persona=gift_giver,
        description="From remembering the date to giving again next year; co-edited with sales.",
    )
    for position, spec in enumerate(STAGES, start=1):
        stage = Stage.objects.create(
            journey=journey,
            position=position,
            owner=users["crm"],
            **{k: v for k, v in spec.items() if k not in ("touchpoints", "values")},
        )
        stage.touchpoints.set([touchpoints[code] for code in spec["touchpoints"]])
        stage.experience_values.set([values[code] for code in spec["values"]])
    first, *_middle, last = journey.stages.order_by("position")
    Comment.objects.create(
        journey=journey,
        stage=first,
        author=users["sales"],
        body="店頭でも「記念日を登録しておけばよかった」という声が多いです。"
        " Store staff often hear 'I wish I had saved the date'.",
    )
    Comment.objects.create(
        journey=journey,
        stage=last,
        author=users["crm"],
        body="Next year's reminder could quote last year's bouquet. "
        "前年の商品名を入れて検証します。",
    )
    return [app_buyer, gift_giver], journey


class _CampaignSpec(NamedTuple):
    code: str
    name: str
    goal: str
    kind: str
    channel: str
    status: str
    segment: str | None
    window: tuple[int, int] | None  # (start, end) in days back from today; negative = ahead
    holdout: int
    values: tuple[str, ...]
    stage: int  # journey stage position
    steps: list[tuple[int, str, str]]  # (wait days, subject, body)


CAMPAIGNS: list[_CampaignSpec] = [
    _CampaignSpec(
        "seasonal",
        "季節の花束 早割 Seasonal bouquet early-bird",
        "Lift gift orders two weeks before the season's peak.",
        Campaign.Kind.ONE_OFF,
        Campaign.Channel.EMAIL,
        Campaign.Status.COMPLETED,
        "gift_regular",
        (60, 46),
        10,
        ("deal",),
        3,
        [(0, "【早割10%OFF】季節の花束のご予約受付中", "{{ customer.family_name }}様、今年も…")],
    ),
    _CampaignSpec(
        "cart",
        "カゴ落ちリマインド Cart reminder",
        "Bring back people who left products in the cart.",
        Campaign.Kind.TRIGGERED,
        Campaign.Channel.EMAIL,
        Campaign.Status.RUNNING,
        "cart",
        (120, 0),
        10,
        ("convenience",),
        2,
        [
            (0, "カートに商品が残っています", "お選びいただいた商品をご確認ください。"),
            (2, "カートの商品が残りわずかです", "在庫が少なくなっています。"),
        ],
    ),
    _CampaignSpec(
        "line_coupon",
        "LINE友だち限定クーポン LINE friends coupon",
        "Reward LINE friends and grow repeat orders.",
        Campaign.Kind.ONE_OFF,
        Campaign.Channel.LINE,
        Campaign.Status.COMPLETED,
        None,
        (150, 130),
        20,
        ("deal", "fun"),
        5,
        [(0, "", "LINE友だち限定 500円OFFクーポンをお届けします🌷")],
    ),
    _CampaignSpec(
        "birthday",
        "お誕生月のご挨拶 Birthday greeting",
        "A greeting and a small gift a week before the customer's birthday.",
        Campaign.Kind.RECURRING,
        Campaign.Channel.EMAIL,
        Campaign.Status.RUNNING,
        None,
        (90, 0),
        10,
        ("empathy",),
        5,
        [(0, "お誕生日おめでとうございます", "{{ customer.given_name }}様へ、花守より。")],
    ),
    _CampaignSpec(
        "vip_visit",
        "優良顧客 来店ご案内 VIP store invitation",
        "Store staff call high-value customers before the new-season preview.",
        Campaign.Kind.ONE_OFF,
        Campaign.Channel.STAFF_TASK,
        Campaign.Status.RUNNING,
        "high_value",
        (10, 0),
        0,
        ("reassurance", "empathy"),
        5,
        [(0, "新作内覧会のご案内", "Call and invite to the preview; note the answer.")],
    ),
    _CampaignSpec(
        "year_end",
        "年末ギフト予約 Year-end gift pre-order",
        "Early pre-orders for year-end gifts.",
        Campaign.Kind.ONE_OFF,
        Campaign.Channel.EMAIL,
        Campaign.Status.SCHEDULED,
        "gift_regular",
        (-14, -30),
        10,
        ("deal",),
        2,
        [(0, "年末ギフトのご予約開始", "人気商品は早めの予約がおすすめです。")],
    ),
    _CampaignSpec(
        "winback",
        "休眠顧客 掘り起こし Dormant win-back",
        "Win back customers without an order for six months.",
        Campaign.Kind.ONE_OFF,
        Campaign.Channel.LINE,
        Campaign.Status.DRAFT,
        "dormant",
        None,
        20,
        ("deal", "empathy"),
        5,
        [(0, "", "お久しぶりです。季節の花を15%OFFでお届けします。")],
    ),
]


def _create_campaigns(
    departments: dict[str, Department],
    users: dict[str, Model],
    segments: dict[str, Segment],
    journey: Journey,
    now: dt.datetime,
) -> tuple[list[_CampaignPlan], Campaign]:
    """Campaigns in every status; those that ran get deliveries from the simulation."""
    values = _experience_values()
    stages = {stage.position: stage for stage in journey.stages.all()}
    plans, staff_campaign = [], None
    for spec in CAMPAIGNS:
        owner = "sales" if spec.channel == Campaign.Channel.STAFF_TASK else "crm"
        starts = now - dt.timedelta(days=spec.window[0]) if spec.window else None
        ran = spec.status in (Campaign.Status.RUNNING, Campaign.Status.COMPLETED)
        approved = spec.status != Campaign.Status.DRAFT
        campaign = Campaign.objects.create(
            owner_department=departments[owner],
            name=spec.name,
            goal=spec.goal,
            kind=spec.kind,
            channel=spec.channel,
            status=spec.status,
            segment=segments[spec.segment] if spec.segment else None,
            trigger={"event": "add_to_cart", "delay_hours": 1} if spec.code == "cart" else {},
            journey_stage=stages[spec.stage],
            holdout_percent=spec.holdout,
            starts_at=starts,
            ends_at=now - dt.timedelta(days=spec.window[1])
            if spec.window and spec.status != Campaign.Status.RUNNING
            else None,
            created_by=users[owner],
            approved_by=users[owner] if approved else None,
            approved_at=starts - dt.timedelta(days=3) if approved else None,
        )
        campaign.experience_values.set([values[code] for code in spec.values])
        steps = [
            (
                CampaignStep.objects.create(
                    campaign=campaign, position=position, wait_days=wait, subject=subject, body=body
                ).pk,
                wait,
            )
            for position, (wait, subject, body) in enumerate(spec.steps, start=1)
        ]
        if spec.channel == Campaign.Channel.STAFF_TASK:
            staff_campaign = campaign
        elif ran:
            start_day, end_day = spec.window
            plans.append(
                _CampaignPlan(
                    campaign.pk, spec.code, spec.channel, steps, start_day, end_day, spec.holdout
                )
            )
    return plans, staff_campaign


def _share_records(
    departments: dict[str, Department],
    users: dict[str, Model],
    segments: dict[str, Segment],
    personas: list[Persona],
    journey: Journey,
    touchpoints: dict[str, Touchpoint],
) -> None:
    """Sharing as the teams would do it: CRM's segments to sales, personas co-edited…"""
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
    ]
    for obj, department, can_edit, by in grants:
        share_grant(obj=obj, department=department, can_edit=can_edit, by=users[by])


def _create_staff_tasks(rng: random.Random, catalogue: _Catalogue, now: dt.datetime) -> None:
    """Calls for the VIP invitation, to the top customers of each store."""
    top = (
        CustomerMetrics.objects.filter(customer__attributes__has_key="preferred_store")
        .order_by("-revenue_total", "customer_id")
        .values_list("customer_id", "customer__attributes")[:24]
    )
    tasks = []
    for index, (customer_id, attributes) in enumerate(top):
        done = index % 3 == 0
        tasks.append(
            StaffTask(
                campaign_id=catalogue.staff_campaign_id,
                customer_id=customer_id,
                assignee=catalogue.users["sales" if index % 2 else "sales-viewer"],
                store_id=catalogue.touchpoints[attributes["preferred_store"]],
                title="新作内覧会のご案内のお電話 (Call: new-season preview invitation)",
                due_at=now + dt.timedelta(days=rng.randint(-2, 7)),
                status=StaffTask.Status.DONE if done else StaffTask.Status.OPEN,
                outcome=rng.choice(VISIT_OUTCOMES) if done else "",
                completed_at=now - dt.timedelta(hours=rng.randint(2, 72)) if done else None,
            )
        )
    StaffTask.objects.bulk_create(tasks)


VISIT_OUTCOMES = [
    "来店予約あり（土曜14時）/ Booked a visit on Saturday 2 pm",
    "不在、留守電に伝言 / No answer, left a voicemail",
    "今回は見送り、秋に再度案内 / Not this time; invite again in autumn",
]

# --------------------------------------------------------------------------------------------
# People: names, places and what they say
# --------------------------------------------------------------------------------------------

FAMILY_NAMES = [
    ("佐藤", "サトウ", "sato"),
    ("鈴木", "スズキ", "suzuki"),
    ("高橋", "タカハシ", "takahashi"),
    ("田中", "タナカ", "tanaka"),
    ("伊藤", "イトウ", "ito"),
    ("渡辺", "ワタナベ", "watanabe"),
    ("山本", "ヤマモト", "yamamoto"),
    ("中村", "ナカムラ", "nakamura"),
    ("小林", "コバヤシ", "kobayashi"),
    ("加藤", "カトウ", "kato"),
    ("吉田", "ヨシダ", "yoshida"),
    ("山田", "ヤマダ", "yamada"),
    ("佐々木", "ササキ", "sasaki"),
    ("山口", "ヤマグチ", "yamaguchi"),
    ("松本", "マツモト", "matsumoto"),
    ("井上", "イノウエ", "inoue"),
    ("木村", "キムラ", "kimura"),
    ("林", "ハヤシ", "hayashi"),
    ("斎藤", "サイトウ", "saito"),
    ("清水", "シミズ", "shimizu"),
    ("山崎", "ヤマザキ", "yamazaki"),
    ("森", "モリ", "mori"),
    ("池田", "イケダ", "ikeda"),
    ("橋本", "ハシモト", "hashimoto"),
    ("阿部", "アベ", "abe"),
    ("石川", "イシカワ", "ishikawa"),
    ("山下", "ヤマシタ", "yamashita"),
    ("中島", "ナカジマ", "nakajima"),
    ("石井", "イシイ", "ishii"),
    ("小川", "オガワ", "ogawa"),
    ("前田", "マエダ", "maeda"),
    ("岡田", "オカダ", "okada"),
    ("長谷川", "ハセガワ", "hasegawa"),
    ("藤田", "フジタ", "fujita"),
    ("後藤", "ゴトウ", "goto"),
    ("近藤", "コンドウ", "kondo"),
    ("村上", "ムラカミ", "murakami"),
    ("遠藤", "エンドウ", "endo"),
    ("青木", "アオキ", "aoki"),
    ("坂本", "サカモト", "sakamoto"),
]
GIVEN_NAMES = {
    "f": [
        ("陽子", "ヨウコ", "yoko"),
        ("花子", "ハナコ", "hanako"),
        ("美咲", "ミサキ", "misaki"),
        ("結衣", "ユイ", "yui"),
        ("葵", "アオイ", "aoi"),
        ("さくら", "サクラ", "sakura"),
        ("陽菜", "ヒナ", "hina"),
        ("真由美", "マユミ", "mayumi"),
        ("恵子", "ケイコ", "keiko"),
        ("由美", "ユミ", "yumi"),
        ("直美", "ナオミ", "naomi"),
        ("愛", "アイ", "ai"),
        ("彩", "アヤ", "aya"),
        ("千尋", "チヒロ", "chihiro"),
        ("智子", "トモコ", "tomoko"),
        ("久美子", "クミコ", "kumiko"),
        ("明美", "アケミ", "akemi"),
        ("優子", "ユウコ", "yuko"),
        ("麻衣", "マイ", "mai"),
        ("香織", "カオリ", "kaori"),
        ("美穂", "ミホ", "miho"),
        ("紗希", "サキ", "saki"),
        ("凛", "リン", "rin"),
        ("芽衣", "メイ", "mei"),
    ],
    "m": [
        ("翔太", "ショウタ", "shota"),
        ("大輔", "ダイスケ", "daisuke"),
        ("健太", "ケンタ", "kenta"),
        ("拓也", "タクヤ", "takuya"),
        ("直樹", "ナオキ", "naoki"),
        ("浩二", "コウジ", "koji"),
        ("誠", "マコト", "makoto"),
        ("蓮", "レン", "ren"),
        ("悠真", "ユウマ", "yuma"),
        ("大翔", "ヒロト", "hiroto"),
        ("隆", "タカシ", "takashi"),
        ("剛", "ツヨシ", "tsuyoshi"),
        ("和也", "カズヤ", "kazuya"),
        ("亮", "リョウ", "ryo"),
        ("健一", "ケンイチ", "kenichi"),
        ("哲也", "テツヤ", "tetsuya"),
        ("修", "オサム", "osamu"),
        ("洋平", "ヨウヘイ", "yohei"),
        ("陸", "リク", "riku"),
        ("湊", "ミナト", "minato"),
    ],
}
ENGLISH_GIVEN = {
    "f": ["Emily", "Sarah", "Olivia", "Hannah", "Grace", "Chloe", "Laura", "Emma", "Sophie"],
    "m": ["James", "Daniel", "Michael", "Thomas", "David", "Ben", "Lucas", "Ryan", "Oliver"],
}
ENGLISH_FAMILY = [
    "Smith",
    "Johnson",
    "Brown",
    "Taylor",
    "Wilson",
    "Clarke",
    "Evans",
    "Walker",
    "Martin",
    "Lee",
    "Wright",
    "Green",
    "Hall",
    "Baker",
    "Murphy",
]
EMAIL_DOMAINS = ("example.jp", "example.com", "example.ne.jp", "example.co.jp", "example.org")

# prefecture, cities, weight, postal-code prefix, nearby stores
PREFECTURES: list[tuple[str, tuple[str, ...], int, str, tuple[str, ...]]] = [
    (
        "東京都",
        ("渋谷区", "世田谷区", "港区", "新宿区", "杉並区", "目黒区", "練馬区", "中央区"),
        28,
        "1",
        ("store-ginza", "store-shibuya"),
    ),
    ("神奈川県", ("横浜市", "川崎市", "鎌倉市", "藤沢市"), 14, "2", ("store-yokohama",)),
    ("埼玉県", ("さいたま市", "川口市", "所沢市"), 8, "3", ("store-shibuya",)),
    ("千葉県", ("千葉市", "船橋市", "浦安市"), 7, "27", ("store-ginza",)),
    ("大阪府", ("大阪市", "豊中市", "吹田市"), 10, "5", ("store-umeda",)),
    ("京都府", ("京都市",), 3, "60", ("store-umeda",)),
    ("兵庫県", ("神戸市", "西宮市"), 4, "65", ("store-umeda",)),
    ("愛知県", ("名古屋市", "豊田市"), 7, "4", ("store-sakae",)),
    ("福岡県", ("福岡市", "北九州市"), 5, "8", ("store-tenjin",)),
    ("北海道", ("札幌市",), 4, "06", ()),
    ("宮城県", ("仙台市",), 2, "98", ()),
    ("広島県", ("広島市",), 2, "73", ()),
    ("静岡県", ("静岡市", "浜松市"), 3, "42", ()),
    ("沖縄県", ("那覇市",), 1, "90", ()),
]
PREFECTURE_CUM = list(itertools.accumulate(p[2] for p in PREFECTURES))

NPS_COMMENTS = {
    ("ja", "promoter"): [
        "配達が時間通りで、花もとても新鮮でした。",
        "母がとても喜んでくれました！また利用します。",
        "アプリで簡単に注文できて便利です。",
        "店員さんの提案が素敵でした。",
        "メッセージカードのサービスが嬉しいです。",
    ],
    ("ja", "passive"): [
        "満足ですが、送料がもう少し安いと嬉しいです。",
        "花はきれいでしたが、写真より少し小さく感じました。",
        "配達日時の指定枠をもっと増やしてほしいです。",
    ],
    ("ja", "detractor"): [
        "届いた時に花が少し傷んでいました。",
        "問い合わせの電話がつながりにくかったです。",
        "配達が予定より遅れました。",
        "決済画面でエラーが出て困りました。",
    ],
    ("en", "promoter"): [
        "Beautiful flowers and on-time delivery. My partner loved them.",
        "The app makes ordering gifts so easy.",
        "The staff at the store gave great advice.",
    ],
    ("en", "passive"): [
        "Nice bouquet, but shipping is a bit expensive.",
        "Good quality, though smaller than in the photo.",
    ],
    ("en", "detractor"): [
        "The flowers arrived wilted.",
        "Delivery was a day late and nobody told me.",
        "Checkout kept failing on my phone.",
    ],
}
SEARCH_QUERIES = (
    "バラ",
    "母の日",
    "誕生日 花束",
    "胡蝶蘭",
    "観葉植物",
    "プリザーブドフラワー",
    "送料無料",
    "開店祝い",
    "結婚祝い",
    "お供え",
    "rose bouquet",
    "birthday flowers",
)
PAGE_PATHS = (
    "/",
    "/collections/bouquets",
    "/collections/arrangements",
    "/collections/plants",
    "/gift-guide/birthday",
    "/gift-guide/anniversary",
    "/campaign/seasonal",
    "/stores",
    "/help/delivery",
)
CALL_REASONS = (
    "配送状況の確認 (delivery status)",
    "お届け日時の変更 (change delivery date)",
    "お手入れ方法 (plant care)",
    "返品・交換 (return or exchange)",
    "法人注文の相談 (corporate order)",
)
COMPETITORS = ("競合A社 花のサブスク (competitor A)", "大手ECモール (large marketplace)")
CONSENT_SOURCES = {
    "email": "webshop_signup",
    "line": "line_follow",
    "push": "app_permission",
    "sms": "pos_form",
    "phone": "pos_form",
    "dm": "pos_form",
    "ads": "cookie_banner",
}
CONSENT_GRANT_RATE = {
    "email": 0.78,
    "line": 0.92,
    "push": 0.6,
    "sms": 0.4,
    "phone": 0.25,
    "dm": 0.5,
    "ads": 0.55,
}
# Month → relative demand: Valentine, graduation, Mother's Day and Christmas stand out.
MONTH_DEMAND = {1: 0.7, 2: 0.95, 3: 1.1, 4: 0.85, 5: 1.5, 6: 0.9, 7: 0.75, 8: 0.8, 9: 0.9}
MONTH_DEMAND |= {10: 0.8, 11: 0.85, 12: 1.3}
ONLINE_HOURS = [2, 1, 0.5, 0.3, 0.3, 0.5, 1, 2, 3, 3, 3, 3, 5, 4, 3, 3, 3, 3, 4, 5, 7, 8, 7, 4]
STORE_HOURS = [0] * 10 + [5, 7, 8, 8, 7, 7, 8, 9, 9, 6] + [0] * 4
NPS_SCORES = {"promoter": (9, 10), "passive": (7, 8), "detractor": (2, 4, 5, 6, 6)}
# Order channel → (order-number prefix, source system).
ORDER_CHANNELS = {
    "web": ("W", "webshop"),
    "app": ("A", "app"),
    "store": ("S", "pos"),
    "call": ("C", "callcenter"),
}
# Channel → (furthest status reached, cumulative per-mille).
DELIVERY_OUTCOMES = {
    "email": (("failed", "converted", "clicked", "opened", "sent"), (10, 40, 120, 420, 1000)),
    "line": (("converted", "clicked", "sent"), (60, 300, 1000)),
}
JST = dt.timezone(dt.timedelta(hours=9))
DAY = 86_400


# --------------------------------------------------------------------------------------------
# The people simulation
# --------------------------------------------------------------------------------------------


@dataclass
class _Stats:
    """Running figures of one profile, becoming its CustomerMetrics row."""

    created: int
    order_count: int = 0
    revenue: int = 0
    revenue_last_year: int = 0
    first_order: int | None = None
    last_order: int | None = None
    event_count: int = 0
    last_event: int | None = None
    last_nps: int | None = None
    last_nps_at: int = 0
    identities: int = 0


@dataclass
class _Person:
    """One human being; ``web_id`` and ``store_id`` differ when they have two profiles."""

    number: int
    web_id: int
    store_id: int
    anonymous: bool
    language: str = "ja"
    family_name: str = ""
    given_name: str = ""
    family_kana: str = ""
    given_kana: str = ""
    email_local: str = ""
    gender: str = ""
    birth_date: dt.date | None = None
    prefecture: int = 0
    city: str = ""
    postal_code: str = ""
    store: str | None = None
    first_day: int = 0
    last_day: int = 0
    channel_cum: tuple[float, float, float] = (1.0, 1.0, 1.0)  # web, app, store
    has_email: bool = False
    has_phone: bool = False
    has_app: bool = False
    has_line: bool = False
    corporate: bool = False
    favourite_category: str = "BQ"
    consents: dict[str, list[tuple[int, str]]] = field(default_factory=dict)
    abandoned_carts: list[tuple[int, int]] = field(default_factory=list)
    favourites: set[int] = field(default_factory=set)
    stats: dict[int, _Stats] = field(default_factory=dict)

    @property
    def split(self) -> bool:
        return self.web_id != self.store_id


@dataclass
class _Order:
    customer_id: int
    at: int
    channel: str  # web, app, store, call
    touchpoint: str
    campaign_id: int | None = None  # set when a campaign message led to it (10% off)


class _CompanySimulator:
    """Invents people one at a time and writes their rows chunk by chunk.

    Orders, browsing, campaign deliveries, answers and metrics of a person are derived from
    the same life story, so lifecycle stages, metrics and NPS agree with the raw tables.
    """

    def __init__(
        self,
        *,
        rng: random.Random,
        catalogue: _Catalogue,
        plan: DemoSize,
        writer: _BulkWriter,
        now: dt.datetime,
    ):
        self.rng = rng
        self.cat = catalogue
        self.plan = plan
        self.writer = writer
        self.fmt = _db_format()
        self.now = int(now.timestamp())
        today = now.astimezone(JST).date()
        self.today = today
        midnight = int(dt.datetime.combine(today, dt.time(), tzinfo=JST).timestamp())
        self.day_start = [midnight - d * DAY for d in range(HISTORY_DAYS + 1)]
        demand = [
            MONTH_DEMAND[(today - dt.timedelta(days=d)).month] * (1 - 0.35 * d / HISTORY_DAYS)
            for d in range(HISTORY_DAYS + 1)
        ]
        self.day_weight = [w / max(demand) for w in demand]
        self.online_hours = list(itertools.accumulate(ONLINE_HOURS))
        self.store_hours = list(itertools.accumulate(STORE_HOURS))
        self.ids = {model: writer.ids(model) for model in COLUMNS if model is not CustomerMetrics}
        self.rows: dict[type[Model], list[tuple]] = {model: [] for model in COLUMNS}
        self.event_ids = self.ids[Event]
        self.event_rows = self.rows[Event]
        self.props_cache: dict[tuple, str] = {}
        self.current: _Person  # the person being simulated, set by ``_live``

    # ---- driving loop ------------------------------------------------------------------

    def run(self, on_chunk: Callable[[int], object]) -> None:
        """Simulate until the profile budget is spent, flushing every chunk of profiles."""
        remaining, number, in_chunk = self.plan.customers, 0, 0
        while remaining:
            person = self._new_person(number, remaining)
            number += 1
            used = 2 if person.split else 1
            remaining -= used
            in_chunk += used
            self._live(person)
            if in_chunk >= CUSTOMERS_PER_CHUNK or not remaining:
                self._flush()
                on_chunk(in_chunk)
                in_chunk = 0

    def _flush(self) -> None:
        with transaction.atomic():
            for model, rows in self.rows.items():
                self.writer.insert(model, rows)
                rows.clear()

    # ---- random helpers ----------------------------------------------------------------

    def _chance(self, p: float) -> bool:
        return self.rng.random() < p

    def _count(self, mean: float) -> int:
        """A skewed count with the given mean: most people do little, a few do a lot."""
        return int(self.rng.expovariate(1 / mean) + 0.5) if mean > 0 else 0

    def _day(self, newest: int, oldest: int) -> int:
        """A day offset in [newest, oldest], following seasonal demand and growth."""
        rng, weight = self.rng, self.day_weight
        span = oldest - newest + 1
        for _attempt in range(8):
            day = newest + int(rng.random() * span)
            if rng.random() < weight[day]:
                return day
        return day

    def _moment(self, day: int, *, store: bool = False) -> int:
        """Epoch seconds on that day at a plausible Japanese hour, never in the future."""
        rng = self.rng
        hours = self.store_hours if store else self.online_hours
        hour = rng.choices(range(24), cum_weights=hours)[0]
        at = self.day_start[day] + hour * 3600 + int(rng.random() * 3600)
        return at - DAY if at >= self.now else at

    # ---- a person's life ---------------------------------------------------------------

    def _new_person(self, number: int, budget: int) -> _Person:
        rng = self.rng
        ids = self.ids[Customer]
        web_id = next(ids)
        first_day = int(HISTORY_DAYS * rng.random() ** 1.3)
        if self._chance(0.08):
            return _Person(number, web_id, web_id, True, first_day=first_day)
        person = _Person(number, web_id, web_id, False, first_day=first_day)
        person.last_day = rng.randint(0, first_day) if self._chance(0.3) else 0
        index = rng.choices(range(len(PREFECTURES)), cum_weights=PREFECTURE_CUM)[0]
        _name, cities, _weight, postal, stores = PREFECTURES[index]
        person.prefecture, person.city = index, rng.choice(cities)
        person.postal_code = _postal_code(rng, postal)
        person.store = rng.choice(stores) if stores and self._chance(0.7) else None
        person.gender = "f" if self._chance(0.66) else "m"
        if self._chance(0.07):
            person.language = "en"
            person.given_name = rng.choice(ENGLISH_GIVEN[person.gender])
            person.family_name = rng.choice(ENGLISH_FAMILY)
            person.email_local = f"{person.given_name}.{person.family_name}".lower()
        else:
            person.given_name, person.given_kana, given = rng.choice(GIVEN_NAMES[person.gender])
            person.family_name, person.family_kana, family = rng.choice(FAMILY_NAMES)
            person.email_local = f"{given}.{family}"
        if self._chance(0.85):
            age_days = int(365.25 * rng.triangular(19, 78, 42))
            person.birth_date = self.today - dt.timedelta(days=age_days)
        web, app = (0.45, 0.3) if person.store is None else (0.3, 0.2)
        person.has_app = self._chance(0.45)
        app = app if person.has_app else 0.0
        store = 0.0 if person.store is None else 0.5
        total = web + app + store
        person.channel_cum = (web / total, (web + app) / total, 1.0)
        person.has_email = self._chance(0.9 if store == 0 else 0.65)
        person.has_phone = person.store is not None or self._chance(0.4)
        person.has_line = self._chance(0.3)
        person.corporate = self._chance(0.02)
        person.favourite_category = rng.choice(("OR",) if person.corporate else GIFT_CATEGORIES)
        if person.store and person.has_email and budget >= 2 and self._chance(0.06):
            person.store_id = next(ids)
        return person

    def _live(self, person: _Person) -> None:
        """Everything one person does in two years, written as rows of every table."""
        self.current = person
        for customer_id in dict.fromkeys((person.web_id, person.store_id)):
            person.stats[customer_id] = _Stats(created=self._moment(person.first_day))
        if person.anonymous:
            for _ in range(1 + self._count(0.8)):
                self._browse(person, self._day(0, person.first_day), "web")
            self._customer_rows(person)
            return
        self._consents(person)
        orders = self._plan_orders(person)
        for _ in range(self._count(self._browse_mean(person))):
            platform = "app" if person.has_app and self._chance(0.5) else "web"
            self._browse(person, self._day(person.last_day, person.first_day), platform)
        orders += self._deliveries(person)
        for order in sorted(orders, key=lambda o: o.at):
            self._order(person, order)
        self._other_events(person)
        self._important_dates(person)
        self._life_events(person)
        self._customer_rows(person)

    def _browse_mean(self, person: _Person) -> float:
        years = (person.first_day - person.last_day + 1) / 365
        return self.plan.browse_per_year * years * self.rng.choice((0.3, 0.6, 1.0, 1.4, 2.5))

    # ---- identities and consent --------------------------------------------------------

    def _consents(self, person: _Person) -> None:
        """Consent per reachable channel with its history: a grant, later opt-outs and back."""
        rng = self.rng
        channels = []
        if person.has_email:
            channels += ["email", "ads"]
        if person.has_line:
            channels.append("line")
        if person.has_app:
            channels.append("push")
        if person.has_phone:
            channels += ["sms", "phone", "dm"]
        for channel in channels:
            day = person.first_day
            status = "granted" if self._chance(CONSENT_GRANT_RATE[channel]) else "withdrawn"
            history = [(self._moment(day), status, CONSENT_SOURCES[channel])]
            while self._chance(0.15) and day > 0:
                day = rng.randint(0, day - 1)
                status = "withdrawn" if status == "granted" else "granted"
                source = "unsubscribe_link" if status == "withdrawn" else "preference_centre"
                history.append((self._moment(day), status, source))
            person.consents[channel] = [(at, status) for at, status, _source in history]
            customer_id = person.store_id if channel in ("sms", "phone", "dm") else person.web_id
            consent_id = next(self.ids[Consent])
            last_at, last_status, _ = history[-1]
            self.rows[Consent].append(
                (
                    consent_id,
                    customer_id,
                    channel,
                    last_status,
                    history[0][2],
                    self.fmt.ts(last_at),
                )
            )
            for at, change_status, source in history:
                self.rows[ConsentChange].append(
                    (
                        next(self.ids[ConsentChange]),
                        consent_id,
                        change_status,
                        source,
                        self.fmt.ts(at),
                    )
                )

    @staticmethod
    def _consented(person: _Person, channel: str, at: int) -> bool:
        status = None
        for changed_at, changed_status in person.consents.get(channel, ()):
            if changed_at <= at:
                status = changed_status
        return status == "granted"

    def _identity_rows(self, person: _Person) -> None:
        """Overlapping identifiers; a split person's web and store profiles share none."""
        rng, n = self.rng, person.number
        web, store = person.web_id, person.store_id
        identities: list[tuple[int, str, str, str]] = []
        cookies = 1 if person.anonymous else 1 + self._count(0.5)
        identities += [(web, "cookie", str(self._uuid()), "webshop") for _ in range(cookies)]
        if not person.anonymous:
            if person.has_email:
                email = f"{person.email_local}{n}@{EMAIL_DOMAINS[n % len(EMAIL_DOMAINS)]}"
                identities.append((web, "email", email, "webshop"))
            if person.has_phone:
                mobile = rng.choice(("90", "80", "70"))
                identities.append((store, "phone", f"+81{mobile}{_scramble(n, 8, 7)}", "pos"))
            if person.store:
                identities.append((store, "pos", f"HM{_scramble(n, 10, 3)}", "pos"))
            if person.has_app:
                identities.append((web, "app", f"hm-app-{_scramble(n, 9, 11)}", "app"))
            if person.has_line:
                identities.append((web, "line", f"U{rng.getrandbits(128):032x}", "line"))
            if self._chance(0.15):
                identities.append((web, "dmp", f"dmp-{rng.getrandbits(64):016x}", "dmp"))
        for customer_id, kind, value, source in identities:
            stats = person.stats[customer_id]
            stats.identities += 1
            self.rows[Identity].append(
                (
                    next(self.ids[Identity]),
                    customer_id,
                    kind,
                    value,
                    source,
                    self.fmt.ts(stats.created),
                    self.fmt.ts(stats.last_event or stats.created),
                )
            )

    def _uuid(self) -> uuid.UUID:
        return uuid.UUID(int=self.rng.getrandbits(128), version=4)

    # ---- behaviour ---------------------------------------------------------------------

    def _event(
        self,
        customer_id: int,
        event_type: str,
        touchpoint: str,
        at: int,
        source: str,
        props: dict | None = None,
    ) -> None:
        pk = next(self.event_ids)
        at = min(at, self.now - 1)  # follow-up steps of a session that began just now
        stamp = self.fmt.ts(at)
        self.event_rows.append(
            (
                pk,
                customer_id,
                self.cat.event_types[event_type],
                self.cat.touchpoints[touchpoint],
                stamp,
                source,
                f"ev-{pk:010d}",
                self._json(props),
                stamp,
            )
        )
        stats = self._stats_of(customer_id)
        stats.event_count += 1
        if stats.last_event is None or at > stats.last_event:
            stats.last_event = at

    def _json(self, props: dict | None) -> str:
        """JSON text; property sets that repeat (product views) are encoded once."""
        if not props:
            return "{}"
        key = tuple(props.items())
        text = self.props_cache.get(key)
        if text is None:
            text = json.dumps(props)
            if len(self.props_cache) < 50_000:
                self.props_cache[key] = text
        return text

    def _stats_of(self, customer_id: int) -> _Stats:
        """Figures of a profile of the person being simulated (``_live`` sets ``current``)."""
        return self.current.stats[customer_id]

    def _product(self, person: _Person) -> int:
        """Index of a product: often the person's favourite category, else a bestseller."""
        if self._chance(0.5):
            return self.rng.choice(self.cat.products_by_category[person.favourite_category])
        return self.rng.choices(
            range(len(self.cat.products)), cum_weights=self.cat.product_cum_weights
        )[0]

    def _session_start(self, customer_id: int, platform: str, at: int) -> tuple[str, str, int]:
        """Entry events of an online visit; returns (touchpoint, source, time after them)."""
        if platform == "app":
            device = {"os": "ios" if customer_id % 3 else "android"}
            self._event(customer_id, "app_open", "app", at, "app", device)
            return "app", "app", at + 5
        if self._chance(0.2):
            ads = "ads-search" if self._chance(0.6) else "ads-social"
            self._event(customer_id, "ad_click", ads, at, "ads", {"medium": ads[4:]})
            at += 2
        for _ in range(1 + self._count(0.8)):
            path = PAGE_PATHS[int(self.rng.random() * len(PAGE_PATHS))]
            self._event(customer_id, "page_view", "web-shop", at, "webshop", {"path": path})
            at += 15 + int(self.rng.random() * 60)
        return "web-shop", "webshop", at

    def _browse(self, person: _Person, day: int, platform: str) -> None:
        """A visit without an order: browse abandonment, or a cart left behind."""
        customer_id = person.web_id
        at = self._moment(day)
        touchpoint, source, at = self._session_start(customer_id, platform, at)
        if self._chance(0.3):
            query = SEARCH_QUERIES[int(self.rng.random() * len(SEARCH_QUERIES))]
            self._event(customer_id, "search", touchpoint, at, source, {"query": query})
            at += 20
        for _ in range(1 + self._count(1.0)):
            product = self._product(person)
            product_id, sku, price, _category = self.cat.products[product]
            view = {"sku": sku, "price": price}
            self._event(customer_id, "product_view", touchpoint, at, source, view)
            at += 30 + int(self.rng.random() * 120)
        if not person.anonymous and self._chance(0.08) and product not in person.favourites:
            person.favourites.add(product)
            self._event(customer_id, "favorite_added", touchpoint, at, source, {"sku": sku})
            self.rows[Favorite].append(
                (next(self.ids[Favorite]), customer_id, product_id, self.fmt.ts(at))
            )
        if self._chance(0.3):
            cart = {"sku": sku, "price": price, "quantity": 1}
            self._event(customer_id, "add_to_cart", touchpoint, at + 10, source, cart)
            if self._chance(0.25):
                props = {"cart_value": price}
                self._event(customer_id, "checkout_started", touchpoint, at + 60, source, props)
            person.abandoned_carts.append((at, product))

    def _plan_orders(self, person: _Person) -> list[_Order]:
        """First purchase for most, a second for about 30% of buyers, many for the loyal."""
        if not self._chance(0.8):
            return []
        first = self.rng.randint(max(person.last_day, person.first_day - 30), person.first_day)
        days = [first]
        if self._chance(0.33) and first > person.last_day:
            days += [self._day(person.last_day, first - 1) for _ in range(1 + self._count(4.0))]
        return [self._order_on(person, day) for day in days]

    def _order_on(self, person: _Person, day: int) -> _Order:
        """An order on that day through the person's usual mix of channels."""
        if person.corporate and self._chance(0.5):
            return _Order(person.web_id, self._moment(day), "call", "call-centre")
        roll = self.rng.random()
        web, app, _store = person.channel_cum
        channel = "web" if roll < web else "app" if roll < app else "store"
        if channel == "store":
            return _Order(person.store_id, self._moment(day, store=True), "store", person.store)
        touchpoint = "web-shop" if channel == "web" else "app"
        return _Order(person.web_id, self._moment(day), channel, touchpoint)

    def _order(self, person: _Person, order: _Order) -> None:
        """The order, its lines, the events around it, a review and an NPS answer."""
        rng, fmt = self.rng, self.fmt
        customer_id, at = order.customer_id, order.at
        order_id = next(self.ids[Order])
        lines = []
        for _ in range(rng.choices((1, 2, 3, 4), cum_weights=(60, 85, 95, 100))[0]):
            product = self._product(person)
            quantity = rng.choices((1, 2, 3), cum_weights=(85, 97, 100))[0]
            price = self.cat.products[product][2]
            if order.campaign_id or self._chance(0.08):
                price = int(round(price * 0.9, -1))
            lines.append((product, quantity, price))
        total = sum(quantity * price for _product, quantity, price in lines)
        status = rng.choices(("completed", "cancelled", "returned"), cum_weights=(95, 98, 100))[0]
        prefix, source = ORDER_CHANNELS[order.channel]
        number = f"{prefix}-{order_id:09d}"
        self.rows[Order].append(
            (
                order_id,
                customer_id,
                number,
                fmt.ts(at),
                self.cat.touchpoints[order.touchpoint],
                status,
                total,
                source,
            )
        )
        for product, quantity, price in lines:
            self.rows[OrderLine].append(
                (
                    next(self.ids[OrderLine]),
                    order_id,
                    self.cat.products[product][0],
                    quantity,
                    price,
                )
            )
        self._order_events(order, lines, number, total)
        if status != "completed":
            return
        stats = self._stats_of(customer_id)
        stats.order_count += 1
        stats.revenue += total
        if at > self.now - 365 * DAY:
            stats.revenue_last_year += total
        stats.first_order = min(stats.first_order or at, at)
        stats.last_order = max(stats.last_order or at, at)
        if order.channel != "store" and self._chance(0.06):
            sku = self.cat.products[lines[0][0]][1]
            review_at = at + rng.randint(3, 10) * DAY
            if review_at < self.now:
                props = {"sku": sku, "rating": rng.choice((3, 4, 4, 5, 5, 5))}
                self._event(customer_id, "review_posted", "web-shop", review_at, "webshop", props)
        if self._chance(0.1 if order.channel == "store" else 0.22):
            self._nps_answer(person, customer_id, order.touchpoint, at)

    def _order_events(
        self, order: _Order, lines: list[tuple[int, int, int]], number: str, total: int
    ) -> None:
        """Store orders are a scan and a sale; online ones a full funnel ending in purchase."""
        customer_id, at = order.customer_id, order.at
        purchase = {"order_number": number, "total": total}
        if order.campaign_id:
            purchase["campaign_id"] = order.campaign_id
        if order.channel == "store":
            store = {"store": order.touchpoint}
            self._event(customer_id, "store_visit", order.touchpoint, at - 600, "pos", store)
            self._event(customer_id, "purchase", order.touchpoint, at, "pos", purchase)
            return
        if order.channel == "call":
            props = {"reason": CALL_REASONS[4]}
            self._event(customer_id, "call", "call-centre", at - 300, "callcenter", props)
            self._event(customer_id, "purchase", "call-centre", at, "callcenter", purchase)
            return
        start = at - 120 * (len(lines) + 3)
        touchpoint, source, step_at = self._session_start(customer_id, order.channel, start)
        for product, quantity, price in lines:
            sku = self.cat.products[product][1]
            view = {"sku": sku, "price": price}
            self._event(customer_id, "product_view", touchpoint, step_at, source, view)
            cart = {"sku": sku, "price": price, "quantity": quantity}
            self._event(customer_id, "add_to_cart", touchpoint, step_at + 40, source, cart)
            step_at += 90
        checkout = {"cart_value": total}
        self._event(customer_id, "checkout_started", touchpoint, at - 60, source, checkout)
        self._event(customer_id, "purchase", touchpoint, at, source, purchase)

    def _nps_answer(self, person: _Person, customer_id: int, touchpoint: str, at: int) -> None:
        """Post-purchase NPS: ≈40% promoters, ≈25% detractors, so NPS lands near +15."""
        rng = self.rng
        answered = at + rng.randint(1, 5) * DAY + rng.randint(0, 20_000)
        if answered >= self.now:
            return
        bucket = rng.choices(("promoter", "passive", "detractor"), cum_weights=(41, 75, 100))[0]
        score = rng.choice(NPS_SCORES[bucket])
        comment = rng.choice(NPS_COMMENTS[person.language, bucket]) if self._chance(0.45) else ""
        self.rows[SurveyResponse].append(
            (
                next(self.ids[SurveyResponse]),
                self.cat.survey_id,
                customer_id,
                self.cat.touchpoints[touchpoint],
                score,
                comment,
                self.fmt.ts(answered),
            )
        )
        stats = self._stats_of(customer_id)
        if answered >= stats.last_nps_at:
            stats.last_nps, stats.last_nps_at = score, answered

    def _deliveries(self, person: _Person) -> list[_Order]:
        """Campaign sends with opens, clicks and conversions; returns the converted orders."""
        orders = []
        for plan in self.cat.campaigns:
            for occurrence, send_day in self._audience(person, plan):
                orders += self._deliver(person, plan, occurrence, send_day)
        return orders

    def _audience(self, person: _Person, plan: _CampaignPlan) -> list[tuple[str, int]]:
        """Whether (and when) a campaign reached this person, as (occurrence, send day)."""
        if plan.code == "cart":
            carts = [
                at
                for at, _product in person.abandoned_carts
                if self.now - plan.start_day * DAY <= at < self.now - DAY
            ]
            if not carts:
                return []
            latest = max(carts)
            return [(self._jst_date(latest).isoformat(), (self.now - latest) // DAY - 1)]
        if plan.code == "birthday":
            if person.birth_date is None:
                return []
            birthday = _birthday_in(person.birth_date, self.today.year)
            if (birthday - self.today).days > 7:
                birthday = _birthday_in(person.birth_date, self.today.year - 1)
            day = (self.today - birthday).days + 7
            return [(str(birthday.year), day)] if plan.end_day <= day <= plan.start_day else []
        reach = {"seasonal": 0.5, "line_coupon": 0.8}[plan.code]
        day = self.rng.randint(plan.end_day, plan.start_day)
        return [("once", day)] if self._chance(reach) else []

    def _jst_date(self, at: int) -> dt.date:
        return dt.datetime.fromtimestamp(at, tz=JST).date()

    def _deliver(
        self, person: _Person, plan: _CampaignPlan, occurrence: str, send_day: int
    ) -> list[_Order]:
        rng = self.rng
        if not (person.last_day <= send_day <= person.first_day):
            return []
        consent = "line" if plan.channel == "line" else "email"
        sent = self.day_start[send_day] + 10 * 3600 + rng.randint(0, 1800)
        if sent >= self.now or not self._consented(person, consent, sent):
            return []
        customer_id = person.web_id
        holdout = self._chance(plan.holdout_percent / 100)
        for step_id, wait_days in plan.steps:
            at = sent + wait_days * DAY
            if at >= self.now:
                break
            status = "holdout" if holdout else self._delivery_outcome(plan.channel)
            order_at = at + rng.randint(600, 36 * 3600)
            if status == "converted" and order_at >= self.now:
                status = "clicked"  # the order it leads to has not happened yet
            self.rows[Delivery].append(
                (
                    next(self.ids[Delivery]),
                    plan.pk,
                    step_id,
                    customer_id,
                    occurrence,
                    status,
                    self.fmt.ts(at - 300),
                    None if holdout else self.fmt.ts(at),
                    "550 mailbox unavailable" if status == "failed" else "",
                )
            )
            if status in ("opened", "clicked", "converted"):
                self._message_events(person, plan, at, status)
            if status == "converted":
                app = person.has_app and self._chance(0.5)
                channel, touchpoint = ("app", "app") if app else ("web", "web-shop")
                return [_Order(person.web_id, order_at, channel, touchpoint, plan.pk)]
        return []

    def _delivery_outcome(self, channel: str) -> str:
        """How far one message got; LINE has no open tracking, email can bounce."""
        statuses, cum_weights = DELIVERY_OUTCOMES[channel]
        return self.rng.choices(statuses, cum_weights=cum_weights)[0]

    def _message_events(self, person: _Person, plan: _CampaignPlan, at: int, status: str) -> None:
        customer_id, props = person.web_id, {"campaign_id": plan.pk}
        opened = at + self.rng.randint(60, 6 * 3600)
        if plan.channel == "line":
            self._event(customer_id, "line_clicked", "line-official", opened, "line", props)
            return
        self._event(customer_id, "email_opened", "email-newsletter", opened, "esp", props)
        if status != "opened":
            click = {**props, "url": f"/campaign/{plan.code}"}
            self._event(customer_id, "email_clicked", "email-newsletter", opened + 30, "esp", click)

    def _other_events(self, person: _Person) -> None:
        """App pushes, store visits without a sale, calls, meetings, referrals, workshops."""
        rng = self.rng
        newest, oldest = person.last_day, person.first_day
        years = (oldest - newest + 1) / 365
        if person.has_app:
            for _ in range(self._count(3 * years)):
                topic = rng.choice(("order_status", "back_in_stock", "care_tip"))
                at = self._moment(self._day(newest, oldest))
                self._event(person.web_id, "push_opened", "app-push", at, "app", {"topic": topic})
        if person.store:
            for _ in range(self._count(1.2 * years)):
                at = self._moment(self._day(newest, oldest), store=True)
                props = {"store": person.store}
                self._event(person.store_id, "store_visit", person.store, at, "pos", props)
        if self._chance(0.06):
            reason = rng.choice(CALL_REASONS[:4])
            at = self._moment(self._day(newest, oldest), store=True)
            self._event(
                person.store_id, "call", "call-centre", at, "callcenter", {"reason": reason}
            )
        if person.corporate:
            for _ in range(1 + self._count(2)):
                at = self._moment(self._day(newest, oldest), store=True)
                props = {"purpose": "開店祝い・周年祝いのご提案 (opening-gift proposal)"}
                self._event(person.web_id, "meeting", "sales-visit", at, "sfa", props)
        if self._chance(0.03):
            at = self._moment(self._day(newest, oldest))
            code = {"code": f"REF{person.number:07d}"}
            self._event(person.web_id, "referral", "web-shop", at, "webshop", code)
        if person.store and self._chance(0.04):
            at = self._moment(self._day(newest, oldest), store=True)
            props = {"event": "季節のアレンジ教室 (seasonal arrangement class)"}
            self._event(person.store_id, "event_attended", "flower-workshop", at, "event", props)
            self.rows[SegmentMembership].append(
                (
                    next(self.ids[SegmentMembership]),
                    self.cat.workshop_segment_id,
                    person.store_id,
                    self.fmt.ts(at + DAY) if at + DAY < self.now else self.fmt.ts(at),
                )
            )

    # ---- the profile itself ------------------------------------------------------------

    def _important_dates(self, person: _Person) -> None:
        """Own birthday for most; spouse's birthday and anniversary for married people."""
        rng = self.rng
        dates: list[tuple[str, str, int, int, int | None]] = []
        if person.birth_date and self._chance(0.8):
            b = person.birth_date
            dates.append(("birthday", "", b.month, b.day, b.year))
        age = (self.today - person.birth_date).days // 365 if person.birth_date else 40
        if age > 27 and self._chance(0.5):
            label = "夫" if person.gender == "f" else "妻"
            if person.language == "en":
                label = "husband" if person.gender == "f" else "wife"
            dates.append(("spouse_birthday", label, rng.randint(1, 12), rng.randint(1, 28), None))
            wedding = self.today.year - rng.randint(1, max(1, age - 24))
            dates.append(("anniversary", "", rng.randint(1, 12), rng.randint(1, 28), wedding))
            if self._chance(0.35):
                child = self.today.year - rng.randint(0, 15)
                dates.append(("child_birthday", "", rng.randint(1, 12), rng.randint(1, 28), child))
        for kind, label, month, day, year in dates:
            self.rows[ImportantDate].append(
                (
                    next(self.ids[ImportantDate]),
                    person.web_id,
                    kind,
                    label,
                    month,
                    day,
                    year,
                    self._chance(0.35),
                )
            )

    def _life_events(self, person: _Person) -> None:
        """Detected situations: by rules on behaviour, from the DMP, or entered by staff."""
        if not self._chance(0.14):
            return
        rng = self.rng
        kind, source, confidence, detail = rng.choice(
            [
                ("marriage", "rule:wedding_gift_purchase", 0.7, {"signal": "wedding bouquet"}),
                ("moving", "rule:address_change", 0.95, {"from": "東京都", "to": "神奈川県"}),
                ("job_change", "dmp:hanamori-dmp", 0.6, {"segment": "career_change"}),
                ("childbirth", "staff:store", 1.0, {"note": "出産祝いの相談 (baby gift)"}),
                ("competitor_interest", "dmp:hanamori-dmp", 0.75, {}),
            ]
        )
        if kind == "competitor_interest":
            detail = {"competitor": rng.choice(COMPETITORS)}
            confidence = round(rng.uniform(0.55, 0.9), 2)
        at = self._moment(self._day(person.last_day, person.first_day))
        self.rows[LifeEvent].append(
            (
                next(self.ids[LifeEvent]),
                person.web_id,
                kind,
                self.fmt.ts(at),
                source,
                confidence,
                json.dumps(detail),
            )
        )

    def _customer_rows(self, person: _Person) -> None:
        """Profile, identities and metrics of each of the person's profiles."""
        self._identity_rows(person)
        fmt = self.fmt
        for customer_id, stats in person.stats.items():
            self.rows[Customer].append(
                (
                    customer_id,
                    fmt.uuid(self._uuid()),
                    person.family_name,
                    person.given_name,
                    person.family_kana,
                    person.given_kana,
                    fmt.date(person.birth_date),
                    person.gender,
                    person.postal_code,
                    PREFECTURES[person.prefecture][0] if not person.anonymous else "",
                    person.city,
                    person.language,
                    self._lifecycle(stats),
                    person.anonymous,
                    json.dumps(self._attributes(person, stats)),
                    fmt.ts(stats.created),
                    fmt.ts(max(stats.created, stats.last_event or 0)),
                )
            )
            self.rows[CustomerMetrics].append(
                (
                    customer_id,
                    stats.identities,
                    stats.order_count,
                    stats.revenue,
                    fmt.ts(stats.first_order),
                    fmt.ts(stats.last_order),
                    stats.event_count,
                    fmt.ts(stats.last_event),
                    stats.last_nps,
                    fmt.ts(self.now),
                )
            )

    def _lifecycle(self, stats: _Stats) -> str:
        """Stage from completed orders, so segments on stage and on orders agree."""
        if not stats.order_count:
            return LifecycleStage.PROSPECT
        idle_days = (self.now - stats.last_order) // DAY
        if idle_days > 365:
            return LifecycleStage.CHURNED
        if idle_days > 180:
            return LifecycleStage.DORMANT
        if stats.order_count == 1:
            return LifecycleStage.FIRST_PURCHASE
        return LifecycleStage.REPEAT if stats.order_count < 5 else LifecycleStage.LOYAL

    def _attributes(self, person: _Person, stats: _Stats) -> dict:
        if person.anonymous:
            return {}
        spent = stats.revenue_last_year
        rank = (
            "platinum"
            if spent >= 80_000
            else "gold"
            if spent >= 30_000
            else "silver"
            if spent >= 10_000
            else "regular"
        )
        attributes = {"member_rank": rank}
        if person.store:
            attributes["preferred_store"] = person.store
        if person.corporate:
            attributes["corporate_account"] = True
            attributes["gift_purpose"] = "business"
        elif person.number % 3:
            attributes["gift_purpose"] = ("self", "family", "partner", "friends")[person.number % 4]
        return attributes


def _scramble(n: int, digits: int, salt: int) -> str:
    """A unique, random-looking number for ``n``: an affine bijection modulo 10**digits."""
    space = 10**digits
    return f"{(n * 7_919_453 + salt * 104_729) % space:0{digits}d}"


def _birthday_in(birth_date: dt.date, year: int) -> dt.date:
    """The birthday in ``year``; late-month days move to the 28th so every year has them."""
    return dt.date(year, birth_date.month, min(birth_date.day, 28))


def _postal_code(rng: random.Random, prefix: str) -> str:
    """A Japanese postal code (〒123-4567) starting with the prefecture's digits."""
    free = 3 - len(prefix)
    return f"{prefix}{rng.randrange(10**free):0{free}d}-{rng.randrange(10_000):04d}"
