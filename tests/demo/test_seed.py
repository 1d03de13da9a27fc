"""The demo company: who can sign in, what the data looks like, and that seeding repeats."""

from __future__ import annotations

import datetime as dt
from io import StringIO
from zoneinfo import ZoneInfo

import pytest
from django.contrib.auth import authenticate
from django.contrib.auth.models import Group
from django.core.management import call_command
from django.db.models import Count, Exists, F, OuterRef, Q, Sum
from django.test import RequestFactory
from django.utils import timezone

from config.demo.data import DEPARTMENTS, JOURNEY, PERSONAS, SALES_EDITS, STAGES
from config.demo.seed import (
    DEMO_API_TOKEN,
    DEMO_LOGINS,
    PERSONAL_DATA_GROUP,
    SEED_AUDIT_ACTION,
    DemoDataError,
    demo_data_reset,
    ensure_demo_api_token,
    ensure_demo_logins,
    seed_demo,
)
from config.org.models import AuditLog, Department, Membership, User
from config.org.tokens import api_token_authenticate, api_token_revoke
from customers.models import (
    Customer,
    CustomerMetrics,
    Identity,
    LifecycleStage,
    SegmentMembership,
)
from customers.selectors import can_view_pii
from experience.commerce import abandoned_carts
from experience.models import (
    Event,
    EventType,
    ExperienceValue,
    Order,
    SituationRule,
    SurveyResponse,
    Touchpoint,
)
from journeys.engine import bucket_of
from journeys.maps.discussion import notifications_for, notifications_unread_count
from journeys.maps.selectors import persona_figures
from journeys.models import (
    Campaign,
    Comment,
    Delivery,
    Enrollment,
    Journey,
    Persona,
    Revision,
    StaffTask,
    Variant,
)
from journeys.selectors import campaign_results, staff_tasks_for

pytestmark = pytest.mark.django_db


@pytest.fixture(scope="module", autouse=True)
def demo_company(django_db_setup, django_db_blocker):
    """Seed ``small`` once for the module, committed, and remove every trace afterwards."""
    with django_db_blocker.unblock():
        now = timezone.now()
        seed_demo(size="small", seed=42, now=now)
        yield now
        demo_data_reset()
        User.objects.filter(username__in=[login.username for login in DEMO_LOGINS]).delete()
        Department.objects.filter(slug__in=[slug for slug, *_rest in DEPARTMENTS]).delete()
        Group.objects.filter(name=PERSONAL_DATA_GROUP).delete()
        EventType.objects.all().delete()
        AuditLog.objects.all().delete()


def fingerprint() -> tuple:
    """Names of the first customers and totals of the first orders, in insertion order."""
    people = Customer.objects.order_by("pk").values_list(
        "family_name", "given_name", "birth_date", "lifecycle_stage"
    )[:300]
    totals = Order.objects.order_by("pk").values_list("total", "ordered_at")[:300]
    return tuple(people), tuple(totals), Event.objects.count()


def test_the_four_departments_exist_with_their_kinds():
    departments = {d.slug: (d.name, d.kind) for d in Department.objects.all()}

    assert departments == {slug: (name, kind) for slug, name, kind, _ in DEPARTMENTS}


@pytest.mark.parametrize("login", DEMO_LOGINS, ids=lambda login: login.username)
def test_each_demo_login_signs_in_with_its_printed_password_and_role(login):
    # A request, as on the login page: the lockout backend (django-axes) needs one.
    user = authenticate(
        RequestFactory().post("/accounts/login/"), username=login.username, password=login.password
    )

    assert user is not None
    if login.department_slug is None:
        assert user.is_superuser
    else:
        membership = Membership.objects.get(user=user)
        assert (membership.department.slug, membership.role) == (
            login.department_slug,
            login.role,
        )


def test_crm_and_sales_see_personal_data_and_the_other_departments_do_not():
    logins = User.objects.filter(username__in=[login.username for login in DEMO_LOGINS])

    seeing = {user.username for user in logins if can_view_pii(user)}

    assert seeing == {"crm", "sales", "admin"}
    assert seeing == {login.username for login in DEMO_LOGINS if login.sees_personal_data}


def test_ensuring_the_logins_puts_personal_data_access_back_as_printed():
    group = Group.objects.get(name=PERSONAL_DATA_GROUP)
    group.user_set.add(User.objects.get(username="analytics"))
    group.user_set.remove(User.objects.get(username="crm"))

    ensure_demo_logins()

    assert can_view_pii(User.objects.get(username="crm"))
    assert not can_view_pii(User.objects.get(username="analytics"))


def test_most_customers_are_known_by_several_identifiers():
    several = Customer.objects.annotate(n=Count("identities")).filter(n__gt=1).count()

    assert several > Customer.objects.count() / 2


def test_some_people_exist_as_two_profiles_that_share_no_identifier():
    twins = (
        Customer.objects.filter(is_anonymous=False, birth_date__isnull=False)
        .values("family_name_kana", "given_name_kana", "birth_date")
        .annotate(n=Count("pk"))
        .filter(n=2)
    )
    unlinked = 0
    for twin in twins:
        first, second = Customer.objects.filter(**{k: v for k, v in twin.items() if k != "n"})
        kinds = [set(c.identities.values_list("kind", flat=True)) for c in (first, second)]
        values = [set(c.identities.values_list("value", flat=True)) for c in (first, second)]
        if values[0].isdisjoint(values[1]) and {"email", "pos"} <= kinds[0] ^ kinds[1]:
            unlinked += 1

    assert unlinked >= 10


def test_anonymous_profiles_are_known_only_by_a_cookie():
    anonymous = Customer.objects.filter(is_anonymous=True)

    assert anonymous.exists()
    assert set(Identity.objects.filter(customer__in=anonymous).values_list("kind", flat=True)) == {
        Identity.Kind.COOKIE
    }


def test_identities_are_normalised():
    emails = Identity.objects.filter(kind=Identity.Kind.EMAIL).values_list("value", flat=True)
    phones = Identity.objects.filter(kind=Identity.Kind.PHONE).values_list("value", flat=True)

    assert all(email == email.lower() and "@" in email for email in emails)
    assert all(phone.startswith("+81") and len(phone) == 13 for phone in phones)


def test_recent_behaviour_is_live_and_never_in_the_future(demo_company):
    now = demo_company
    last_month = Event.objects.filter(occurred_at__gte=now - timezone.timedelta(days=30))

    assert last_month.count() > 1_000
    assert not Event.objects.filter(occurred_at__gt=now).exists()
    assert set(last_month.values_list("event_type__name", flat=True)) >= {
        "page_view",
        "add_to_cart",
        "purchase",
        "store_visit",
    }


def test_some_recent_carts_were_left_without_buying(demo_company):
    since = demo_company - timezone.timedelta(days=30)
    recent = Event.objects.filter(customer=OuterRef("pk"), occurred_at__gte=since)
    carted = Exists(recent.filter(event_type__name="add_to_cart"))
    bought = Exists(recent.filter(event_type__name="purchase"))

    assert Customer.objects.filter(carted).exclude(bought).count() >= 20


def test_abandoned_carts_are_ready_for_the_cart_abandonment_campaign(demo_company):
    assert abandoned_carts(idle_for=dt.timedelta(hours=1), now=demo_company).count() >= 20


def test_crm_owns_the_shipped_situation_rules():
    rules = SituationRule.objects.filter(owner_department__slug="crm", is_active=True)

    assert set(rules.values_list("kind", flat=True)) >= {"marriage", "moving", "job_change"}


def test_the_printed_demo_api_token_works_even_after_it_was_revoked():
    api_token_revoke(token=ensure_demo_api_token(), by=None)

    token = ensure_demo_api_token()

    assert api_token_authenticate(DEMO_API_TOKEN) == token
    assert token.department.slug == "crm"


def test_touchpoints_cover_every_channel():
    assert set(Touchpoint.objects.values_list("channel", flat=True)) == set(
        Touchpoint.Channel.values
    )


def test_order_totals_equal_the_sum_of_their_lines():
    orders = Order.objects.annotate(lines_total=Sum(F("lines__quantity") * F("lines__unit_price")))

    assert orders.count() > 3_000
    assert not orders.exclude(total=F("lines_total")).exists()


def test_about_a_third_of_buyers_come_back():
    buyers = CustomerMetrics.objects.filter(order_count__gte=1).count()
    repeaters = CustomerMetrics.objects.filter(order_count__gte=2).count()

    assert 0.2 < repeaters / buyers < 0.4


def test_metrics_and_lifecycle_agree_with_the_orders():
    completed = Count("orders", filter=Q(orders__status=Order.Status.COMPLETED))
    customers = Customer.objects.annotate(completed=completed)

    assert not customers.exclude(metrics__order_count=F("completed")).exists()
    assert not customers.filter(completed=0).exclude(lifecycle_stage=LifecycleStage.PROSPECT)
    assert not customers.filter(completed__gt=0, lifecycle_stage=LifecycleStage.PROSPECT)


def test_nps_is_realistic():
    scores = list(SurveyResponse.objects.values_list("score", flat=True))
    promoters = sum(score >= 9 for score in scores)
    detractors = sum(score <= 6 for score in scores)

    assert len(scores) > 200
    assert 0 < 100 * (promoters - detractors) / len(scores) < 40


def test_sales_co_edits_the_personas_that_crm_owns():
    sales_manager = User.objects.get(username="sales")

    assert Persona.objects.editable_by(sales_manager).count() == 2


def test_a_second_run_without_reset_creates_nothing():
    before = fingerprint()
    out = StringIO()

    call_command("seed_demo", size="small", stdout=out)

    assert "already holds" in out.getvalue()
    assert fingerprint() == before


def test_the_same_seed_gives_the_same_company(demo_company):
    before = fingerprint()

    demo_data_reset()
    seed_demo(size="small", seed=42, now=demo_company)

    assert fingerprint() == before


def test_another_seed_gives_other_people(demo_company):
    before = fingerprint()

    demo_data_reset()
    seed_demo(size="small", seed=7, now=demo_company)

    assert fingerprint()[0] != before[0]


def test_seeding_recreates_the_experience_values_that_a_flush_removed(demo_company):
    ExperienceValue.objects.all().delete()
    demo_data_reset()

    seed_demo(size="small", seed=42, now=demo_company)

    assert list(ExperienceValue.objects.values_list("code", "position")) == [
        (code, position) for position, code in enumerate(ExperienceValue.Code.values, start=1)
    ]
    assert not Touchpoint.objects.filter(experience_values=None).exists()


def test_reset_refuses_customers_that_no_seeding_created():
    AuditLog.objects.filter(action=SEED_AUDIT_ACTION).delete()

    with pytest.raises(DemoDataError):
        demo_data_reset()
    assert Customer.objects.exists()


# --- campaigns --------------------------------------------------------------------------------


def test_every_campaign_speaks_japanese_and_english():
    variants = Variant.objects.all()

    assert variants.exists()
    assert all({"ja", "en"} <= set(variant.content) for variant in variants)


def test_campaigns_stand_in_every_status_and_the_draft_waits_for_approval():
    statuses = set(Campaign.objects.values_list("status", flat=True))
    draft = Campaign.objects.get(status=Campaign.Status.DRAFT)

    assert statuses == set(Campaign.Status.values) - {Campaign.Status.PAUSED}
    assert draft.approval_requested_at is not None
    assert draft.approved_by is None
    assert not Campaign.objects.exclude(status=Campaign.Status.DRAFT).filter(
        approved_by__isnull=True
    )


def test_the_completed_one_off_has_a_holdout_group_that_shows_lift():
    campaign = Campaign.objects.get(preset="", kind="one_off", channel="email", status="completed")
    deliveries = Delivery.objects.filter(campaign=campaign)
    holdout = deliveries.filter(status=Delivery.Status.HOLDOUT)

    assert holdout.exists()
    assert not holdout.filter(sent_at__isnull=False).exists()
    assert set(holdout.values_list("enrollment__is_holdout", flat=True)) == {True}
    assert deliveries.filter(opened_at__isnull=False).exists()
    assert deliveries.filter(clicked_at__isnull=False).exists()
    converted = deliveries.filter(status=Delivery.Status.CONVERTED)
    assert converted.exists()
    assert not converted.exclude(revenue=F("order__total")).exists()
    assert set(deliveries.values_list("variant__label", flat=True)) == {"A", "B"}
    lift = campaign_results(campaign)["lift"]
    assert lift.holdout_n > 0
    assert lift.treatment_n > lift.holdout_n


def test_holdout_and_variants_follow_the_engines_buckets():
    rows = Enrollment.objects.values_list("campaign_id", "customer_id", "bucket", "is_holdout")
    holdout = dict(Campaign.objects.values_list("pk", "holdout_percent"))

    assert rows
    for campaign_id, customer_id, bucket, is_holdout in rows:
        assert bucket == bucket_of(campaign_id, customer_id)
        assert is_holdout == (bucket < holdout[campaign_id])


def test_deliveries_are_unique_never_in_the_future_and_conversions_follow_sends(demo_company):
    now = demo_company
    deliveries = Delivery.objects.all()

    assert not deliveries.filter(Q(sent_at__gt=now) | Q(converted_at__gt=now)).exists()
    assert not deliveries.filter(converted_at__lt=F("sent_at")).exists()
    assert not deliveries.filter(clicked_at__lt=F("opened_at")).exists()
    assert (
        deliveries.values("campaign", "step", "customer", "occurrence").distinct().count()
        == deliveries.count()
    )


def test_the_cart_reminder_reached_people_within_seconds_of_its_due_time():
    cart = Campaign.objects.get(preset="cart_abandonment", status=Campaign.Status.RUNNING)
    sent = Delivery.objects.filter(campaign=cart, sent_at__isnull=False)

    assert sent.count() >= 20
    assert not sent.filter(sent_at__gt=F("due_at") + dt.timedelta(minutes=1)).exists()
    carts = Event.objects.filter(event_type__name="add_to_cart").values_list("pk", flat=True)
    assert set(sent.values_list("occurrence", flat=True)) <= {f"e{pk}" for pk in carts}


def test_the_presets_run_and_the_newsletter_goes_out_on_fridays_at_ten_in_tokyo():
    running = set(
        Campaign.objects.filter(status=Campaign.Status.RUNNING).values_list("preset", flat=True)
    )
    newsletter = Campaign.objects.get(kind=Campaign.Kind.RECURRING)

    assert {"cart_abandonment", "f2_steps", "spouse_birthday"} <= running
    assert newsletter.status == Campaign.Status.SCHEDULED
    assert newsletter.cron == "0 10 * * 5"
    local = newsletter.next_run_at.astimezone(ZoneInfo("Asia/Tokyo"))
    assert (local.isoweekday(), local.hour, local.minute) == (5, 10, 0)


def test_the_sales_login_has_open_and_done_visit_tasks_of_the_staff_task_campaign():
    sales = User.objects.get(username="sales")
    tasks = StaffTask.objects.filter(assignee=sales)

    assert tasks.filter(status=StaffTask.Status.OPEN).count() >= 5
    done = tasks.filter(status=StaffTask.Status.DONE)
    assert done.exists()
    assert not done.filter(outcome_code="").exists()
    assert set(tasks.values_list("campaign__channel", flat=True)) == {"staff_task"}
    assert not tasks.filter(delivery__isnull=True).exists()
    assert set(staff_tasks_for(sales)) >= set(tasks.filter(status=StaffTask.Status.OPEN))


def test_analytics_sees_every_campaign():
    analytics = User.objects.get(username="analytics")

    assert Campaign.objects.visible_to(analytics).count() == Campaign.objects.count()


# --- personas and journeys co-edited ----------------------------------------------------------


def test_sales_co_edits_the_gift_journey_and_analytics_only_reads_it():
    journey = Journey.objects.get(name=JOURNEY["name"])

    assert (
        Journey.objects.editable_by(User.objects.get(username="sales"))
        .filter(pk=journey.pk)
        .exists()
    )
    analytics = User.objects.get(username="analytics")
    assert Journey.objects.visible_to(analytics).filter(pk=journey.pk).exists()
    assert not Journey.objects.editable_by(analytics).filter(pk=journey.pk).exists()


def test_every_seeded_persona_journey_and_stage_has_its_creation_in_the_history():
    journey = Journey.objects.get(name=JOURNEY["name"])
    created = Revision.objects.filter(action=Revision.Action.CREATE)

    assert set(created.values_list("persona__name", flat=True)) >= {
        spec["name"] for spec in PERSONAS.values()
    }
    assert created.filter(journey=journey, stage__isnull=True).count() == 1
    assert set(created.filter(stage__isnull=False).values_list("stage_id", flat=True)) == set(
        journey.stages.values_list("pk", flat=True)
    )
    assert set(created.values_list("author__username", flat=True)) == {"crm"}


def test_sales_staff_edited_cells_after_crm_and_the_versions_count_it():
    edits = Revision.objects.filter(action=Revision.Action.EDIT, author__username="sales")

    assert edits.count() == len(SALES_EDITS)
    for revision in edits.select_related("stage", "persona"):
        record = revision.stage or revision.persona
        assert record.versions[revision.field] == revision.version == 1
        assert getattr(record, revision.field) == revision.after != revision.before


def test_threads_mention_demo_users_who_find_them_in_their_notifications():
    mentioning = Comment.objects.filter(mentions__isnull=False).distinct()

    assert mentioning.count() >= 5
    assert Comment.objects.filter(parent__isnull=False).exists()
    assert Comment.objects.filter(resolved_at__isnull=False).exists()
    for comment in mentioning.prefetch_related("mentions"):
        for user in comment.mentions.all():
            assert notifications_for(user).filter(comment=comment, kind="mention").exists(), (
                user.username,
                comment.body,
            )
    assert notifications_unread_count(User.objects.get(username="sales")) >= 2
    assert notifications_unread_count(User.objects.get(username="analytics")) >= 1


def test_one_template_journey_copies_the_gift_journey():
    template = Journey.objects.get(is_template=True)
    journey = Journey.objects.get(name=JOURNEY["name"])

    assert template.duplicated_from == journey
    assert list(template.stages.values_list("name", flat=True)) == [s["name"] for s in STAGES]


def test_personas_open_with_their_segments_figures_computed():
    personas = list(Persona.objects.exclude(segment=None))

    assert personas
    for persona in personas:
        members = SegmentMembership.objects.filter(segment=persona.segment).count()
        figures = persona_figures(persona)
        assert members > 0
        assert figures.size == members
        assert persona.segment.member_count == members
