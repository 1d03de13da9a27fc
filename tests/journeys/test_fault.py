"""Kill the q2 cluster in the middle of a 10,000-recipient send: nothing lost, nothing twice.

A real ``manage.py qcluster`` (two workers) sends a webhook campaign to an HTTP receiver
running in this test, which behaves like a provider: it records every request and drops
repeats of an ``Idempotency-Key``. The cluster is SIGKILLed after some messages went out,
restarted, and the stuck deliveries are reconciled. Afterwards every recipient has exactly
one delivery, all sent, and the receiver holds exactly one message per delivery.

The test runs on the database of the test run (SQLite: the in-memory test database is
copied to a file with ``VACUUM INTO`` so that the cluster can open it; PostgreSQL: the test
database itself, which is why the test is transactional).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from django.db import connection
from django.utils import timezone

from customers.models import Customer
from journeys import engine
from journeys.models import Campaign, CampaignStep, Delivery, Variant
from tests.factories import DepartmentFactory

BASE_DIR = Path(__file__).resolve().parent.parent.parent
RECIPIENTS = 10_000
KILL_AFTER = 2_500
"""Raw requests the receiver has seen when the cluster is killed."""
DISPATCH_TASKS = 4
SECRET = "fault-test-signing-secret"


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


@pytest.fixture
def receiver():
    server = Receiver()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()


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
        """Make what this process wrote visible to the cluster."""
        if self.vendor == "sqlite":
            with connection.cursor() as cursor:
                cursor.execute("VACUUM INTO %s", [str(self.path)])

    def rows(self, sql: str) -> list[tuple]:
        if self.vendor == "sqlite":
            with sqlite3.connect(self.path, timeout=30) as db:
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


def manage_shell(db: Database, code: str) -> str:
    result = subprocess.run(
        [sys.executable, "manage.py", "shell", "-c", code],
        cwd=BASE_DIR,
        env=environment(db),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout


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


def kill_cluster(cluster: subprocess.Popen, sig: int = signal.SIGKILL) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(cluster.pid, sig)
    try:
        cluster.wait(timeout=20)
    except subprocess.TimeoutExpired:
        os.killpg(cluster.pid, signal.SIGKILL)
        cluster.wait(timeout=10)
    time.sleep(0.3)  # let the group's children go too


def wait_for(condition, timeout: float, what: str, log: Path) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.1)
    tail = log.read_text()[-3000:] if log.exists() else ""
    pytest.fail(f"timed out waiting for {what}\n--- cluster log ---\n{tail}")


def enqueue_dispatch(db: Database, campaign_id: int) -> None:
    manage_shell(
        db,
        "from django_q.tasks import async_task\n"
        f"for _ in range({DISPATCH_TASKS}):\n"
        f"    async_task('journeys.tasks.dispatch', [{campaign_id}])\n",
    )


def webhook_campaign(url: str) -> Campaign:
    campaign = Campaign.objects.create(
        owner_department=DepartmentFactory(),
        name="Fault test",
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


@pytest.mark.django_db(transaction=True)
def test_killed_cluster_mid_send_leaves_no_duplicate_and_no_missing_delivery(
    receiver, tmp_path, capsys
):
    Customer.objects.bulk_create(
        [Customer(given_name=f"p{i}") for i in range(RECIPIENTS)], batch_size=2000
    )
    campaign = webhook_campaign(receiver.url)
    now = timezone.now()
    enrolled = engine.enroll_audience(
        campaign=campaign, customers=Customer.objects.all(), occurrence="r1", entered_at=now
    )
    assert enrolled == RECIPIENTS
    engine.enrollments_advance(now=now, campaign_ids=[campaign.pk])
    assert Delivery.objects.filter(campaign=campaign, status="pending").count() == RECIPIENTS
    db = Database(tmp_path)
    db.publish()
    log = tmp_path / "qcluster.log"

    enqueue_dispatch(db, campaign.pk)
    cluster = start_cluster(db, log)
    try:
        wait_for(lambda: receiver.raw >= KILL_AFTER, 60, f"{KILL_AFTER} requests", log)
        kill_cluster(cluster)
        first_run = receiver.raw
        rate = first_run / max((receiver.last_at or 0) - (receiver.first_at or 0), 1e-3)
        at_kill = db.statuses(campaign.pk)
        assert 0 < at_kill.get("sent", 0) < RECIPIENTS, at_kill
        assert receiver.raw < RECIPIENTS

        cluster = start_cluster(db, log)
        enqueue_dispatch(db, campaign.pk)
        # The restarted cluster sends everything still pending; the rows the dead workers
        # had claimed stay "sending" until reconciled.
        stuck = at_kill.get("sending", 0)
        wait_for(
            lambda: (
                db.statuses(campaign.pk).get("sent", 0) >= RECIPIENTS - stuck
                and "pending" not in db.statuses(campaign.pk)
            ),
            90,
            "the restarted cluster to send the rest",
            log,
        )
        reconciled = manage_shell(
            db,
            "import datetime as dt\n"
            "from journeys.engine import deliveries_reconcile\n"
            "print(deliveries_reconcile(older_than=dt.timedelta(0)))\n",
        )
    finally:
        kill_cluster(cluster, signal.SIGTERM)

    assert int(reconciled.strip().splitlines()[-1]) == stuck
    per_customer = db.rows(
        "SELECT customer_id, COUNT(*) FROM journeys_delivery "
        f"WHERE campaign_id = {campaign.pk} GROUP BY customer_id HAVING COUNT(*) <> 1"
    )
    assert per_customer == []  # no duplicate delivery
    assert db.statuses(campaign.pk) == {"sent": RECIPIENTS}  # none missing, none stuck
    delivery_ids = {
        pk
        for (pk,) in db.rows(f"SELECT id FROM journeys_delivery WHERE campaign_id = {campaign.pk}")
    }
    keys = set(receiver.keys)
    assert keys == {f"delivery-{pk}" for pk in delivery_ids}  # 0 missing, 0 extra
    assert {body["delivery_id"] for body in receiver.keys.values()} == delivery_ids
    deduplicated = receiver.raw - len(keys)
    with capsys.disabled():
        print(
            f"\n[fault {db.vendor}] killed after {first_run} requests "
            f"({at_kill.get('sent', 0)} marked sent, {stuck} stuck sending; "
            f"{rate:.0f} msg/s before the kill); reconciled {stuck}; "
            f"receiver: {receiver.raw} requests, {len(keys)} unique keys, "
            f"{deduplicated} re-sends deduplicated"
        )
    assert deduplicated >= 0
    assert dt.timedelta(0) <= timezone.now() - now
