"""The company simulator: people invented one at a time, each given a name, a home,
identifiers on the channels they use, consents that change, browsing, carts, orders online,
in the app or in a store, campaign messages and NPS answers, all drawn from one
``random.Random`` in a fixed order so that the same seed and ``now`` give the same rows; the
rows go to a ``BulkWriter`` a chunk of people at a time (every row of a person in the same
chunk), so memory stays bounded at any size.
"""

from __future__ import annotations

import datetime as dt
import itertools
import json
import random
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field

from django.db import transaction
from django.db.models import Model

from config.demo.bulk import COLUMNS, BulkWriter, db_format
from config.demo.data import (
    CALL_REASONS,
    COMPETITORS,
    CONSENT_GRANT_RATE,
    CONSENT_SOURCES,
    DELIVERY_OUTCOMES,
    EMAIL_DOMAINS,
    ENGLISH_FAMILY,
    ENGLISH_GIVEN,
    FAMILY_NAMES,
    GIFT_CATEGORIES,
    GIVEN_NAMES,
    HOLDOUT_CONVERSION,
    LIFE_EVENTS,
    MONTH_DEMAND,
    NPS_COMMENTS,
    NPS_SCORES,
    ONLINE_HOURS,
    ORDER_CHANNELS,
    PAGE_PATHS,
    PREFECTURES,
    PUSH_TOPICS,
    SEARCH_QUERIES,
    STORE_HOURS,
    VALUE_MOMENTS,
)
from customers.models import (
    Consent,
    ConsentChange,
    Customer,
    Identity,
    ImportantDate,
    LifecycleStage,
    LifeEvent,
    SegmentMembership,
)
from experience.models import Event, Favorite, Order, OrderLine, SurveyResponse
from journeys.engine import bucket_of, variant_for_bucket
from journeys.models import Delivery, Enrollment

CUSTOMERS_PER_CHUNK = 2_000
# Positions in a Delivery row (``bulk.COLUMNS[Delivery]``), filled in as the story unfolds.
(
    D_STATUS,
    D_REASON,
    D_ATTEMPTS,
    D_SENT,
    D_DELIVERED,
    D_OPENED,
    D_CLICKED,
    D_CONVERTED,
    D_ORDER,
    D_REVENUE,
    D_ERROR,
) = (7, 8, 12, 14, 15, 16, 17, 18, 19, 20, 21)
HISTORY_DAYS = 730
JST = dt.timezone(dt.timedelta(hours=9))
DAY = 86_400
PREFECTURE_CUM = list(itertools.accumulate(p[2] for p in PREFECTURES))


@dataclass(frozen=True)
class DemoSize:
    """How big the company is; ``browse_per_year`` tunes events per customer and
    ``repeat_buyers`` (the share of first-time buyers who come back) orders per customer."""

    customers: int
    browse_per_year: float
    repeat_buyers: float = 0.33


@dataclass
class CampaignPlan:
    """A campaign whose enrolments and deliveries the people simulation creates.

    One-offs ran once, at 10:00 JST on ``start_day``; the cart reminder enrols each
    abandoned cart between ``start_day`` and ``end_day``. Holdout and variants follow the
    engine's own rule (``bucket_of``), so the history looks exactly like a real run.
    """

    pk: int
    code: str
    channel: str
    steps: list[tuple[int, int, list[tuple[int, int]]]]  # (step id, delay min, [(variant, weight)])
    start_day: int  # day offsets back from today (bigger is older)
    end_day: int
    holdout_percent: int
    conversion_days: int


@dataclass
class Catalogue:
    """Ids of the reference rows that people's rows point at."""

    event_types: dict[str, int]
    touchpoints: dict[str, int]
    touchpoint_value_bits: dict[str, int]  # code → ``Event.value_bits`` of its values
    products: list[tuple[int, str, int, str]]  # id, sku, price, category prefix
    product_cum_weights: list[float]
    products_by_category: dict[str, list[int]]  # prefix → indexes into ``products``
    survey_id: int
    campaigns: list[CampaignPlan]
    workshop_segment_id: int
    users: dict[str, Model]


@dataclass
class _Stats:
    """Running figures of one profile while its life story is generated."""

    created: int
    revenue_last_year: int = 0
    last_event: int | None = None


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
    line_id: str = ""
    corporate: bool = False
    favourite_category: str = "BQ"
    consents: dict[str, list[tuple[int, str]]] = field(default_factory=dict)
    abandoned_carts: list[tuple[int, int, int]] = field(default_factory=list)  # at, product, event
    favourites: set[int] = field(default_factory=set)
    stats: dict[int, _Stats] = field(default_factory=dict)

    @property
    def split(self) -> bool:
        return self.web_id != self.store_id


@dataclass
class _Order:
    """An order a person is going to place; ``_order`` writes it with its lines and events."""

    customer_id: int
    at: int
    channel: str  # web, app, store, call
    touchpoint: str
    campaign_id: int | None = None  # set when a campaign message led to it (10% off)
    delivery: list | None = None  # the delivery row credited with this order, if any


class CompanySimulator:
    """Invents people one at a time and writes their rows chunk by chunk.

    Orders, browsing, campaign deliveries, answers and metrics of a person are derived from
    the same life story, so lifecycle stages, metrics and NPS agree with the raw tables.
    """

    def __init__(
        self,
        *,
        rng: random.Random,
        catalogue: Catalogue,
        plan: DemoSize,
        writer: BulkWriter,
        now: dt.datetime,
    ):
        self.rng = rng
        self.cat = catalogue
        self.plan = plan
        self.writer = writer
        self.fmt = db_format()
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
        self.ids = {model: writer.ids(model) for model in COLUMNS}
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

    def _add(self, model: type[Model], *values) -> int:
        """Queue a row of ``model`` under the next id of its table; returns that id."""
        pk = next(self.ids[model])
        self.rows[model].append((pk, *values))
        return pk

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
            last_at, last_status, _ = history[-1]
            consent_id = self._add(
                Consent, customer_id, channel, last_status, history[0][2], self.fmt.ts(last_at)
            )
            for at, change_status, source in history:
                self._add(ConsentChange, consent_id, change_status, source, self.fmt.ts(at))

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
                identities.append((web, "line", self._line_id(person), "line"))
            if self._chance(0.15):
                identities.append((web, "dmp", f"dmp-{rng.getrandbits(64):016x}", "dmp"))
        for customer_id, kind, value, source in identities:
            stats = person.stats[customer_id]
            self._add(
                Identity,
                customer_id,
                kind,
                value,
                source,
                self.fmt.ts(stats.created),
                self.fmt.ts(stats.last_event or stats.created),
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
    ) -> int:
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
                self.cat.touchpoint_value_bits[touchpoint] if event_type in VALUE_MOMENTS else 0,
            )
        )
        stats = self._stats_of(customer_id)
        if stats.last_event is None or at > stats.last_event:
            stats.last_event = at
        return pk

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
            self._add(Favorite, customer_id, product_id, self.fmt.ts(at))
        if self._chance(0.3):
            cart = {"sku": sku, "price": price, "quantity": 1}
            event = self._event(customer_id, "add_to_cart", touchpoint, at + 10, source, cart)
            if self._chance(0.25):
                props = {"cart_value": price}
                self._event(customer_id, "checkout_started", touchpoint, at + 60, source, props)
            person.abandoned_carts.append((at + 10, product, event))

    def _plan_orders(self, person: _Person) -> list[_Order]:
        """First purchase for most, a second for about 30% of buyers, many for the loyal."""
        if not self._chance(0.8):
            return []
        first = self.rng.randint(max(person.last_day, person.first_day - 30), person.first_day)
        days = [first]
        if self._chance(self.plan.repeat_buyers) and first > person.last_day:
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
            self._add(OrderLine, order_id, self.cat.products[product][0], quantity, price)
        self._order_events(order, lines, number, total)
        if order.delivery is not None:
            self._credit(person, order.delivery, status, at, order_id, total)
        if status != "completed":
            return
        if at > self.now - 365 * DAY:
            self._stats_of(customer_id).revenue_last_year += total
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
        self._add(
            SurveyResponse,
            self.cat.survey_id,
            customer_id,
            self.cat.touchpoints[touchpoint],
            score,
            comment,
            self.fmt.ts(answered),
        )

    def _deliveries(self, person: _Person) -> list[_Order]:
        """Enrolments and deliveries of the campaigns with a history; returns the orders
        they lead to (treatment conversions, and the holdout group's own purchases)."""
        orders = []
        for plan in self.cat.campaigns:
            for occurrence, entered, received in self._audience(person, plan):
                orders += self._enroll(person, plan, occurrence, entered, received)
        return orders

    def _audience(self, person: _Person, plan: CampaignPlan) -> list[tuple[str, int, int | None]]:
        """Who entered a campaign and when: (occurrence, entered at, trigger received at)."""
        if plan.code == "cart":
            newest, oldest = (
                self.now - plan.end_day * DAY - 2 * 3600,
                self.now - plan.start_day * DAY,
            )
            entries, last = [], None
            for at, _product, event in sorted(person.abandoned_carts):
                # Entry condition: email consent when the cart was left.
                if not self._consented(person, "email", at):
                    continue
                if oldest <= at < newest and (last is None or at - last > DAY):
                    entries.append((f"e{event}", at, at))
                    last = at
            return entries
        reach = {"seasonal": 0.5, "line_coupon": 0.8}.get(plan.code, 0.0)
        has_address = person.has_line if plan.channel == "line" else person.has_email
        day = plan.start_day
        if not has_address or not person.last_day <= day <= person.first_day:
            return []
        slot = self.day_start[day] + 10 * 3600
        # Segments select on consent; a few withdrew since (suppressed at send time).
        consented = self._consented(person, plan.channel, slot)
        if not self._chance(reach if consented else reach * 0.1):
            return []
        occurrence = "r" + dt.datetime.fromtimestamp(slot, tz=dt.UTC).strftime("%Y%m%d%H%M")
        return [(occurrence, slot, None)]

    def _line_id(self, person: _Person) -> str:
        if not person.line_id:
            person.line_id = f"U{self.rng.getrandbits(128):032x}"
        return person.line_id

    def _address(self, person: _Person, channel: str) -> str:
        if channel == "line":
            return self._line_id(person)
        n = person.number
        return f"{person.email_local}{n}@{EMAIL_DOMAINS[n % len(EMAIL_DOMAINS)]}"

    def _after_quiet_hours(self, at: int) -> int:
        """The engine's deferral: nothing goes out between 21:00 and 09:00 JST."""
        local = dt.datetime.fromtimestamp(at, tz=JST)
        if 9 <= local.hour < 21:
            return at
        morning = local.replace(hour=9, minute=0, second=0, microsecond=0)
        if local.hour >= 21:
            morning += dt.timedelta(days=1)
        return int(morning.timestamp()) + self.rng.randint(0, 600)

    def _enroll(
        self, person: _Person, plan: CampaignPlan, occurrence: str, entered: int, received
    ) -> list[_Order]:
        """One enrolment walked through its steps, as the engine and feedback record it."""
        rng, fmt = self.rng, self.fmt
        customer_id = person.web_id
        bucket = bucket_of(plan.pk, customer_id)
        holdout = bucket < plan.holdout_percent
        address = self._address(person, plan.channel)
        enrollment_id = next(self.ids[Enrollment])
        orders: list[_Order] = []
        last_due, waiting = entered, None
        for position, (step_id, delay_minutes, variants) in enumerate(plan.steps, start=1):
            due = entered + delay_minutes * 60
            if plan.code == "cart" and not holdout:
                due = self._after_quiet_hours(due)
            if due >= self.now - 600:
                waiting = (position, due)  # the engine sends it once the demo runs
                break
            last_due = due
            variant = variant_for_bucket(variants, bucket, plan.holdout_percent)
            row = [
                next(self.ids[Delivery]),
                plan.pk,
                step_id,
                customer_id,
                occurrence,
                enrollment_id,
                variant,
                "holdout",
                "",
                address,
                fmt.ts(due),
                "",
                0,
                fmt.ts(due),
                None,
                None,
                None,
                None,
                None,
                None,
                None,
                "",
            ]
            self.rows[Delivery].append(row)
            window = plan.conversion_days * DAY
            if holdout:
                if self._chance(HOLDOUT_CONVERSION[plan.channel]):
                    order_at = due + rng.randint(3600, window - 3600)
                    if order_at < self.now:
                        orders.append(self._campaign_order(person, order_at, None, row))
                continue
            if not self._consented(person, plan.channel, due):
                row[D_STATUS], row[D_REASON] = "suppressed", "no_consent"
                continue
            sent = due + rng.randint(1, 40 if received else 120)
            outcome = self._delivery_outcome(plan.channel)
            row[D_ATTEMPTS], row[D_SENT] = 1, fmt.ts(sent)
            if outcome == "failed":
                row[D_STATUS], row[D_ERROR] = "failed", "550 5.1.1 mailbox unavailable"
                continue
            row[D_STATUS], row[D_DELIVERED] = "sent", fmt.ts(sent + rng.randint(1, 20))
            props = {"campaign_id": plan.pk, "step_id": step_id, "delivery_id": row[0]}
            touchpoint = "line-official" if plan.channel == "line" else "email-newsletter"
            self._event(customer_id, "message_sent", touchpoint, sent, "journeys", props)
            if outcome == "sent":
                continue
            opened = sent + rng.randint(60, 6 * 3600)
            if opened >= self.now:
                continue
            if plan.channel != "line":
                row[D_STATUS], row[D_OPENED] = "opened", fmt.ts(opened)
                self._event(customer_id, "message_opened", touchpoint, opened, "journeys", props)
                if outcome == "opened":
                    continue
            clicked = opened + rng.randint(5, 120)
            row[D_STATUS], row[D_CLICKED] = "clicked", fmt.ts(clicked)
            if row[D_OPENED] is None:
                row[D_OPENED] = fmt.ts(clicked)
            click = {**props, "url": f"/campaign/{plan.code}"}
            self._event(customer_id, "message_clicked", touchpoint, clicked, "journeys", click)
            if outcome == "converted":
                order_at = clicked + rng.randint(300, 36 * 3600)
                if order_at < self.now:
                    orders.append(self._campaign_order(person, order_at, plan.pk, row))
                    break  # the cart reminder (and every step after) has done its work
        status = "active" if waiting else "completed"
        self._add_row(
            Enrollment,
            enrollment_id,
            plan.pk,
            customer_id,
            occurrence,
            fmt.ts(entered),
            None if received is None else fmt.ts(received),
            "{}",
            holdout,
            bucket,
            status,
            waiting[0] if waiting else None,
            fmt.ts(waiting[1]) if waiting else None,
            "",
            fmt.ts(last_due),
        )
        return orders

    def _add_row(self, model: type[Model], *values) -> None:
        """Queue a row whose id was taken already (a child row needed it first)."""
        self.rows[model].append(values)

    def _campaign_order(self, person: _Person, at: int, campaign_id, row: list) -> _Order:
        app = person.has_app and self._chance(0.5)
        channel, touchpoint = ("app", "app") if app else ("web", "web-shop")
        return _Order(person.web_id, at, channel, touchpoint, campaign_id, row)

    def _credit(
        self, person: _Person, row: list, status: str, at: int, order_id: int, total: int
    ) -> None:
        """Last-touch attribution of a completed order to the delivery before it."""
        if status != "completed":
            return
        row[D_CONVERTED], row[D_ORDER], row[D_REVENUE] = self.fmt.ts(at), order_id, total
        if row[D_STATUS] == "holdout":
            return
        row[D_STATUS] = "converted"
        props = {
            "campaign_id": row[1],
            "step_id": row[2],
            "delivery_id": row[0],
            "order": f"order-{order_id}",
            "revenue": total,
        }
        self._event(person.web_id, "message_converted", "web-shop", at, "journeys", props)

    def _delivery_outcome(self, channel: str) -> str:
        """How far one message got; LINE has no open tracking, email can bounce."""
        statuses, cum_weights = DELIVERY_OUTCOMES[channel]
        return self.rng.choices(statuses, cum_weights=cum_weights)[0]

    def _other_events(self, person: _Person) -> None:
        """App pushes, store visits without a sale, calls, meetings, referrals, workshops."""
        rng = self.rng
        newest, oldest = person.last_day, person.first_day
        years = (oldest - newest + 1) / 365
        if person.has_app:
            for _ in range(self._count(3 * years)):
                topic = rng.choice(PUSH_TOPICS)
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
            added = at + DAY if at + DAY < self.now else at
            self._add(
                SegmentMembership, self.cat.workshop_segment_id, person.store_id, self.fmt.ts(added)
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
            self_declared = self._chance(0.35)
            self._add(ImportantDate, person.web_id, kind, label, month, day, year, self_declared)

    def _life_events(self, person: _Person) -> None:
        """Detected situations: by rules on behaviour, from the DMP, or entered by staff."""
        if not self._chance(0.14):
            return
        rng = self.rng
        kind, source, confidence, detail = rng.choice(LIFE_EVENTS)
        if kind == "competitor_interest":
            detail = {"competitor": rng.choice(COMPETITORS)}
            confidence = round(rng.uniform(0.55, 0.9), 2)
        at = self._moment(self._day(person.last_day, person.first_day))
        self._add(
            LifeEvent, person.web_id, kind, self.fmt.ts(at), source, confidence, json.dumps(detail)
        )

    def _customer_rows(self, person: _Person) -> None:
        """Profile and identities of each of the person's profiles (metrics come later)."""
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
                    LifecycleStage.PROSPECT,  # derived by metrics_rebuild afterwards
                    person.anonymous,
                    json.dumps(self._attributes(person, stats)),
                    fmt.ts(stats.created),
                    fmt.ts(max(stats.created, stats.last_event or 0)),
                    "",  # time zone: the company's
                )
            )

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


def _postal_code(rng: random.Random, prefix: str) -> str:
    """A Japanese postal code (〒123-4567) starting with the prefecture's digits."""
    free = 3 - len(prefix)
    return f"{prefix}{rng.randrange(10**free):0{free}d}-{rng.randrange(10_000):04d}"
