"""Circle ① pages of data-subject requests: download a person's data, erase a person.

Only a manager with personal-data access, or the administrator, may use them
(``can_handle_subject_requests``); everyone else gets 403, whatever the page shows.
"""

from __future__ import annotations

import json

from django import forms
from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.core.serializers.json import DjangoJSONEncoder
from django.http import HttpResponse
from django.shortcuts import redirect, render
from django.urls import path, reverse
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_GET, require_http_methods

from customers.privacy import can_handle_subject_requests, subject_erase, subject_export
from customers.selectors import customer_for_profile


def _require_subject_handler(user) -> None:
    if not can_handle_subject_requests(user):
        raise PermissionDenied


class ErasureForm(forms.Form):
    """Typing the customer number proves the right person is being erased."""

    confirm = forms.CharField(
        label=gettext_lazy("Type the customer number to confirm"), max_length=20, strip=True
    )
    reason = forms.CharField(
        label=gettext_lazy("Reason (kept in the audit log; no personal data)"),
        max_length=200,
        required=False,
        strip=True,
    )

    def __init__(self, *args, customer, **kwargs):
        super().__init__(*args, **kwargs)
        self.customer = customer

    def clean_confirm(self) -> str:
        value = self.cleaned_data["confirm"].lstrip("#")
        if value != str(self.customer.pk):
            raise forms.ValidationError(
                _("Type %(number)s, the number of this customer.") % {"number": self.customer.pk}
            )
        return value


@require_GET
def export(request, pk: int):
    """Everything held about the person, as a JSON file to hand over (access request)."""
    _require_subject_handler(request.user)
    customer = customer_for_profile(pk)
    data = subject_export(customer=customer, by=request.user)
    response = HttpResponse(
        json.dumps(data, cls=DjangoJSONEncoder, ensure_ascii=False, indent=2),
        content_type="application/json; charset=utf-8",
    )
    response["Content-Disposition"] = (
        f'attachment; filename="customer-{customer.pk}-personal-data.json"'
    )
    response["Cache-Control"] = "no-store"
    return response


@require_http_methods(["GET", "POST"])
def erase(request, pk: int):
    """Confirm, then erase the person's personal data and keep the aggregates."""
    _require_subject_handler(request.user)
    customer = customer_for_profile(pk)
    form = ErasureForm(request.POST or None, customer=customer)
    if request.method == "POST" and form.is_valid():
        subject_erase(customer=customer, by=request.user, reason=form.cleaned_data["reason"])
        messages.success(
            request,
            _("The personal data of customer #%(number)s was erased.") % {"number": customer.pk},
        )
        return redirect(reverse("customers:detail", args=[customer.pk]))
    return render(
        request,
        "customers/privacy/erase.html",
        {"active_circle": "customer", "customer": customer, "form": form},
        status=400 if form.is_bound else 200,
    )


urlpatterns = [
    path("<int:pk>/personal-data/", export, name="subject_export"),
    path("<int:pk>/erase/", erase, name="subject_erase"),
]
