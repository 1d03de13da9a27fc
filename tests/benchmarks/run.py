"""Run the scenario benchmarks (issue 8) and write docs/benchmarks/scenarios.json + the table.

``python -m tests.benchmarks.run [--database sqlite|postgresql …] [--size large|medium]
[--scenario B1 …]`` (``make bench``: both databases, large, every scenario). For each
database it asks ``tests.benchmarks.company.company_url`` for the seeded company, then runs
every scenario module in a fresh subprocess (``--one B2 --database-url …``: clean peak RSS,
no state left from another scenario), which prints its results as JSON. Results of
scenarios not run this time are kept from the previous JSON, so one scenario can be
re-measured alone. Each module is ``tests/benchmarks/<module>.py`` with
``run(*, database, size) -> list[Result]`` (see ``harness``); modules not written yet are
skipped with a note.

``--smoke`` (``make bench-smoke``, CI) only checks that every scenario module still runs:
each scenario on the ``small`` demo company (2,000 customers; seeded once like the others,
as ``.bench/small.sqlite3`` and ``circle_bench_small``), scaled down by :data:`SMOKE_ENV`
(``BENCH_SMOKE=1``: one ABAB pair, see ``harness``; the modules' own size knobs). Nothing
is merged into docs/benchmarks/: the results go to ``test-results/bench-smoke.json``
(:data:`SMOKE_OUT`), and the run fails, naming each scenario and database, when a
scenario's process fails or its results are missing or lack a field the table reads. It
asserts no speed: the targets are for real runs only.
"""

from __future__ import annotations

import argparse
import dataclasses
import fcntl
import importlib
import importlib.util
import json
import logging
import os
import platform
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tests.benchmarks.harness import Measure, Result, log

ROOT = Path(__file__).resolve().parents[2]
JSON_OUT = ROOT / "docs" / "benchmarks" / "scenarios.json"
MARKDOWN_OUT = ROOT / "docs" / "benchmarks.md"
LOCKS = ROOT / ".bench"
ITEM_TABLE_FROM = 3  # more items than this per scenario and database: a table of their own
BEGIN, END = "<!-- scenarios:begin -->", "<!-- scenarios:end -->"
SCENARIOS = {
    "B1": "b1_ingest",
    "B2": "b2_segment_count",
    "B3": "b3_membership",
    "B4": "b4_pages",
    "B5": "b5_dispatch",
    "B6": "b6_import",
    "B7": "b7_profile",
    "B8": "b8_figures",
    "B9": "b9_http",
}
DATABASES = ("sqlite", "postgresql")
DEV_SQLITE = ROOT / ".bench" / "demo-default.sqlite3"
DEV_POSTGRES = "postgres://circle:circle-ci@127.0.0.1:5432/circle_bench_dev"
CHILD_ENV = {
    # Throughput, not the per-token throttle, is what B1 measures.
    "API_THROTTLE_INGEST": "1000000/minute",
    "API_THROTTLE_USER": "1000000/minute",
    # B6 imports a 1M-row file (about 110 MB), above the 100 MiB default upload limit.
    "IMPORT_MAX_BYTES": str(512 * 2**20),
    # Follow-up work is queued for a worker, as in production, never run inline.
    "Q2_SYNC": "0",
}
SIZES = ("large", "medium")  # the companies of real runs; the smoke run's is SMOKE_SIZE
SMOKE_SIZE = "small"
SMOKE_OUT = ROOT / "test-results" / "bench-smoke.json"
# A smoke run's scale, for each scenario's process: the harness runs one ABAB pair, and
# every module its smallest work that still goes through all of its code.
SMOKE_ENV = {
    "BENCH_SMOKE": "1",
    "B1_REQUESTS": "2",
    "B5_PAIRS": "1",
    "B5_SMALL": "1000",  # and everyone (2,000), as in real runs
    "B6_ROWS": "1000",
    "B6_SMALL_ROWS": "300",
    "B9_WARMUP": "1",
    "B9_DURATION": "1",
    "B9_PAIRS": "1",
}


def module_exists(scenario: str) -> bool:
    return importlib.util.find_spec(f"tests.benchmarks.{SCENARIOS[scenario]}") is not None


def company(database: str, size: str) -> tuple[str, str]:
    """(database URL, size really used): the seeded company, or the dev fallback."""
    try:
        from tests.benchmarks.company import company_url
    except ImportError:
        log("tests.benchmarks.company is not there yet: using the default demo company")
        return _dev_company(database), "default"
    return company_url(database, size), size


def _dev_company(database: str) -> str:
    """The default demo company (50k customers), for runs before the large seed exists."""
    if database == "sqlite":
        DEV_SQLITE.parent.mkdir(exist_ok=True)
        url = f"sqlite:///{DEV_SQLITE}"
    else:
        url = DEV_POSTGRES
        _create_postgres_database(url)
    env = {**os.environ, "DATABASE_URL": url}
    manage = [sys.executable, str(ROOT / "manage.py")]
    subprocess.run([*manage, "migrate", "-v0"], env=env, check=True, cwd=ROOT)
    subprocess.run([*manage, "seed_demo"], env=env, check=True, cwd=ROOT)
    return url


def _create_postgres_database(url: str) -> None:
    import psycopg

    name = url.rsplit("/", 1)[1]
    with psycopg.connect(url.rsplit("/", 1)[0] + "/postgres", autocommit=True) as conn:
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone():
            conn.execute(f'CREATE DATABASE "{name}"')


@contextmanager
def exclusive(name: str) -> Iterator[None]:
    """Hold ``.bench/<name>.lock``: one measuring run at a time on this machine.

    Two scenarios measured at once would share the two cores and each other's disk, and
    the JSON is read, merged and rewritten: a second writer must wait for the first.
    """
    LOCKS.mkdir(exist_ok=True)
    with open(LOCKS / f"{name}.lock", "w") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            log(f"waiting for another benchmark run ({name} lock)")
            started = time.monotonic()
            fcntl.flock(handle, fcntl.LOCK_EX)
            log(f"got the {name} lock after {time.monotonic() - started:.0f} s")
        yield


def run_one_subprocess(
    scenario: str, database: str, size: str, url: str, *, smoke: bool = False
) -> list[dict] | None:
    """Run one scenario module in a fresh interpreter; its results, or None if it failed.

    Each result records the company size, the commit and the time it was measured at:
    the JSON keeps results of earlier runs, so rows may come from different runs.
    """
    command = [sys.executable, "-m", "tests.benchmarks.run", "--one", scenario]
    command += ["--database", database, "--size-label", size, "--database-url", url]
    env = {**os.environ, **CHILD_ENV, **(SMOKE_ENV if smoke else {}), "DATABASE_URL": url}
    started = time.monotonic()
    done = subprocess.run(command, env=env, cwd=ROOT, stdout=subprocess.PIPE, text=True)
    log(f"{scenario} on {database}: {time.monotonic() - started:.0f} s")
    if done.returncode != 0:
        log(f"{scenario} on {database} failed (exit {done.returncode})")
        return None
    try:
        results = json.loads(done.stdout)
    except ValueError:
        log(f"{scenario} on {database}: its output is not JSON: {done.stdout[-300:]!r}")
        return None
    found = machine()
    stamp = {"size": size, "commit": found["commit"], "measured_at": found["measured_at"]}
    return [{**result, **stamp} for result in results]


def run_one(scenario: str, database: str, size: str, url: str) -> None:
    """Child process: set Django up on ``url``, run the module, print its results as JSON."""
    os.environ["DATABASE_URL"] = url
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    for key, value in CHILD_ENV.items():
        os.environ.setdefault(key, value)
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()
    from django.conf import settings

    settings.DEBUG = False  # no query log: production behaviour, no memory growth
    logging.getLogger("django-q").setLevel(logging.WARNING)  # one line per queued task
    module = importlib.import_module(f"tests.benchmarks.{SCENARIOS[scenario]}")
    results = module.run(database=database, size=size)
    print(json.dumps([result.as_dict() for result in results]))


def machine() -> dict:
    model = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        commit = ""
    import sqlite3

    return {
        "machine": platform.machine(),
        "cpu": model,
        "cpu_count": os.cpu_count(),
        "python": platform.python_version(),
        "sqlite": sqlite3.sqlite_version,
        "commit": commit,
        "measured_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }


# --------------------------------------------------------------------------- the table


def _seconds(value: float) -> str:
    if value < 1:
        return f"{value * 1000:.1f} ms"
    return f"{value:.2f} s"


def _rate(value: float) -> str:
    return f"{value / 1000:.1f}k/s" if value >= 1000 else f"{value:.0f}/s"


def _side(side: dict) -> str:
    low, high = side["spread"]
    text = f"{_seconds(side['median'])} ({_seconds(low)}–{_seconds(high)})"
    if side.get("rate"):
        slow, fast = side["rate_spread"]
        text += f"<br>{_rate(side['rate'])} ({_rate(slow)}–{_rate(fast)})"
    return text


def table(meta: dict, results: list[dict]) -> str:
    lines = [
        BEGIN,
        f"Scenarios of issue 8 on {meta['cpu_count']} CPUs ({meta['cpu'] or meta['machine']}), "
        f"Python {meta['python']}, SQLite {meta['sqlite']}, PostgreSQL 15; table written "
        f"{meta['measured_at']}. Regenerate with `make bench` "
        "(`python -m tests.benchmarks.run --help`); each row says which company, commit "
        "and time it was measured at.",
        "",
        "Each row: our path and its reference run alternately in one process (warm-up, then "
        "ABAB pairs); time as median (min–max), rates at the median; ratio as the "
        "comparison reads it; CPU = median CPU seconds of this process per run; peak = "
        "largest RSS growth during a run.",
        "",
        "| # | scenario | db | ours | reference | ratio (bound) | CPU s ours / ref "
        "| peak MB ours / ref | target | verdict | company · commit · measured |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    itemised: dict[tuple[str, str], list[dict]] = {}
    for row in results:
        if "item" in row.get("extra", {}):
            itemised.setdefault((row["scenario"], row["database"]), []).append(row)
    # A few items (B5's two audiences) read best as rows of the main table.
    itemised = {key: rows for key, rows in itemised.items() if len(rows) > ITEM_TABLE_FROM}
    whole = [row for row in results if (row["scenario"], row["database"]) not in itemised]
    for row in results:  # already in scenario order (see write)
        key = (row["scenario"], row["database"])
        if key in itemised:
            if row is itemised[key][0]:
                lines.append(_summary_row(*key, itemised[key]))
            continue
        ours, ref = row["ours"], row["reference"]
        lines.append(
            f"| {row['scenario']} | {row['name']} | {row['database']} | {_side(ours)} "
            f"| {row['reference_label']}: {_side(ref)} | {row['ratio']:.3f} "
            f"({row['comparison']}) | {ours['cpu_median']:.2f} / {ref['cpu_median']:.2f} "
            f"| {ours['peak_rss_mb']:.0f} / {ref['peak_rss_mb']:.0f} | {row['target']} "
            f"| {_verdict(row['met'])} | {_provenance(row)} |"
        )
    noted = [row for row in whole if row.get("notes")]
    if noted:
        lines += ["", "Notes:", ""]
        lines += [f"- **{r['scenario']} {r['database']}**: {r['notes']}" for r in noted]
    missed = sorted(
        {row["scenario"] for row in results if not row["met"]}, key=list(SCENARIOS).index
    )
    for scenario in missed:
        why = _analysis(scenario)
        if why:
            lines += ["", f"Why {scenario} misses, and what would close it: {why}"]
    for scenario in dict.fromkeys(scenario for scenario, _ in itemised):
        lines += _item_table(
            scenario, [r for (s, _), rs in itemised.items() if s == scenario for r in rs]
        )
    skipped = meta.get("skipped") or []
    if skipped:
        lines += ["", f"Not measured (module not written yet): {', '.join(skipped)}."]
    lines.append(END)
    return "\n".join(lines)


def _verdict(met: bool) -> str:
    return "met" if met else "**missed**"


def _summary_row(scenario: str, database: str, rows: list[dict]) -> str:
    """One line of the main table for a scenario measured item by item (B4 pages, B8 figures)."""
    # The worst of the items that missed (a met rollup lag of 27 s is no page's p95).
    missed = [row for row in rows if not row["met"]]
    label = "worst missed p95" if missed else "worst p95"
    pool = missed or rows
    worst = max(pool, key=lambda row: row["ours"]["p95"])
    worst_ratio = max(pool, key=lambda row: row["ratio"])
    met = sum(row["met"] for row in rows)
    first = rows[0]
    return (
        f"| {scenario} | {first['name'].split(':')[0]}: {len(rows)} items (table below) "
        f"| {database} | {label} {_seconds(worst['ours']['p95'])} "
        f"({worst['extra']['item']}) | {first['reference_label']} "
        f"| worst {worst_ratio['ratio']:.3f} ({worst_ratio['extra']['item']}; "
        f"{first['comparison']}) | — | {max(r['ours']['peak_rss_mb'] for r in rows):.0f} / — "
        f"| {first['target']} | {_verdict(met == len(rows))}: {met} of {len(rows)} met "
        f"| {_provenance(first)} |"
    )


def _item_table(scenario: str, rows: list[dict]) -> list[str]:
    """The per-item table of one scenario: one line per item and database."""
    lines = [
        "",
        f"{scenario}, item by item:",
        "",
        "| item | db | ours median / p95 | reference median / p95 | ratio | details | verdict "
        "| notes |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for row in sorted(rows, key=lambda row: (row["extra"]["item"], row["database"])):
        ours, ref = row["ours"], row["reference"]
        details = ", ".join(
            f"{key} {value:.1f}" if isinstance(value, float) else f"{key} {value}"
            for key, value in row["extra"].items()
            if key != "item"
        )
        lines.append(
            f"| {row['extra']['item']} | {row['database']} "
            f"| {_seconds(ours['median'])} / {_seconds(ours['p95'])} "
            f"| {_seconds(ref['median'])} / {_seconds(ref['p95'])} | {row['ratio']:.3f} "
            f"| {details} | {_verdict(row['met'])} | {row.get('notes', '')} |"
        )
    return lines


def _provenance(row: dict) -> str:
    """Which company, commit and time a row was measured at (rows of older runs lack it)."""
    parts = [row.get("size", "?"), f"`{row['commit']}`" if row.get("commit") else "?"]
    return " · ".join([*parts, row.get("measured_at", "?")[:16].replace("T", " ")])


def _analysis(scenario: str) -> str:
    """The scenario module's ``MISSES`` text: the profile of a miss and the plan."""
    try:
        module = importlib.import_module(f"tests.benchmarks.{SCENARIOS[scenario]}")
    except ImportError:
        return ""
    return " ".join(getattr(module, "MISSES", "").split())


def write(meta: dict, results: list[dict]) -> None:
    order = {key: index for index, key in enumerate(SCENARIOS)}
    results.sort(
        key=lambda r: (
            order.get(r["scenario"], 99),
            DATABASES.index(r["database"]),
            r.get("extra", {}).get("rows", 0),
            r["name"],
        )
    )
    JSON_OUT.parent.mkdir(parents=True, exist_ok=True)
    JSON_OUT.write_text(json.dumps({"meta": meta, "results": results}, indent=2) + "\n")
    text = MARKDOWN_OUT.read_text() if MARKDOWN_OUT.exists() else "# Benchmarks\n"
    block = table(meta, results)
    if BEGIN in text:
        text = text[: text.index(BEGIN)] + block + text[text.index(END) + len(END) :]
    else:
        text = f"{text.rstrip()}\n\n## Scenarios (issue 8)\n\n{block}\n"
    MARKDOWN_OUT.write_text(text)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database", action="append", choices=DATABASES)
    parser.add_argument("--size", choices=SIZES, help="the company (default: large)")
    parser.add_argument("--scenario", action="append", choices=list(SCENARIOS))
    parser.add_argument(
        "--table-only", action="store_true", help="only rewrite the table from the JSON"
    )
    parser.add_argument(
        "--smoke",
        action="store_true",
        help=f"check that every scenario runs, on the {SMOKE_SIZE} company, scaled down; "
        f"results to {SMOKE_OUT.relative_to(ROOT)}, docs/benchmarks/ untouched",
    )
    parser.add_argument("--one", choices=list(SCENARIOS), help=argparse.SUPPRESS)
    parser.add_argument(
        "--database-url",
        help="measure this database instead of the seeded company (with one --database)",
    )
    parser.add_argument(
        "--size-label",
        help="what to call the company of --database-url (default: its name; a scenario's "
        "own process gets the company's label here)",
    )
    args = parser.parse_args()
    databases = args.database or list(DATABASES)
    if args.one:
        run_one(args.one, databases[0], args.size_label, args.database_url)
        return
    if args.smoke and (args.size or args.table_only):
        parser.error(f"--smoke always runs on the {SMOKE_SIZE} company and writes no table")
    if args.database_url and len(databases) != 1:
        parser.error("--database-url needs exactly one --database")
    if args.table_only:
        with exclusive("results"):
            stored = json.loads(JSON_OUT.read_text())
            write(stored["meta"], stored["results"])
        return
    size = SMOKE_SIZE if args.smoke else args.size or "large"
    scenarios = args.scenario or list(SCENARIOS)
    skipped = [s for s in scenarios if not module_exists(s)]
    for scenario in skipped:
        log(f"{scenario}: tests/benchmarks/{SCENARIOS[scenario]}.py not written yet, skipped")
    wanted = [s for s in scenarios if s not in skipped]
    failed: list[str] = []
    if args.smoke:  # every module is written: a missing one was lost
        failed += [f"{s}: tests/benchmarks/{SCENARIOS[s]}.py is missing" for s in skipped]
    smoked: list[dict] = []
    for database in databases:
        if args.database_url:
            url = args.database_url
            label = args.size_label or url.rstrip("/").rsplit("/", 1)[-1]
        else:
            url, label = company(database, size)
        for scenario in wanted:
            log(f"== {scenario} ({SCENARIOS[scenario]}) on {database}, {label}")
            with exclusive("measure"):
                found = run_one_subprocess(scenario, database, label, url, smoke=args.smoke)
            if args.smoke:
                problems = smoke_problems(scenario, database, found)
                smoked += found or []
                failed += [f"{scenario} {database}: {problem}" for problem in problems]
            elif found is None:
                failed.append(f"{scenario} {database}")
            else:
                merge(found, skipped=skipped)
    if args.smoke:
        SMOKE_OUT.parent.mkdir(parents=True, exist_ok=True)
        meta = {**machine(), "skipped": skipped, "failed": failed}
        SMOKE_OUT.write_text(json.dumps({"meta": meta, "results": smoked}, indent=2) + "\n")
        log(f"smoke run: wrote {SMOKE_OUT.relative_to(ROOT)}")
    if failed:
        sys.exit("failed: " + "; ".join(failed))


def smoke_problems(scenario: str, database: str, results: list[dict] | None) -> list[str]:
    """What is wrong with one scenario's results in a smoke run (empty: nothing).

    Speed is not judged: every row must carry the fields of ``Result.as_dict`` (both sides
    those of ``Measure.as_dict``, with at least one run) and the table must render them.
    """
    if results is None:
        return ["the scenario failed (see its output above)"]
    if not results:
        return ["no results"]
    fields = {field.name for field in dataclasses.fields(Result)}
    side_fields = set(Measure(seconds=[1.0], cpu_seconds=[0.0], peak_rss_mb=0.0).as_dict())
    problems = []
    for number, row in enumerate(results, 1):
        where = f"result {number} ({row.get('name', '?')})"
        if missing := sorted(fields - set(row)):
            problems.append(f"{where} lacks {', '.join(missing)}")
        if (row.get("scenario"), row.get("database")) != (scenario, database):
            problems.append(f"{where} is labelled {row.get('scenario')} {row.get('database')}")
        for side in ("ours", "reference"):
            data = row.get(side)
            if not isinstance(data, dict):
                continue  # reported as missing above
            if missing := sorted(side_fields - set(data)):
                problems.append(f"{where}: {side} lacks {', '.join(missing)}")
            elif not data["seconds"]:
                problems.append(f"{where}: {side} has no runs")
    if not problems:
        try:
            table(machine(), results)
        except Exception as exc:  # whatever breaks the table is the finding
            problems.append(f"the table cannot show its results: {exc!r}")
    return problems


def merge(results: list[dict], *, skipped: list[str]) -> None:
    """Replace the stored rows of the scenarios and databases just measured, keep the rest."""
    with exclusive("results"):
        previous = json.loads(JSON_OUT.read_text()) if JSON_OUT.exists() else {}
        measured = {(r["scenario"], r["database"]) for r in results}
        kept = [
            row
            for row in previous.get("results", [])
            if (row["scenario"], row["database"]) not in measured
        ]
        write({**machine(), "skipped": skipped}, kept + results)
    log(f"wrote {JSON_OUT.relative_to(ROOT)} and {MARKDOWN_OUT.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
