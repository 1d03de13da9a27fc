"""Filters of the audit log page and its CSV export (django-filter).

Dates are calendar days in Tokyo (the company's day), whatever ``TIME_ZONE`` says: "from
2026-04-01" starts at midnight in Tokyo, "to 2026-04-30" includes that whole day. A bad
value (an unknown department, a malformed date, an unknown target type) leaves the form
invalid, and the page names the field.
"""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import django_filters
from django import forms
from django.contrib.contenttypes.models import ContentType
from django.db.models import QuerySet
from django.utils.translation import gettext_lazy as _

from config.org.models import AuditLog, Department, Role
from config.org.selectors import departments_where

AUDIT_TIME_ZONE = ZoneInfo("Asia/Tokyo")


def _tokyo_midnight(day: dt.date) -> dt.datetime:
    return dt.datetime.combine(day, dt.time.min, tzinfo=AUDIT_TIME_ZONE)


def target_type_choices() -> list[tuple[str, str]]:
    """``app_label.model`` → readable name, for every model an entry may point at."""
    return sorted(
        (
            (f"{ct.app_label}.{ct.model}", f"{ct.app_label} · {ct.name}")
            for ct in ContentType.objects.all()
        ),
        key=lambda choice: choice[1],
    )


class AuditLogFilterForm(forms.Form):
    """The filter form; a range whose end comes before its start is an error on the end.

    ``before`` is the keyset position of the page (the id of the last entry shown above);
    it filters nothing itself, the view pages with it.
    """

    before = forms.IntegerField(required=False, min_value=1, widget=forms.HiddenInput)

    def clean(self):
        data = super().clean()
        start, end = data.get("date_from"), data.get("date_to")
        if start and end and start > end:
            self.add_error("date_to", _("The end date must not be before the start date."))
        return data


class AuditLogFilter(django_filters.FilterSet):
    """Action (exact, or a prefix ending in "." such as ``customer.``), actor's user name,
    department, target type and a date range; the queryset is already scoped to the user."""

    action = django_filters.CharFilter(label=_("Action"), method="filter_action", max_length=60)
    actor = django_filters.CharFilter(
        label=_("Actor (user name)"), field_name="actor__username", max_length=150
    )
    department = django_filters.ModelChoiceFilter(
        label=_("Department"), queryset=Department.objects.none(), empty_label=_("All departments")
    )
    target_type = django_filters.ChoiceFilter(
        label=_("Target type"), choices=[], method="filter_target_type", empty_label=_("Any")
    )
    date_from = django_filters.DateFilter(
        label=_("From (date)"),
        method="filter_date_from",
        widget=forms.DateInput(attrs={"type": "date"}),
    )
    date_to = django_filters.DateFilter(
        label=_("To (date)"),
        method="filter_date_to",
        widget=forms.DateInput(attrs={"type": "date"}),
    )

    class Meta:
        model = AuditLog
        fields: list[str] = []
        form = AuditLogFilterForm

    def __init__(self, data=None, queryset=None, *, user, **kwargs) -> None:
        super().__init__(data, queryset, **kwargs)
        self.filters["department"].queryset = departments_where(user, Role.MANAGER).order_by("name")
        self.filters["target_type"].extra["choices"] = target_type_choices()

    def filter_queryset(self, queryset: QuerySet) -> QuerySet:
        """Apply the filters; ``before`` (the page position) is the view's, not a filter."""
        for name, value in self.form.cleaned_data.items():
            if name in self.filters:
                queryset = self.filters[name].filter(queryset, value)
        return queryset

    def filter_action(self, queryset: QuerySet, name: str, value: str) -> QuerySet:
        value = value.strip()
        if value.endswith("."):
            return queryset.filter(action__startswith=value)
        return queryset.filter(action=value)

    def filter_target_type(self, queryset: QuerySet, name: str, value: str) -> QuerySet:
        app_label, _dot, model = value.partition(".")
        return queryset.filter(target_type__app_label=app_label, target_type__model=model)

    def filter_date_from(self, queryset: QuerySet, name: str, value: dt.date) -> QuerySet:
        return queryset.filter(at__gte=_tokyo_midnight(value))

    def filter_date_to(self, queryset: QuerySet, name: str, value: dt.date) -> QuerySet:
        return queryset.filter(at__lt=_tokyo_midnight(value + dt.timedelta(days=1)))
