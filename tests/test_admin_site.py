"""Every model registered in the admin renders its changelist, add and change pages."""

from __future__ import annotations

import pytest
from django.apps import apps
from django.contrib import admin
from django.contrib.auth.models import Group
from django.test import RequestFactory
from django.urls import reverse
from django.utils import timezone

from config.org.models import LoginSession
from config.org.services import audit_record, share_grant
from customers.models import (
    AttributeDefinition,
    ConsentChange,
    Customer,
    CustomerMerge,
    CustomerMetrics,
    ErasedIdentifier,
    Identity,
    ImportantDate,
    ImportJob,
    ImportRowError,
    LifeEvent,
    SegmentMembership,
)
from experience.models import EventFollowUp, ExperienceValue, Favorite, OrderLine
from journeys.models import (
    CampaignRun,
    Comment,
    ContactPolicy,
    Enrollment,
    Notification,
    Presence,
    Revision,
    ScoringRule,
    StaffTask,
    Suppression,
)
from reports.models import (
    CampaignOutcome,
    ClvFit,
    ClvSegmentValue,
    ClvSummary,
    Cohort,
    CohortMonth,
    CustomerPrediction,
    DailyAnswers,
    DailyDeliveries,
    DailyEvents,
    DailyOrders,
    DormancyDay,
    DormancyMonth,
    HeadlineSnapshot,
    ReportSubscription,
    RfmCell,
    RollupState,
)
from tests import factories as f

pytestmark = pytest.mark.django_db


def _now():
    return timezone.now()


def _import_job():
    return ImportJob.objects.create(
        owner_department=f.DepartmentFactory(),
        kind=ImportJob.Kind.CUSTOMERS,
        file="imports/members.csv",
        original_name="members.csv",
        sha256="0" * 64,
        source="pos",
    )


def _clv_fit():
    return ClvFit.objects.create(calibration_end=_now(), params={"r": 0.24})


MAKERS = {
    "org.user": lambda: f.UserFactory(),
    "org.department": lambda: f.DepartmentFactory(),
    "org.membership": lambda: f.MembershipFactory(),
    "org.share": lambda: share_grant(
        obj=f.SegmentFactory(), department=f.DepartmentFactory(), can_edit=False, by=None
    ),
    "org.auditlog": lambda: audit_record(actor=None, action="test.made"),
    "org.apitoken": lambda: f.ApiTokenFactory(),
    "org.loginsession": lambda: LoginSession.objects.create(
        user=f.UserFactory(), session_key="k" * 32
    ),
    "auth.group": lambda: Group.objects.create(name="Store staff"),
    "customers.customer": lambda: f.IdentityFactory().customer,
    "customers.identity": lambda: f.IdentityFactory(),
    "customers.erasedidentifier": lambda: ErasedIdentifier.objects.create(
        kind="email", digest="0" * 64
    ),
    "customers.consent": lambda: f.ConsentFactory(),
    "customers.consentchange": lambda: ConsentChange.objects.create(
        consent=f.ConsentFactory(), status="granted", source="test", changed_at=_now()
    ),
    "customers.importantdate": lambda: ImportantDate.objects.create(
        customer=f.CustomerFactory(), kind="birthday", month=4, day=1
    ),
    "customers.attributedefinition": lambda: AttributeDefinition.objects.create(
        owner_department=f.DepartmentFactory(), key="shoe-size", label="Shoe size", type="number"
    ),
    "customers.lifeevent": lambda: LifeEvent.objects.create(
        customer=f.CustomerFactory(), kind="moving", detected_at=_now(), source="rule"
    ),
    "customers.segment": lambda: f.SegmentFactory(),
    "customers.segmentmembership": lambda: SegmentMembership.objects.create(
        segment=f.SegmentFactory(), customer=f.CustomerFactory()
    ),
    "customers.customermetrics": lambda: CustomerMetrics.objects.create(
        customer=f.CustomerFactory(), order_count=1
    ),
    "customers.customermerge": lambda: CustomerMerge.objects.create(
        winner=f.CustomerFactory(), loser=f.CustomerFactory(), reason="same email"
    ),
    "customers.importjob": lambda: _import_job(),
    "customers.importrowerror": lambda: ImportRowError.objects.create(
        job=_import_job(), row=2, column="email", reason="not an email address"
    ),
    "experience.experiencevalue": lambda: ExperienceValue.objects.first(),
    "experience.touchpoint": lambda: f.TouchpointFactory(),
    "experience.eventtype": lambda: f.EventTypeFactory(),
    "experience.event": lambda: f.EventFactory(),
    "experience.eventfollowup": lambda: EventFollowUp.objects.create(touched={"purchase": [1]}),
    "experience.product": lambda: f.ProductFactory(),
    "experience.order": lambda: f.OrderFactory(),
    "experience.orderline": lambda: OrderLine.objects.create(
        order=f.OrderFactory(), product=f.ProductFactory(), quantity=1, unit_price=3000
    ),
    "experience.favorite": lambda: Favorite.objects.create(
        customer=f.CustomerFactory(), product=f.ProductFactory(), created_at=_now()
    ),
    "experience.survey": lambda: f.SurveyFactory(),
    "experience.surveyresponse": lambda: f.SurveyResponseFactory(),
    "experience.surveyinvitation": lambda: f.SurveyInvitationFactory(),
    "experience.cart": lambda: f.CartItemFactory().cart,
    "experience.cartitem": lambda: f.CartItemFactory(),
    "experience.productchange": lambda: f.ProductChangeFactory(),
    "experience.situationrule": lambda: f.SituationRuleFactory(),
    "journeys.persona": lambda: f.PersonaFactory(),
    "journeys.journey": lambda: f.StageFactory().journey,
    "journeys.stage": lambda: f.StageFactory(),
    "journeys.comment": lambda: Comment.objects.create(journey=f.JourneyFactory(), body="Nice"),
    "journeys.revision": lambda: Revision.objects.create(
        persona=f.PersonaFactory(),
        action=Revision.Action.EDIT,
        field="goals",
        before="",
        after="Gifts",
    ),
    "journeys.notification": lambda: Notification.objects.create(
        recipient=f.UserFactory(),
        kind=Notification.Kind.MENTION,
        comment=Comment.objects.create(persona=f.PersonaFactory(), body="@hanako see this"),
    ),
    "journeys.presence": lambda: Presence.objects.create(
        room="journey-1", user=f.UserFactory(), seen_at=timezone.now()
    ),
    "journeys.campaign": lambda: f.CampaignStepFactory().campaign,
    "journeys.campaignstep": lambda: f.CampaignStepFactory(),
    "journeys.delivery": lambda: f.DeliveryFactory(),
    "journeys.stafftask": lambda: StaffTask.objects.create(
        customer=f.CustomerFactory(), title="Call about the anniversary"
    ),
    "journeys.variant": lambda: f.VariantFactory(),
    "journeys.campaignrun": lambda: CampaignRun.objects.create(
        campaign=f.CampaignFactory(), occurrence="r202611271000", scheduled_for=timezone.now()
    ),
    "journeys.enrollment": lambda: Enrollment.objects.create(
        campaign=f.CampaignFactory(),
        customer=f.CustomerFactory(),
        occurrence="e1",
        entered_at=timezone.now(),
        bucket=42,
    ),
    "journeys.suppression": lambda: Suppression.objects.create(
        channel="email", value="bounced@example.jp", reason=Suppression.Reason.BOUNCE
    ),
    "journeys.contactpolicy": ContactPolicy.current,
    "journeys.scoringrule": lambda: ScoringRule.objects.create(
        name="Pricing page", event_type=f.EventTypeFactory(), points=10
    ),
    "reports.rollupstate": lambda: RollupState.objects.create(name="events", last_id=3),
    "reports.dailyevents": lambda: DailyEvents.objects.create(
        day=_now().date(), event_type=f.EventTypeFactory(), events=2, customers=1
    ),
    "reports.dailyorders": lambda: DailyOrders.objects.create(day=_now().date(), orders=1),
    "reports.dailyanswers": lambda: DailyAnswers.objects.create(
        day=_now().date(), survey=f.SurveyFactory(), answers=1
    ),
    "reports.dailydeliveries": lambda: DailyDeliveries.objects.create(
        day=_now().date(), campaign=f.CampaignFactory(), sent=1
    ),
    "reports.cohortmonth": lambda: CohortMonth.objects.create(
        cohort=_now().date().replace(day=1), offset=0, customers=1
    ),
    "reports.cohort": lambda: Cohort.objects.create(cohort=_now().date().replace(day=1)),
    "reports.campaignoutcome": lambda: CampaignOutcome.objects.create(
        campaign=f.CampaignFactory(), is_holdout=False, enrolled=3
    ),
    "reports.clvfit": _clv_fit,
    "reports.customerprediction": lambda: CustomerPrediction.objects.create(
        customer=f.CustomerFactory(), fit=_clv_fit(), p_alive=0.5, expected_purchases=1.2
    ),
    "reports.reportsubscription": lambda: ReportSubscription.objects.create(user=f.UserFactory()),
    "reports.rfmcell": lambda: RfmCell.objects.create(recency=5, frequency=1, customers=3),
    "reports.dormancyday": lambda: DormancyDay.objects.create(as_of=_now().date()),
    "reports.dormancymonth": lambda: DormancyMonth.objects.create(
        day=DormancyDay.objects.create(as_of=_now().date()), month=_now().date().replace(day=1)
    ),
    "reports.clvsummary": lambda: ClvSummary.objects.create(fit=_clv_fit(), customers=3),
    "reports.clvsegmentvalue": lambda: ClvSegmentValue.objects.create(
        summary=ClvSummary.objects.create(fit=_clv_fit()), segment=f.SegmentFactory(), members=2
    ),
    "reports.headlinesnapshot": lambda: HeadlineSnapshot.objects.create(
        name="strategy", computed_at=_now()
    ),
}

REGISTERED = sorted(admin.site._registry.items(), key=lambda item: item[0]._meta.label_lower)


def _url(model, view: str, *args) -> str:
    return reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_{view}", args=args)


def test_every_model_of_the_project_is_registered():
    project_apps = {"org", "customers", "experience", "journeys", "reports"}
    missing = [
        model._meta.label
        for model in apps.get_models()
        if model._meta.app_label in project_apps and not admin.site.is_registered(model)
    ]
    assert missing == []


@pytest.mark.parametrize(
    ("model", "model_admin"),
    REGISTERED,
    ids=[model._meta.label_lower for model, _admin in REGISTERED],
)
def test_admin_pages_render_for_the_administrator(client, superuser, model, model_admin):
    client.force_login(superuser)
    label = model._meta.label_lower
    instance = MAKERS[label]() if label in MAKERS else None

    assert client.get(_url(model, "changelist")).status_code == 200

    request = RequestFactory().get("/")
    request.user = superuser
    expected_add = 200 if model_admin.has_add_permission(request) else 403
    assert client.get(_url(model, "add")).status_code == expected_add

    if instance is not None:
        assert client.get(_url(model, "change", instance.pk)).status_code == 200


def test_makers_cover_every_model_of_the_project():
    project_apps = {"org", "customers", "experience", "journeys", "reports"}
    uncovered = [
        model._meta.label_lower
        for model, _admin in REGISTERED
        if model._meta.app_label in project_apps and model._meta.label_lower not in MAKERS
    ]
    assert uncovered == []


def test_changelist_search_and_filters_render(client, superuser):
    f.IdentityFactory(value="hanako@example.jp")
    client.force_login(superuser)

    customers = client.get(_url(Customer, "changelist"), {"q": "山田"})
    identities = client.get(_url(Identity, "changelist"), {"q": "hanako@example.jp"})

    assert customers.status_code == 200
    assert identities.status_code == 200
    assert "hanako@example.jp" in identities.content.decode()
