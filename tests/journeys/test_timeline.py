"""Circle ③'s timeline sources: campaign messages and staff tasks a customer received."""

from __future__ import annotations

import datetime as dt

import pytest
from django.utils import translation

from customers.timeline import TimelineFilters, timeline_page
from journeys.models import Delivery, StaffTask
from journeys.timeline import deliveries_fetch, tasks_fetch
from tests.factories import (
    CampaignFactory,
    CampaignStepFactory,
    CustomerFactory,
    DeliveryFactory,
    TouchpointFactory,
)

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def english():
    """Entries are worded in the active language; another test may have left Japanese on."""
    with translation.override("en"):
        yield


T0 = dt.datetime(2026, 3, 1, 9, 0, tzinfo=dt.UTC)


def test_deliveries_and_tasks_merge_newest_first(crm, crm_viewer):
    customer = CustomerFactory()
    campaign = CampaignFactory(owner_department=crm, name="Spring bouquet", channel="email")
    delivery = DeliveryFactory(customer=customer, step=CampaignStepFactory(campaign=campaign))
    task = StaffTask.objects.create(customer=customer, campaign=campaign, title="Call about spring")
    Delivery.objects.filter(pk=delivery.pk).update(created_at=T0)
    StaffTask.objects.filter(pk=task.pk).update(created_at=T0 + dt.timedelta(hours=1))

    entries, _cursor = timeline_page(
        customer.pk,
        filters=TimelineFilters(viewer=crm_viewer, sources=frozenset({"deliveries", "tasks"})),
    )

    assert [(entry.source, entry.title) for entry in entries] == [
        ("tasks", "Call about spring"),
        ("deliveries", "Spring bouquet"),
    ]
    assert entries[1].channel == "email"
    assert entries[1].department == "CRM & digital"


def test_other_departments_campaign_names_are_hidden_but_the_message_is_listed(sales, crm_viewer):
    customer = CustomerFactory()
    campaign = CampaignFactory(owner_department=sales, name="Secret sales push")
    DeliveryFactory(customer=customer, step=CampaignStepFactory(campaign=campaign, name="Hi"))
    StaffTask.objects.create(customer=customer, campaign=campaign, title="Secret call")
    filters = TimelineFilters(viewer=crm_viewer)

    deliveries = deliveries_fetch(customer.pk, before=None, limit=10, filters=filters)
    tasks = tasks_fetch(customer.pk, before=None, limit=10, filters=filters)

    assert deliveries[0].title == "A campaign of Sales planning"
    assert "Hi" not in deliveries[0].detail
    assert tasks[0].title == "A staff task of Sales planning"


def test_filters_by_channel_and_department(crm, sales, crm_viewer):
    customer = CustomerFactory()
    email = CampaignFactory(owner_department=crm, channel="email")
    line = CampaignFactory(owner_department=sales, channel="line")
    DeliveryFactory(customer=customer, step=CampaignStepFactory(campaign=email))
    by_line = DeliveryFactory(customer=customer, step=CampaignStepFactory(campaign=line))
    store = TouchpointFactory(owner_department=sales, channel="store", kind="offline")
    in_store = StaffTask.objects.create(customer=customer, store=store, title="Visit")
    StaffTask.objects.create(customer=customer, campaign=email, title="Call")

    assert [
        entry.id
        for entry in deliveries_fetch(
            customer.pk, before=None, limit=10, filters=TimelineFilters(channel="line")
        )
    ] == [by_line.pk]
    assert [
        entry.id
        for entry in tasks_fetch(
            customer.pk, before=None, limit=10, filters=TimelineFilters(channel="store")
        )
    ] == [in_store.pk]
    assert [
        entry.id
        for entry in tasks_fetch(
            customer.pk, before=None, limit=10, filters=TimelineFilters(department_id=sales.pk)
        )
    ] == [in_store.pk]


def test_task_pages_have_no_repeats_with_tied_timestamps(crm_viewer):
    customer = CustomerFactory()
    tasks = StaffTask.objects.bulk_create(
        StaffTask(customer=customer, title=f"Task {index}") for index in range(5)
    )
    StaffTask.objects.filter(pk__in=[task.pk for task in tasks]).update(created_at=T0)
    filters = TimelineFilters(viewer=crm_viewer, sources=frozenset({"tasks"}))

    seen, before = [], None
    while True:
        entries, before = timeline_page(customer.pk, before=before, limit=2, filters=filters)
        seen.extend(entry.id for entry in entries)
        if before is None:
            break

    assert sorted(seen) == sorted(task.pk for task in tasks)
    assert len(seen) == 5
