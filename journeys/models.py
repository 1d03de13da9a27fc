"""Circle ③: personas and journeys co-edited by marketing and sales, and campaigns."""

from __future__ import annotations

import datetime as dt

from django.conf import settings
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from django.utils.translation import pgettext_lazy

from config.org.models import DepartmentOwned
from customers.models import Customer, Segment
from experience.models import ExperienceValue, Touchpoint


class Persona(DepartmentOwned):
    """A typical customer, written by people who meet them and backed by a live segment."""

    name = models.CharField(_("name"), max_length=200)
    initials = models.CharField(_("initials"), max_length=4, blank=True)
    color = models.CharField(_("colour"), max_length=7, default="#2a6f97")
    profile = models.TextField(_("profile"), blank=True)
    goals = models.TextField(_("goals"), blank=True)
    pains = models.TextField(_("pains"), blank=True)
    situations = models.TextField(_("life situations"), blank=True)
    values = models.TextField(_("values"), blank=True)
    preferred_channels = models.TextField(_("preferred channels"), blank=True)
    quotes = models.TextField(_("quotes from sales and stores"), blank=True)
    segment = models.ForeignKey(
        Segment,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="personas",
        verbose_name=_("segment"),
    )
    experience_values = models.ManyToManyField(
        ExperienceValue, blank=True, related_name="personas", verbose_name=_("experience values")
    )
    versions = models.JSONField(
        default=dict, blank=True, help_text="Cell name → version, for conflict-free co-editing."
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(_("created"), default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]
        verbose_name = _("persona")
        verbose_name_plural = _("personas")

    def __str__(self) -> str:
        return self.name


class Journey(DepartmentOwned):
    """A persona's path from awareness to advocacy, as a grid of stages × lanes."""

    name = models.CharField(_("name"), max_length=200)
    persona = models.ForeignKey(
        Persona, on_delete=models.PROTECT, related_name="journeys", verbose_name=_("persona")
    )
    description = models.TextField(_("description"), blank=True)
    is_template = models.BooleanField(
        _("template"), default=False, help_text=_("Offered as a starting point for new journeys.")
    )
    duplicated_from = models.ForeignKey(
        "self",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="copies",
        verbose_name=_("duplicated from"),
    )
    versions = models.JSONField(
        default=dict, blank=True, help_text="Cell name → version, for conflict-free co-editing."
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(_("created"), default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]
        verbose_name = _("journey")
        verbose_name_plural = _("journeys")

    def __str__(self) -> str:
        return self.name


class Stage(models.Model):
    """One column of a journey map; ``versions`` guards concurrent edits cell by cell."""

    class Kind(models.TextChoices):
        AWARENESS = "awareness", _("Awareness")
        CONSIDERATION = "consideration", _("Consideration")
        PURCHASE = "purchase", _("Purchase")
        USE = "use", _("Use")
        LOYALTY = "loyalty", _("Loyalty & advocacy")
        CUSTOM = "custom", _("Custom")

    journey = models.ForeignKey(Journey, on_delete=models.CASCADE, related_name="stages")
    position = models.PositiveSmallIntegerField(_("position"))
    kind = models.CharField(_("kind"), max_length=15, choices=Kind.choices, default=Kind.CUSTOM)
    name = models.CharField(_("name"), max_length=100)
    customer_goal = models.TextField(_("customer goal"), blank=True)
    actions = models.TextField(_("actions"), blank=True)
    thoughts = models.TextField(_("thoughts"), blank=True)
    emotion = models.SmallIntegerField(_("emotion (−2…+2)"), default=0)
    pain_points = models.TextField(_("pain points"), blank=True)
    opportunities = models.TextField(_("opportunities"), blank=True)
    kpi = models.CharField(_("KPI"), max_length=200, blank=True)
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        verbose_name=_("owner"),
    )
    touchpoints = models.ManyToManyField(
        Touchpoint, blank=True, related_name="stages", verbose_name=_("touchpoints")
    )
    experience_values = models.ManyToManyField(
        ExperienceValue, blank=True, related_name="stages", verbose_name=_("experience values")
    )
    versions = models.JSONField(
        default=dict, blank=True, help_text="Cell name → version, for conflict-free co-editing."
    )

    class Meta:
        ordering = ["journey", "position"]
        constraints = [
            models.UniqueConstraint(fields=["journey", "position"], name="uniq_stage_position"),
            models.CheckConstraint(
                condition=models.Q(emotion__gte=-2, emotion__lte=2), name="stage_emotion_range"
            ),
        ]
        verbose_name = _("stage")
        verbose_name_plural = _("stages")

    def __str__(self) -> str:
        return f"{self.journey} · {self.name}"


class Comment(models.Model):
    """A remark on a persona, a journey or one cell of either, from marketing, sales or a store.

    ``field`` names the cell (blank: the record as a whole); replies point at their thread's
    first comment through ``parent``, so threads are one level deep, as in most chat tools.
    """

    persona = models.ForeignKey(
        Persona, null=True, blank=True, on_delete=models.CASCADE, related_name="comments"
    )
    journey = models.ForeignKey(
        Journey, null=True, blank=True, on_delete=models.CASCADE, related_name="comments"
    )
    stage = models.ForeignKey(
        Stage, null=True, blank=True, on_delete=models.CASCADE, related_name="comments"
    )
    field = models.CharField(_("cell"), max_length=40, blank=True)
    parent = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.CASCADE, related_name="replies"
    )
    author = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    body = models.TextField(_("comment"))
    mentions = models.ManyToManyField(
        settings.AUTH_USER_MODEL, blank=True, related_name="+", verbose_name=_("mentions")
    )
    resolved_at = models.DateTimeField(_("resolved"), null=True, blank=True)
    resolved_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["created_at", "pk"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(persona__isnull=False) | models.Q(journey__isnull=False),
                name="comment_has_record",
            ),
        ]
        verbose_name = _("comment")
        verbose_name_plural = _("comments")

    def __str__(self) -> str:
        return self.body[:60]


class Revision(models.Model):
    """One saved change to a persona, journey or stage: who, when, which cell, before → after.

    Every write through ``journeys.maps.services`` appends one row per changed cell, so the
    log is the history page, the activity feed, the diff and what ``restore`` replays.
    Stage rows also carry their journey, so a journey's history includes its stages, and keep
    the stage's name in ``stage_name`` so they still read well after the stage is deleted.
    """

    class Action(models.TextChoices):
        CREATE = "create", pgettext_lazy("revision action", "created")
        EDIT = "edit", pgettext_lazy("revision action", "edited")
        RESTORE = "restore", pgettext_lazy("revision action", "restored")
        MOVE = "move", pgettext_lazy("revision action", "moved")
        DELETE = "delete", pgettext_lazy("revision action", "deleted")
        DUPLICATE = "duplicate", pgettext_lazy("revision action", "duplicated")

    persona = models.ForeignKey(
        Persona, null=True, blank=True, on_delete=models.CASCADE, related_name="revisions"
    )
    journey = models.ForeignKey(
        Journey, null=True, blank=True, on_delete=models.CASCADE, related_name="revisions"
    )
    stage = models.ForeignKey(
        Stage, null=True, blank=True, on_delete=models.SET_NULL, related_name="revisions"
    )
    stage_name = models.CharField(_("stage"), max_length=100, blank=True)
    action = models.CharField(_("action"), max_length=10, choices=Action.choices)
    field = models.CharField(_("cell"), max_length=40, blank=True)
    before = models.JSONField(_("before"), null=True, blank=True)
    after = models.JSONField(_("after"), null=True, blank=True)
    version = models.PositiveIntegerField(_("version"), default=0)
    restored_from = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    author = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(_("when"), default=timezone.now, db_index=True)

    class Meta:
        ordering = ["-created_at", "-pk"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(persona__isnull=False) | models.Q(journey__isnull=False),
                name="revision_has_record",
            ),
        ]
        indexes = [
            models.Index(fields=["journey", "-id"], name="revision_journey_idx"),
            models.Index(fields=["persona", "-id"], name="revision_persona_idx"),
            models.Index(fields=["stage", "field", "-id"], name="revision_stage_cell_idx"),
        ]
        verbose_name = _("revision")
        verbose_name_plural = _("revisions")

    def __str__(self) -> str:
        return f"{self.get_action_display()} {self.field or ''}".strip()


class Presence(models.Model):
    """Who has a persona or journey open right now, and which cell they are typing in.

    One row per (room, user), refreshed by each poll of the open page; rows older than a few
    seconds mean the person has left. A table rather than the cache, so every web process
    sees every other's visitors without a shared cache server.
    """

    room = models.CharField(max_length=40)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="presences"
    )
    cell = models.CharField(max_length=80, blank=True)
    seen_at = models.DateTimeField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["room", "user"], name="uniq_presence"),
        ]
        indexes = [models.Index(fields=["room", "seen_at"], name="presence_room_idx")]
        verbose_name = _("presence")
        verbose_name_plural = _("presences")

    def __str__(self) -> str:
        return f"{self.user} @ {self.room}"


class Notification(models.Model):
    """Something a staff member should read: a mention, a reply, a comment on their stage."""

    class Kind(models.TextChoices):
        MENTION = "mention", _("mentioned you")
        REPLY = "reply", _("replied to you")
        COMMENT = "comment", _("commented on your stage")

    recipient = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="notifications"
    )
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    kind = models.CharField(_("kind"), max_length=10, choices=Kind.choices)
    comment = models.ForeignKey(Comment, on_delete=models.CASCADE, related_name="notifications")
    created_at = models.DateTimeField(_("when"), default=timezone.now)
    read_at = models.DateTimeField(_("read"), null=True, blank=True)
    emailed_at = models.DateTimeField(_("e-mailed"), null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-pk"]
        constraints = [
            models.UniqueConstraint(fields=["recipient", "comment"], name="uniq_notification"),
        ]
        indexes = [
            models.Index(
                fields=["recipient", "read_at", "-created_at"], name="notification_inbox_idx"
            )
        ]
        verbose_name = _("notification")
        verbose_name_plural = _("notifications")

    def __str__(self) -> str:
        return f"{self.recipient}: {self.get_kind_display()}"


class ContactPolicy(models.Model):
    """The company's one contact-pressure budget and quiet hours, across every department.

    A single row (``ContactPolicy.current()``): at most ``max_contacts`` marketing contacts
    per person in any ``window_days`` days, counting every channel and department (sales
    visits included), and nothing sent between ``quiet_start`` and ``quiet_end`` in the
    person's own time zone.
    """

    max_contacts = models.PositiveSmallIntegerField(_("marketing contacts per person"), default=3)
    window_days = models.PositiveSmallIntegerField(_("in any period of (days)"), default=7)
    max_defer_hours = models.PositiveSmallIntegerField(
        _("defer for at most (hours)"),
        default=72,
        help_text=_("A message over the budget waits for a free slot this long, then is dropped."),
    )
    quiet_start = models.TimeField(_("quiet hours start"), default=dt.time(21, 0))
    quiet_end = models.TimeField(_("quiet hours end"), default=dt.time(9, 0))
    default_holdout_percent = models.PositiveSmallIntegerField(_("default holdout %"), default=10)
    default_conversion_days = models.PositiveSmallIntegerField(
        _("default attribution window (days)"), default=7
    )
    updated_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.CheckConstraint(condition=models.Q(pk=1), name="contact_policy_singleton"),
            models.CheckConstraint(
                condition=models.Q(max_contacts__gte=1, window_days__gte=1),
                name="contact_policy_positive",
            ),
            models.CheckConstraint(
                condition=models.Q(default_holdout_percent__lte=50),
                name="contact_policy_holdout_max_50",
            ),
        ]
        verbose_name = _("contact policy")
        verbose_name_plural = _("contact policy")

    def __str__(self) -> str:
        return str(_("Contact policy"))

    @classmethod
    def current(cls) -> ContactPolicy:
        """The policy row, created with the defaults on first use."""
        policy, _created = cls.objects.get_or_create(pk=1)
        return policy


class Campaign(DepartmentOwned):
    """An action on customers, on one channel, in one or more steps.

    ``kind`` says what enrols a person: a one-off or recurring send to ``segment``, or a
    trigger described by ``trigger`` (an event, a date attribute, entry into ``segment``, a
    detected life situation). Each enrolment walks through the steps (a sequence when there
    are several); ``audience_rules`` (a segment rule tree) filters who may enter.

    ``trigger`` keys by kind — event: ``event_type``, optional ``properties`` (exact
    matches); date: ``date_kind`` (ImportantDate.Kind) and ``days_before``; situation:
    ``situation`` (LifeEvent.Kind). Every kind: ``unless`` — event types that end an
    enrolment when they happen after it began ("unless a purchase happens first").
    """

    class Channel(models.TextChoices):
        EMAIL = "email", _("Email")
        SMS = "sms", _("SMS")
        LINE = "line", _("LINE")
        PUSH = "push", _("App push")
        DIRECT_MAIL = "dm", _("Direct mail export")
        STAFF_TASK = "staff_task", _("Staff task (sales or store)")
        WEBHOOK = "webhook", _("Webhook")

    class Status(models.TextChoices):
        DRAFT = "draft", _("Draft")
        SCHEDULED = "scheduled", _("Scheduled")
        RUNNING = "running", _("Running")
        PAUSED = "paused", _("Paused")
        COMPLETED = "completed", _("Completed")

    class Kind(models.TextChoices):
        ONE_OFF = "one_off", _("One-off send")
        RECURRING = "recurring", _("Recurring send")
        EVENT = "event", _("Triggered by an event")
        DATE = "date", _("Before an important date")
        SEGMENT_ENTRY = "segment_entry", _("On entering a segment")
        SITUATION = "situation", _("On a detected life situation")

    name = models.CharField(_("name"), max_length=200)
    goal = models.TextField(_("goal"), blank=True)
    kind = models.CharField(_("kind"), max_length=15, choices=Kind.choices, default=Kind.ONE_OFF)
    channel = models.CharField(_("channel"), max_length=12, choices=Channel.choices)
    status = models.CharField(
        _("status"), max_length=10, choices=Status.choices, default=Status.DRAFT, db_index=True
    )
    preset = models.CharField(
        _("scenario preset"), max_length=30, blank=True, help_text=_("The preset it was made from.")
    )
    segment = models.ForeignKey(
        Segment,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="campaigns",
        verbose_name=_("audience segment"),
    )
    audience_rules = models.JSONField(
        _("entry conditions"),
        default=dict,
        blank=True,
        help_text=_("A segment rule tree every person must match to enter."),
    )
    trigger = models.JSONField(_("trigger"), default=dict, blank=True)
    cron = models.CharField(
        _("repeat (cron)"),
        max_length=100,
        blank=True,
        help_text=_("Minute hour day month weekday, in the company time zone: 0 10 * * 5."),
    )
    journey_stage = models.ForeignKey(
        Stage,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="campaigns",
        verbose_name=_("journey stage"),
    )
    experience_values = models.ManyToManyField(
        ExperienceValue, blank=True, related_name="campaigns", verbose_name=_("experience values")
    )
    priority = models.PositiveSmallIntegerField(
        _("priority"),
        default=50,
        help_text=_("0–100. When the contact budget is short, higher priority goes first."),
    )
    is_marketing = models.BooleanField(
        _("marketing contact"),
        default=True,
        help_text=_("Counts toward the contact budget and needs opt-in consent."),
    )
    respect_quiet_hours = models.BooleanField(_("respect quiet hours"), default=True)
    holdout_percent = models.PositiveSmallIntegerField(_("holdout %"), default=10)
    conversion_window_days = models.PositiveSmallIntegerField(
        _("attribution window (days)"), default=7
    )
    webhook_url = models.URLField(_("webhook URL"), blank=True)
    task_assignee = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        verbose_name=_("task assignee"),
    )
    task_store = models.ForeignKey(
        Touchpoint,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        verbose_name=_("task store"),
    )
    starts_at = models.DateTimeField(_("starts"), null=True, blank=True)
    ends_at = models.DateTimeField(_("ends"), null=True, blank=True)
    next_run_at = models.DateTimeField(_("next run"), null=True, blank=True, db_index=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    approval_requested_at = models.DateTimeField(_("approval requested"), null=True, blank=True)
    approved_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    approved_at = models.DateTimeField(_("approved"), null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(holdout_percent__lte=50), name="campaign_holdout_max_50"
            ),
            models.CheckConstraint(
                condition=models.Q(priority__lte=100), name="campaign_priority_max_100"
            ),
        ]
        verbose_name = _("campaign")
        verbose_name_plural = _("campaigns")

    def __str__(self) -> str:
        return self.name


# What enrols people: a slot of the schedule (one-off, recurring) or a trigger.
SLOT_KINDS = (Campaign.Kind.ONE_OFF, Campaign.Kind.RECURRING)
TRIGGER_KINDS = (
    Campaign.Kind.EVENT,
    Campaign.Kind.DATE,
    Campaign.Kind.SEGMENT_ENTRY,
    Campaign.Kind.SITUATION,
)


class CampaignStep(models.Model):
    """One message or task of a campaign, sent ``delay_minutes`` after a person entered.

    ``condition`` (a segment rule tree, empty = always) is checked when the step is due; a
    person who no longer matches skips the step.
    """

    campaign = models.ForeignKey(Campaign, on_delete=models.CASCADE, related_name="steps")
    position = models.PositiveSmallIntegerField(_("position"), default=1)
    name = models.CharField(_("name"), max_length=100, blank=True)
    delay_minutes = models.PositiveIntegerField(_("send after entry (minutes)"), default=0)
    condition = models.JSONField(_("condition"), default=dict, blank=True)

    class Meta:
        ordering = ["campaign", "position"]
        constraints = [
            models.UniqueConstraint(
                fields=["campaign", "position"], name="uniq_campaign_step_position"
            ),
        ]
        verbose_name = _("campaign step")
        verbose_name_plural = _("campaign steps")

    def __str__(self) -> str:
        return f"{self.campaign} #{self.position}"


class Variant(models.Model):
    """The content of a step, one per A/B variant; ``weight`` shares the non-holdout audience.

    ``content`` maps a language code to ``{"subject": …, "body": …}`` (Django template
    syntax with ``{{ customer.first_name }}`` and the product blocks of journeys.content);
    a person gets their language, else the company's default.
    """

    step = models.ForeignKey(CampaignStep, on_delete=models.CASCADE, related_name="variants")
    label = models.CharField(_("variant"), max_length=20, default="A")
    weight = models.PositiveSmallIntegerField(_("weight"), default=1)
    content = models.JSONField(_("content"), default=dict, blank=True)

    class Meta:
        ordering = ["step", "label"]
        constraints = [
            models.UniqueConstraint(fields=["step", "label"], name="uniq_variant_label"),
        ]
        verbose_name = _("variant")
        verbose_name_plural = _("variants")

    def __str__(self) -> str:
        return f"{self.step} {self.label}"


class CampaignRun(models.Model):
    """One slot of a one-off or recurring campaign: created once per slot, whatever retries."""

    campaign = models.ForeignKey(Campaign, on_delete=models.CASCADE, related_name="runs")
    occurrence = models.CharField(_("occurrence"), max_length=40)
    scheduled_for = models.DateTimeField(_("scheduled for"))
    started_at = models.DateTimeField(_("started"), auto_now_add=True)
    enrolled = models.PositiveIntegerField(_("enrolled"), default=0)
    missed_slots = models.PositiveIntegerField(
        _("missed slots"), default=0, help_text=_("Slots skipped while the system was down.")
    )

    class Meta:
        ordering = ["-scheduled_for"]
        constraints = [
            models.UniqueConstraint(fields=["campaign", "occurrence"], name="uniq_campaign_run"),
        ]
        verbose_name = _("campaign run")
        verbose_name_plural = _("campaign runs")

    def __str__(self) -> str:
        return f"{self.campaign} @ {self.occurrence}"


class Enrollment(models.Model):
    """One person's pass through a campaign, for one occurrence (a run, an event, a year…).

    Unique on (campaign, customer, occurrence): a trigger seen twice enrols once. The
    engine walks it step by step (``next_position`` due at ``next_due_at``); holdout
    members walk too, so their conversions are tracked, but are never contacted.
    """

    class Status(models.TextChoices):
        ACTIVE = "active", _("Active")
        COMPLETED = "completed", _("Completed")
        EXITED = "exited", _("Exited")

    campaign = models.ForeignKey(Campaign, on_delete=models.CASCADE, related_name="enrollments")
    customer = models.ForeignKey(Customer, on_delete=models.CASCADE, related_name="enrollments")
    occurrence = models.CharField(_("occurrence"), max_length=40)
    entered_at = models.DateTimeField(_("entered"))
    trigger_received_at = models.DateTimeField(
        _("trigger received"),
        null=True,
        blank=True,
        help_text=_("When the platform learned of the trigger; latency is measured from here."),
    )
    context = models.JSONField(default=dict, blank=True)
    is_holdout = models.BooleanField(_("holdout"), default=False)
    bucket = models.PositiveSmallIntegerField(
        _("bucket"), help_text=_("0–99, deterministic per campaign and person.")
    )
    status = models.CharField(
        _("status"), max_length=10, choices=Status.choices, default=Status.ACTIVE
    )
    next_position = models.PositiveSmallIntegerField(null=True, blank=True)
    next_due_at = models.DateTimeField(null=True, blank=True)
    exit_reason = models.CharField(_("exit reason"), max_length=100, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["campaign", "customer", "occurrence"], name="uniq_enrollment"
            ),
        ]
        indexes = [
            models.Index(fields=["status", "next_due_at"]),
            models.Index(fields=["customer", "campaign"]),
        ]
        verbose_name = _("enrolment")
        verbose_name_plural = _("enrolments")

    def __str__(self) -> str:
        return f"{self.campaign_id} ← {self.customer_id} ({self.occurrence})"


class Delivery(models.Model):
    """One send of one step to one person, created before sending: exactly once.

    The unique constraint on (campaign, step, customer, occurrence) forbids a second row;
    workers claim pending rows (``claim`` token, ``claimed_at``) before handing them to the
    channel, and the delivery id travels with the message as its idempotency key.
    """

    class Status(models.TextChoices):
        PENDING = "pending", _("Pending")
        SENDING = "sending", _("Sending")
        SENT = "sent", _("Sent")
        DELIVERED = "delivered", _("Delivered")
        OPENED = "opened", _("Opened")
        CLICKED = "clicked", _("Clicked")
        CONVERTED = "converted", _("Converted")
        FAILED = "failed", _("Failed")
        UNCONFIRMED = "unconfirmed", _("Unconfirmed")
        SUPPRESSED = "suppressed", _("Suppressed")
        CAPPED = "capped", _("Over contact budget")
        HOLDOUT = "holdout", _("Held out")

    campaign = models.ForeignKey(Campaign, on_delete=models.CASCADE, related_name="deliveries")
    step = models.ForeignKey(CampaignStep, on_delete=models.CASCADE, related_name="deliveries")
    customer = models.ForeignKey(Customer, on_delete=models.CASCADE, related_name="deliveries")
    occurrence = models.CharField(
        _("occurrence"),
        max_length=40,
        default="once",
        help_text=_("Which run of a recurring or triggered campaign this send belongs to."),
    )
    enrollment = models.ForeignKey(
        Enrollment, null=True, blank=True, on_delete=models.SET_NULL, related_name="deliveries"
    )
    variant = models.ForeignKey(
        Variant, null=True, blank=True, on_delete=models.SET_NULL, related_name="deliveries"
    )
    status = models.CharField(
        _("status"), max_length=11, choices=Status.choices, default=Status.PENDING
    )
    reason = models.CharField(
        _("reason"), max_length=40, blank=True, help_text=_("Why it was not sent, if it was not.")
    )
    address = models.CharField(_("address"), max_length=255, blank=True)
    due_at = models.DateTimeField(_("due"), null=True, blank=True)
    claim = models.CharField(max_length=32, blank=True)
    claimed_at = models.DateTimeField(null=True, blank=True)
    attempts = models.PositiveSmallIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    sent_at = models.DateTimeField(_("sent"), null=True, blank=True)
    delivered_at = models.DateTimeField(_("delivered"), null=True, blank=True)
    opened_at = models.DateTimeField(_("opened"), null=True, blank=True)
    clicked_at = models.DateTimeField(_("clicked"), null=True, blank=True)
    converted_at = models.DateTimeField(_("converted"), null=True, blank=True)
    order = models.ForeignKey(
        "experience.Order", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    revenue = models.DecimalField(
        _("revenue"), max_digits=12, decimal_places=0, null=True, blank=True
    )
    error = models.TextField(_("error"), blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["campaign", "step", "customer", "occurrence"], name="uniq_delivery"
            ),
        ]
        indexes = [
            models.Index(fields=["status", "due_at"]),
            models.Index(fields=["campaign", "status"]),
            models.Index(fields=["customer", "created_at"]),
            models.Index(fields=["customer", "sent_at"]),
        ]
        verbose_name = _("delivery")
        verbose_name_plural = _("deliveries")

    def __str__(self) -> str:
        return f"{self.campaign_id}/{self.step_id} → {self.customer_id} ({self.status})"


class StaffTask(models.Model):
    """An offline action: a salesperson or store calls on a targeted customer.

    Made by a delivery on the staff-task channel (one task per delivery); the recorded
    outcome is stored back as an event, so offline work flows into the data like any other.
    """

    class Status(models.TextChoices):
        OPEN = "open", _("Open")
        DONE = "done", _("Done")
        CANCELLED = "cancelled", _("Cancelled")

    class Outcome(models.TextChoices):
        VISITED = "visited", _("Visited, talked")
        PURCHASED = "purchased", _("Visited, bought")
        NOT_HOME = "not_home", _("Not reached")
        DECLINED = "declined", _("Not interested")
        FOLLOW_UP = "follow_up", _("Follow up later")

    campaign = models.ForeignKey(
        Campaign, null=True, blank=True, on_delete=models.SET_NULL, related_name="staff_tasks"
    )
    delivery = models.OneToOneField(
        Delivery, null=True, blank=True, on_delete=models.SET_NULL, related_name="staff_task"
    )
    department = models.ForeignKey(
        "org.Department",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        verbose_name=_("department"),
    )
    customer = models.ForeignKey(Customer, on_delete=models.CASCADE, related_name="staff_tasks")
    assignee = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    store = models.ForeignKey(
        Touchpoint, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    title = models.CharField(_("title"), max_length=200)
    instructions = models.TextField(_("instructions"), blank=True)
    due_at = models.DateTimeField(_("due"), null=True, blank=True)
    status = models.CharField(
        _("status"), max_length=10, choices=Status.choices, default=Status.OPEN, db_index=True
    )
    outcome_code = models.CharField(
        _("outcome"), max_length=10, choices=Outcome.choices, blank=True
    )
    outcome = models.TextField(_("notes"), blank=True)
    completed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    completed_at = models.DateTimeField(_("completed"), null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["due_at"]
        indexes = [models.Index(fields=["assignee", "status"])]
        verbose_name = _("staff task")
        verbose_name_plural = _("staff tasks")

    def __str__(self) -> str:
        return self.title


class Suppression(models.Model):
    """An address nobody may contact on a channel (bounces, complaints, legal requests).

    Global: it applies to every department's campaigns. ``value`` is the normalised
    address (lower-case email, digits-only phone); ``channel`` blank means every channel.
    """

    class Reason(models.TextChoices):
        BOUNCE = "bounce", _("Hard bounce")
        COMPLAINT = "complaint", _("Spam complaint")
        REQUEST = "request", _("Asked not to be contacted")
        LEGAL = "legal", _("Legal or compliance")
        OTHER = "other", _("Other")

    channel = models.CharField(
        _("channel"), max_length=12, choices=Campaign.Channel.choices, blank=True
    )
    value = models.CharField(_("address"), max_length=255)
    reason = models.CharField(_("reason"), max_length=10, choices=Reason.choices)
    note = models.CharField(_("note"), max_length=200, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(fields=["channel", "value"], name="uniq_suppression"),
        ]
        indexes = [models.Index(fields=["value"])]
        verbose_name = _("suppression")
        verbose_name_plural = _("suppression list")

    def __str__(self) -> str:
        return self.value


class ScoringRule(models.Model):
    """Lead scoring: each matching event adds ``points``, fading by ``decay_percent`` a week."""

    name = models.CharField(_("name"), max_length=100)
    event_type = models.ForeignKey(
        "experience.EventType",
        on_delete=models.CASCADE,
        related_name="+",
        verbose_name=_("event type"),
    )
    properties = models.JSONField(
        _("property matches"),
        default=dict,
        blank=True,
        help_text=_('Exact matches on the event\'s properties, e.g. {"page": "pricing"}.'),
    )
    points = models.SmallIntegerField(_("points"))
    decay_percent = models.PositiveSmallIntegerField(_("decay per week (%)"), default=10)
    is_active = models.BooleanField(_("active"), default=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(decay_percent__lte=100), name="scoring_decay_max_100"
            ),
        ]
        verbose_name = _("scoring rule")
        verbose_name_plural = _("scoring rules")

    def __str__(self) -> str:
        return self.name
