"""Reads of circle ③: headline figures and lists, always scoped to the asking user."""

from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone

from config.org.services import share_grant
from journeys.models import Campaign, Delivery
from journeys.selectors import campaign_list, journey_list, persona_list, platform_headline
from tests.factories import (
    CampaignFactory,
    CampaignStepFactory,
    DeliveryFactory,
    JourneyFactory,
    PersonaFactory,
)

pytestmark = pytest.mark.django_db


def test_headline_counts_only_campaigns_the_user_can_see(crm, sales, crm_editor):
    CampaignFactory(owner_department=crm, status=Campaign.Status.RUNNING)
    CampaignFactory(owner_department=crm, status=Campaign.Status.SCHEDULED)
    CampaignFactory(owner_department=crm, status=Campaign.Status.DRAFT)
    CampaignFactory(owner_department=crm, status=Campaign.Status.COMPLETED)
    CampaignFactory(owner_department=sales, status=Campaign.Status.RUNNING)

    headline = platform_headline(crm_editor, since=timezone.now() - dt.timedelta(days=30))

    assert headline["campaigns_active"] == 2


def test_headline_counts_recent_deliveries_of_visible_campaigns(crm, sales, crm_editor):
    now = timezone.now()
    own_step = CampaignStepFactory(campaign__owner_department=crm)
    other_step = CampaignStepFactory(campaign__owner_department=sales)
    DeliveryFactory.create_batch(3, step=own_step)
    DeliveryFactory.create_batch(2, step=other_step)
    old = DeliveryFactory(step=own_step)
    Delivery.objects.filter(pk=old.pk).update(created_at=now - dt.timedelta(days=31))

    headline = platform_headline(crm_editor, since=now - dt.timedelta(days=30))

    assert headline["deliveries_30d"] == 3


def test_shared_campaign_counts_for_the_department_it_was_shared_with(
    crm, sales, crm_editor, sales_editor
):
    campaign = CampaignFactory(owner_department=sales, status=Campaign.Status.RUNNING)
    DeliveryFactory(step__campaign=campaign)
    share_grant(obj=campaign, department=crm, can_edit=False, by=sales_editor)

    headline = platform_headline(crm_editor, since=timezone.now() - dt.timedelta(days=30))

    assert headline == {"campaigns_active": 1, "deliveries_30d": 1}


def test_lists_hold_own_and_shared_records_only(crm, sales, crm_editor, sales_editor):
    own_persona = PersonaFactory(owner_department=crm)
    other_persona = PersonaFactory(owner_department=sales)
    shared_journey = JourneyFactory(persona=other_persona)
    JourneyFactory(persona=other_persona)
    share_grant(obj=shared_journey, department=crm, can_edit=True, by=sales_editor)
    own_campaign = CampaignFactory(owner_department=crm)
    CampaignFactory(owner_department=sales)

    assert list(persona_list(crm_editor)) == [own_persona]
    assert list(journey_list(crm_editor)) == [shared_journey]
    assert list(campaign_list(crm_editor)) == [own_campaign]
