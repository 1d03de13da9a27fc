"""Forms of the campaign pages: they parse input; the services in journeys.services decide."""

from __future__ import annotations

import re

from django import forms
from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.utils.translation import gettext_lazy as _

from config.org.models import Department, Role
from config.org.selectors import departments_where
from customers.models import ImportantDate, LifeEvent, Segment
from experience.models import EventType, ExperienceValue, Touchpoint
from journeys.models import Campaign, ContactPolicy, Journey, StaffTask, Stage, Suppression
from journeys.services import POLICY_FIELDS

LANGUAGES = (("ja", _("Japanese")), ("en", _("English")))
VARIANT_LABELS = ("A", "B")
DATETIME_FORMAT = "%Y-%m-%dT%H:%M"


class DateTimeLocalInput(forms.DateTimeInput):
    """``<input type="datetime-local">``: read and shown in the current time zone."""

    input_type = "datetime-local"

    def __init__(self, attrs=None):
        super().__init__(attrs, format=DATETIME_FORMAT)


def add_service_errors(form: forms.Form, error: ValidationError, *, aliases=None) -> None:
    """Put a service's ValidationError next to the field it names (else on top of the form).

    Services name fields by their keyword (``segment``, ``trigger.event_type``…);
    ``aliases`` maps such names to form fields where they differ.
    """
    aliases = aliases or {}
    if not hasattr(error, "error_dict"):
        for message in error.messages:
            form.add_error(None, message)
        return
    for key, messages in error.message_dict.items():
        field = aliases.get(key, key)
        if field not in form.fields and "." in key:
            field = aliases.get(key.split(".")[-1], key.split(".")[-1])
        for message in messages:
            if field in form.fields:
                form.add_error(field, message)
            else:
                form.add_error(None, f"{key}: {message}" if key != "__all__" else message)


# --- The campaign list -----------------------------------------------------------------------


class CampaignFilterForm(forms.Form):
    """Filters of the campaign list, all from the query string."""

    status = forms.ChoiceField(
        required=False, label=_("Status"), choices=[("", _("Any status")), *Campaign.Status.choices]
    )
    channel = forms.ChoiceField(
        required=False,
        label=_("Channel"),
        choices=[("", _("Any channel")), *Campaign.Channel.choices],
    )
    kind = forms.ChoiceField(
        required=False, label=_("Kind"), choices=[("", _("Any kind")), *Campaign.Kind.choices]
    )
    department = forms.ModelChoiceField(
        required=False,
        label=_("Department"),
        queryset=Department.objects.order_by("name"),
        empty_label=_("Any department"),
    )


# --- Create and edit ---------------------------------------------------------------------------


class CampaignForm(forms.Form):
    """Every setting of a campaign; ``service_fields()`` gives the services' keywords."""

    owner_department = forms.ModelChoiceField(label=_("Owner department"), queryset=None)
    name = forms.CharField(label=_("Name"), max_length=200)
    goal = forms.CharField(
        label=_("Goal"), required=False, widget=forms.Textarea(attrs={"rows": 2})
    )
    kind = forms.ChoiceField(label=_("What starts it"), choices=Campaign.Kind.choices)
    channel = forms.ChoiceField(label=_("Channel"), choices=Campaign.Channel.choices)
    segment = forms.ModelChoiceField(
        label=_("Audience segment"),
        queryset=None,
        required=False,
        help_text=_("Who receives a one-off or recurring send; who may enter a triggered one."),
    )
    event_type = forms.ModelChoiceField(
        label=_("Event"),
        queryset=EventType.objects.order_by("name"),
        to_field_name="name",
        required=False,
        help_text=_("For “Triggered by an event”. The wait before the message is step 1's delay."),
    )
    unless = forms.ModelMultipleChoiceField(
        label=_("Unless one of these happens first"),
        queryset=EventType.objects.order_by("name"),
        to_field_name="name",
        required=False,
        help_text=_("Ends a person's pass through the campaign, e.g. a purchase."),
    )
    date_kind = forms.ChoiceField(
        label=_("Important date"),
        choices=[("", "—"), *ImportantDate.Kind.choices],
        required=False,
    )
    days_before = forms.IntegerField(
        label=_("Days before the date"), min_value=0, max_value=365, required=False
    )
    situation = forms.ChoiceField(
        label=_("Life situation"), choices=[("", "—"), *LifeEvent.Kind.choices], required=False
    )
    cron = forms.CharField(
        label=_("Repeat (cron)"),
        max_length=100,
        required=False,
        help_text=_(
            "Minute hour day month weekday in the company time zone, e.g. “0 10 * * 5” = "
            "every Friday at 10:00."
        ),
    )
    starts_at = forms.DateTimeField(
        label=_("Starts"),
        required=False,
        widget=DateTimeLocalInput(),
        input_formats=[DATETIME_FORMAT, "%Y-%m-%d %H:%M", "%Y-%m-%dT%H:%M:%S"],
        help_text=_("In your time zone. A one-off send goes out at this time."),
    )
    ends_at = forms.DateTimeField(
        label=_("Ends"),
        required=False,
        widget=DateTimeLocalInput(),
        input_formats=[DATETIME_FORMAT, "%Y-%m-%d %H:%M", "%Y-%m-%dT%H:%M:%S"],
    )
    priority = forms.IntegerField(
        label=_("Priority"),
        min_value=0,
        max_value=100,
        initial=50,
        help_text=_("0–100. When the contact budget is short, higher priority goes first."),
    )
    is_marketing = forms.BooleanField(
        label=_("Marketing contact (counts toward the budget, needs opt-in)"),
        required=False,
        initial=True,
    )
    respect_quiet_hours = forms.BooleanField(
        label=_("Respect quiet hours"), required=False, initial=True
    )
    holdout_percent = forms.IntegerField(
        label=_("Holdout %"),
        min_value=0,
        max_value=50,
        required=False,
        help_text=_("Share of the audience never contacted, to measure the lift. Empty: policy."),
    )
    conversion_window_days = forms.IntegerField(
        label=_("Attribution window (days)"), min_value=1, max_value=365, required=False
    )
    journey_stage = forms.ModelChoiceField(label=_("Journey stage"), queryset=None, required=False)
    experience_values = forms.MultipleChoiceField(
        label=_("Experience values"),
        choices=ExperienceValue.Code.choices,
        required=False,
        widget=forms.CheckboxSelectMultiple,
    )
    task_assignee = forms.ModelChoiceField(
        label=_("Task assignee"),
        queryset=None,
        required=False,
        help_text=_("For staff tasks: the salesperson who calls on each customer."),
    )
    task_store = forms.ModelChoiceField(
        label=_("Task store"),
        queryset=None,
        required=False,
        help_text=_("For staff tasks: or the store whose staff take them."),
    )
    webhook_url = forms.URLField(label=_("Webhook URL"), required=False, assume_scheme="https")

    TRIGGER_FIELDS = ("event_type", "unless", "date_kind", "days_before", "situation")
    # Error keys of the services → the field that shows them.
    ERROR_ALIASES = {
        "trigger": "event_type",
        "event_type": "event_type",
        "properties": "event_type",
        "experience_values": "experience_values",
    }

    def __init__(self, *args, user, campaign: Campaign | None = None, **kwargs):
        if campaign is not None and "initial" not in kwargs:
            kwargs["initial"] = self.initial_from(campaign)
        super().__init__(*args, **kwargs)
        self.campaign = campaign
        if campaign is None:
            departments = departments_where(user, Role.EDITOR)
            self.fields["owner_department"].queryset = departments
            if len(departments) == 1:
                self.fields["owner_department"].initial = departments[0].pk
        else:
            del self.fields["owner_department"]
        self.fields["segment"].queryset = (
            Segment.objects.visible_to(user).select_related("owner_department").order_by("name")
        )
        self.fields["journey_stage"].queryset = (
            Stage.objects.filter(journey__in=Journey.objects.visible_to(user).values("pk"))
            .select_related("journey")
            .order_by("journey__name", "position")
        )
        users = get_user_model().objects.filter(is_active=True).order_by("username")
        if not user.is_superuser:
            users = users.filter(memberships__department_id__in=user.department_ids).distinct()
        self.fields["task_assignee"].queryset = users
        self.fields["task_store"].queryset = Touchpoint.objects.visible_to(user).filter(
            kind=Touchpoint.Kind.OFFLINE
        )

    @staticmethod
    def initial_from(campaign: Campaign) -> dict:
        trigger = campaign.trigger or {}
        return {
            "name": campaign.name,
            "goal": campaign.goal,
            "kind": campaign.kind,
            "channel": campaign.channel,
            "segment": campaign.segment_id,
            "event_type": trigger.get("event_type", ""),
            "unless": trigger.get("unless", []),
            "date_kind": trigger.get("date_kind", ""),
            "days_before": trigger.get("days_before"),
            "situation": trigger.get("situation", ""),
            "cron": campaign.cron,
            "starts_at": campaign.starts_at,
            "ends_at": campaign.ends_at,
            "priority": campaign.priority,
            "is_marketing": campaign.is_marketing,
            "respect_quiet_hours": campaign.respect_quiet_hours,
            "holdout_percent": campaign.holdout_percent,
            "conversion_window_days": campaign.conversion_window_days,
            "journey_stage": campaign.journey_stage_id,
            "experience_values": [value.code for value in campaign.experience_values.all()],
            "task_assignee": campaign.task_assignee_id,
            "task_store": campaign.task_store_id,
            "webhook_url": campaign.webhook_url,
        }

    def trigger(self) -> dict:
        """The ``trigger`` JSON for the chosen kind; keys of other kinds are dropped."""
        data = self.cleaned_data
        kind = data["kind"]
        trigger: dict = {}
        if kind == Campaign.Kind.EVENT and data.get("event_type"):
            trigger["event_type"] = data["event_type"].name
            previous = (self.campaign.trigger or {}) if self.campaign else {}
            if previous.get("properties"):
                trigger["properties"] = previous["properties"]
        elif kind == Campaign.Kind.DATE:
            if data.get("date_kind"):
                trigger["date_kind"] = data["date_kind"]
            if data.get("days_before") is not None:
                trigger["days_before"] = data["days_before"]
        elif kind == Campaign.Kind.SITUATION and data.get("situation"):
            trigger["situation"] = data["situation"]
        unless = [event_type.name for event_type in data.get("unless") or []]
        if unless and kind != Campaign.Kind.ONE_OFF:
            trigger["unless"] = unless
        return trigger

    def service_fields(self) -> dict:
        """Keyword arguments of ``campaign_create`` / ``campaign_update``."""
        data = self.cleaned_data
        fields = {
            key: data[key]
            for key in (
                "name",
                "goal",
                "kind",
                "channel",
                "segment",
                "cron",
                "starts_at",
                "ends_at",
                "priority",
                "is_marketing",
                "respect_quiet_hours",
                "journey_stage",
                "task_assignee",
                "task_store",
                "webhook_url",
                "experience_values",
            )
        }
        fields["trigger"] = self.trigger()
        if data["kind"] != Campaign.Kind.RECURRING:
            fields["cron"] = ""
        for key in ("holdout_percent", "conversion_window_days"):
            if data.get(key) is not None:
                fields[key] = data[key]
        if self.campaign is None:
            fields["owner_department"] = data["owner_department"]
        return fields


class StepForm(forms.Form):
    """One step: when it is sent after entry, and its A (and optional B) content per language."""

    position = forms.IntegerField(widget=forms.HiddenInput, min_value=1, max_value=50)
    name = forms.CharField(label=_("Step name"), max_length=100, required=False)
    delay_days = forms.IntegerField(label=_("Wait (days)"), min_value=0, initial=0)
    delay_hours = forms.IntegerField(label=_("and hours"), min_value=0, max_value=23, initial=0)

    def __init__(self, *args, step=None, **kwargs):
        if step is not None and "initial" not in kwargs:
            kwargs["initial"] = self.initial_from(step)
        kwargs.setdefault("prefix", f"step{(step.position if step else 'new')}")
        super().__init__(*args, **kwargs)
        self.step = step
        for label in VARIANT_LABELS:
            lower = label.lower()
            self.fields[f"{lower}_weight"] = forms.IntegerField(
                label=_("Weight"), min_value=1, max_value=100, initial=1, required=False
            )
            for lang, lang_label in LANGUAGES:
                self.fields[f"{lower}_{lang}_subject"] = forms.CharField(
                    label=_("Subject (%(language)s)") % {"language": lang_label},
                    max_length=300,
                    required=False,
                )
                self.fields[f"{lower}_{lang}_body"] = forms.CharField(
                    label=_("Body (%(language)s)") % {"language": lang_label},
                    required=False,
                    widget=forms.Textarea(attrs={"rows": 5}),
                )

    @staticmethod
    def initial_from(step) -> dict:
        initial = {
            "position": step.position,
            "name": step.name,
            "delay_days": step.delay_minutes // 1440,
            "delay_hours": step.delay_minutes % 1440 // 60,
        }
        for variant in step.variants.all():
            lower = variant.label.lower()
            if variant.label not in VARIANT_LABELS:
                continue
            initial[f"{lower}_weight"] = variant.weight
            for lang, _label in LANGUAGES:
                content = (variant.content or {}).get(lang) or {}
                initial[f"{lower}_{lang}_subject"] = content.get("subject", "")
                initial[f"{lower}_{lang}_body"] = content.get("body", "")
        return initial

    def variant_groups(self):
        """(label, weight field, [(language, subject field, body field)]) for the template."""
        for label in VARIANT_LABELS:
            lower = label.lower()
            yield (
                label,
                self[f"{lower}_weight"],
                [
                    (lang_label, self[f"{lower}_{lang}_subject"], self[f"{lower}_{lang}_body"])
                    for lang, lang_label in LANGUAGES
                ],
            )

    def variants(self) -> list[dict]:
        """The ``variants`` argument of ``step_save``; B only when some of its content is set."""
        data = self.cleaned_data
        variants = []
        for label in VARIANT_LABELS:
            lower = label.lower()
            content = {}
            for lang, _label in LANGUAGES:
                subject = data.get(f"{lower}_{lang}_subject", "")
                body = data.get(f"{lower}_{lang}_body", "")
                if subject or body:
                    content[lang] = {"subject": subject, "body": body}
            if label != "A" and not content:
                continue
            weight = data.get(f"{lower}_weight")
            variants.append(
                {"label": label, "weight": 1 if weight is None else weight, "content": content}
            )
        return variants

    def service_fields(self) -> dict:
        data = self.cleaned_data
        return {
            "position": data["position"],
            "name": data["name"],
            "delay_minutes": data["delay_days"] * 1440 + data["delay_hours"] * 60,
            "variants": self.variants(),
        }

    def add_service_error(self, error: ValidationError) -> None:
        """Map ``step.variants[i].content.<lang>.<field>`` (and the like) to the form field."""
        if not hasattr(error, "error_dict"):
            for message in error.messages:
                self.add_error(None, message)
            return
        labels = [variant["label"] for variant in self.variants()]
        for key, messages in error.message_dict.items():
            short = key.removeprefix("step.")
            index = re.search(r"variants\[(\d+)\]", short)
            label = "A"
            if index and int(index.group(1)) < len(labels):
                label = labels[int(index.group(1))]
            content = re.search(r"content\.(ja|en)\.(subject|body)", short)
            if content:
                field = f"{label.lower()}_{content.group(1)}_{content.group(2)}"
            elif short.endswith(".weight"):
                field = f"{label.lower()}_weight"
            elif short == "delay_minutes":
                field = "delay_days"
            else:
                field = short
            for message in messages:
                if field in self.fields:
                    self.add_error(field, message)
                else:
                    self.add_error(None, message if key == "__all__" else f"{key}: {message}")


# --- Preview ------------------------------------------------------------------------------------


class PreviewForm(forms.Form):
    """Which customer, step and variant to preview the message with."""

    q = forms.CharField(
        label=_("Customer identifier"),
        required=False,
        max_length=100,
        help_text=_("An email, phone number or member ID, exactly."),
    )
    customer = forms.IntegerField(label=_("Or a member of the segment"), required=False)
    step = forms.IntegerField(required=False, widget=forms.HiddenInput)
    variant = forms.CharField(required=False, max_length=20, widget=forms.HiddenInput)


# --- Staff tasks ---------------------------------------------------------------------------------


class TaskFilterForm(forms.Form):
    SCOPES = [("mine", _("Mine")), ("department", _("My departments (managers)"))]
    STATUSES = [("open", _("Open")), ("done", _("Done")), ("all", _("All"))]

    scope = forms.ChoiceField(required=False, label=_("Tasks"), choices=SCOPES)
    status = forms.ChoiceField(required=False, label=_("Status"), choices=STATUSES)

    def clean_scope(self) -> str:
        return self.cleaned_data["scope"] or "mine"

    def clean_status(self) -> str:
        return self.cleaned_data["status"] or "open"


class TaskOutcomeForm(forms.Form):
    outcome_code = forms.ChoiceField(label=_("Outcome"), choices=StaffTask.Outcome.choices)
    notes = forms.CharField(
        label=_("Notes"), required=False, widget=forms.Textarea(attrs={"rows": 2})
    )


# --- Settings ----------------------------------------------------------------------------------


class ContactPolicyForm(forms.ModelForm):
    class Meta:
        model = ContactPolicy
        fields = list(POLICY_FIELDS)
        widgets = {
            "quiet_start": forms.TimeInput(attrs={"type": "time"}, format="%H:%M"),
            "quiet_end": forms.TimeInput(attrs={"type": "time"}, format="%H:%M"),
        }

    def _post_clean(self):
        """Model validation runs in the service."""


class SuppressionForm(forms.Form):
    channel = forms.ChoiceField(
        label=_("Channel"),
        required=False,
        choices=[("", _("Every channel")), *Campaign.Channel.choices],
    )
    value = forms.CharField(label=_("Address"), max_length=255)
    reason = forms.ChoiceField(label=_("Reason"), choices=Suppression.Reason.choices)
    note = forms.CharField(label=_("Note"), max_length=200, required=False)
