"""A slot missed while no cluster ran fires once when one comes back, even with two of them.

The cluster was down for three hours: the q2 schedules ``ensure_campaign_schedules``
installs (``catch_up`` off) are three hours overdue, and a recurring hourly campaign missed
three slots. The real q2 ``scheduler`` queues each schedule's task once (not 180 ticks),
the tick fires the campaign once (the oldest missed slot, the two later ones counted as
missed), every person gets one message at a provider-like receiver, and the next scheduler
pass and tick add nothing. Two processes running the scheduler and the tick at the same
moment (two clusters) still fire it once.
"""

from __future__ import annotations

import datetime as dt
import json
import subprocess
from pathlib import Path

import pytest
from django.utils import timezone
from django_q.brokers import get_broker
from django_q.models import OrmQ, Schedule
from django_q.scheduler import scheduler

from customers.models import Customer
from journeys.models import Campaign, CampaignRun, Enrollment
from journeys.tasks import (
    CAMPAIGN_TICK_SCHEDULE,
    RECONCILE_SCHEDULE,
    campaigns_tick,
    ensure_campaign_schedules,
)
from tests.faults.helpers import (
    BASE_DIR,
    SECRET,
    Database,
    environment,
    running_receiver,
    shell_command,
    webhook_campaign,
)

AUDIENCE = 20
DOWN_FOR = dt.timedelta(hours=3)


@pytest.fixture
def receiver():
    with running_receiver() as server:
        yield server


def hourly_campaign_down_since(url: str, down_since: dt.datetime) -> Campaign:
    """A recurring campaign at minute 0 of every hour whose next slot came during the downtime:
    the slots of the three hours since ``down_since`` were all missed."""
    campaign = webhook_campaign(url, name="Hourly")
    first_missed = down_since.replace(minute=0, second=0, microsecond=0) + dt.timedelta(hours=1)
    Campaign.objects.filter(pk=campaign.pk).update(
        kind=Campaign.Kind.RECURRING, cron="0 * * * *", next_run_at=first_missed
    )
    return campaign


def schedules_overdue_since(down_since: dt.datetime) -> None:
    ensure_campaign_schedules()
    Schedule.objects.filter(name__in=[CAMPAIGN_TICK_SCHEDULE, RECONCILE_SCHEDULE]).update(
        next_run=down_since
    )


SCHEDULED = ["journeys.tasks.campaigns_tick", "journeys.tasks.reconcile"]


def scheduled(payloads) -> list[str]:
    """The functions of the queued q2 tasks that come from the two schedules."""
    functions = (str(OrmQ(payload=payload).task.get("func")) for payload in payloads)
    return sorted(func for func in functions if func in SCHEDULED)


# Transactional: q2's scheduler closes a connection found inside a transaction, as the test
# transaction of a plain django_db test would be on PostgreSQL.
@pytest.mark.django_db(transaction=True)
def test_missed_slots_fire_once_when_the_scheduler_comes_back(receiver, settings):
    settings.WEBHOOK_SIGNING_SECRET = SECRET
    Customer.objects.bulk_create([Customer(given_name=f"p{i}") for i in range(AUDIENCE)])
    down_since = timezone.now() - DOWN_FOR
    campaign = hourly_campaign_down_since(receiver.url, down_since)
    schedules_overdue_since(down_since)
    broker = get_broker()

    scheduler(broker=broker)

    # One task per schedule, not one per missed minute.
    assert scheduled(OrmQ.objects.values_list("payload", flat=True)) == SCHEDULED
    assert Schedule.objects.filter(next_run__lte=timezone.now()).count() == 0
    OrmQ.objects.all().delete()  # the worker's part, done here: run the tick
    campaigns_tick()

    run = CampaignRun.objects.get(campaign=campaign)
    assert (run.enrolled, run.missed_slots) == (AUDIENCE, 2)
    assert Enrollment.objects.filter(campaign=campaign).count() == AUDIENCE
    assert len(receiver.keys) == AUDIENCE == receiver.raw
    campaign.refresh_from_db()
    assert campaign.next_run_at > timezone.now()

    scheduler(broker=broker)
    campaigns_tick()

    assert scheduled(OrmQ.objects.values_list("payload", flat=True)) == []
    assert CampaignRun.objects.filter(campaign=campaign).count() == 1
    assert Enrollment.objects.filter(campaign=campaign).count() == AUDIENCE
    assert receiver.raw == AUDIENCE


LOCKSTEP = """
import json, os, sys, time
from django_q.scheduler import scheduler
from journeys.scheduling import tick

def step(n):
    print(f"ready {n}", flush=True)
    while not os.path.exists(f"{GO}-{n}"):
        time.sleep(0.002)

step(1)
scheduler()
step(2)
print("=>" + json.dumps(tick().as_dict()), flush=True)
"""


def lockstep_scheduler_and_tick(db: Database, go: Path, processes: int) -> list[dict]:
    """Start ``processes`` shells; let them run the q2 scheduler at the same moment, then
    the campaign tick at the same moment; the tick reports."""
    code = f"GO = {str(go)!r}\n" + LOCKSTEP
    shells = [
        subprocess.Popen(
            shell_command(code),
            cwd=BASE_DIR,
            env=environment(db),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(processes)
    ]
    try:
        for n in (1, 2):
            for shell in shells:
                assert shell.stdout is not None
                line = ""
                while not line.startswith("ready"):
                    line = shell.stdout.readline()
                    if not line:
                        pytest.fail(shell.communicate(timeout=30)[1][-3000:])
                assert line.strip() == f"ready {n}"
            Path(f"{go}-{n}").touch()
        reports = []
        for shell in shells:
            out, err = shell.communicate(timeout=120)
            assert shell.returncode == 0, err[-3000:]
            reports += [json.loads(line[2:]) for line in out.splitlines() if line.startswith("=>")]
        return reports
    finally:
        for shell in shells:
            if shell.poll() is None:
                shell.kill()
                shell.wait()


@pytest.mark.django_db(transaction=True)
def test_two_clusters_coming_back_together_fire_the_missed_slot_once(receiver, tmp_path):
    Customer.objects.bulk_create([Customer(given_name=f"p{i}") for i in range(AUDIENCE)])
    down_since = timezone.now() - DOWN_FOR
    campaign = hourly_campaign_down_since(receiver.url, down_since)
    schedules_overdue_since(down_since)
    db = Database(tmp_path)
    db.publish()

    reports = lockstep_scheduler_and_tick(db, tmp_path / "go", processes=2)

    assert len(reports) == 2
    assert sorted(report["runs"] for report in reports) == [0, 1]
    queued = [payload for (payload,) in db.rows("SELECT payload FROM django_q_ormq")]
    assert scheduled(queued) == SCHEDULED  # the tick and reconcile schedules, once each
    runs = db.rows(
        f"SELECT enrolled, missed_slots FROM journeys_campaignrun WHERE campaign_id = {campaign.pk}"
    )
    assert runs == [(AUDIENCE, 2)]
    enrolled = db.rows(
        f"SELECT COUNT(*) FROM journeys_enrollment WHERE campaign_id = {campaign.pk}"
    )
    assert enrolled == [(AUDIENCE,)]
    deliveries = db.rows(
        "SELECT status, COUNT(*) FROM journeys_delivery "
        f"WHERE campaign_id = {campaign.pk} GROUP BY status"
    )
    assert deliveries == [("sent", AUDIENCE)]
    assert len(receiver.keys) == AUDIENCE == receiver.raw
