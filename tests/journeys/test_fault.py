"""Kill the q2 cluster in the middle of a 3,000-recipient send: nothing lost, nothing twice.

A real ``manage.py qcluster`` (two workers) sends a webhook campaign to an HTTP receiver
running in this test, which behaves like a provider: it records every request and drops
repeats of an ``Idempotency-Key``. The cluster is SIGKILLed after some messages went out,
restarted, and the stuck deliveries are reconciled. Afterwards every recipient has exactly
one delivery, all sent, and the receiver holds exactly one message per delivery. (Random
kill points and two clusters: tests/faults/test_send_kill.py.)

The test runs on the database of the test run (SQLite: the in-memory test database is
copied to a file with ``VACUUM INTO`` so that the cluster can open it; PostgreSQL: the test
database itself, which is why the test is transactional).
"""

from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone

from customers.models import Customer
from journeys import engine
from journeys.models import Delivery
from tests.faults.helpers import (
    RECONCILE_CODE,
    Database,
    Shell,
    dispatch_code,
    kill_cluster,
    running_receiver,
    start_cluster,
    wait_for,
    webhook_campaign,
)

RECIPIENTS = 3_000
KILL_AFTER = 750
"""Raw requests the receiver has seen when the cluster is killed."""
DISPATCH_TASKS = 4


@pytest.fixture
def receiver():
    with running_receiver() as server:
        yield server


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

    shell = Shell(db)
    shell.run(dispatch_code(campaign.pk, DISPATCH_TASKS))
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
        shell.run(dispatch_code(campaign.pk, DISPATCH_TASKS))
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
        reconciled = shell.run(RECONCILE_CODE)
    finally:
        shell.close()
        kill_cluster(cluster)  # idle by now; SIGTERM would wait for its guard loop

    assert reconciled == stuck
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
