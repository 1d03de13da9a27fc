"""The weekly overview e-mail: list, add, change and stop subscriptions.

Everyone manages their own; managers also those of the members of their departments, the
administrator everyone's. A subscription outside that reach answers 404.
"""

from __future__ import annotations

from django import forms
from django.contrib import messages
from django.core.exceptions import ValidationError
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.translation import gettext as _t
from django.utils.translation import gettext_lazy as _
from django.views.decorators.http import require_POST

from config.org.models import Department
from reports.subscriptions import managed_members, subscription_set, subscriptions_for

WEEKDAYS = (
    (0, _("Monday")),
    (1, _("Tuesday")),
    (2, _("Wednesday")),
    (3, _("Thursday")),
    (4, _("Friday")),
    (5, _("Saturday")),
    (6, _("Sunday")),
)


class SubscriptionForm(forms.Form):
    """Who gets the overview, for which department, on which weekday and hour."""

    user = forms.ModelChoiceField(label=_("Recipient"), queryset=None, required=False)
    department = forms.ModelChoiceField(
        label=_("Department"),
        queryset=Department.objects.order_by("name"),
        required=False,
        empty_label=_("All departments"),
    )
    weekday = forms.TypedChoiceField(
        label=_("Day"), choices=WEEKDAYS, coerce=int, initial=0, required=False
    )
    hour = forms.TypedChoiceField(
        label=_("Hour (Japan time)"),
        choices=[(hour, f"{hour:02d}:00") for hour in range(24)],
        coerce=int,
        initial=8,
        required=False,
    )

    def __init__(self, *args, by, **kwargs):
        super().__init__(*args, **kwargs)
        self.by = by
        self.fields["user"].queryset = managed_members(by).order_by("username")
        self.fields["user"].empty_label = _("Me")

    def clean(self):
        data = super().clean()
        data["user"] = data.get("user") or self.by
        data["weekday"] = data.get("weekday") if data.get("weekday") not in (None, "") else 0
        data["hour"] = data.get("hour") if data.get("hour") not in (None, "") else 8
        return data


def subscriptions(request):
    """My subscriptions (and my members'), with a form to add or change one; saving a
    subscription (re)starts it."""
    form = SubscriptionForm(request.POST or None, by=request.user)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            subscription_set(
                user=data["user"],
                department=data["department"],
                weekday=data["weekday"],
                hour=data["hour"],
                active=True,
                by=request.user,
            )
        except ValidationError as error:
            form.add_error(None, error)
        else:
            messages.success(request, _t("The weekly e-mail is set."))
            return redirect("reports:subscriptions")
    rows = (
        subscriptions_for(request.user)
        .select_related("user", "department")
        .order_by("user__username", "department__name")
    )
    return render(
        request,
        "reports/subscriptions.html",
        {
            "active_circle": "strategy",
            "form": form,
            "subscriptions": rows,
            "may_manage_others": form.fields["user"].queryset.exclude(pk=request.user.pk).exists(),
            "weekdays": dict(WEEKDAYS),
        },
        status=400 if form.errors else 200,
    )


@require_POST
def subscription_toggle(request, pk: int):
    """Stop a subscription, or start it again."""
    subscription = get_object_or_404(subscriptions_for(request.user), pk=pk)
    subscription_set(
        user=subscription.user,
        department=subscription.department,
        weekday=subscription.weekday,
        hour=subscription.hour,
        active=not subscription.is_active,
        by=request.user,
    )
    messages.success(
        request,
        _t("The weekly e-mail is stopped.")
        if subscription.is_active
        else _t("The weekly e-mail is on again."),
    )
    return redirect("reports:subscriptions")
