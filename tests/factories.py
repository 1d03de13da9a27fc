"""factory_boy factories for every circle; tests build exactly the data they need."""

from __future__ import annotations

import datetime as dt
import io

import factory
from django.utils import timezone

from config.org.models import ApiToken, Department, Membership, Role, User
from customers.models import Consent, Customer, Identity, ImportJob, LifeEvent, Segment
from experience.models import (
    Cart,
    CartItem,
    Event,
    EventType,
    Favorite,
    Order,
    Product,
    ProductChange,
    SituationRule,
    Survey,
    SurveyInvitation,
    SurveyResponse,
    Touchpoint,
)
from journeys.models import (
    Campaign,
    CampaignStep,
    Comment,
    Delivery,
    Journey,
    Persona,
    Stage,
    Variant,
)


class DepartmentFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Department
        django_get_or_create = ("slug",)

    name = factory.Sequence(lambda n: f"Department {n}")
    slug = factory.Sequence(lambda n: f"dept-{n}")
    kind = Department.Kind.OTHER


class UserFactory(factory.django.DjangoModelFactory):
    """A staff user; pass ``department=`` and ``role=`` to give them a membership."""

    class Meta:
        model = User
        skip_postgeneration_save = True

    username = factory.Sequence(lambda n: f"user{n}")
    email = factory.LazyAttribute(lambda o: f"{o.username}@example.com")
    password = factory.django.Password("correct-horse-battery")

    @factory.post_generation
    def department(self, create, extracted, **kwargs):
        if create and extracted is not None:
            Membership.objects.create(
                user=self, department=extracted, role=kwargs.get("role", Role.EDITOR)
            )


class ApiTokenFactory(factory.django.DjangoModelFactory):
    """A token row with a digest no secret matches; use ``api_token_create`` for a usable one."""

    class Meta:
        model = ApiToken

    name = factory.Sequence(lambda n: f"Integration {n}")
    department = factory.SubFactory(DepartmentFactory)
    source = "web-shop"
    prefix = factory.Sequence(lambda n: f"{n:08x}")
    digest = "0" * 64


class MembershipFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Membership

    user = factory.SubFactory(UserFactory)
    department = factory.SubFactory(DepartmentFactory)
    role = Role.EDITOR


class CustomerFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Customer

    family_name = "山田"
    given_name = factory.Sequence(lambda n: f"花子{n}")
    language = "ja"


class IdentityFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Identity

    customer = factory.SubFactory(CustomerFactory)
    kind = Identity.Kind.EMAIL
    value = factory.Sequence(lambda n: f"person{n}@example.jp")
    source = "test"


class ConsentFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Consent

    customer = factory.SubFactory(CustomerFactory)
    channel = "email"
    status = Consent.Status.GRANTED
    source = "test"
    updated_at = factory.LazyFunction(timezone.now)


class SegmentFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Segment

    owner_department = factory.SubFactory(DepartmentFactory)
    name = factory.Sequence(lambda n: f"Segment {n}")


class TouchpointFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Touchpoint

    owner_department = factory.SubFactory(DepartmentFactory)
    code = factory.Sequence(lambda n: f"touchpoint-{n}")
    name = factory.Sequence(lambda n: f"Touchpoint {n}")
    channel = Touchpoint.Channel.WEB
    kind = Touchpoint.Kind.ONLINE


class EventTypeFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = EventType
        django_get_or_create = ("name",)

    name = "page_view"


class EventFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Event

    customer = factory.SubFactory(CustomerFactory)
    event_type = factory.SubFactory(EventTypeFactory)
    occurred_at = factory.LazyFunction(timezone.now)
    source = "test"


class ProductFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Product

    sku = factory.Sequence(lambda n: f"SKU-{n:05d}")
    name = factory.Sequence(lambda n: f"Product {n}")
    category = "flowers"
    price = 3000


class OrderFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Order

    customer = factory.SubFactory(CustomerFactory)
    number = factory.Sequence(lambda n: f"ORD-{n:07d}")
    ordered_at = factory.LazyFunction(lambda: timezone.now() - dt.timedelta(days=1))
    total = 5000


class SurveyFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Survey

    owner_department = factory.SubFactory(DepartmentFactory)
    name = "Post-purchase NPS"
    question = "How likely are you to recommend us to a friend?"


class SurveyResponseFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = SurveyResponse

    survey = factory.SubFactory(SurveyFactory)
    customer = factory.SubFactory(CustomerFactory)
    score = 9
    answered_at = factory.LazyFunction(timezone.now)


class SurveyInvitationFactory(factory.django.DjangoModelFactory):
    """An open invitation valid for 30 days; pass ``expires_at`` in the past to expire it."""

    class Meta:
        model = SurveyInvitation

    survey = factory.SubFactory(SurveyFactory)
    customer = factory.SubFactory(CustomerFactory)
    created_at = factory.LazyFunction(timezone.now)
    expires_at = factory.LazyAttribute(lambda o: o.created_at + dt.timedelta(days=30))


class PersonaFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Persona

    owner_department = factory.SubFactory(DepartmentFactory)
    name = factory.Sequence(lambda n: f"Persona {n}")


class JourneyFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Journey

    owner_department = factory.SelfAttribute("persona.owner_department")
    persona = factory.SubFactory(PersonaFactory)
    name = factory.Sequence(lambda n: f"Journey {n}")


class StageFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Stage

    journey = factory.SubFactory(JourneyFactory)
    position = factory.Sequence(lambda n: n + 1)
    name = "Awareness"


class CampaignFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Campaign

    owner_department = factory.SubFactory(DepartmentFactory)
    name = factory.Sequence(lambda n: f"Campaign {n}")
    channel = Campaign.Channel.EMAIL


class CampaignStepFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = CampaignStep

    campaign = factory.SubFactory(CampaignFactory)
    position = 1


class VariantFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Variant

    step = factory.SubFactory(CampaignStepFactory)
    label = "A"
    content = factory.LazyFunction(
        lambda: {"en": {"subject": "Hello", "body": "Hello {{ customer.first_name }}"}}
    )


class DeliveryFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Delivery

    step = factory.SubFactory(CampaignStepFactory)
    campaign = factory.SelfAttribute("step.campaign")
    customer = factory.SubFactory(CustomerFactory)
    status = Delivery.Status.SENT


class SituationRuleFactory(factory.django.DjangoModelFactory):
    """A rule: by default one ``page_view`` whose path contains "wedding" → marriage."""

    class Meta:
        model = SituationRule

    owner_department = factory.SubFactory(DepartmentFactory)
    name = factory.Sequence(lambda n: f"Rule {n}")
    kind = LifeEvent.Kind.MARRIAGE
    event_type = factory.SubFactory(EventTypeFactory)
    property = "path"
    operator = SituationRule.Operator.CONTAINS
    value = "wedding"
    min_count = 1
    window_days = 30
    cooldown_days = 180
    confidence = 0.6


class LifeEventFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = LifeEvent

    customer = factory.SubFactory(CustomerFactory)
    kind = LifeEvent.Kind.MARRIAGE
    detected_at = factory.LazyFunction(timezone.now)
    source = "staff"
    confidence = 1.0


class CartFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Cart

    customer = factory.SubFactory(CustomerFactory)
    updated_at = factory.LazyFunction(timezone.now)


class CartItemFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = CartItem

    cart = factory.SubFactory(CartFactory, item_count=1, value=3000)
    product = factory.SubFactory(ProductFactory)
    quantity = 1
    unit_price = 3000
    added_at = factory.LazyFunction(timezone.now)


class FavoriteFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Favorite

    customer = factory.SubFactory(CustomerFactory)
    product = factory.SubFactory(ProductFactory)
    created_at = factory.LazyFunction(timezone.now)


class ProductChangeFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = ProductChange

    product = factory.SubFactory(ProductFactory)
    field = ProductChange.Field.PRICE
    old_value = 3000
    new_value = 2500
    changed_at = factory.LazyFunction(timezone.now)
    source = "test"


class CommentFactory(factory.django.DjangoModelFactory):
    """A comment on a persona; pass ``persona=None, journey=`` (and ``stage=``) for a map's."""

    class Meta:
        model = Comment

    persona = factory.SubFactory(PersonaFactory)
    author = factory.SubFactory(UserFactory)
    body = factory.Sequence(lambda n: f"Comment {n}")


def validated_import(text: str, *, department, kind: str = "customers") -> ImportJob:
    """An import job of ``text`` (CSV) made and validated as a user would, ready to run."""
    from customers.imports import import_job_create, import_job_validate, import_job_validate_start

    job = import_job_create(
        file=io.BytesIO(text.encode()),
        original_name=f"{kind}.csv",
        kind=kind,
        source="pos",
        department=department,
        by=None,
    )
    job = import_job_validate_start(job=job, mapping=job.mapping, by=None, queue=False)
    job = import_job_validate(job_id=job.pk)
    assert job.status == ImportJob.Status.VALID, list(job.row_errors.values_list("row", "reason"))
    return job


def completed_import(job: ImportJob) -> ImportJob:
    """Run a validated import job to its end, synchronously."""
    from customers.imports import import_job_run_start, run_pending_import

    job = import_job_run_start(job=job, skip_invalid_rows=False, by=None, queue=False)
    return run_pending_import(job=job)
