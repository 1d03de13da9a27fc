"""The report filter bar: period, comparison, department, segment, channel and persona.

The same form parses the page's query string, the downloads' and the API's, so a bad
parameter gets the same message everywhere, naming the parameter.
"""

from __future__ import annotations

import datetime as dt

from django import forms
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from config.org.models import Department
from customers.models import Segment
from experience.models import Touchpoint
from journeys.models import Persona
from reports.catalog import Period, ReportFilters

PERIOD_CHOICES = (
    ("7", _("Last 7 days")),
    ("30", _("Last 30 days")),
    ("90", _("Last 90 days")),
    ("365", _("Last 12 months")),
    ("custom", _("Custom dates")),
)
COMPARE_CHOICES = (
    ("previous", _("Previous period")),
    ("year", _("Same period a year earlier")),
    ("none", _("No comparison")),
)
MAX_PERIOD_DAYS = 3 * 366


class ReportFilterForm(forms.Form):
    """Query-string filters of a report; ``filters()`` turns valid data into
    :class:`ReportFilters`. Segments and personas offered are those the user can see."""

    period = forms.ChoiceField(label=_("Period"), choices=PERIOD_CHOICES, required=False)
    start = forms.DateField(label=_("From"), required=False)
    end = forms.DateField(label=_("To"), required=False)
    compare = forms.ChoiceField(label=_("Compare with"), choices=COMPARE_CHOICES, required=False)
    department = forms.ModelChoiceField(
        label=_("Department"),
        queryset=Department.objects.order_by("name"),
        required=False,
        empty_label=_("All departments"),
    )
    segment = forms.ModelChoiceField(
        label=_("Segment"), queryset=Segment.objects.none(), required=False, empty_label=_("All")
    )
    channel = forms.ChoiceField(
        label=_("Channel"),
        choices=(("", _("All channels")), *Touchpoint.Channel.choices),
        required=False,
    )
    persona = forms.ModelChoiceField(
        label=_("Persona"), queryset=Persona.objects.none(), required=False, empty_label=_("All")
    )

    def __init__(self, data=None, *, user, default_days: int = 30, **kwargs):
        super().__init__(data, **kwargs)
        self.default_days = default_days
        self.fields["segment"].queryset = Segment.objects.visible_to(user).order_by("name")
        self.fields["persona"].queryset = Persona.objects.visible_to(user).order_by("name")
        self.fields["period"].initial = str(default_days)
        self.fields["compare"].initial = "previous"

    def clean(self):
        data = super().clean()
        preset = data.get("period") or str(self.default_days)
        today = timezone.localdate()
        if preset == "custom" or data.get("start") or data.get("end"):
            start, end = data.get("start"), data.get("end")
            if start is None:
                self.add_error("start", _("Give the first day of the period."))
            if end is None:
                self.add_error("end", _("Give the last day of the period."))
            if start and end:
                if end < start:
                    self.add_error("end", _("The last day comes before the first."))
                elif (end - start).days + 1 > MAX_PERIOD_DAYS:
                    self.add_error(
                        "end",
                        _("A period may span at most %(days)d days.") % {"days": MAX_PERIOD_DAYS},
                    )
            if self.errors:
                return data
        else:
            end = today
            start = today - dt.timedelta(days=int(preset) - 1)
        period = Period(start, end)
        compare = data.get("compare") or "previous"
        data["period_value"] = period
        data["compare_value"] = {
            "previous": period.previous,
            "year": period.year_before,
            "none": lambda: None,
        }[compare]()
        return data

    def filters(self) -> ReportFilters:
        data = self.cleaned_data
        return ReportFilters(
            period=data["period_value"],
            compare=data["compare_value"],
            department=data.get("department"),
            segment=data.get("segment"),
            channel=data.get("channel") or "",
            persona=data.get("persona"),
        )

    @classmethod
    def for_report(cls, query, *, user, spec) -> ReportFilterForm:
        """The form bound to a query string (a ``QueryDict``) over the report's defaults."""
        data = {"period": str(spec.default_days), "compare": "previous", **query.dict()}
        return cls(data, user=user, default_days=spec.default_days)

    def error_text(self) -> str:
        """Every error as ``parameter: message``, for a 400 answer."""
        return "; ".join(f"{name}: {' '.join(messages)}" for name, messages in self.errors.items())
