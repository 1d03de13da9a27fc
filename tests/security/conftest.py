"""The "world" every security test runs against: one record of each kind, owned by CRM.

Nothing here is shared with Sales, so a Sales editor must reach none of the department
records; customers are company-wide (their personal fields are masked instead). Every
record a name can carry includes :data:`MARKER`, so an isolation test can search responses
for it.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

import pytest
from django.utils import timezone

from config.org.models import Role
from config.org.tokens import api_token_create
from customers.models import (
    Consent,
    ImportantDate,
    ImportJob,
    LifeEvent,
    SegmentMembership,
)
from customers.selectors import preference_token
from customers.services import customers_merge
from experience.surveys import invitation_token
from journeys.feedback import click_token, open_token, unsubscribe_token
from journeys.maps.discussion import comment_add
from journeys.maps.services import cell_save, journey_create, persona_create
from journeys.models import Campaign, ContactPolicy, Notification, StaffTask, Suppression
from reports.models import ReportSubscription
from tests import factories as f

MARKER = "Zqxmark"


@dataclass
class World:
    """Records of the CRM department, and the values URL patterns take (``refs``)."""

    records: dict = field(default_factory=dict)
    refs: dict = field(default_factory=dict)

    def __getitem__(self, name):
        return self.refs[name]


def build_world(*, crm, sales, crm_manager) -> World:
    """One CRM-owned record of each kind a URL names, and valid public-link tokens."""
    now = timezone.now()
    # The company's contact policy is a singleton made on first use; make it now, so the
    # admin's add page answers the same whatever ran before (it refuses a second one).
    ContactPolicy.current()
    customer = f.CustomerFactory(family_name=MARKER, given_name="Hanako")
    f.IdentityFactory(customer=customer, value="zqxmark@example.jp")
    f.ConsentFactory(customer=customer, channel="email", status=Consent.Status.GRANTED)
    date = ImportantDate.objects.create(
        customer=customer, kind="birthday", month=4, day=1, self_declared=True
    )
    twin = f.CustomerFactory(family_name=MARKER, given_name="Twin")
    f.IdentityFactory(customer=twin, value="zqxmark-twin@example.jp")
    merge = customers_merge(winner=customer, loser=twin, by=None, reason="same person")

    segment = f.SegmentFactory(owner_department=crm, name=f"{MARKER} segment")
    SegmentMembership.objects.create(segment=segment, customer=customer)
    import_job = ImportJob.objects.create(
        owner_department=crm,
        kind=ImportJob.Kind.CUSTOMERS,
        file="imports/zqxmark.csv",
        original_name=f"{MARKER}-members.csv",
        sha256="0" * 64,
        source="pos",
    )
    touchpoint = f.TouchpointFactory(owner_department=crm, name=f"{MARKER} web shop")
    event_type = f.EventTypeFactory(name="zqxmark-visit", owner_department=crm)
    product = f.ProductFactory(name=f"{MARKER} bouquet")
    survey = f.SurveyFactory(owner_department=crm, name=f"{MARKER} survey")
    invitation = f.SurveyInvitationFactory(survey=survey, customer=customer)
    rule = f.SituationRuleFactory(owner_department=crm, name=f"{MARKER} rule")
    life_event = LifeEvent.objects.create(
        customer=customer, kind="moving", detected_at=now, source="rule", department=crm
    )

    persona = persona_create(by=crm_manager, owner_department=crm, name=f"{MARKER} persona")
    cell_save(
        record=persona, field="profile", value="Likes flowers", base_version=0, by=crm_manager
    )
    revision = persona.revisions.order_by("-pk").first()
    journey = journey_create(
        by=crm_manager, owner_department=crm, persona=persona, name=f"{MARKER} journey"
    )
    stage = journey.stages.order_by("position").first()
    stage.name = f"{MARKER} stage"
    stage.save(update_fields=["name"])
    comment = comment_add(by=crm_manager, body=f"{MARKER} comment", persona=persona)
    journey_comment = comment_add(by=crm_manager, body=f"{MARKER} map note", journey=journey)
    Notification.objects.filter(comment__in=[comment, journey_comment]).delete()

    campaign = f.CampaignFactory(owner_department=crm, name=f"{MARKER} campaign", segment=segment)
    step = f.CampaignStepFactory(campaign=campaign, position=1)
    f.VariantFactory(step=step)
    delivery = f.DeliveryFactory(step=step, customer=customer)
    dm_campaign = f.CampaignFactory(
        owner_department=crm, name=f"{MARKER} mailing", channel=Campaign.Channel.DIRECT_MAIL
    )
    task = StaffTask.objects.create(
        customer=customer,
        campaign=campaign,
        department=crm,
        title=f"{MARKER} call",
        due_at=now + dt.timedelta(days=1),
    )
    suppression = Suppression.objects.create(
        channel="email", value="zqxmark-bounce@example.jp", reason=Suppression.Reason.BOUNCE
    )
    token, _secret = api_token_create(name=f"{MARKER} shop", department=crm, source="shop", by=None)
    subscription = ReportSubscription.objects.create(user=crm_manager, department=crm)

    records = {
        "customer": customer,
        "segment": segment,
        "import_job": import_job,
        "touchpoint": touchpoint,
        "event_type": event_type,
        "product": product,
        "survey": survey,
        "rule": rule,
        "life_event": life_event,
        "persona": persona,
        "journey": journey,
        "stage": stage,
        "comment": comment,
        "campaign": campaign,
        "dm_campaign": dm_campaign,
        "delivery": delivery,
        "task": task,
        "suppression": suppression,
        "token": token,
        "subscription": subscription,
    }
    refs = {name: record.pk for name, record in records.items()}
    refs.update(
        {
            "sales": sales.pk,
            "crm": crm.pk,
            "date": date.pk,
            "merge": merge.pk,
            "revision": revision.pk,
            "journey_comment": journey_comment.pk,
            "position": step.position,
            "identity": customer.identities.first().pk,
            "preference_token": preference_token(customer),
            "survey_token": invitation_token(invitation),
            "open_token": open_token(delivery.pk),
            "click_token": click_token(delivery.pk, "https://example.jp/spring"),
            "unsubscribe_token": unsubscribe_token(delivery.pk),
        }
    )
    return World(records=records, refs=refs)


@pytest.fixture
def world(crm, sales, crm_manager) -> World:
    return build_world(crm=crm, sales=sales, crm_manager=crm_manager)


ROLE_FIXTURES = ("crm_viewer", "crm_editor", "crm_manager", "sales_editor", "superuser")


@pytest.fixture
def role_users(crm_viewer, crm_editor, crm_manager, sales_editor, superuser) -> dict:
    """Every signed-in role of the matrix, by name (``anonymous`` is no user)."""
    return {
        "anonymous": None,
        "crm_viewer": crm_viewer,
        "crm_editor": crm_editor,
        "crm_manager": crm_manager,
        "sales_editor": sales_editor,
        "superuser": superuser,
    }


__all__ = ["MARKER", "Role", "World", "build_world"]
