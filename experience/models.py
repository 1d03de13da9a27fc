"""Circle ②: touchpoints, and the behaviour data born there (events, orders, surveys)."""

from __future__ import annotations

from django.db import models
from django.utils.translation import gettext_lazy as _

from config.org.models import Department, DepartmentOwned
from customers.models import Customer


class ExperienceValue(models.Model):
    """One of the five values a touchpoint or campaign delivers to the customer.

    A table (not a choice list) so touchpoints, personas, stages and campaigns can point at
    values with ordinary joins on both SQLite and PostgreSQL.
    """

    class Code(models.TextChoices):
        DEAL = "deal", _("Deal (お得)")
        CONVENIENCE = "convenience", _("Convenience (便利)")
        FUN = "fun", _("Fun (楽しい)")
        REASSURANCE = "reassurance", _("Reassurance (安心)")
        EMPATHY = "empathy", _("Empathy (共感)")

    code = models.CharField(_("code"), max_length=20, choices=Code.choices, unique=True)
    position = models.PositiveSmallIntegerField(default=0)

    class Meta:
        ordering = ["position"]
        verbose_name = _("experience value")
        verbose_name_plural = _("experience values")

    def __str__(self) -> str:
        return str(self.get_code_display())


class Touchpoint(DepartmentOwned):
    """A place where the company meets the customer: a channel online, offline or in the app."""

    class Channel(models.TextChoices):
        WEB = "web", _("Website")
        APP = "app", _("App")
        EMAIL = "email", _("Email")
        SMS = "sms", _("SMS")
        LINE = "line", _("LINE")
        PUSH = "push", _("App push")
        ADS = "ads", _("Advertising")
        STORE = "store", _("Store")
        CALL_CENTER = "call_center", _("Call centre")
        SALES_VISIT = "sales_visit", _("Sales visit")
        EVENT = "event", _("Event")
        DIRECT_MAIL = "dm", _("Direct mail")

    class Kind(models.TextChoices):
        ONLINE = "online", _("Online")
        OFFLINE = "offline", _("Offline")
        APP = "app", _("In the app")

    code = models.SlugField(_("code"), max_length=50, unique=True)
    name = models.CharField(_("name"), max_length=200)
    channel = models.CharField(_("channel"), max_length=20, choices=Channel.choices)
    kind = models.CharField(_("kind"), max_length=10, choices=Kind.choices)
    description = models.TextField(_("description"), blank=True)
    experience_values = models.ManyToManyField(
        ExperienceValue, blank=True, related_name="touchpoints", verbose_name=_("experience values")
    )
    is_active = models.BooleanField(_("active"), default=True)

    class Meta:
        ordering = ["kind", "name"]
        verbose_name = _("touchpoint")
        verbose_name_plural = _("touchpoints")

    def __str__(self) -> str:
        return self.name


class EventType(models.Model):
    """Registry of event names and the properties each carries, so bad input is caught."""

    name = models.SlugField(_("name"), max_length=60, unique=True)
    description = models.CharField(_("description"), max_length=200, blank=True)
    owner_department = models.ForeignKey(
        Department, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    property_schema = models.JSONField(
        _("property schema"),
        default=dict,
        blank=True,
        help_text=_('Property name → type, e.g. {"sku": "string", "price": "number"}.'),
    )

    class Meta:
        ordering = ["name"]
        verbose_name = _("event type")
        verbose_name_plural = _("event types")

    def __str__(self) -> str:
        return self.name


class Event(models.Model):
    """One thing a customer did or received at a touchpoint; the raw behaviour log."""

    customer = models.ForeignKey(Customer, on_delete=models.CASCADE, related_name="events")
    event_type = models.ForeignKey(EventType, on_delete=models.PROTECT, related_name="+")
    touchpoint = models.ForeignKey(
        Touchpoint, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    occurred_at = models.DateTimeField(_("occurred"))
    source = models.CharField(_("source"), max_length=50)
    event_id = models.CharField(_("event ID"), max_length=100, null=True, blank=True)
    properties = models.JSONField(_("properties"), default=dict, blank=True)
    received_at = models.DateTimeField(_("received"), auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["source", "event_id"],
                condition=models.Q(event_id__isnull=False),
                name="uniq_event_source_event_id",
            ),
        ]
        indexes = [
            models.Index(fields=["customer", "occurred_at"]),
            models.Index(fields=["occurred_at", "event_type"]),
            models.Index(fields=["touchpoint", "occurred_at"]),
        ]
        verbose_name = _("event")
        verbose_name_plural = _("events")

    def __str__(self) -> str:
        return f"{self.event_type_id}@{self.occurred_at:%Y-%m-%d %H:%M}"


class Product(models.Model):
    """Something the company sells."""

    sku = models.CharField(_("SKU"), max_length=50, unique=True)
    name = models.CharField(_("name"), max_length=200)
    category = models.CharField(_("category"), max_length=100, db_index=True)
    price = models.DecimalField(_("price"), max_digits=10, decimal_places=0)
    stock = models.IntegerField(_("stock"), default=0)
    is_active = models.BooleanField(_("active"), default=True)

    class Meta:
        ordering = ["sku"]
        verbose_name = _("product")
        verbose_name_plural = _("products")

    def __str__(self) -> str:
        return f"{self.name} ({self.sku})"


class Order(models.Model):
    """A purchase online, in the app or in a store. Amounts are in yen (no decimals)."""

    class Status(models.TextChoices):
        COMPLETED = "completed", _("Completed")
        CANCELLED = "cancelled", _("Cancelled")
        RETURNED = "returned", _("Returned")

    customer = models.ForeignKey(Customer, on_delete=models.CASCADE, related_name="orders")
    number = models.CharField(_("order number"), max_length=50, unique=True)
    ordered_at = models.DateTimeField(_("ordered"))
    touchpoint = models.ForeignKey(
        Touchpoint, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    status = models.CharField(
        _("status"), max_length=10, choices=Status.choices, default=Status.COMPLETED
    )
    total = models.DecimalField(_("total"), max_digits=12, decimal_places=0)
    source = models.CharField(_("source"), max_length=50, blank=True)

    class Meta:
        ordering = ["-ordered_at"]
        indexes = [
            models.Index(fields=["customer", "ordered_at"]),
            models.Index(fields=["ordered_at"]),
        ]
        verbose_name = _("order")
        verbose_name_plural = _("orders")

    def __str__(self) -> str:
        return self.number


class OrderLine(models.Model):
    order = models.ForeignKey(Order, on_delete=models.CASCADE, related_name="lines")
    product = models.ForeignKey(Product, on_delete=models.PROTECT, related_name="+")
    quantity = models.PositiveIntegerField(_("quantity"), default=1)
    unit_price = models.DecimalField(_("unit price"), max_digits=10, decimal_places=0)

    class Meta:
        verbose_name = _("order line")
        verbose_name_plural = _("order lines")

    def __str__(self) -> str:
        return f"{self.quantity} × {self.product_id}"


class Favorite(models.Model):
    """A product a customer marked; drives back-in-stock and price-drop messages."""

    customer = models.ForeignKey(Customer, on_delete=models.CASCADE, related_name="favorites")
    product = models.ForeignKey(Product, on_delete=models.CASCADE, related_name="+")
    created_at = models.DateTimeField(_("added"))

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["customer", "product"], name="uniq_favorite"),
        ]
        verbose_name = _("favourite")
        verbose_name_plural = _("favourites")

    def __str__(self) -> str:
        return f"{self.customer_id} ♥ {self.product_id}"


class Survey(DepartmentOwned):
    """A question put to customers after an experience: NPS or satisfaction."""

    class Kind(models.TextChoices):
        NPS = "nps", _("NPS (0–10)")
        CSAT = "csat", _("Satisfaction (1–5)")

    name = models.CharField(_("name"), max_length=200)
    kind = models.CharField(_("kind"), max_length=10, choices=Kind.choices, default=Kind.NPS)
    question = models.TextField(_("question"))
    touchpoint = models.ForeignKey(
        Touchpoint, null=True, blank=True, on_delete=models.SET_NULL, related_name="surveys"
    )
    is_active = models.BooleanField(_("active"), default=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]
        verbose_name = _("survey")
        verbose_name_plural = _("surveys")

    def __str__(self) -> str:
        return self.name


class SurveyResponse(models.Model):
    """One customer's answer: the score lands on the profile and in reports."""

    survey = models.ForeignKey(Survey, on_delete=models.CASCADE, related_name="responses")
    customer = models.ForeignKey(
        Customer, on_delete=models.CASCADE, related_name="survey_responses"
    )
    touchpoint = models.ForeignKey(
        Touchpoint, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    score = models.PositiveSmallIntegerField(_("score"))
    comment = models.TextField(_("comment"), blank=True)
    answered_at = models.DateTimeField(_("answered"))

    class Meta:
        ordering = ["-answered_at"]
        constraints = [
            models.CheckConstraint(condition=models.Q(score__lte=10), name="survey_score_max_10"),
        ]
        indexes = [
            models.Index(fields=["answered_at", "survey"]),
            models.Index(fields=["customer", "answered_at"]),
        ]
        verbose_name = _("survey response")
        verbose_name_plural = _("survey responses")

    def __str__(self) -> str:
        return f"{self.score} ({self.answered_at:%Y-%m-%d})"
