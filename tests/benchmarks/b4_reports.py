"""B4 (reports): server time of every report page, htmx body, partial and API answer, and
how far the report rollups lag behind ingestion.

**Pages.** Every report of the catalogue (``reports.catalog.report_specs``: overview,
CX value, NPS, customers/RFM, value/cohorts/F2, lift, CLV, circulation) as a full page,
as its htmx body, as its JSON API answer, its body for 365 days against the year before
(``?period=365&compare=year``) and, where the report takes a segment, its body for the
largest segment; plus the four-circle home page (shell and ``?inline=1``), each circle's
figures partial, circle ④'s index, the catalogue API, the subscriptions page and the
customers of one RFM cell. Each is requested through Django's test client, logged in as
the demo's CRM manager (``view_pii``, the owning department: most data visible).

The reference of each page is its own SQL plus Django's floor: the page's statements are
captured once (``CaptureQueriesContext``) and re-executed with a raw cursor, followed by a
trivial view (:func:`floor_view`, an empty ``HttpResponse``) requested through the same
client, middleware stack and session. This module adds that view only inside its process
(``override_settings(ROOT_URLCONF=…)`` with :data:`urlpatterns` = the product's URLs plus
the floor). ABAB: page, replay+floor, page, replay+floor …

Targets (issue 8): p95 ≤ 150 ms each; ours ≤ 1.5 × (SQL + floor) + 5 ms.

**Read models.** Before the pages, one run of what the 15-minute schedule does
(``reports.customer_rollups.customer_rollups_refresh``, plus the CLV summary of the current
fit when missing), timed as its own row: the pages are measured in the state a running
worker keeps them in. It only (re)writes those derived tables, as the schedule would.

**Rollup lag.** A batch of events is ingested through the real path
(``experience.ingest.events_store``, as the API does; source ``benchmark-b4``), while a
real ``manage.py qcluster`` subprocess (``Q2_SYNC=0``) runs the product's schedules
(``reports: refresh rollups`` every minute). The lag is the time from the commit of the
batch until ``DailyEvents`` shows it (polled every 0.5 s). Target: never more than 60 s.
The events, the rollup rows they produced (recomputed afterwards), the session and the
q2 task rows written meanwhile are removed at the end.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import re
import subprocess
import time

from django.http import HttpResponse
from django.urls import include, path

from tests.benchmarks.harness import (
    Measure,
    Result,
    abab,
    log,
    replay,
    start_qcluster,
    stop_group,
)

SCENARIO = "B4"
PAIRS = 5
SLOW_PAGE = 1.0  # seconds: slower pages get one pair
TARGET_P95 = 0.150
RATIO_BOUND, RATIO_SLACK = 1.5, 0.005
LAG_TARGET = 60.0
LAG_EVENTS = 1_000
LAG_TIMEOUT = 150.0
LAG_SOURCE = "benchmark-b4"
READ_MODELS_BUDGET = 60.0  # seconds of worker time per 15-minute refresh
SERVER_CURSOR = re.compile(r'^DECLARE "[^"]+" NO SCROLL CURSOR WITH(OUT)? HOLD FOR ')
SKIP = ("SAVEPOINT", "RELEASE SAVEPOINT", "ROLLBACK TO SAVEPOINT", "BEGIN", "COMMIT")
FLOOR_URL = "/__bench_floor__/"
HTMX = {"HX-Request": "true"}

MISSES = """\
Before this slice (SQLite large, one request each, crm manager): customers/RFM 5.6–11.4 s,
CLV 6.3–10.4 s, reports index 5.1 s, home ?inline=1 9.6 s, strategy partial 1.7 s, NPS
0.6–3.3 s, CX value 0.4–3.3 s, value ?segment 7.8 s; SQL 75–100 % of each (full scans of
the 1M-row customers_customermetrics and reports_customerprediction, a year of raw orders
and answers).
Closed by design (reports/customer_rollups.py, migrations reports 0002/0003): RfmCell,
DormancyDay/DormancyMonth (the presets' as-of days, one GROUP BY for all of them) and
HeadlineSnapshot("strategy") recomputed whole by the 15-minute schedule (and
rollups_rebuild / `rebuild_rollups --customers`); ClvSummary + ClvSegmentValue stored with
each refit (segment values also every 15 minutes); monthly orders read DailyOrders. The
customers, CLV, index, strategy partial pages read a few dozen rows; medium SQLite:
customers body 300 → 22 ms, CLV body 297 → 63 ms, index 487 → 22 ms, strategy partial
78 → 2 ms, home ?inline=1 903 → 160 ms (the rest: customer circle headline, not reports/);
medium PostgreSQL: customers body 747 → 13 ms, CLV body 191 → 22 ms, strategy partial
21 → 2.6 ms. Large PostgreSQL (partial B4 run, 03:21): read models refresh 3.6 s; strategy
partial 4.5 ms, reports index 12.4 ms (were 1.7 s / 5.1 s on SQLite before); home
?inline=1 2.0 s of which the customer circle partial 1.5 s.
Remaining misses (see the table for figures at large):
- ?segment=<largest> bodies (customers, CLV, value, CX value, NPS): per-member scans
  (EXISTS on the segment's memberships over 1M metrics/predictions, or the members'
  orders streamed for cohorts); cost grows with the segment (medium: 0.35–0.55 s). Plan:
  per-segment read models keyed (segment, cell/bin/month), recomputed by the same
  15-minute run for segments with member_count above a threshold, or folded by
  customers.segments' membership sync through a listener registry (an inner-app change:
  a `register_membership_listener` in customers/segments.py, owned by segments).
- home ?inline=1 and the customer card: customers.selectors.customer_headline (COUNT over
  1M customers with an IN over identities GROUP BY: 1.84 s on PostgreSQL, 0.67 s on
  SQLite). Done after this run: the card reads a stored headline like the strategy one
  (reports.selectors.STORED_HEADLINES, written by the 15-minute refresh, shown "As of
  HH:MM"): under 1 ms on both. The home page's experience and platform cards are left.
- ?period=365 bodies of NPS / CX value: segment-by-segment NPS over a year of answers
  joined to memberships; plan: a DailyAnswers-like rollup keyed (day, segment) maintained
  with the membership sync.
- Freshness: these read models lag orders by up to 15 minutes (as the cohorts do), not
  the 60 s of the daily rollups; the day after midnight falls back to the direct query
  until the next run.
Rollup lag: met by design — `reports.rollups.events_rollup_follow` is an events listener,
so the worker that processes a stored batch folds it into DailyEvents at once.
"""


def floor_view(request):
    """Django's floor: the same client, middleware and session, no work, an empty answer."""
    return HttpResponse(b"")


urlpatterns = [
    path(FLOOR_URL.strip("/") + "/", floor_view),
    path("", include("config.urls")),
]


# --------------------------------------------------------------------------- the pages


def pages() -> list[tuple[str, str, dict]]:
    """(label, url, headers) of every report page, htmx body, partial and API answer."""
    from django.urls import reverse

    from customers.models import Segment
    from reports.catalog import report_specs
    from reports.views import CIRCLE_PAGES

    largest = Segment.objects.order_by("-member_count").values_list("pk", flat=True).first()
    found = [
        ("home (four circles)", reverse("home"), {}),
        ("home ?inline=1", reverse("home") + "?inline=1", {}),
    ]
    for circle in CIRCLE_PAGES:
        url = reverse("reports:circle_figures", args=[circle.slug])
        found.append((f"circle figures {circle.slug} (htmx)", url, HTMX))
    found += [
        ("reports index", reverse("reports:index"), {}),
        ("reports API catalogue", reverse("api-reports"), {}),
        ("subscriptions", reverse("reports:subscriptions"), {}),
        ("RFM cell 5/5", reverse("reports:rfm_cell", args=[5, 5]), {}),
    ]
    for spec in report_specs():
        page = reverse("reports:report", args=[spec.slug])
        api = reverse("api-report", args=[spec.slug])
        found += [
            (f"{spec.slug} page", page, {}),
            (f"{spec.slug} htmx body", page, HTMX),
            (f"{spec.slug} API", api, {}),
            (f"{spec.slug} body ?period=365&compare=year", f"{page}?period=365&compare=year", HTMX),
        ]
        if "segment" in spec.filters and largest is not None:
            found.append(
                (f"{spec.slug} body ?segment=<largest>", f"{page}?segment={largest}", HTMX)
            )
    return found


def _get(client, url: str, headers: dict) -> None:
    response = client.get(url, headers=headers)
    assert response.status_code == 200, (url, response.status_code)


def _statements(client, url: str, headers: dict) -> list[str]:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as captured:
        _get(client, url, headers)
    return [
        SERVER_CURSOR.sub("", q["sql"])
        for q in captured.captured_queries
        if not q["sql"].startswith(SKIP)
    ]


def _floor(client) -> float:
    start = time.perf_counter()
    _get(client, FLOOR_URL, {})
    return time.perf_counter() - start


def manager_client():
    """A test client logged in as the CRM manager (view_pii of the owning department)."""
    from django.contrib.auth import get_user_model
    from django.test import Client

    from config.demo.seed import DEMO_LOGINS

    login = next(x for x in DEMO_LOGINS if x.sees_personal_data and x.role)
    client = Client()
    client.force_login(get_user_model().objects.get(username=login.username))
    return client, login.username


def measure_page(client, label: str, url: str, headers: dict) -> dict:
    """ABAB of the page against its replayed SQL + the floor. A page slower than a second
    is timed in fewer pairs (its capture run is its warm-up), so that one run of every
    page stays within the runner's budget; the notes say so."""
    cpu, start = time.process_time(), time.perf_counter()
    statements = _statements(client, url, headers)
    first, first_cpu = time.perf_counter() - start, time.process_time() - cpu
    pairs, warmup = PAIRS, 1
    if first > SLOW_PAGE:
        pairs, warmup = 1, 0
    elif first > TARGET_P95:
        pairs, warmup = 3, 0
    parts = {"sql": [], "floor": []}

    def reference() -> None:
        parts["sql"].append(replay(statements))
        parts["floor"].append(_floor(client))

    if pairs == 1:
        # A page slower than a second: its capture run (cold) is the one sample of ours,
        # then one replay + floor; the whole pair costs two page times, not three.
        ours = Measure(seconds=[first], cpu_seconds=[first_cpu], peak_rss_mb=0.0)
        ref = abab(lambda: None, reference, pairs=1, warmup=0)[1]
    else:
        ours, ref = abab(lambda: _get(client, url, headers), reference, pairs=pairs, warmup=warmup)
    sql_ms = 1000 * sorted(parts["sql"])[len(parts["sql"]) // 2]
    floor_ms = 1000 * sorted(parts["floor"])[len(parts["floor"]) // 2]
    return {
        "label": label,
        "url": url,
        "ours": ours,
        "ref": ref,
        "queries": len(statements),
        "sql_ms": round(sql_ms, 2),
        "floor_ms": round(floor_ms, 2),
        "pairs": pairs,
    }


def page_result(row: dict, database: str, size: str, username: str) -> Result:
    ours, ref = row["ours"], row["ref"]
    bound = RATIO_BOUND * ref.median + RATIO_SLACK
    # The ratio as the bound reads it: ours / (1.5 × ref + 5 ms) ≤ 1.
    ratio = ours.median / bound
    met = ours.p95 <= TARGET_P95 and ratio <= 1.0
    return Result(
        scenario=SCENARIO,
        name=f"report page: {row['label']}",
        database=database,
        ours=ours,
        reference=ref,
        reference_label=f"its {row['queries']} SQL statements replayed raw + Django floor",
        comparison="ours / (1.5 × ref + 5 ms) ≤ 1",
        ratio=ratio,
        target=f"p95 ≤ {TARGET_P95 * 1000:.0f} ms",
        met=met,
        notes=""
        if row["pairs"] >= PAIRS
        else (
            f"{row['pairs']} pair(s): the page is slow"
            + (" (ours = the capture run, cold)." if row["pairs"] == 1 else ".")
        ),
        extra={
            "item": row["label"],
            "pairs": row["pairs"],
            "url": row["url"],
            "queries": row["queries"],
            "sql_ms": row["sql_ms"],
            "floor_ms": row["floor_ms"],
            "user": username,
            "size": size,
        },
    )


# --------------------------------------------------------------------------- rollup lag


def _lag_people() -> list[tuple[int, str]]:
    """(customer id, email) of 50 existing people the lag batches are about."""
    from customers.models import Identity

    return list(
        Identity.objects.filter(kind="email", customer__merged_into__isnull=True)
        .order_by("customer_id")
        .values_list("customer_id", "value")[:50]
    )


def _lag_events(count: int, emails: list[str]) -> list[dict]:
    from django.utils import timezone

    now = timezone.now()
    stamp = int(time.time() * 1000)
    return [
        {
            "event_id": f"b4-{stamp}-{number}",
            "type": "page_view",
            "occurred_at": (now - dt.timedelta(seconds=number)).isoformat(),
            "identifiers": {"email": emails[number % len(emails)]},
            "properties": {"path": "/benchmark"},
        }
        for number in range(count)
    ]


def _today_events() -> int:
    from django.db.models import Sum
    from django.utils import timezone

    from reports.models import DailyEvents

    return DailyEvents.objects.filter(day=timezone.localdate()).aggregate(n=Sum("events"))["n"] or 0


def _store(events: list[dict]) -> None:
    from experience.ingest import events_ingest

    result = events_ingest(items=events, source=LAG_SOURCE, department=None)
    assert result.accepted == len(events), result.rejected[:3]


def rollup_lag(database: str, size: str, batches: int = 2) -> Result:
    """Ingest ``batches`` batches through events_store with a real qcluster running the
    product's schedules; seconds until DailyEvents of today shows each batch."""
    from django.db import connection
    from django.db.models import Max
    from django_q.models import OrmQ, Schedule, Success, Task

    from customers.services import customers_derived_refresh
    from experience.models import Event
    from reports.rollups import rollups_refresh
    from reports.tasks import ensure_report_schedules

    people = _lag_people()
    ids, emails = [p[0] for p in people], [p[1] for p in people]
    event_before = Event.objects.aggregate(top=Max("pk"))["top"] or 0
    ensure_report_schedules()
    schedules_before = {s.pk: s.next_run for s in Schedule.objects.all()}
    task_before = Task.objects.order_by("-started").values_list("started", flat=True).first()
    lags: list[float] = []
    cluster = start_qcluster({**os.environ, "Q2_SYNC": "0"}, subprocess.DEVNULL)
    try:
        rollups_refresh()  # start from rollups that are up to date
        for number in range(batches):
            base = _today_events()
            events = _lag_events(LAG_EVENTS, emails)
            _store(events)
            committed = time.perf_counter()
            while True:
                if _today_events() >= base + LAG_EVENTS:
                    lags.append(time.perf_counter() - committed)
                    break
                if time.perf_counter() - committed > LAG_TIMEOUT:
                    lags.append(float("inf"))
                    break
                time.sleep(0.5)
                connection.close()  # a fresh snapshot on SQLite
            log(f"  rollup lag batch {number + 1}/{batches}: {lags[-1]:.1f} s")
    finally:
        stop_group(cluster)
        # The batches, and what their follow-up stored for these people (situations).
        Event.objects.filter(pk__gt=event_before, customer_id__in=ids)._raw_delete("default")
        with connection.cursor() as cursor:
            cursor.execute("DELETE FROM experience_event WHERE source = %s", [LAG_SOURCE])
        customers_derived_refresh(customer_ids=set(ids))  # their metrics as before
        rollups_refresh(days_back=1)  # today's rollup rows without the deleted events
        for pk, next_run in schedules_before.items():
            Schedule.objects.filter(pk=pk).update(next_run=next_run)
        if task_before is not None:
            Task.objects.filter(started__gt=task_before).delete()
        Success.objects.filter(func__startswith="reports.").delete()
        OrmQ.objects.all().delete()
    measure = Measure(seconds=lags, cpu_seconds=[0.0] * len(lags), peak_rss_mb=0.0)
    worst = max(lags)
    return Result(
        scenario=SCENARIO,
        name=f"rollup lag: {LAG_EVENTS:,} events ingested → DailyEvents, qcluster",
        database=database,
        ours=measure,
        reference=Measure(seconds=[LAG_TARGET], cpu_seconds=[0.0], peak_rss_mb=0.0),
        reference_label="the 60 s bound",
        comparison="worst lag / 60 s ≤ 1",
        ratio=worst / LAG_TARGET,
        target="never more than 60 s behind",
        met=worst <= LAG_TARGET,
        notes=(
            f"{batches} batches of {LAG_EVENTS:,} events through experience.ingest.events_store "
            "(the API's path); a real `manage.py qcluster` (Q2_SYNC=0) runs the product's "
            "schedule 'reports: refresh rollups' (every minute); lag = commit → today's "
            "DailyEvents count includes the batch (polled every 0.5 s)."
        ),
        extra={"item": "rollup lag", "lags_s": lags, "size": size},
    )


# --------------------------------------------------------------------------- read models


def read_models_refresh(database: str, size: str) -> Result:
    """One run of what the 15-minute schedule does for the customer-level read models
    (``reports.customer_rollups.customer_rollups_refresh``: RFM cells, dormancy snapshots,
    the strategy headline, per-segment CLV) plus the CLV summary of the current fit when
    missing — so the pages are measured in the state a running worker keeps them in (the
    stored headline is read while under 30 minutes old). Timed as its own row: the worker
    time the read models cost every 15 minutes."""
    from reports.customer_rollups import clv_summary_rebuild, customer_rollups_refresh

    cpu, start = time.process_time(), time.perf_counter()
    rows = customer_rollups_refresh()
    seconds, cpu_seconds = time.perf_counter() - start, time.process_time() - cpu
    stored = clv_summary_rebuild()
    log(f"B4 read models refreshed: {rows} rows in {seconds:.1f} s (CLV summary added: {stored})")
    return Result(
        scenario=SCENARIO,
        name="read models: customer_rollups_refresh (every 15 min)",
        database=database,
        ours=Measure(seconds=[seconds], cpu_seconds=[cpu_seconds], peak_rss_mb=0.0),
        reference=Measure(seconds=[READ_MODELS_BUDGET], cpu_seconds=[0.0], peak_rss_mb=0.0),
        reference_label=f"a budget of {READ_MODELS_BUDGET:.0f} s of worker time per run",
        comparison="refresh / budget ≤ 1",
        ratio=seconds / READ_MODELS_BUDGET,
        target=f"≤ {READ_MODELS_BUDGET:.0f} s per 15-minute run",
        met=seconds <= READ_MODELS_BUDGET,
        notes=(
            "1 run (it replaces the tables whole). RFM cells, dormancy at the presets' as-of "
            "days, the strategy headline and per-segment CLV, as the slow schedule stores "
            "them; the pages below read them."
        ),
        extra={"item": "read models refresh", "rows": rows, "size": size},
    )


# --------------------------------------------------------------------------- entry


def results(*, database: str, size: str, lag: bool = True) -> list[Result]:
    from django.contrib.sessions.models import Session
    from django.test import override_settings
    from django.test.utils import setup_test_environment

    with contextlib.suppress(RuntimeError):  # already set up (by b4_pages)
        setup_test_environment()
    found = [read_models_refresh(database, size)]
    client, username = manager_client()
    try:
        with override_settings(ROOT_URLCONF=__name__):
            for label, url, headers in pages():
                row = measure_page(client, label, url, headers)
                log(
                    f"B4 {label:<45} ours {row['ours'].median * 1000:7.1f} ms "
                    f"(p95 {row['ours'].p95 * 1000:7.1f})  sql {row['sql_ms']:7.1f}  "
                    f"floor {row['floor_ms']:5.1f}  {row['queries']} q"
                )
                found.append(page_result(row, database, size, username))
    finally:
        key = client.session.session_key
        Session.objects.filter(session_key=key).delete()
    if lag:
        found.append(rollup_lag(database, size))
    return found


run = results
