"""What the fault tests share: a provider-like HTTP receiver, real q2 clusters, the database.

The clusters are real ``manage.py qcluster`` processes on the database of the test run:
on SQLite the in-memory test database is copied to a file with ``VACUUM INTO`` (the
processes open the file; the test reads the file back), on PostgreSQL it is the test
database itself, which is why such tests are transactional.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from django.db import connection

from journeys.models import Campaign, CampaignStep, Variant
from tests.factories import DepartmentFactory

BASE_DIR = Path(__file__).resolve().parent.parent.parent
SECRET = "fault-test-signing-secret"


# --------------------------------------------------------------------------- the receiver


class Receiver(ThreadingHTTPServer):
    """A provider endpoint: 200 for every request, messages kept once per Idempotency-Key."""

    daemon_threads = True
    request_queue_size = 256  # like a real endpoint: 8 concurrent senders never wait on SYN

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), ReceiverHandler)
        self.lock = threading.Lock()
        self.keys: dict[str, dict] = {}
        self.raw = 0
        self.first_at: float | None = None
        self.last_at: float | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/hook"


class ReceiverHandler(BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        key = self.headers.get("Idempotency-Key", "")
        server: Receiver = self.server  # type: ignore[assignment]
        with server.lock:
            server.raw += 1
            now = time.monotonic()
            server.first_at = server.first_at or now
            server.last_at = now
            if key and key not in server.keys:
                server.keys[key] = json.loads(body)
        self.send_response(200 if key else 400)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args) -> None:
        pass


@contextlib.contextmanager
def running_receiver() -> Iterator[Receiver]:
    """A :class:`Receiver` serving on 127.0.0.1 (a free port) while the block runs."""
    server = Receiver()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()


# --------------------------------------------------------------------------- the database


class Database:
    """The database the cluster works on, as seen from this process."""

    def __init__(self, tmp_path: Path) -> None:
        settings = connection.settings_dict
        self.vendor = connection.vendor
        if self.vendor == "sqlite":
            self.path = tmp_path / "fault.sqlite3"
            self.url = f"sqlite:///{self.path}"
        else:
            self.url = (
                f"postgres://{settings['USER']}:{settings['PASSWORD']}@{settings['HOST']}:"
                f"{settings['PORT'] or 5432}/{settings['NAME']}"
            )

    def publish(self) -> None:
        """Make what this process wrote visible to the cluster (SQLite: replaces the file)."""
        if self.vendor == "sqlite":
            self.path.unlink(missing_ok=True)
            with connection.cursor() as cursor:
                cursor.execute("VACUUM INTO %s", [str(self.path)])

    def rows(self, sql: str) -> list[tuple]:
        if self.vendor == "sqlite":
            with contextlib.closing(sqlite3.connect(self.path, timeout=30)) as db:
                return db.execute(sql).fetchall()
        with connection.cursor() as cursor:
            cursor.execute(sql)
            return cursor.fetchall()

    def statuses(self, campaign_id: int) -> dict[str, int]:
        return dict(
            self.rows(
                "SELECT status, COUNT(*) FROM journeys_delivery "
                f"WHERE campaign_id = {int(campaign_id)} GROUP BY status"
            )
        )


# --------------------------------------------------------------------------- processes


def environment(db: Database) -> dict[str, str]:
    return {
        **os.environ,
        "DATABASE_URL": db.url,
        "DJANGO_SETTINGS_MODULE": "config.settings",
        "Q2_WORKERS": "2",
        "Q2_SYNC": "false",
        "Q2_BROKER": "orm",
        "WEBHOOK_SIGNING_SECRET": SECRET,
        "WEBHOOK_ATTEMPTS": "3",
        "CAMPAIGN_TRANSPORT": "",
        "LOG_LEVEL": "WARNING",
        "PYTHONUNBUFFERED": "1",
    }


def shell_command(code: str) -> list[str]:
    return [sys.executable, "manage.py", "shell", "-c", code]


class Shell:
    """One long-lived ``manage.py shell`` on the cluster's database: Django starts once, then
    :meth:`run` executes code there (what it assigns to ``result`` comes back as JSON)."""

    LOOP = (
        "import json, sys, traceback\n"
        "for line in sys.stdin:\n"
        "    scope = {}\n"
        "    try:\n"
        "        exec(json.loads(line), scope)\n"
        "        print('=>' + json.dumps(scope.get('result')), flush=True)\n"
        "    except Exception:\n"
        "        print('=!' + json.dumps(traceback.format_exc()), flush=True)\n"
    )

    def __init__(self, db: Database) -> None:
        self.process = subprocess.Popen(
            shell_command(self.LOOP),
            cwd=BASE_DIR,
            env=environment(db),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )

    def run(self, code: str):
        assert self.process.stdin is not None
        assert self.process.stdout is not None
        self.process.stdin.write(json.dumps(code) + "\n")
        self.process.stdin.flush()
        for line in self.process.stdout:
            if line.startswith("=>"):
                return json.loads(line[2:])
            if line.startswith("=!"):
                pytest.fail("the shell failed:\n" + json.loads(line[2:]))
        pytest.fail(f"the shell ended (exit code {self.process.wait()})")

    def close(self) -> None:
        if self.process.stdin:
            self.process.stdin.close()
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def start_cluster(db: Database, log: Path) -> subprocess.Popen:
    with log.open("a") as out:
        return subprocess.Popen(
            [sys.executable, "manage.py", "qcluster"],
            cwd=BASE_DIR,
            env=environment(db),
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: one killpg reaches every worker
        )


def free_port() -> int:
    with contextlib.closing(socket.socket()) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def start_server(db: Database, log: Path) -> tuple[subprocess.Popen, str]:
    """A real ``manage.py runserver`` (threaded, no autoreload) on 127.0.0.1 over the
    database; returns the process (stop it with :func:`kill_cluster`) and its base URL."""
    port = free_port()
    with log.open("a") as out:
        server = subprocess.Popen(
            [sys.executable, "manage.py", "runserver", "--noreload", f"127.0.0.1:{port}"],
            cwd=BASE_DIR,
            env=environment(db),
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def listening() -> bool:
        with contextlib.closing(socket.socket()) as probe:
            return probe.connect_ex(("127.0.0.1", port)) == 0

    try:
        wait_for(listening, 60, "the server to listen", log)
    except BaseException:
        kill_cluster(server)
        raise
    return server, f"http://127.0.0.1:{port}"


def kill_cluster(cluster: subprocess.Popen, sig: int = signal.SIGKILL) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(cluster.pid, sig)
    try:
        cluster.wait(timeout=20)
    except subprocess.TimeoutExpired:
        os.killpg(cluster.pid, signal.SIGKILL)
        cluster.wait(timeout=10)
    time.sleep(0.3)  # let the group's children go too


def wait_for(condition: Callable[[], bool], timeout: float, what: str, log: Path) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.1)
    tail = log.read_text()[-3000:] if log.exists() else ""
    pytest.fail(f"timed out waiting for {what}\n--- cluster log ---\n{tail}")


def dispatch_code(campaign_id: int, tasks: int) -> str:
    """Code queueing ``tasks`` dispatch tasks of the campaign for the cluster(s)."""
    return (
        "from django_q.tasks import async_task\n"
        f"for _ in range({int(tasks)}):\n"
        f"    async_task('journeys.tasks.dispatch', [{int(campaign_id)}])\n"
    )


RECONCILE_CODE = (
    "import datetime as dt\n"
    "from journeys.engine import deliveries_reconcile\n"
    "result = deliveries_reconcile(older_than=dt.timedelta(0))\n"
)
"""Code for :meth:`Shell.run` settling every delivery left ``sending``; returns the count."""


# --------------------------------------------------------------------------- the campaign


def webhook_campaign(url: str, *, name: str = "Fault test") -> Campaign:
    """A running one-step webhook campaign (no holdout, no quiet hours) posting to ``url``."""
    campaign = Campaign.objects.create(
        owner_department=DepartmentFactory(),
        name=name,
        channel=Campaign.Channel.WEBHOOK,
        status=Campaign.Status.RUNNING,
        webhook_url=url,
        holdout_percent=0,
        respect_quiet_hours=False,
    )
    step = CampaignStep.objects.create(campaign=campaign, position=1)
    body = {"subject": "Hi {{ customer.first_name }}", "body": "A note for you."}
    Variant.objects.create(step=step, label="A", content={"ja": body, "en": body})
    return campaign
