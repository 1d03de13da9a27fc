"""B7: the customer 360 first page of a person with 100k events, and search by identifier.

- **360 page**: ``GET /customers/<pk>/`` through Django's test client, logged in as the
  demo's CRM manager (who reads personal data, so the page is unmasked and audit-logged
  like a real view). The person is an existing customer given 100k extra events (source
  ``benchmark-b7``, spread over two years, removed afterwards). Reference: the page's own
  SQL — its queries captured once with ``CaptureQueriesContext`` and replayed raw — so
  the ratio shows what Django's ORM, forms and templates add on top of the database work.
- **search by identifier**: the customers list searched for an email (``?q=<email>``)
  and the API lookup (``/api/v1/customers/lookup/?kind=email&value=…``), each against
  the single indexed SQL lookup of the identifier and its customer.

Targets (issue 8): 360 page ≤ 50 ms, search ≤ 30 ms (median); ours ≤ 2× the reference.
The page replays every captured statement except savepoints; the audit rows the page
and its replay write are deleted at the end.
"""

from __future__ import annotations

import re

from tests.benchmarks.harness import Result, abab, log, replay, time_ratio

SCENARIO = "B7"
PAIRS = 10
EVENTS = 100_000
EVENT_SOURCE = "benchmark-b7"
SERVER_CURSOR = re.compile(r'^DECLARE "[^"]+" NO SCROLL CURSOR WITH(OUT)? HOLD FOR ')
PAGE_TARGET, SEARCH_TARGET = 0.050, 0.030
RATIO_BOUND = 2.0

MISSES = """
B7 at 1M on SQLite: 360 page 41 ms (target 50 ms met) but 39× its replayed SQL (1.0 ms);
search by email on the list 10 ms and API lookup 8 ms (target 30 ms met) but 40× / 31× the
0.24 ms indexed lookup. PostgreSQL (quiet machine): 360 page 53.5 ms (target missed by
7 %; its SQL 10.8 ms, the audit INSERT largest on the medium company), list search and
API lookup 13 ms each (met), ratios 4.9× / 10× / 9×. An earlier PostgreSQL row of 115 ms had
been measured while another benchmark's load test ran. The ratio misses are the yardstick,
not the SQL: the page's SQL is keyset-first and indexed (no count over the 100k events), and
a Django request through the full middleware stack (session, auth, CSP, axes, audit) costs several
ms before the view runs, which a 0.24 ms raw query does not include. Plan: measure the
reference as B4 does — its SQL plus Django's floor (a trivial view through the same
client, middleware and session) — and keep 2× on that. Earlier 360 profile (50k demo
before this slice: 76 ms vs 64 ms replay, 45 ms Python). Profile
(pyinstrument, 20 page views of a 100k-event person on the 100k company): template
rendering 45 %, the timeline 26 % (five sources, ``limit + 1`` rows each, every event row
built as Event + EventType + Touchpoint + Department instances), panels 13 %, profile
selectors 10 %; the SQL is keyset-first (no count over the 100k events, one indexed query per
source). Changed: the events source reads plain rows (``values_list``) instead of four model
instances per row. What remains: the page renders ~25 queries and 50 entries plus eight panels
through the template engine. Plan: render the timeline rows with one partial per page (not an
include per entry), defer the below-the-fold panels to htmx ``revealed`` requests, and fold
the two permission queries into the membership query already made.
"""
LOOKUP_SQL = """
SELECT c.* FROM customers_identity i JOIN customers_customer c ON c.id = i.customer_id
WHERE i.kind = %s AND i.value = %s"""
# Events spread evenly over two years up to now, in SQL (a million rows per second).
ADD_EVENTS = {
    "sqlite": """
WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < %s)
INSERT INTO experience_event (occurred_at, received_at, source, event_id, properties,
                              customer_id, event_type_id, touchpoint_id, value_bits)
SELECT datetime('now', '-' || (i * 631) || ' seconds'), datetime('now'), %s, NULL, '{}',
       %s, %s, %s, 0
FROM n""",
    "postgresql": """
INSERT INTO experience_event (occurred_at, received_at, source, event_id, properties,
                              customer_id, event_type_id, touchpoint_id, value_bits)
SELECT now() - i * interval '631 seconds', now(), %s, NULL, '{}', %s, %s, %s, 0
FROM generate_series(1, %s) i""",
}


def _add_events(customer_id: int) -> None:
    """Give the customer 100k page views (the seeds have nobody that busy, and finding the
    busiest person would itself be a GROUP BY over the whole event log)."""
    from django.db import connection

    from experience.models import EventType, Touchpoint

    page_view = EventType.objects.get(name="page_view").pk
    touchpoint = Touchpoint.objects.order_by("pk").values_list("pk", flat=True).first()
    with connection.cursor() as cursor:
        if connection.vendor == "sqlite":
            params = [EVENTS, EVENT_SOURCE, customer_id, page_view, touchpoint]
        else:
            params = [EVENT_SOURCE, customer_id, page_view, touchpoint, EVENTS]
        cursor.execute(ADD_EVENTS[connection.vendor], params)
        if connection.vendor == "postgresql":
            # As autovacuum would after 100k inserts: with the seed's statistics the planner
            # expects ~20 rows for this person and sorts all 100k (75 ms, not 0.2 ms).
            cursor.execute("ANALYZE experience_event")


def _person() -> int:
    """The first unmerged customer with an email: the same one every run."""
    from customers.models import Identity

    with_email = Identity.objects.filter(kind="email", customer__merged_into__isnull=True)
    return with_email.order_by("customer_id").values_list("customer_id", flat=True)[0]


def _remove_events(customer_id: int) -> None:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            "DELETE FROM experience_event WHERE customer_id = %s AND source = %s",
            [customer_id, EVENT_SOURCE],
        )


def _page_statements(client, url: str) -> list[str]:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as captured:
        response = client.get(url)
    assert response.status_code == 200, response.status_code
    skip = ("SAVEPOINT", "RELEASE SAVEPOINT", "ROLLBACK TO SAVEPOINT", "BEGIN", "COMMIT")
    # A server-side cursor (``.iterator()`` on PostgreSQL) is replayed as its plain query.
    return [
        SERVER_CURSOR.sub("", q["sql"])
        for q in captured.captured_queries
        if not q["sql"].startswith(skip)
    ]


def _lookup(email: str) -> int:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(LOOKUP_SQL, ["email", email])
        rows = cursor.fetchall()
    assert len(rows) == 1
    return 1


def _get(client, url: str, expect: str | None = None) -> None:
    response = client.get(url)
    assert response.status_code == 200, (url, response.status_code)
    if expect is not None:
        assert expect in response.content.decode(), (url, "result missing")


def run(*, database: str, size: str) -> list[Result]:
    from django.contrib.auth import get_user_model
    from django.db.models import Max
    from django.test import Client
    from django.test.utils import setup_test_environment
    from django.urls import reverse
    from django.utils.http import urlencode

    from config.demo.seed import DEMO_LOGINS
    from config.org.models import AuditLog
    from customers.models import Customer, Identity
    from experience.models import Event

    setup_test_environment()
    customers = Customer.objects.count()
    pii_login = next(login for login in DEMO_LOGINS if login.sees_personal_data and login.role)
    user = get_user_model().objects.get(username=pii_login.username)
    client = Client()
    client.force_login(user)
    audit_before = AuditLog.objects.aggregate(top=Max("pk"))["top"] or 0

    customer_id = _person()
    _remove_events(customer_id)  # a crashed run's leftovers
    _add_events(customer_id)
    try:
        events = Event.objects.filter(customer_id=customer_id).count()
        email = Identity.objects.filter(customer_id=customer_id, kind="email").first()
        log(
            f"B7 on {database} ({size}, {customers} customers): customer #{customer_id} with "
            f"{events:,} events (100k added); search {email.value}"
        )
        page = reverse("customers:detail", args=[customer_id])
        statements = _page_statements(client, page)
        page_ours, page_ref = abab(
            lambda: _get(client, page), lambda: replay(statements), pairs=PAIRS, log=log
        )

        search = f"{reverse('customers:index')}?{urlencode({'q': email.value})}"
        lookup = f"/api/v1/customers/lookup/?{urlencode({'kind': 'email', 'value': email.value})}"
        target_pk = str(email.customer_id)
        _get(client, search, expect=f"/customers/{target_pk}/")
        _get(client, lookup, expect=email.value)
        search_ours, search_ref = abab(
            lambda: _get(client, search), lambda: _lookup(email.value), pairs=PAIRS, log=log
        )
        lookup_ours, lookup_ref = abab(
            lambda: _get(client, lookup), lambda: _lookup(email.value), pairs=PAIRS, log=log
        )
    finally:
        _remove_events(customer_id)
        AuditLog.objects.filter(pk__gt=audit_before).delete()

    def result(name, ours, ref, label, target, notes, extra=None) -> Result:
        ratio = time_ratio(ours, ref)
        return Result(
            scenario=SCENARIO,
            name=name,
            database=database,
            ours=ours,
            reference=ref,
            reference_label=label,
            comparison=f"time ours/ref ≤ {RATIO_BOUND:.0f}",
            ratio=ratio,
            target=f"≤ {target * 1000:.0f} ms",
            met=ours.median <= target and ratio <= RATIO_BOUND,
            notes=notes,
            extra={"customers": customers, "size": size, **(extra or {})},
        )

    lookup_label = "one indexed SQL lookup (identity → customer)"
    return [
        result(
            f"customer 360 first page, {events:,} events",
            page_ours,
            page_ref,
            f"its own {len(statements)} SQL statements replayed raw",
            PAGE_TARGET,
            f"GET /customers/<pk>/ as {pii_login.username} (view_pii, audit-logged).",
            {"events": events, "queries": len(statements)},
        ),
        result(
            f"search by email, customers list, {customers:,} customers",
            search_ours,
            search_ref,
            lookup_label,
            SEARCH_TARGET,
            "GET /customers/?q=<email>: the full list page with one result.",
        ),
        result(
            f"lookup by email, API, {customers:,} customers",
            lookup_ours,
            lookup_ref,
            lookup_label,
            SEARCH_TARGET,
            "GET /api/v1/customers/lookup/?kind=email&value=… (session auth, audit-logged).",
        ),
    ]
