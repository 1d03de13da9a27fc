"""The benchmark companies: the demo company of a size, seeded once per database and reused.

``company_url(engine, size)`` answers the ``DATABASE_URL`` of a database holding the demo
company of that size (``config.demo.seed.SIZES``; issue 8 measures ``large``: 1M customers,
about 10M events and 1M orders). It is called before ``django.setup()``: the seeding runs
in a subprocess (``manage.py migrate`` then ``manage.py seed_demo --size``) against a
*building* database — ``.bench/<size>.sqlite3.building`` or ``circle_bench_<size>_building``
— that is renamed to its final name only once seeding succeeded, so a database under the
final name is always complete and an interrupted build is simply started again. A company
found cached is first migrated to the code's migrations. A lock
file in ``.bench`` lets one process build while the others wait and then reuse it. Delete
``.bench/<size>.sqlite3`` or drop ``circle_bench_<size>`` to seed afresh.

Run ``python -m tests.benchmarks.company --database sqlite --size medium`` to build one ahead.
"""

from __future__ import annotations

import argparse
import fcntl
import json
import os
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
BENCH_DIR = ROOT / ".bench"
ENGINES = ("sqlite", "postgresql")
PG_SERVER = os.environ.get("BENCH_PG_SERVER", "postgres://circle:circle-ci@127.0.0.1:5432")
PG_PREFIX = "circle_bench_"
POLL_SECONDS = 10
STALE_SECONDS = 300  # a building database untouched this long was abandoned


def company_url(engine: str, size: str = "large") -> str:
    """The URL of the ``size`` demo company on ``engine``, seeding it first when missing."""
    if engine == "sqlite":
        return _sqlite_company(size)
    if engine == "postgresql":
        return _postgresql_company(size)
    raise ValueError(f"unknown engine {engine!r}: expected one of {ENGINES}")


def company_info(engine: str, size: str) -> dict:
    """What the build of that company recorded (seconds per stage, row counts), if known."""
    path = BENCH_DIR / f"{engine}-{size}.json"
    return json.loads(path.read_text()) if path.exists() else {}


def _sqlite_company(size: str) -> str:
    final = BENCH_DIR / f"{size}.sqlite3"
    building = final.with_name(final.name + ".building")
    with _build_lock("sqlite", size):
        while not final.exists() and _recently_written(building):
            time.sleep(POLL_SECONDS)  # another process, holding no lock, is building it
        if final.exists():
            _migrate(_sqlite_url(final))
            return _sqlite_url(final)
        _remove_sqlite(building)
        _seed("sqlite", size, _sqlite_url(building))
        # Fold the write-ahead log in, so the one file under its final name is the database.
        db = sqlite3.connect(building)
        db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        db.close()
        building.rename(final)
        _remove_sqlite(building)
    return _sqlite_url(final)


def _recently_written(path: Path) -> bool:
    """Whether a build is under way there: its database or its write-ahead log just moved."""
    paths = [path, path.with_name(path.name + "-wal")]
    return any(p.exists() and time.time() - p.stat().st_mtime < STALE_SECONDS for p in paths)


@contextmanager
def _build_lock(engine: str, size: str) -> Iterator[None]:
    """One builder per company: a second caller waits for the first, then reuses its work."""
    BENCH_DIR.mkdir(exist_ok=True)
    with open(BENCH_DIR / f"{engine}-{size}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _sqlite_url(path: Path) -> str:
    return f"sqlite:///{path}"


def _remove_sqlite(path: Path) -> None:
    for suffix in ("", "-wal", "-shm", "-journal"):
        path.with_name(path.name + suffix).unlink(missing_ok=True)


def _postgresql_company(size: str) -> str:
    import psycopg

    final, building = f"{PG_PREFIX}{size}", f"{PG_PREFIX}{size}_building"
    with (
        _build_lock("postgresql", size),
        psycopg.connect(f"{PG_SERVER}/postgres", autocommit=True) as server,
    ):
        while True:
            present = {
                name
                for (name,) in server.execute(
                    "SELECT datname FROM pg_database WHERE datname = ANY(%s)", [[final, building]]
                )
            }
            if final in present:
                _migrate(f"{PG_SERVER}/{final}")
                return f"{PG_SERVER}/{final}"
            busy = server.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = %s", [building]
            ).fetchone()[0]
            if not busy:
                break
            time.sleep(POLL_SECONDS)  # another process, holding no lock, is building it
        if building in present:
            server.execute(f'DROP DATABASE "{building}" WITH (FORCE)')
        server.execute(f'CREATE DATABASE "{building}"')
        _seed("postgresql", size, f"{PG_SERVER}/{building}")
        server.execute(f'ALTER DATABASE "{building}" RENAME TO "{final}"')
    return f"{PG_SERVER}/{final}"


def _migrate(url: str) -> None:
    """Bring a cached company up to the code's migrations (nothing to do takes a second)."""
    env = {**os.environ, "DATABASE_URL": url, "DJANGO_SETTINGS_MODULE": "config.settings"}
    command = [sys.executable, str(ROOT / "manage.py"), "migrate", "--no-input", "-v", "0"]
    subprocess.run(command, env=env, cwd=ROOT, check=True)


def _seed(engine: str, size: str, url: str) -> None:
    """Migrate and seed in a fresh process, printing the time; raise when either fails."""
    BENCH_DIR.mkdir(exist_ok=True)
    env = {**os.environ, "DATABASE_URL": url, "DJANGO_SETTINGS_MODULE": "config.settings"}
    manage = [sys.executable, str(ROOT / "manage.py")]
    print(f"Seeding the {size} demo company on {engine} (once; it is reused afterwards)…")
    started = time.monotonic()
    subprocess.run([*manage, "migrate", "--no-input", "-v", "0"], env=env, cwd=ROOT, check=True)
    migrated = time.monotonic()
    seeded = subprocess.run(
        [*manage, "seed_demo", "--size", size],
        env=env,
        cwd=ROOT,
        check=True,
        stdout=subprocess.PIPE,
        text=True,
    )
    print(seeded.stdout, end="")
    done = time.monotonic()
    print(
        f"The {size} company on {engine}: migrated in {migrated - started:.1f} s, "
        f"seeded in {done - migrated:.1f} s."
    )
    info = {
        "engine": engine,
        "size": size,
        "migrate_seconds": round(migrated - started, 1),
        "seed_seconds": round(done - migrated, 1),
        "seed_output": seeded.stdout,
        "built_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
    (BENCH_DIR / f"{engine}-{size}.json").write_text(json.dumps(info, indent=2) + "\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database", choices=ENGINES, action="append")
    parser.add_argument("--size", default="large")
    args = parser.parse_args()
    for engine in args.database or ENGINES:
        print(company_url(engine, args.size))


if __name__ == "__main__":
    main()
