"""Circle ① public page: the preference centre, where a person manages their own consents
and "important people and dates".

No login: the signed, expiring token in the URL is the key (see
``customers.selectors.preference_token``). An invalid, tampered or expired token gets the
same plain "link not valid" page as an unknown one, so nothing is revealed. The page shows
only what the person gave us: consents and the dates they declared, never internal scores.
"""

from __future__ import annotations

import calendar

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_not_required
from django.core.exceptions import ValidationError
from django.db import transaction
from django.shortcuts import redirect, render
from django.urls import path, reverse
from django.utils.dates import MONTHS
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_http_methods, require_POST

from customers.models import Channel, Consent, ImportantDate
from customers.selectors import customer_consents, customer_for_preference_token, preference_dates
from customers.services import consent_set, important_date_remove, important_date_set

SOURCE = "preference_centre"


class ConsentForm(forms.Form):
    """One checkbox per channel: ticked means "yes, you may contact me this way"."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        for channel, label in Channel.choices:
            self.fields[channel] = forms.BooleanField(required=False, label=label)


class ImportantDateForm(forms.Form):
    """A date that matters to the person: their own, a spouse's or child's birthday…"""

    kind = forms.ChoiceField(label=gettext_lazy("What is it?"), choices=ImportantDate.Kind.choices)
    label = forms.CharField(
        label=gettext_lazy("Whose / which day"),
        max_length=100,
        required=False,
        help_text=gettext_lazy("For example “妻の誕生日” or “Mother's birthday”."),
    )
    month = forms.TypedChoiceField(
        label=gettext_lazy("Month"), coerce=int, choices=list(MONTHS.items())
    )
    day = forms.IntegerField(label=gettext_lazy("Day"), min_value=1, max_value=31)

    def clean(self):
        data = super().clean()
        month, day = data.get("month"), data.get("day")
        # A leap year, so 29 February stays a valid birthday.
        if month and day and day > calendar.monthrange(2000, month)[1]:
            self.add_error(
                "day",
                _("%(month)s has no day %(day)s.") % {"month": MONTHS[month], "day": day},
            )
        if data.get("kind") == ImportantDate.Kind.CUSTOM and not data.get("label"):
            self.add_error("label", _("Say whose day it is, or what it is."))
        return data


def _invalid_link(request):
    return render(request, "customers/preferences_invalid.html", status=404)


def _page(request, customer, *, consent_form=None, date_form=None, status=200):
    consents = customer_consents(customer)
    if consent_form is None:
        consent_form = ConsentForm(
            initial={row.channel: row.status == Consent.Status.GRANTED for row in consents}
        )
    response = render(
        request,
        "customers/preferences.html",
        {
            "token": request.resolver_match.kwargs["token"],
            "consent_form": consent_form,
            "dates": preference_dates(customer),
            "date_form": date_form or ImportantDateForm(),
        },
        status=status,
    )
    response["X-Robots-Tag"] = "noindex, nofollow"
    return response


@login_not_required
@never_cache
@require_http_methods(["GET", "HEAD"])
def preferences(request, token: str):
    """The person's consents and important dates, each with a form to change them."""
    customer = customer_for_preference_token(token)
    if customer is None:
        return _invalid_link(request)
    return _page(request, customer)


@login_not_required
@never_cache
@require_POST
def preferences_consents(request, token: str):
    """Save the ticked channels; only channels whose answer changed get a history entry.

    A channel the person was never asked about and left unticked stays "not asked".
    """
    customer = customer_for_preference_token(token)
    if customer is None:
        return _invalid_link(request)
    form = ConsentForm(request.POST)
    if not form.is_valid():
        return _page(request, customer, consent_form=form, status=400)
    current = {row.channel: row.status for row in customer_consents(customer)}
    with transaction.atomic():
        for channel in Channel.values:
            wanted = (
                Consent.Status.GRANTED if form.cleaned_data[channel] else Consent.Status.WITHDRAWN
            )
            if current[channel] == wanted or (
                not current[channel] and not form.cleaned_data[channel]
            ):
                continue
            consent_set(customer=customer, channel=channel, status=wanted, source=SOURCE, by=None)
    messages.success(request, _("Your contact preferences are saved."))
    return redirect(reverse("customers:preferences", args=[token]))


@login_not_required
@never_cache
@require_POST
def preferences_date_add(request, token: str):
    """Add (or, for one-per-person kinds such as a spouse's birthday, replace) a date."""
    customer = customer_for_preference_token(token)
    if customer is None:
        return _invalid_link(request)
    form = ImportantDateForm(request.POST)
    if form.is_valid():
        data = form.cleaned_data
        try:
            important_date_set(
                customer=customer,
                kind=data["kind"],
                label=data["label"],
                month=data["month"],
                day=data["day"],
                self_declared=True,
                by=None,
            )
        except ValidationError as exc:
            for field, errors in exc.message_dict.items():
                form.add_error(field if field in form.fields else None, errors)
    if not form.is_valid():
        return _page(request, customer, date_form=form, status=400)
    messages.success(request, _("The date is saved. Thank you!"))
    return redirect(reverse("customers:preferences", args=[token]))


@login_not_required
@never_cache
@require_POST
def preferences_date_remove(request, token: str, date_id: int):
    """Remove a date the person declared; dates we got elsewhere are not theirs to delete here."""
    customer = customer_for_preference_token(token)
    if customer is None:
        return _invalid_link(request)
    important_date = preference_dates(customer).filter(pk=date_id).first()
    if important_date is None:
        return _invalid_link(request)
    important_date_remove(important_date=important_date, by=None)
    messages.success(request, _("The date is removed."))
    return redirect(reverse("customers:preferences", args=[token]))


urlpatterns = [
    path("preferences/<str:token>/", preferences, name="preferences"),
    path("preferences/<str:token>/consents/", preferences_consents, name="preferences_consents"),
    path("preferences/<str:token>/dates/", preferences_date_add, name="preferences_date_add"),
    path(
        "preferences/<str:token>/dates/<int:date_id>/remove/",
        preferences_date_remove,
        name="preferences_date_remove",
    ),
]
