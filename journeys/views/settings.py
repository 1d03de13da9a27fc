"""Circle ③ settings for managers: the company's contact policy and the suppression list.

Both are company-wide: any department's manager sees them and manages the suppression list;
only the administrator changes the contact policy (the services decide, see
journeys.services), because one department must not raise the budget every department shares.
"""

from __future__ import annotations

from django.contrib import messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.paginator import Paginator
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import path
from django.utils.cache import patch_vary_headers
from django.utils.http import urlencode
from django.utils.translation import gettext
from django.views.decorators.http import require_http_methods, require_POST

from config.org.models import Role
from config.org.selectors import has_role_anywhere
from journeys.forms import ContactPolicyForm, SuppressionForm, add_service_errors
from journeys.models import ContactPolicy, Suppression
from journeys.selectors import suppression_list
from journeys.services import (
    POLICY_FIELDS,
    contact_policy_update,
    suppression_add,
    suppression_remove,
)

PAGE_SIZE = 50


def _require_manager(user) -> None:
    if not has_role_anywhere(user, Role.MANAGER):
        raise PermissionDenied


@require_http_methods(["GET", "POST"])
def contact_policy(request):
    """The contact budget and quiet hours every campaign of every department obeys."""
    _require_manager(request.user)
    policy = ContactPolicy.current()
    can_change = request.user.is_superuser
    status = 200
    if request.method == "POST":
        if not can_change:
            raise PermissionDenied
        form = ContactPolicyForm(request.POST, instance=ContactPolicy.current())
        if form.is_valid():
            fields = {key: form.cleaned_data[key] for key in POLICY_FIELDS if key in form.fields}
            try:
                contact_policy_update(by=request.user, **fields)
            except ValidationError as exc:
                add_service_errors(form, exc)
            else:
                messages.success(request, gettext("Contact policy saved."))
                return redirect("journeys:contact_policy")
        status = 400
    else:
        form = ContactPolicyForm(instance=policy)
    if not can_change:
        for field in form.fields.values():
            field.disabled = True
    return render(
        request,
        "journeys/settings/contact_policy.html",
        {
            "active_circle": "platform",
            "section": "contact_policy",
            "form": form,
            "policy": policy,
            "can_change": can_change,
        },
        status=status,
    )


def _suppression_page(request, *, form, status=200):
    q = request.GET.get("q", "")[:255]
    page_obj = Paginator(suppression_list(q=q), PAGE_SIZE).get_page(request.GET.get("page"))
    template = "journeys/settings/suppressions.html"
    if request.htmx and not request.htmx.history_restore_request:
        template += "#results"
    response = render(
        request,
        template,
        {
            "active_circle": "platform",
            "section": "suppressions",
            "form": form,
            "page_obj": page_obj,
            "q": q,
            "filters": urlencode({"q": q}) if q else "",
        },
        status=status,
    )
    patch_vary_headers(response, ("HX-Request",))
    return response


@require_http_methods(["GET", "POST"])
def suppressions(request):
    """The global suppression list with search; POST adds an address."""
    _require_manager(request.user)
    if request.method == "GET":
        return _suppression_page(request, form=SuppressionForm())
    form = SuppressionForm(request.POST)
    if form.is_valid():
        try:
            suppression_add(by=request.user, **form.cleaned_data)
        except ValidationError as exc:
            add_service_errors(form, exc)
        else:
            messages.success(request, gettext("Address added to the suppression list."))
            return redirect("journeys:suppressions")
    return _suppression_page(request, form=form, status=400)


@require_POST
def suppression_delete(request, pk: int):
    """Lift one suppression (audited by the service)."""
    _require_manager(request.user)
    suppression = get_object_or_404(Suppression, pk=pk)
    suppression_remove(suppression=suppression, by=request.user)
    messages.success(request, gettext("Address removed from the suppression list."))
    return redirect("journeys:suppressions")


urlpatterns = [
    path("settings/contact-policy/", contact_policy, name="contact_policy"),
    path("settings/suppressions/", suppressions, name="suppressions"),
    path("settings/suppressions/<int:pk>/remove/", suppression_delete, name="suppression_remove"),
]
