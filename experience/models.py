"""Circle ②: touchpoints, and the behaviour data born there (events, orders, surveys)."""

from __future__ import annotations

from django.db import models
from django.utils.translation import gettext_lazy as _

from config.org.models import Department, DepartmentOwned
from customers.models import AttributeDefinition, Customer, LifeEvent


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

    DESCRIPTIONS = {
        Code.DEAL: _("Getting more for the money: prices, points, coupons, bundles."),
        Code.CONVENIENCE: _("Saving time and effort: easy to find, order, pay, receive."),
        Code.FUN: _("Enjoyment and discovery: new things, events, play."),
        Code.REASSURANCE: _("Trust and safety: quality, advice, support when unsure."),
        Code.EMPATHY: _("Feeling understood and sharing values: stories, community, advocacy."),
    }

    code = models.CharField(_("code"), max_length=20, choices=Code.choices, unique=True)
    position = models.PositiveSmallIntegerField(default=0)

    class Meta:
        ordering = ["position"]
        verbose_name = _("experience value")
        verbose_name_plural = _("experience values")

    def __str__(self) -> str:
        return str(self.get_code_display())

    @property
    def description(self) -> str:
        return str(self.DESCRIPTIONS[self.code])

    @classmethod
    def bits_for(cls, codes) -> int:
        """The ``Event.value_bits`` mask of value codes; unknown codes raise ``KeyError``."""
        order = list(cls.Code.values)
        mask = 0
        for code in codes:
            if code not in order:
                raise KeyError(code)
            mask |= 1 << order.index(code)
        return mask

    @classmethod
    def codes_from_bits(cls, bits: int) -> list[str]:
        """The value codes set in an ``Event.value_bits`` mask, in taxonomy order."""
        return [code for i, code in enumerate(cls.Code.values) if bits & (1 << i)]


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

    # No single-column indexes on customer and touchpoint: the composite indexes below
    # lead with them and serve every lookup (and cascade) by those columns; each index
    # is one more B-tree insert per ingested event.
    customer = models.ForeignKey(
        Customer, on_delete=models.CASCADE, related_name="events", db_index=False
    )
    event_type = models.ForeignKey(EventType, on_delete=models.PROTECT, related_name="+")
    touchpoint = models.ForeignKey(
        Touchpoint,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        db_index=False,
    )
    occurred_at = models.DateTimeField(_("occurred"))
    source = models.CharField(_("source"), max_length=50)
    event_id = models.CharField(_("event ID"), max_length=100, null=True, blank=True)
    properties = models.JSONField(_("properties"), default=dict, blank=True)
    value_bits = models.PositiveSmallIntegerField(
        _("experience values delivered"),
        default=0,
        db_default=0,
        help_text=_("Bit mask over the five experience values (see ExperienceValue.bits_for)."),
    )
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


class EventFollowUp(models.Model):
    """Follow-up owed for a batch of stored events: which customers have new events of
    which types. Rows are drained by one task (``experience.pipeline.follow_ups_drain``)
    per batch window instead of one queued task per request; an admin never edits them."""

    touched = models.JSONField(_("touched customers by event type"))
    queued = models.BooleanField(_("queued a drain"), default=False)
    created_at = models.DateTimeField(_("created"), auto_now_add=True)

    class Meta:
        verbose_name = _("event follow-up")
        verbose_name_plural = _("event follow-ups")

    def __str__(self) -> str:
        return f"follow-up {self.pk} ({len(self.touched)} event types)"


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


class ProductChange(models.Model):
    """A recorded change of a product's price or stock: what back-in-stock, low-stock and
    price-drop triggers fire on."""

    class Field(models.TextChoices):
        PRICE = "price", _("Price")
        STOCK = "stock", _("Stock")

    product = models.ForeignKey(Product, on_delete=models.CASCADE, related_name="changes")
    field = models.CharField(_("field"), max_length=10, choices=Field.choices)
    old_value = models.DecimalField(_("old value"), max_digits=12, decimal_places=0)
    new_value = models.DecimalField(_("new value"), max_digits=12, decimal_places=0)
    changed_at = models.DateTimeField(_("changed"))
    source = models.CharField(_("source"), max_length=50, blank=True)

    class Meta:
        ordering = ["-changed_at"]
        indexes = [
            models.Index(fields=["product", "changed_at"]),
            models.Index(fields=["field", "changed_at"]),
        ]
        verbose_name = _("product change")
        verbose_name_plural = _("product changes")

    def __str__(self) -> str:
        return f"{self.product_id} {self.field}: {self.old_value} → {self.new_value}"


class Cart(models.Model):
    """A customer's current cart, kept from cart events; an open cart left alone is an
    abandoned cart.

    One row per customer: ``add_to_cart``/``remove_from_cart`` change its lines, a purchase
    or checkout completion empties it and sets ``converted_at``.
    """

    customer = models.OneToOneField(Customer, on_delete=models.CASCADE, related_name="cart")
    touchpoint = models.ForeignKey(
        Touchpoint, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    updated_at = models.DateTimeField(_("updated"))
    item_count = models.PositiveIntegerField(_("items"), default=0)
    value = models.DecimalField(_("value"), max_digits=12, decimal_places=0, default=0)
    converted_at = models.DateTimeField(_("converted"), null=True, blank=True)

    class Meta:
        indexes = [
            models.Index(
                fields=["updated_at"],
                name="cart_open_updated",
                condition=models.Q(item_count__gt=0),
            )
        ]
        verbose_name = _("cart")
        verbose_name_plural = _("carts")

    def __str__(self) -> str:
        return f"{self.customer_id}: {self.item_count}"


class CartItem(models.Model):
    cart = models.ForeignKey(Cart, on_delete=models.CASCADE, related_name="items")
    product = models.ForeignKey(Product, on_delete=models.CASCADE, related_name="+")
    quantity = models.PositiveIntegerField(_("quantity"), default=1)
    unit_price = models.DecimalField(_("unit price"), max_digits=10, decimal_places=0)
    added_at = models.DateTimeField(_("added"))

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["cart", "product"], name="uniq_cart_item"),
        ]
        verbose_name = _("cart item")
        verbose_name_plural = _("cart items")

    def __str__(self) -> str:
        return f"{self.quantity} × {self.product_id}"


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
        PREFERENCE = "preference", _("Preference (one choice)")

    name = models.CharField(_("name"), max_length=200)
    kind = models.CharField(_("kind"), max_length=10, choices=Kind.choices, default=Kind.NPS)
    question = models.TextField(_("question"), help_text=_("Shown to Japanese readers."))
    question_en = models.TextField(
        _("question (English)"),
        blank=True,
        help_text=_("Shown to English readers; the Japanese question is used when empty."),
    )
    choices = models.JSONField(
        _("choices"),
        default=list,
        blank=True,
        help_text=_(
            'Preference surveys: [{"value": "roses", "label": "バラ", "label_en": "Roses"}, …].'
        ),
    )
    attribute = models.ForeignKey(
        AttributeDefinition,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        verbose_name=_("profile attribute"),
        help_text=_("Preference surveys: the answer is stored in this customer attribute."),
    )
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


class SurveyInvitation(models.Model):
    """One customer asked to answer one survey, reached through a signed one-time link.

    The public link carries a signature of this row's id; ``answered_at`` and the response's
    one-to-one reference make a second answer impossible even when two arrive at once.
    """

    survey = models.ForeignKey(Survey, on_delete=models.CASCADE, related_name="invitations")
    customer = models.ForeignKey(
        Customer, on_delete=models.CASCADE, related_name="survey_invitations"
    )
    order = models.ForeignKey(
        Order, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    touchpoint = models.ForeignKey(
        Touchpoint, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(_("created"))
    expires_at = models.DateTimeField(_("expires"))
    answered_at = models.DateTimeField(_("answered"), null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [
            models.Index(fields=["survey", "created_at"]),
            models.Index(fields=["customer", "created_at"]),
        ]
        verbose_name = _("survey invitation")
        verbose_name_plural = _("survey invitations")

    def __str__(self) -> str:
        return f"{self.survey_id} → {self.customer_id}"


class SurveyResponse(models.Model):
    """One customer's answer: the score lands on the profile and in reports."""

    survey = models.ForeignKey(Survey, on_delete=models.CASCADE, related_name="responses")
    customer = models.ForeignKey(
        Customer, on_delete=models.CASCADE, related_name="survey_responses"
    )
    invitation = models.OneToOneField(
        SurveyInvitation,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="response",
    )
    touchpoint = models.ForeignKey(
        Touchpoint, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    score = models.PositiveSmallIntegerField(
        _("score"), null=True, blank=True, help_text=_("0–10 for NPS, 1–5 for satisfaction.")
    )
    choice = models.CharField(
        _("choice"),
        max_length=100,
        blank=True,
        default="",
        db_default="",
        help_text=_("Preference surveys."),
    )
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


class SituationRule(DepartmentOwned):
    """A rule that turns behaviour or external signals into a detected life situation.

    Matches customers with at least ``min_count`` events of ``event_type`` within
    ``window_days`` whose ``property`` satisfies ``operator``/``value`` (all events of the
    type when ``property`` is empty). A customer is not detected again for the same kind
    within ``cooldown_days``.
    """

    class Operator(models.TextChoices):
        EQUALS = "equals", _("equals")
        CONTAINS = "contains", _("contains")
        STARTS_WITH = "starts_with", _("starts with")
        AT_LEAST = "gte", _("at least")

    name = models.CharField(_("name"), max_length=200)
    kind = models.CharField(_("situation"), max_length=30, choices=LifeEvent.Kind.choices)
    event_type = models.ForeignKey(
        EventType, on_delete=models.PROTECT, related_name="+", verbose_name=_("event type")
    )
    property = models.CharField(_("property"), max_length=60, blank=True)
    operator = models.CharField(
        _("operator"), max_length=12, choices=Operator.choices, default=Operator.EQUALS
    )
    value = models.CharField(_("value"), max_length=200, blank=True)
    min_count = models.PositiveSmallIntegerField(_("at least (events)"), default=1)
    window_days = models.PositiveSmallIntegerField(_("within (days)"), default=30)
    cooldown_days = models.PositiveSmallIntegerField(_("not again within (days)"), default=180)
    confidence = models.FloatField(_("confidence"), default=0.7)
    is_active = models.BooleanField(_("active"), default=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(confidence__gte=0, confidence__lte=1),
                name="situation_rule_confidence_0_1",
            ),
        ]
        verbose_name = _("situation rule")
        verbose_name_plural = _("situation rules")

    def __str__(self) -> str:
        return self.name
