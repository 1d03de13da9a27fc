"""The local stack: the web server and the django-q2 worker, started and stopped together.

Both run as child processes of the same interpreter and environment, each in its own process
group so that stopping one also stops the workers it forked. Ctrl-C or SIGTERM stops both;
if either dies on its own the other is stopped too and the exit code says so.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path

from django.conf import settings

MANAGE_PY = Path(settings.BASE_DIR) / "manage.py"
STOP_TIMEOUT = 15.0
POLL_SECONDS = 0.5


@dataclass
class Child:
    """One long-running ``manage.py`` process of the stack."""

    name: str
    process: subprocess.Popen
    stop_signal: signal.Signals

    @property
    def pid(self) -> int:
        return self.process.pid


def start_child(name: str, args: Sequence[str], stop_signal: signal.Signals) -> Child:
    """Run ``manage.py args`` with this interpreter and environment, in a new process group."""
    process = subprocess.Popen(
        [sys.executable, str(MANAGE_PY), *args],
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
        start_new_session=True,
    )
    return Child(name, process, stop_signal)


def stop_child(child: Child, timeout: float = STOP_TIMEOUT) -> None:
    """Ask the leader politely, wait, then kill its whole process group (forked workers too).

    Only the leader gets the polite signal: qcluster shuts its own workers down in order,
    and signalling them directly makes it wait for processes that are already gone.
    """
    if child.process.poll() is None:
        child.process.send_signal(child.stop_signal)
        try:
            child.process.wait(timeout)
        except subprocess.TimeoutExpired:
            _signal_group(child, signal.SIGKILL)
            child.process.wait()
    # Leftover grandchildren (q2 workers) must not outlive their cluster.
    _signal_group(child, signal.SIGKILL)


def _signal_group(child: Child, sig: signal.Signals) -> None:
    with suppress(ProcessLookupError, PermissionError):
        os.killpg(child.pid, sig)


@contextmanager
def _stop_requested_on_signals() -> Iterator[threading.Event]:
    """SIGINT and SIGTERM set an event instead of raising, so shutdown runs in one place."""
    requested = threading.Event()

    def request_stop(signum, frame) -> None:
        requested.set()

    previous = {sig: signal.signal(sig, request_stop) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield requested
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


def run_stack(*, addrport: str, log: Callable[[str], object] = print) -> int:
    """Run the task worker and the web server until a signal or until one of them exits.

    Returns 0 after a requested stop, otherwise the failed child's exit code (at least 1).
    """
    with _stop_requested_on_signals() as stop_requested:
        children = [
            start_child("task worker (qcluster)", ["qcluster"], signal.SIGTERM),
            start_child(
                "web server (runserver)", ["runserver", addrport, "--noreload"], signal.SIGINT
            ),
        ]
        for child in children:
            log(f"Started the {child.name}, pid {child.pid}.")
        failed = None
        while failed is None and not stop_requested.wait(POLL_SECONDS):
            failed = next((c for c in children if c.process.poll() is not None), None)
        if failed is not None:
            log(f"The {failed.name} exited with code {failed.process.returncode}; stopping.")
        else:
            log("Stopping the web server and the task worker…")
        for child in children:
            stop_child(child)
    return 0 if failed is None else failed.process.returncode or 1
