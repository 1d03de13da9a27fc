"""Forms of circle ② pages: map filters, the touchpoint catalogue, staff activities."""

from __future__ import annotations

from django import forms
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from config.org.models import Department, Role
from config.org.selectors import departments_where
from experience.models import ExperienceValue, Touchpoint
from experience.selectors import TouchpointMapFilters
from experience.services import NOTE_MAX, OUTCOME_MAX

ANY = [("", _("Any"))]


def value_choices() -> list[tuple[str, str]]:
    return [(code, label) for code, label in ExperienceValue.Code.choices]


def value_options(bound_field) -> list[tuple]:
    """The checkboxes of a values field, each with the taxonomy's description to show."""
    descriptions = ExperienceValue.DESCRIPTIONS
    return [(box, descriptions.get(box.data["value"], "")) for box in bound_field]


class TouchpointMapFilterForm(forms.Form):
    """GET filters of the touchpoint map; bad values are ignored, not errors."""

    kind = forms.ChoiceField(label=_("Kind"), required=False)
    channel = forms.ChoiceField(label=_("Channel"), required=False)
    value = forms.ChoiceField(label=_("Experience value"), required=False)
    department = forms.TypedChoiceField(
        label=_("Owner department"), required=False, coerce=int, empty_value=None
    )
    inactive = forms.BooleanField(label=_("Include inactive"), required=False)

    def __init__(self, *args, departments=(), **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["kind"].choices = ANY + list(Touchpoint.Kind.choices)
        self.fields["channel"].choices = ANY + list(Touchpoint.Channel.choices)
        self.fields["value"].choices = ANY + value_choices()
        self.fields["department"].choices = ANY + [(d.pk, d.name) for d in departments]

    def filters(self) -> TouchpointMapFilters:
        if not self.is_valid():
            data = {
                name: value for name, value in self.cleaned_data.items() if name not in self.errors
            }
        else:
            data = self.cleaned_data
        return TouchpointMapFilters(
            kind=data.get("kind") or "",
            channel=data.get("channel") or "",
            value=data.get("value") or "",
            department_id=data.get("department") or None,
            include_inactive=bool(data.get("inactive")),
        )


class TouchpointForm(forms.Form):
    """A touchpoint of the catalogue; the service validates again and names the field."""

    code = forms.SlugField(
        label=_("Code"),
        max_length=50,
        help_text=_("Letters, digits, hyphens; unique. Integrations send it with events."),
    )
    name = forms.CharField(label=_("Name"), max_length=200)
    channel = forms.ChoiceField(label=_("Channel"), choices=Touchpoint.Channel.choices)
    kind = forms.ChoiceField(label=_("Kind"), choices=Touchpoint.Kind.choices)
    description = forms.CharField(
        label=_("Description"), required=False, widget=forms.Textarea(attrs={"rows": 3})
    )
    experience_values = forms.MultipleChoiceField(
        label=_("Experience values it is meant to deliver"),
        required=False,
        widget=forms.CheckboxSelectMultiple,
    )
    owner_department = forms.ModelChoiceField(
        label=_("Owner department"), queryset=Department.objects.none()
    )
    is_active = forms.BooleanField(label=_("Active"), required=False, initial=True)

    def __init__(self, *args, user, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["experience_values"].choices = value_choices()
        departments = departments_where(user, Role.EDITOR).order_by("name")
        self.fields["owner_department"].queryset = departments
        if not user.is_superuser and len(ids := user.department_ids_with_role(Role.EDITOR)) == 1:
            self.fields["owner_department"].initial = ids[0]

    def value_options(self) -> list[tuple]:
        return value_options(self["experience_values"])

    @classmethod
    def initial_for(cls, touchpoint: Touchpoint) -> dict:
        return {
            "code": touchpoint.code,
            "name": touchpoint.name,
            "channel": touchpoint.channel,
            "kind": touchpoint.kind,
            "description": touchpoint.description,
            "experience_values": [v.code for v in touchpoint.experience_values.all()],
            "owner_department": touchpoint.owner_department_id,
            "is_active": touchpoint.is_active,
        }


class ActivityForm(forms.Form):
    """A visit, call or meeting a staff member had with the customer."""

    KIND_CHOICES = [
        ("store_visit", _("Store visit")),
        ("call", _("Call")),
        ("meeting", _("Meeting")),
    ]

    kind = forms.ChoiceField(label=_("What"), choices=KIND_CHOICES, initial="call")
    touchpoint = forms.ModelChoiceField(
        label=_("Where"),
        queryset=Touchpoint.objects.none(),
        required=False,
        empty_label=_("— no touchpoint —"),
    )
    occurred_at = forms.DateTimeField(
        label=_("When"),
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}, format="%Y-%m-%dT%H:%M"),
        input_formats=["%Y-%m-%dT%H:%M", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M"],
    )
    note = forms.CharField(
        label=_("Note"), max_length=NOTE_MAX, widget=forms.Textarea(attrs={"rows": 3})
    )
    outcome = forms.CharField(label=_("Outcome"), max_length=OUTCOME_MAX, required=False)
    values = forms.MultipleChoiceField(
        label=_("Experience values delivered"),
        required=False,
        widget=forms.CheckboxSelectMultiple,
    )

    def __init__(self, *args, touchpoints=None, **kwargs):
        kwargs.setdefault("prefix", "activity")
        super().__init__(*args, **kwargs)
        if touchpoints is not None:
            self.fields["touchpoint"].queryset = touchpoints
        self.fields["values"].choices = value_choices()
        self.fields["occurred_at"].help_text = _("Local time (%(zone)s).") % {
            "zone": timezone.get_current_timezone_name()
        }
        if not self.is_bound:
            self.initial.setdefault(
                "occurred_at", timezone.localtime().replace(second=0, microsecond=0)
            )

    def value_options(self) -> list[tuple]:
        return value_options(self["values"])
