"""Two q2 clusters sending one campaign, SIGKILLed at random points: nothing lost, nothing twice.

Two real ``manage.py qcluster`` processes (two workers each) share the database and the
ORM broker and send webhook campaigns to a provider-like receiver that drops repeats of an
``Idempotency-Key``. In each run one cluster, the other or both are SIGKILLed once the
receiver has seen a random number of the run's messages; the dead ones are restarted,
dispatch is queued again, and ``deliveries_reconcile`` settles what the dead workers left
``sending``. After every run each recipient has exactly one delivery, all sent, and the
receiver holds exactly one message per delivery and never two for one person.

The kill points come from ``random.Random(seed)``; the seed is in every failure message
(``FAULT_SEED=<seed>`` replays the same plan).
"""

from __future__ import annotations

import os
import random
import time
from dataclasses import dataclass

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

RUNS = 3
RECIPIENTS = 2_000
CLUSTERS = 2
TASKS = CLUSTERS
"""Dispatch tasks queued per run: each claims 500 rows at a time, so most of the audience
is still pending when the kill comes, for the restarted cluster to send."""
SEED = int(os.environ.get("FAULT_SEED") or random.SystemRandom().randrange(2**31))
SETTLED_FOR = 2.0
"""Seconds the delivery statuses must stay unchanged before the run counts as finished (a
live worker still sending then only races reconcile, which the claims make harmless)."""


@dataclass(frozen=True)
class KillPlan:
    run: int
    after: int
    """Messages of the run the receiver has seen when the kill happens."""
    victims: tuple[int, ...]

    def __str__(self) -> str:
        return (
            f"FAULT_SEED={SEED} run {self.run}: kill cluster(s) {list(self.victims)} "
            f"after {self.after} messages"
        )


def kill_plans(seed: int) -> list[KillPlan]:
    rng = random.Random(seed)
    return [
        KillPlan(
            run=run,
            after=rng.randint(RECIPIENTS // 20, RECIPIENTS * 3 // 5),
            victims=rng.choice([(0,), (1,), (0, 1)]),
        )
        for run in range(RUNS)
    ]


@pytest.fixture
def receiver():
    with running_receiver() as server:
        yield server


def settled(db: Database, campaign_id: int):
    """A condition: nothing pending, and the statuses unchanged for ``SETTLED_FOR`` s."""
    last: dict = {"statuses": None, "since": 0.0}

    def condition() -> bool:
        statuses = db.statuses(campaign_id)
        now = time.monotonic()
        if statuses != last["statuses"]:
            last.update(statuses=statuses, since=now)
            return False
        busy = "pending" in statuses or sum(statuses.values()) < RECIPIENTS
        return not busy and now - last["since"] >= SETTLED_FOR

    return condition


@pytest.mark.django_db(transaction=True)
def test_random_kills_of_two_clusters_lose_no_message_and_send_none_twice(
    receiver, tmp_path, capsys
):
    Customer.objects.bulk_create(
        [Customer(given_name=f"p{i}") for i in range(RECIPIENTS)], batch_size=2000
    )
    plans = kill_plans(SEED)
    now = timezone.now()
    campaigns = []
    for plan in plans:
        campaign = webhook_campaign(receiver.url, name=f"Kill run {plan.run}")
        engine.enroll_audience(
            campaign=campaign, customers=Customer.objects.all(), occurrence="r1", entered_at=now
        )
        campaigns.append(campaign)
    engine.enrollments_advance(now=now, campaign_ids=[c.pk for c in campaigns])
    assert Delivery.objects.filter(status="pending").count() == RECIPIENTS * RUNS
    db = Database(tmp_path)
    db.publish()
    log = tmp_path / "qcluster.log"
    notes = []

    clusters = [start_cluster(db, log) for _ in range(CLUSTERS)]
    shell = Shell(db)
    try:
        for plan, campaign in zip(plans, campaigns, strict=True):
            raw_before = receiver.raw
            started = time.monotonic()
            shell.run(dispatch_code(campaign.pk, TASKS))
            wait_for(
                lambda plan=plan, raw_before=raw_before: receiver.raw - raw_before >= plan.after,
                60,
                f"{plan.after} messages ({plan})",
                log,
            )
            for victim in plan.victims:
                kill_cluster(clusters[victim])
            at_kill = db.statuses(campaign.pk)
            raw_at_kill = receiver.raw - raw_before
            assert at_kill.get("sent", 0) < RECIPIENTS, f"{plan}: the kill came too late"
            for victim in plan.victims:
                clusters[victim] = start_cluster(db, log)
            shell.run(dispatch_code(campaign.pk, TASKS))
            wait_for(settled(db, campaign.pk), 90, f"the rest to be sent ({plan})", log)
            stuck = db.statuses(campaign.pk).get("sending", 0)
            reconciled = shell.run(RECONCILE_CODE)
            assert reconciled <= stuck, f"{plan}: reconciled {reconciled} of {stuck}"
            wait_for(
                lambda campaign=campaign: db.statuses(campaign.pk) == {"sent": RECIPIENTS},
                30,
                f"every delivery sent ({plan}): {db.statuses(campaign.pk)}",
                log,
            )

            deliveries = dict(
                db.rows(
                    "SELECT id, customer_id FROM journeys_delivery "
                    f"WHERE campaign_id = {campaign.pk}"
                )
            )
            assert len(deliveries) == RECIPIENTS, f"{plan}: {len(deliveries)} deliveries"
            assert len(set(deliveries.values())) == RECIPIENTS, f"{plan}: a second delivery"
            received = {
                key: body
                for key, body in receiver.keys.items()
                if body["campaign_id"] == campaign.pk
            }
            assert set(received) == {f"delivery-{pk}" for pk in deliveries}, str(plan)
            assert all(
                key == f"delivery-{body['delivery_id']}" for key, body in received.items()
            ), str(plan)
            people = [deliveries[body["delivery_id"]] for body in received.values()]
            assert len(people) == len(set(people)) == RECIPIENTS, f"{plan}: someone got two"
            repeats = receiver.raw - raw_before - len(received)
            assert repeats >= 0, str(plan)
            notes.append(
                f"run {plan.run}: killed {list(plan.victims)} after {raw_at_kill} messages "
                f"({at_kill.get('sent', 0)} marked sent, {at_kill.get('sending', 0)} sending), "
                f"reconciled {reconciled} of {stuck} left sending, "
                f"{repeats} repeats absorbed by the idempotency key; "
                f"{time.monotonic() - started:.1f} s"
            )
    finally:
        shell.close()
        for cluster in clusters:
            kill_cluster(cluster)

    with capsys.disabled():
        print(f"\n[send-kill {db.vendor}] FAULT_SEED={SEED}, {RUNS} runs × {RECIPIENTS}:")
        for note in notes:
            print("  " + note)
