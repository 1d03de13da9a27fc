"""Benchmark: server time of every report page, htmx body and API answer on the demo company.

Run with ``make bench-reports`` (or ``python -m tests.benchmarks.report_pages``). The demo
company (default size: 50,000 customers, about 1.1M events) is seeded once into
``.bench/demo-default.sqlite3`` and reused; ``--database-url`` measures another database
(for example PostgreSQL) holding the demo company. Per report: the page, its htmx body and
its API answer with default filters, the body for 12 months against the year before, and
the body for the largest segment. Each URL is requested once to warm up,
then ``--runs`` times in this process through Django's test client as the administrator,
so the figures are server time without network. Results go to
``docs/benchmarks/reports.json`` and the "Report pages" table of ``docs/benchmarks.md``.
Target (issue 7): every report page under 300 ms.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DEFAULT_DB = ROOT / ".bench" / "demo-default.sqlite3"
JSON_OUT = ROOT / "docs" / "benchmarks" / "reports.json"
MARKDOWN_OUT = ROOT / "docs" / "benchmarks.md"
TARGET_MS = 300
BEGIN, END = "<!-- report-pages:begin -->", "<!-- report-pages:end -->"


def _setup(database_url: str) -> None:
    os.environ["DATABASE_URL"] = database_url
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()


def _ensure_demo() -> None:
    """Migrate and seed the demo company unless it is there already."""
    from django.core.management import call_command

    from customers.models import Customer

    call_command("migrate", verbosity=0)
    if not Customer.objects.exists():
        call_command("seed_demo", verbosity=0)


def _measure(client, url: str, headers: dict, runs: int) -> dict:
    from django.db import connection, reset_queries

    client.get(url, headers=headers)
    times = []
    for _ in range(runs):
        reset_queries()
        start = time.perf_counter()
        response = client.get(url, headers=headers)
        times.append((time.perf_counter() - start) * 1000)
    times.sort()
    return {
        "url": url,
        "htmx": bool(headers),
        "status": response.status_code,
        "queries": len(connection.queries),
        "median_ms": round(statistics.median(times), 1),
        "p95_ms": round(times[max(0, round(0.95 * len(times)) - 1)], 1),
        "max_ms": round(times[-1], 1),
    }


def run(runs: int) -> list[dict]:
    from django.conf import settings
    from django.contrib.auth import get_user_model
    from django.test import Client
    from django.test.utils import setup_test_environment
    from django.urls import reverse

    from customers.models import Segment
    from reports.catalog import report_specs

    setup_test_environment()
    settings.DEBUG = True  # counts queries; templates stay cached (no debug toolbar here)
    client = Client()
    client.force_login(get_user_model().objects.filter(is_superuser=True).first())
    largest = Segment.objects.order_by("-member_count").values_list("pk", flat=True).first()
    results = []
    for spec in report_specs():
        page = reverse("reports:report", args=[spec.slug])
        api = reverse("api-report", args=[spec.slug])
        requests = [(page, {}), (page, {"HX-Request": "true"}), (api, {})]
        requests.append((f"{page}?period=365&compare=year", {"HX-Request": "true"}))
        if "segment" in spec.filters and largest is not None:
            requests.append((f"{page}?segment={largest}", {"HX-Request": "true"}))
        for url, headers in requests:
            results.append({"report": spec.slug, **_measure(client, url, headers, runs)})
    return results


def write(results: list[dict], database: str) -> None:
    from django.db import connection

    meta = {
        "database": connection.vendor,
        "database_url": database if database.startswith("sqlite") else connection.vendor,
        "python": platform.python_version(),
        "cpu_count": os.cpu_count(),
        "target_ms": TARGET_MS,
        "measured_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    JSON_OUT.parent.mkdir(parents=True, exist_ok=True)
    JSON_OUT.write_text(json.dumps({"meta": meta, "results": results}, indent=2) + "\n")
    lines = [
        BEGIN,
        f"Report pages on the default demo company ({meta['database']}, "
        f"{meta['cpu_count']} CPUs, measured {meta['measured_at']}; "
        f"target: under {TARGET_MS} ms server time). Regenerate with `make bench-reports`.",
        "",
        "| report | request | status | queries | median ms | p95 ms | max ms | target |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for row in results:
        kind = "API" if "/api/" in row["url"] else ("htmx body" if row["htmx"] else "page")
        if "?" in row["url"]:
            kind += f" `?{row['url'].split('?', 1)[1]}`"
        met = "met" if row["p95_ms"] < TARGET_MS else "**missed**"
        lines.append(
            f"| {row['report']} | {kind} | {row['status']} | {row['queries']} | "
            f"{row['median_ms']} | {row['p95_ms']} | {row['max_ms']} | {met} |"
        )
    lines.append(END)
    table = "\n".join(lines)
    text = MARKDOWN_OUT.read_text() if MARKDOWN_OUT.exists() else "# Benchmarks\n"
    if BEGIN in text:
        text = text[: text.index(BEGIN)] + table + text[text.index(END) + len(END) :]
    else:
        text = f"{text.rstrip()}\n\n## Report pages\n\n{table}\n"
    MARKDOWN_OUT.write_text(text)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database-url", default=f"sqlite:///{DEFAULT_DB}")
    parser.add_argument("--runs", type=int, default=15)
    args = parser.parse_args()
    if args.database_url.startswith("sqlite"):
        DEFAULT_DB.parent.mkdir(exist_ok=True)
    _setup(args.database_url)
    _ensure_demo()
    results = run(args.runs)
    write(results, args.database_url)
    for row in results:
        print(
            f"{row['url']:<40} {'htmx' if row['htmx'] else '    '} {row['status']} "
            f"median {row['median_ms']:>7} ms  p95 {row['p95_ms']:>7} ms  {row['queries']} queries"
        )


if __name__ == "__main__":
    main()
