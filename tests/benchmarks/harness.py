"""The measuring kit of the scenario benchmarks: ABAB runs of ours against a reference.

Absolute times on a shared 2-core machine are noisy, so every scenario times our
implementation and a reference doing the same work in the same process, alternately
(warm-up, then ours, reference, ours, reference … at least five pairs), and reads their
ratio next to the absolute target. Per run it records wall time, this process's CPU time
and the growth of resident memory above what the process held before the run (a thread
samples ``/proc/self/statm`` every 5 ms). Everything here is plain data: ``asdict`` of a
:class:`Result` is JSON.

In a smoke run (``run.py --smoke`` sets ``BENCH_SMOKE=1`` for each scenario's process)
every :func:`abab` runs one pair after its warm-up, whatever the scenario asks: the smoke
run checks that the code runs and its results are well formed, it measures nothing.
"""

from __future__ import annotations

import contextlib
import gc
import os
import signal
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

PAGE_MB = os.sysconf("SC_PAGE_SIZE") / 2**20
SAMPLE_SECONDS = 0.005
MIN_PAIRS = 5
SMOKE = os.environ.get("BENCH_SMOKE") == "1"


def log(message: str) -> None:
    """Progress on stderr (stdout carries a scenario's JSON results to the runner)."""
    print(message, file=sys.stderr, flush=True)


def start_qcluster(env: dict[str, str], stdout) -> subprocess.Popen:
    """A real ``manage.py qcluster`` in a session of its own (stop it with :func:`stop_group`)."""
    root = Path(__file__).resolve().parents[2]
    return subprocess.Popen(
        [sys.executable, str(root / "manage.py"), "qcluster"],
        cwd=root,
        env=env,
        stdout=stdout,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )


def stop_group(process: subprocess.Popen, *, timeout: float = 30.0) -> None:
    """Stop a child started in a session of its own (a ``manage.py qcluster``).

    SIGTERM goes to the child alone, which stops its own processes: django-q2's cluster
    hangs when its sentinel and workers get the signal too (``killpg``), so the caller used
    to wait the whole timeout. Whatever is left after ``timeout`` seconds is killed.
    """
    process.terminate()
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait()


def rss_mb() -> float:
    """Resident memory of this process now, in MB (``/proc/self/statm``, second field)."""
    with open("/proc/self/statm", "rb") as statm:
        return int(statm.read().split()[1]) * PAGE_MB


class PeakRss:
    """Context manager: the highest RSS growth (MB) above the RSS at entry, while inside."""

    def __init__(self, interval: float = SAMPLE_SECONDS) -> None:
        self.interval = interval
        self.growth = 0.0
        self._stop = threading.Event()

    def __enter__(self) -> PeakRss:
        self.base = rss_mb()
        self.peak = self.base
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def _sample(self) -> None:
        while not self._stop.wait(self.interval):
            self.peak = max(self.peak, rss_mb())

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, rss_mb())
        self.growth = self.peak - self.base


def _percentile(values: list[float], share: float) -> float:
    """Nearest-rank percentile (what the report-pages benchmark uses too)."""
    ordered = sorted(values)
    return ordered[max(0, round(share * len(ordered)) - 1)]


@dataclass
class Measure:
    """Runs of one side: wall and CPU seconds per run, peak RSS growth, items per run."""

    seconds: list[float]
    cpu_seconds: list[float]
    peak_rss_mb: float
    items: int | None = None

    @property
    def median(self) -> float:
        return statistics.median(self.seconds)

    @property
    def spread(self) -> tuple[float, float]:
        """(min, max) of the wall times: with 5–10 runs, percentiles would be min and max."""
        return min(self.seconds), max(self.seconds)

    @property
    def p95(self) -> float:
        return _percentile(self.seconds, 0.95)

    @property
    def cpu_median(self) -> float:
        return statistics.median(self.cpu_seconds)

    @property
    def rate(self) -> float | None:
        """Items per second at the median time (``None`` without an item count)."""
        return None if not self.items else self.items / self.median

    @property
    def rate_spread(self) -> tuple[float, float] | None:
        if not self.items:
            return None
        low, high = self.spread
        return self.items / high, self.items / low

    def as_dict(self) -> dict[str, Any]:
        """The stored runs plus the derived figures (for the JSON and the table)."""
        data = asdict(self)
        data.update(
            median=self.median,
            spread=list(self.spread),
            p95=self.p95,
            cpu_median=self.cpu_median,
            rate=self.rate,
            rate_spread=list(self.rate_spread) if self.rate_spread else None,
        )
        return data


@dataclass
class Result:
    """One scenario on one database: both sides, how their ratio is read, and the verdict."""

    scenario: str
    name: str
    database: str
    ours: Measure
    reference: Measure
    reference_label: str
    comparison: str
    ratio: float
    target: str
    met: bool
    notes: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["ours"] = self.ours.as_dict()
        data["reference"] = self.reference.as_dict()
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Result:
        known = {"seconds", "cpu_seconds", "peak_rss_mb", "items"}
        sides = {
            side: Measure(**{k: v for k, v in data[side].items() if k in known})
            for side in ("ours", "reference")
        }
        return cls(**{**data, **sides})


def time_ratio(ours: Measure, reference: Measure) -> float:
    """ours / reference median time: lower is better, 1.0 is the reference's speed."""
    return ours.median / reference.median


def rate_ratio(ours: Measure, reference: Measure) -> float:
    """ours / reference median rate: higher is better."""
    return (ours.rate or 0.0) / (reference.rate or float("inf"))


def _timed(call: Callable[[], int | None]) -> tuple[float, float, float, int | None]:
    gc.collect()
    with PeakRss() as memory:
        cpu = time.process_time()
        start = time.perf_counter()
        items = call()
        wall = time.perf_counter() - start
        cpu = time.process_time() - cpu
    return wall, cpu, memory.growth, items


def abab(
    ours: Callable[[], int | None],
    reference: Callable[[], int | None],
    *,
    pairs: int = MIN_PAIRS,
    warmup: int = 1,
    before_each: Callable[[], None] | None = None,
    log: Callable[[str], None] | None = None,
) -> tuple[Measure, Measure]:
    """Warm both up, then alternate ours and the reference ``pairs`` times.

    Each callable does one run and returns the number of items it handled (rows, events…)
    or ``None``; ``before_each`` (untimed) resets state before every run, warm-ups
    included, so each run does the same work. ``pairs`` below five is allowed only for
    runs too slow for the session; the report says so. A smoke run times one pair.
    """
    if SMOKE:
        pairs = 1
    runs: dict[str, list[tuple[float, float, float, int | None]]] = {"ours": [], "ref": []}
    sides = (("ours", ours), ("ref", reference))
    for _ in range(warmup):
        for _name, call in sides:
            if before_each is not None:
                before_each()
            call()
    for number in range(pairs):
        for name, call in sides:
            if before_each is not None:
                before_each()
            runs[name].append(_timed(call))
            if log is not None:
                wall, cpu, growth, items = runs[name][-1]
                log(
                    f"  pair {number + 1}/{pairs} {name:<4} {wall:8.3f} s  cpu {cpu:7.3f} s  "
                    f"+{growth:6.1f} MB  items {items}"
                )

    def measure(name: str) -> Measure:
        items = {run[3] for run in runs[name]}
        return Measure(
            seconds=[run[0] for run in runs[name]],
            cpu_seconds=[run[1] for run in runs[name]],
            peak_rss_mb=max(run[2] for run in runs[name]),
            items=items.pop() if len(items) == 1 else None,
        )

    return measure("ours"), measure("ref")


def replay(statements: list[str]) -> float:
    """Run captured SQL raw (every row fetched) in a transaction rolled back; its seconds.

    The reference of a page or a figure: exactly the statements it ran, without Django.
    """
    from django.db import connection, transaction

    start = time.perf_counter()
    with transaction.atomic():
        with connection.cursor() as cursor:
            for sql in statements:
                cursor.execute(sql)
                if cursor.description is not None:
                    cursor.fetchall()
        transaction.set_rollback(True)
    return time.perf_counter() - start
