"""Circle ③: personas and journeys co-edited by marketing and sales, and campaigns."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _

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
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]
        verbose_name = _("journey")
        verbose_name_plural = _("journeys")

    def __str__(self) -> str:
        return self.name


class Stage(models.Model):
    """One column of a journey map; ``version`` guards concurrent edits of its cells."""

    journey = models.ForeignKey(Journey, on_delete=models.CASCADE, related_name="stages")
    position = models.PositiveSmallIntegerField(_("position"))
    name = models.CharField(_("name"), max_length=100)
    customer_goal = models.TextField(_("customer goal"), blank=True)
    actions = models.TextField(_("actions"), blank=True)
    thoughts = models.TextField(_("thoughts"), blank=True)
    emotion = models.SmallIntegerField(_("emotion (−2…+2)"), default=0)
    pain_points = models.TextField(_("pain points"), blank=True)
    opportunities = models.TextField(_("opportunities"), blank=True)
    kpi = models.CharField(_("KPI"), max_length=200, blank=True)
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    touchpoints = models.ManyToManyField(
        Touchpoint, blank=True, related_name="stages", verbose_name=_("touchpoints")
    )
    experience_values = models.ManyToManyField(
        ExperienceValue, blank=True, related_name="stages", verbose_name=_("experience values")
    )
    version = models.PositiveIntegerField(default=1)

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
    """A remark on a journey or one of its stages, from marketing, sales or a store."""

    journey = models.ForeignKey(Journey, on_delete=models.CASCADE, related_name="comments")
    stage = models.ForeignKey(
        Stage, null=True, blank=True, on_delete=models.CASCADE, related_name="comments"
    )
    author = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    body = models.TextField(_("comment"))
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["created_at"]
        verbose_name = _("comment")
        verbose_name_plural = _("comments")

    def __str__(self) -> str:
        return self.body[:60]


class Campaign(DepartmentOwned):
    """An action on customers: scheduled, triggered or a step sequence, on one channel."""

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
        ONE_OFF = "one_off", _("One-off")
        RECURRING = "recurring", _("Recurring")
        TRIGGERED = "triggered", _("Triggered")
        SEQUENCE = "sequence", _("Step sequence")

    name = models.CharField(_("name"), max_length=200)
    goal = models.TextField(_("goal"), blank=True)
    kind = models.CharField(_("kind"), max_length=10, choices=Kind.choices, default=Kind.ONE_OFF)
    channel = models.CharField(_("channel"), max_length=12, choices=Channel.choices)
    status = models.CharField(
        _("status"), max_length=10, choices=Status.choices, default=Status.DRAFT, db_index=True
    )
    segment = models.ForeignKey(
        Segment,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="campaigns",
        verbose_name=_("audience segment"),
    )
    trigger = models.JSONField(_("trigger"), default=dict, blank=True)
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
    holdout_percent = models.PositiveSmallIntegerField(_("holdout %"), default=10)
    starts_at = models.DateTimeField(_("starts"), null=True, blank=True)
    ends_at = models.DateTimeField(_("ends"), null=True, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    approved_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    approved_at = models.DateTimeField(_("approved"), null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(holdout_percent__lte=50), name="campaign_holdout_max_50"
            ),
        ]
        verbose_name = _("campaign")
        verbose_name_plural = _("campaigns")

    def __str__(self) -> str:
        return self.name


class CampaignStep(models.Model):
    """One message or task of a campaign; a sequence has several, with waits between."""

    campaign = models.ForeignKey(Campaign, on_delete=models.CASCADE, related_name="steps")
    position = models.PositiveSmallIntegerField(_("position"), default=1)
    wait_days = models.PositiveSmallIntegerField(_("wait (days)"), default=0)
    subject = models.CharField(_("subject"), max_length=200, blank=True)
    body = models.TextField(_("body"), blank=True)

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


class Delivery(models.Model):
    """One send of one step to one person, created before sending: exactly once."""

    class Status(models.TextChoices):
        PENDING = "pending", _("Pending")
        SENT = "sent", _("Sent")
        DELIVERED = "delivered", _("Delivered")
        OPENED = "opened", _("Opened")
        CLICKED = "clicked", _("Clicked")
        CONVERTED = "converted", _("Converted")
        FAILED = "failed", _("Failed")
        SUPPRESSED = "suppressed", _("Suppressed")
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
    status = models.CharField(
        _("status"), max_length=10, choices=Status.choices, default=Status.PENDING
    )
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    sent_at = models.DateTimeField(_("sent"), null=True, blank=True)
    error = models.TextField(_("error"), blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["campaign", "step", "customer", "occurrence"], name="uniq_delivery"
            ),
        ]
        indexes = [
            models.Index(fields=["campaign", "status"]),
            models.Index(fields=["customer", "created_at"]),
        ]
        verbose_name = _("delivery")
        verbose_name_plural = _("deliveries")

    def __str__(self) -> str:
        return f"{self.campaign_id}/{self.step_id} → {self.customer_id} ({self.status})"


class StaffTask(models.Model):
    """An offline action: a salesperson or store calls on a targeted customer."""

    class Status(models.TextChoices):
        OPEN = "open", _("Open")
        DONE = "done", _("Done")
        CANCELLED = "cancelled", _("Cancelled")

    campaign = models.ForeignKey(
        Campaign, null=True, blank=True, on_delete=models.SET_NULL, related_name="staff_tasks"
    )
    customer = models.ForeignKey(Customer, on_delete=models.CASCADE, related_name="staff_tasks")
    assignee = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    store = models.ForeignKey(
        Touchpoint, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    title = models.CharField(_("title"), max_length=200)
    due_at = models.DateTimeField(_("due"), null=True, blank=True)
    status = models.CharField(
        _("status"), max_length=10, choices=Status.choices, default=Status.OPEN, db_index=True
    )
    outcome = models.TextField(_("outcome"), blank=True)
    completed_at = models.DateTimeField(_("completed"), null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["due_at"]
        verbose_name = _("staff task")
        verbose_name_plural = _("staff tasks")

    def __str__(self) -> str:
        return self.title
