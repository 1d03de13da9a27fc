"""Scenario presets: each makes a valid bilingual draft; back in stock works end to end."""

from __future__ import annotations

import pytest
from django.core.exceptions import PermissionDenied, ValidationError

from config.org.models import Role
from customers.models import Segment
from experience.commerce import product_update
from experience.models import Event
from journeys.content import render_message
from journeys.models import Campaign, Delivery, Enrollment, Variant
from journeys.presets import PRESETS, preset_create
from journeys.services import campaign_approve, campaign_request_approval
from tests.factories import (
    CustomerFactory,
    EventTypeFactory,
    FavoriteFactory,
    ProductFactory,
    UserFactory,
)
from tests.journeys.test_scheduling import reachable

pytestmark = pytest.mark.django_db

EXPECTED = [
    "cart_abandonment",
    "browse_abandonment",
    "back_in_stock",
    "low_stock",
    "price_drop",
    "dormant_reactivation",
    "f2_steps",
    "spouse_birthday",
    "life_situation",
]


@pytest.fixture(autouse=True)
def shop_event_types():
    for name in ("add_to_cart", "purchase", "checkout_completed", "product_view"):
        EventTypeFactory(name=name)


def test_every_preset_makes_a_bilingual_draft_that_renders(crm, crm_editor):
    assert list(PRESETS) == EXPECTED
    ja, en = CustomerFactory(language="ja"), CustomerFactory(language="en", given_name="Ann")
    for key in PRESETS:
        campaign = preset_create(key=key, by=crm_editor, owner_department=crm)
        assert (campaign.preset, campaign.status) == (key, Campaign.Status.DRAFT)
        assert campaign.kind == PRESETS[key].kind
        variants = Variant.objects.filter(step__campaign=campaign)
        assert variants.exists()
        for variant in variants:
            assert set(variant.content) == {"ja", "en"}
            assert "Ann" in render_message(variant=variant, customer=en, language="en").body_text
            assert render_message(variant=variant, customer=ja, language="ja").subject


def test_f2_steps_are_day_3_14_30_and_end_on_a_purchase(crm, crm_editor):
    campaign = preset_create(key="f2_steps", by=crm_editor, owner_department=crm)
    assert list(campaign.steps.values_list("delay_minutes", flat=True)) == [
        3 * 1440,
        14 * 1440,
        30 * 1440,
    ]
    assert campaign.trigger["unless"] == ["purchase"]
    assert campaign.audience_rules


def test_cart_abandonment_waits_an_hour_unless_bought(crm, crm_editor):
    campaign = preset_create(key="cart_abandonment", by=crm_editor, owner_department=crm)
    assert campaign.trigger == {
        "event_type": "add_to_cart",
        "unless": ["purchase", "checkout_completed"],
    }
    assert campaign.steps.get().delay_minutes == 60


def test_dormant_reactivation_gets_its_own_segment(crm, crm_editor):
    campaign = preset_create(key="dormant_reactivation", by=crm_editor, owner_department=crm)
    assert campaign.kind == Campaign.Kind.SEGMENT_ENTRY
    assert campaign.segment.owner_department == crm
    assert campaign.segment.kind == Segment.Kind.DYNAMIC
    assert "older_than_days" in str(campaign.segment.rules)


def test_overrides_win(crm, crm_editor):
    campaign = preset_create(
        key="spouse_birthday",
        by=crm_editor,
        owner_department=crm,
        name="Flowers for the spouse",
        priority=90,
    )
    assert (campaign.name, campaign.priority) == ("Flowers for the spouse", 90)
    assert campaign.trigger == {"date_kind": "spouse_birthday", "days_before": 7}


def test_unknown_preset_is_refused_by_name(crm, crm_editor):
    with pytest.raises(ValidationError) as caught:
        preset_create(key="nope", by=crm_editor, owner_department=crm)
    assert "preset" in caught.value.message_dict
    assert not Campaign.objects.exists()


def test_another_departments_editor_or_a_viewer_cannot_create(crm, sales_editor, crm_viewer):
    for user in (sales_editor, crm_viewer):
        with pytest.raises(PermissionDenied):
            preset_create(key="cart_abandonment", by=user, owner_department=crm)
    assert not Campaign.objects.exists()


def test_back_in_stock_reaches_the_fans_of_a_restocked_product(
    crm, crm_editor, tasks_inline, django_capture_on_commit_callbacks
):
    manager = UserFactory(username="crm-boss", department=crm, department__role=Role.MANAGER)
    campaign = preset_create(
        key="back_in_stock",
        by=crm_editor,
        owner_department=crm,
        holdout_percent=0,
        respect_quiet_hours=False,  # the test runs at any hour
    )
    with django_capture_on_commit_callbacks(execute=True):
        campaign_request_approval(campaign=campaign, by=crm_editor)
        campaign_approve(campaign=campaign, by=manager)
    campaign.refresh_from_db()
    assert campaign.status == Campaign.Status.RUNNING

    sold_out = ProductFactory(stock=0)
    fan, bystander = reachable(), reachable()
    FavoriteFactory(customer=fan, product=sold_out)
    with django_capture_on_commit_callbacks(execute=True):
        product_update(product=sold_out, source="test", stock=12)
    from journeys.scheduling import tick

    with django_capture_on_commit_callbacks(execute=True):
        report = tick()
    assert report.product_events == 1
    assert Event.objects.filter(event_type__name="product_restocked", customer=fan).exists()
    enrolment = Enrollment.objects.get(campaign=campaign)
    assert (enrolment.customer_id, enrolment.context["product_ids"]) == (fan.pk, [sold_out.pk])
    delivery = Delivery.objects.get(campaign=campaign)
    assert delivery.status == Delivery.Status.SENT
    assert not Delivery.objects.filter(customer=bystander).exists()
    with django_capture_on_commit_callbacks(execute=True):
        assert tick().product_events == 0  # each change is announced once
