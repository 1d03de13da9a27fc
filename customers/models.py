"""Circle ①: the unified customer profile and what hangs off it."""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models
from django.db.models import Value
from django.utils.translation import gettext_lazy as _

from config.org.models import Department, DepartmentOwned


class LifecycleStage(models.TextChoices):
    PROSPECT = "prospect", _("Prospect")
    FIRST_PURCHASE = "first_purchase", _("First purchase")
    REPEAT = "repeat", _("Repeat")
    LOYAL = "loyal", _("Loyal")
    DORMANT = "dormant", _("Dormant")
    CHURNED = "churned", _("Churned")


class LeadStage(models.TextChoices):
    """Where a prospect stands by lead score (thresholds in settings)."""

    LEAD = "lead", _("Lead")
    MQL = "mql", _("Marketing qualified (MQL)")


class Customer(models.Model):
    """One person, however many identifiers and channels they reach us through."""

    class Gender(models.TextChoices):
        UNKNOWN = "", _("Not given")
        FEMALE = "f", _("Female")
        MALE = "m", _("Male")
        OTHER = "o", _("Other")

    uuid = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    family_name = models.CharField(_("family name"), max_length=100, blank=True)
    given_name = models.CharField(_("given name"), max_length=100, blank=True)
    family_name_kana = models.CharField(_("family name (kana)"), max_length=100, blank=True)
    given_name_kana = models.CharField(_("given name (kana)"), max_length=100, blank=True)
    birth_date = models.DateField(_("birth date"), null=True, blank=True)
    gender = models.CharField(_("gender"), max_length=1, choices=Gender.choices, blank=True)
    postal_code = models.CharField(_("postal code"), max_length=10, blank=True)
    prefecture = models.CharField(_("prefecture"), max_length=20, blank=True)
    city = models.CharField(_("city"), max_length=100, blank=True)
    language = models.CharField(
        _("language"), max_length=8, choices=settings.LANGUAGES, default="ja"
    )
    time_zone = models.CharField(
        _("time zone"),
        max_length=50,
        blank=True,
        help_text=_("IANA name, e.g. America/Los_Angeles; blank means the company's time zone."),
    )
    lifecycle_stage = models.CharField(
        _("lifecycle stage"),
        max_length=20,
        choices=LifecycleStage.choices,
        default=LifecycleStage.PROSPECT,
        db_index=True,
    )
    is_anonymous = models.BooleanField(
        _("anonymous"), default=False, help_text=_("Known only by a cookie or device so far.")
    )
    attributes = models.JSONField(_("custom attributes"), default=dict, blank=True)
    merged_into = models.ForeignKey(
        "self",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="merged_from",
        help_text=_("Set when this profile was merged into another one."),
    )
    created_at = models.DateTimeField(_("created"), auto_now_add=True, db_index=True)
    updated_at = models.DateTimeField(_("updated"), auto_now=True)
    erased_at = models.DateTimeField(
        _("erased"),
        null=True,
        blank=True,
        help_text=_("Set when the person's data was erased on request; aggregates stay."),
    )

    class Meta:
        ordering = ["-id"]
        indexes = [
            # One per name column: name search ORs prefix ranges over all four.
            models.Index(fields=["family_name"]),
            models.Index(fields=["given_name"]),
            models.Index(fields=["family_name_kana"]),
            models.Index(fields=["given_name_kana"]),
        ]
        permissions = [("view_pii", _("Can view personal data of customers unmasked"))]
        verbose_name = _("customer")
        verbose_name_plural = _("customers")

    def __str__(self) -> str:
        return self.full_name or f"#{self.pk}"

    @property
    def full_name(self) -> str:
        """Japanese order for Japanese-language profiles, Western order otherwise."""
        parts = (
            [self.family_name, self.given_name]
            if self.language == "ja"
            else [self.given_name, self.family_name]
        )
        return " ".join(part for part in parts if part)


class Identity(models.Model):
    """One identifier of a person, normalised and unique per kind across the company."""

    class Kind(models.TextChoices):
        EMAIL = "email", _("Email")
        PHONE = "phone", _("Phone")
        APP = "app", _("App user ID")
        POS = "pos", _("POS member ID")
        COOKIE = "cookie", _("Web cookie")
        LINE = "line", _("LINE ID")
        DMP = "dmp", _("External DMP ID")
        CUSTOM = "custom", _("Custom")

    customer = models.ForeignKey(Customer, on_delete=models.CASCADE, related_name="identities")
    kind = models.CharField(_("kind"), max_length=10, choices=Kind.choices)
    value = models.CharField(_("value"), max_length=255)
    source = models.CharField(_("source"), max_length=50, blank=True)
    first_seen_at = models.DateTimeField(_("first seen"), auto_now_add=True)
    last_seen_at = models.DateTimeField(_("last seen"), null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["kind", "value"], name="uniq_identity_kind_value"),
        ]
        indexes = [models.Index(fields=["customer", "kind"])]
        verbose_name = _("identity")
        verbose_name_plural = _("identities")

    def __str__(self) -> str:
        return f"{self.get_kind_display()}: {self.value}"


class ErasedIdentifier(models.Model):
    """A keyed hash of an identifier of an erased person, so the person stays suppressed.

    The clear value is gone; ``digest`` is ``customers.privacy.identifier_digest(kind,
    normalised value)`` (HMAC-SHA256 with ``settings.PII_HASH_KEY``), which a sender can
    compute for an address and look up without anyone being able to read it back.
    """

    kind = models.CharField(_("kind"), max_length=10, choices=Identity.Kind.choices)
    digest = models.CharField(_("digest"), max_length=64)
    erased_at = models.DateTimeField(_("erased"), auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["kind", "digest"], name="uniq_erased_identifier"),
        ]
        verbose_name = _("erased identifier")
        verbose_name_plural = _("erased identifiers")

    def __str__(self) -> str:
        return f"{self.get_kind_display()}: {self.digest[:12]}…"


class Channel(models.TextChoices):
    """Channels a person can consent to be contacted through."""

    EMAIL = "email", _("Email")
    SMS = "sms", _("SMS")
    LINE = "line", _("LINE")
    PUSH = "push", _("App push")
    DIRECT_MAIL = "dm", _("Direct mail")
    PHONE = "phone", _("Phone call")
    ADS = "ads", _("Personalised ads")


class Consent(models.Model):
    """The current consent of one person for one channel; its history is in ConsentChange."""

    class Status(models.TextChoices):
        GRANTED = "granted", _("Granted")
        WITHDRAWN = "withdrawn", _("Withdrawn")

    customer = models.ForeignKey(Customer, on_delete=models.CASCADE, related_name="consents")
    channel = models.CharField(_("channel"), max_length=10, choices=Channel.choices)
    status = models.CharField(_("status"), max_length=10, choices=Status.choices)
    source = models.CharField(_("source"), max_length=50, blank=True)
    updated_at = models.DateTimeField(_("updated"))

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["customer", "channel"], name="uniq_consent_channel"),
        ]
        indexes = [models.Index(fields=["channel", "status", "customer"])]
        verbose_name = _("consent")
        verbose_name_plural = _("consents")

    def __str__(self) -> str:
        return f"{self.customer_id} {self.channel}: {self.status}"


class ConsentChange(models.Model):
    """Append-only history of consent: who changed it, when, through which source."""

    consent = models.ForeignKey(Consent, on_delete=models.CASCADE, related_name="changes")
    status = models.CharField(_("status"), max_length=10, choices=Consent.Status.choices)
    source = models.CharField(_("source"), max_length=50)
    changed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    changed_at = models.DateTimeField(_("changed"))

    class Meta:
        ordering = ["-changed_at"]
        verbose_name = _("consent change")
        verbose_name_plural = _("consent changes")

    def __str__(self) -> str:
        return f"{self.consent} → {self.status} ({self.source})"


class ImportantDate(models.Model):
    """A date that matters to the person each year: birthdays, anniversaries…"""

    class Kind(models.TextChoices):
        BIRTHDAY = "birthday", _("Birthday")
        SPOUSE_BIRTHDAY = "spouse_birthday", _("Spouse's birthday")
        CHILD_BIRTHDAY = "child_birthday", _("Child's birthday")
        ANNIVERSARY = "anniversary", _("Wedding anniversary")
        CUSTOM = "custom", _("Other")

    customer = models.ForeignKey(Customer, on_delete=models.CASCADE, related_name="important_dates")
    kind = models.CharField(_("kind"), max_length=20, choices=Kind.choices)
    label = models.CharField(_("label"), max_length=100, blank=True)
    month = models.PositiveSmallIntegerField(_("month"))
    day = models.PositiveSmallIntegerField(_("day"))
    year = models.PositiveSmallIntegerField(_("year"), null=True, blank=True)
    self_declared = models.BooleanField(
        _("given by the customer"),
        default=False,
        help_text=_("Entered by the person in the preference centre."),
    )

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=models.Q(month__gte=1, month__lte=12, day__gte=1, day__lte=31),
                name="important_date_valid_month_day",
            ),
        ]
        indexes = [models.Index(fields=["month", "day", "kind"])]
        verbose_name = _("important date")
        verbose_name_plural = _("important dates")

    def __str__(self) -> str:
        return f"{self.get_kind_display()} {self.month:02d}-{self.day:02d}"


class AttributeDefinition(DepartmentOwned):
    """The registry of typed custom attributes kept in ``Customer.attributes``."""

    class Type(models.TextChoices):
        TEXT = "text", _("Text")
        NUMBER = "number", _("Number")
        BOOLEAN = "boolean", _("Yes/no")
        DATE = "date", _("Date")
        CHOICE = "choice", _("Choice")

    key = models.SlugField(_("key"), max_length=50, unique=True)
    label = models.CharField(_("label"), max_length=100)
    type = models.CharField(_("type"), max_length=10, choices=Type.choices)
    choices = models.JSONField(_("choices"), default=list, blank=True)
    purpose = models.CharField(_("purpose of use"), max_length=200, blank=True)
    is_pii = models.BooleanField(_("personal data"), default=False)
    retention_days = models.PositiveIntegerField(
        _("keep for (days)"),
        null=True,
        blank=True,
        help_text=_(
            "Remove a person's value this many days after their last activity; "
            "blank keeps it until the person is erased."
        ),
    )

    class Meta:
        ordering = ["key"]
        verbose_name = _("attribute definition")
        verbose_name_plural = _("attribute definitions")

    def __str__(self) -> str:
        return self.label


class LifeEvent(models.Model):
    """A detected life situation: the moments when needs change.

    Detected by a rule of a department (``department`` is the rule's owner, who is told
    first), read from an external signal, or recorded by staff. ``handled_at`` marks that
    someone acted on it, so the list of new detections stays a to-do list.
    """

    class Kind(models.TextChoices):
        MARRIAGE = "marriage", _("Marriage")
        CHILDBIRTH = "childbirth", _("Childbirth")
        JOB_CHANGE = "job_change", _("Job change")
        MOVING = "moving", _("Moving house")
        COMPETITOR_INTEREST = "competitor_interest", _("Interest in a competitor")
        SUBSTITUTE_INTEREST = "substitute_interest", _("Interest in a substitute product")
        OTHER = "other", _("Other")

    customer = models.ForeignKey(Customer, on_delete=models.CASCADE, related_name="life_events")
    kind = models.CharField(_("kind"), max_length=30, choices=Kind.choices)
    detected_at = models.DateTimeField(_("detected"))
    source = models.CharField(_("source"), max_length=50, help_text=_("Rule, DMP or staff."))
    confidence = models.FloatField(_("confidence"), default=1.0)
    detail = models.JSONField(default=dict, blank=True)
    department = models.ForeignKey(
        Department,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        verbose_name=_("department"),
        help_text=_("Owner of the rule that detected it; empty for signals and staff entries."),
    )
    handled_at = models.DateTimeField(_("handled"), null=True, blank=True)
    handled_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        ordering = ["-detected_at"]
        indexes = [
            models.Index(fields=["kind", "detected_at"]),
            models.Index(fields=["detected_at"]),
            models.Index(fields=["customer", "kind", "detected_at"]),
        ]
        verbose_name = _("life situation")
        verbose_name_plural = _("life situations")

    def __str__(self) -> str:
        return f"{self.get_kind_display()} ({self.detected_at:%Y-%m-%d})"


class Segment(DepartmentOwned):
    """A group of customers described by a rule tree (dynamic) or a snapshot (static)."""

    class Kind(models.TextChoices):
        DYNAMIC = "dynamic", _("Dynamic")
        STATIC = "static", _("Static")

    name = models.CharField(_("name"), max_length=200)
    description = models.TextField(_("description"), blank=True)
    kind = models.CharField(_("kind"), max_length=10, choices=Kind.choices, default=Kind.DYNAMIC)
    rules = models.JSONField(_("rules"), default=dict, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    members = models.ManyToManyField(Customer, through="SegmentMembership", related_name="+")
    member_count = models.PositiveIntegerField(_("members"), null=True, blank=True)
    computed_at = models.DateTimeField(
        _("membership computed"),
        null=True,
        blank=True,
        help_text=_("When the materialised membership was last brought up to date."),
    )

    class Meta:
        ordering = ["name"]
        verbose_name = _("segment")
        verbose_name_plural = _("segments")

    def __str__(self) -> str:
        return self.name


class SegmentMembership(models.Model):
    """Materialised membership: static snapshots and refreshed dynamic segments."""

    # Two indexes besides the key, no more (every refresh writes each one per member):
    # (segment, customer) serves the segment side, the customer key's own index the person.
    # No foreign-key constraints in the database: membership is derived from the rules and
    # rewritten whole by a refresh, and the checks were 62 % of a 475k-member refresh on
    # PostgreSQL (two RI trigger calls per row). Deletes still cascade through Django's
    # collector (nothing deletes customers or segments in raw SQL), and a full refresh
    # removes any row whose customer no longer matches.
    segment = models.ForeignKey(
        Segment,
        on_delete=models.CASCADE,
        related_name="memberships",
        db_index=False,
        db_constraint=False,
    )
    customer = models.ForeignKey(
        Customer, on_delete=models.CASCADE, related_name="+", db_constraint=False
    )
    added_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["segment", "customer"], name="uniq_segment_member"),
        ]
        verbose_name = _("segment membership")
        verbose_name_plural = _("segment memberships")

    def __str__(self) -> str:
        return f"{self.segment_id} ∋ {self.customer_id}"


class CustomerMetrics(models.Model):
    """Per-customer read model kept up to date on ingestion, so segments need no scans."""

    customer = models.OneToOneField(
        Customer, primary_key=True, on_delete=models.CASCADE, related_name="metrics"
    )
    identity_count = models.PositiveIntegerField(default=0)
    order_count = models.PositiveIntegerField(default=0, db_index=True)
    revenue_total = models.DecimalField(max_digits=14, decimal_places=0, default=0)
    first_order_at = models.DateTimeField(null=True, blank=True)
    last_order_at = models.DateTimeField(null=True, blank=True, db_index=True)
    average_order_value = models.DecimalField(
        max_digits=12, decimal_places=0, default=0, db_default=0
    )
    event_count = models.PositiveIntegerField(default=0)
    last_event_at = models.DateTimeField(null=True, blank=True)
    last_event_by_type = models.JSONField(
        default=dict,
        db_default=Value({}, output_field=models.JSONField()),
        blank=True,
        help_text=_("Event type name → time of its latest event."),
    )
    last_nps = models.PositiveSmallIntegerField(null=True, blank=True)
    rfm_recency = models.PositiveSmallIntegerField(null=True, blank=True)
    rfm_frequency = models.PositiveSmallIntegerField(null=True, blank=True)
    rfm_monetary = models.PositiveSmallIntegerField(null=True, blank=True)
    lead_score = models.IntegerField(default=0, db_default=0, db_index=True)
    lead_stage = models.CharField(
        _("lead stage"),
        max_length=10,
        choices=LeadStage.choices,
        blank=True,
        db_default="",
        default="",
    )
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = _("customer metrics")
        verbose_name_plural = _("customer metrics")
        indexes = [
            # Segment NPS conditions (a range of last_nps) read only this index to find
            # their customers: the most selective of the common conditions drives the
            # plan instead of a scan of every customer (B2).
            models.Index(fields=["last_nps", "customer"], name="customers_metrics_nps_idx"),
        ]

    def __str__(self) -> str:
        return f"metrics of {self.customer_id}"


class CustomerMerge(models.Model):
    """Two profiles found to be one person: the loser's records moved to the winner.

    ``moved`` keeps the ids of every row that changed hands, per table, so a manager can
    undo the merge exactly.
    """

    winner = models.ForeignKey(Customer, on_delete=models.CASCADE, related_name="merges_won")
    loser = models.ForeignKey(Customer, on_delete=models.CASCADE, related_name="merges_lost")
    reason = models.CharField(_("reason"), max_length=200)
    moved = models.JSONField(default=dict, blank=True)
    merged_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    merged_at = models.DateTimeField(_("merged"), auto_now_add=True)
    undone_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    undone_at = models.DateTimeField(_("undone"), null=True, blank=True)

    class Meta:
        ordering = ["-merged_at"]
        indexes = [models.Index(fields=["loser"]), models.Index(fields=["winner"])]
        verbose_name = _("customer merge")
        verbose_name_plural = _("customer merges")

    def __str__(self) -> str:
        return f"{self.loser_id} → {self.winner_id}"


class ImportJob(DepartmentOwned):
    """One uploaded file of customers or orders, validated in full before anything is written."""

    class Kind(models.TextChoices):
        CUSTOMERS = "customers", _("Customers")
        ORDERS = "orders", _("Orders")
        EVENTS = "events", _("Offline events (visits, calls…)")
        PRODUCTS = "products", _("Products (price and stock)")
        DMP = "dmp", _("DMP signals")

    class Status(models.TextChoices):
        UPLOADED = "uploaded", _("Uploaded: map the columns")
        VALIDATING = "validating", _("Validating")
        INVALID = "invalid", _("Has errors")
        VALID = "valid", _("Valid: ready to import")
        IMPORTING = "importing", _("Importing")
        DONE = "done", _("Imported")
        FAILED = "failed", _("Failed")

    kind = models.CharField(_("kind"), max_length=10, choices=Kind.choices)
    file = models.FileField(_("file"), upload_to="imports/%Y/%m/")
    original_name = models.CharField(_("file name"), max_length=255)
    sha256 = models.CharField(max_length=64, db_index=True)
    source = models.CharField(
        _("source"), max_length=50, help_text=_("Where the rows come from, e.g. pos or webshop.")
    )
    mapping = models.JSONField(_("column mapping"), default=dict, blank=True)
    skip_invalid_rows = models.BooleanField(_("skip the listed bad rows"), default=False)
    status = models.CharField(
        _("status"), max_length=10, choices=Status.choices, default=Status.UPLOADED
    )
    total_rows = models.PositiveIntegerField(default=0)
    processed_rows = models.PositiveIntegerField(default=0)
    error_count = models.PositiveIntegerField(default=0)
    result = models.JSONField(default=dict, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        verbose_name = _("import")
        verbose_name_plural = _("imports")

    def __str__(self) -> str:
        return self.original_name


class ImportRowError(models.Model):
    """One reason one row of an import was rejected: row number, column and why."""

    job = models.ForeignKey(ImportJob, on_delete=models.CASCADE, related_name="row_errors")
    row = models.PositiveIntegerField(_("row"))
    column = models.CharField(_("column"), max_length=100, blank=True)
    value = models.CharField(_("value"), max_length=200, blank=True)
    reason = models.CharField(_("reason"), max_length=300)

    class Meta:
        ordering = ["job", "row"]
        indexes = [models.Index(fields=["job", "row"])]
        verbose_name = _("import row error")
        verbose_name_plural = _("import row errors")

    def __str__(self) -> str:
        return f"row {self.row} {self.column}: {self.reason}"
