"""Circle ② pages: the touchpoint map, a touchpoint's figures, the catalogue, the five
experience values, and staff activities recorded on a customer profile."""

from __future__ import annotations

from django.contrib import messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import path, reverse
from django.utils.translation import gettext
from django.views.decorators.http import require_POST

from config.org.models import Role
from config.org.selectors import departments_visible_to, get_visible_or_404, has_role_anywhere
from customers.models import Customer
from customers.selectors import can_view_pii
from experience.activity_panel import activity_panel_context
from experience.forms import ActivityForm, TouchpointForm, TouchpointMapFilterForm
from experience.models import Touchpoint
from experience.selectors import (
    DETAIL_WEEKS,
    experience_value_overview,
    touchpoint_detail_figures,
    touchpoint_map,
    touchpoint_surveys,
    touchpoints_for_activity,
)
from experience.services import (
    activity_record,
    touchpoint_create,
    touchpoint_update,
)


def _apply_errors(form, exc: ValidationError, *, aliases: dict | None = None) -> None:
    """Put a service's ``ValidationError`` on the form fields it names."""
    aliases = aliases or {}
    for name, errors in exc.message_dict.items():
        field = aliases.get(name, name)
        for error in errors:
            form.add_error(field if field in form.fields else None, error)


# --- The map ---------------------------------------------------------------------------------


def index(request: HttpRequest) -> HttpResponse:
    """The touchpoint map: every touchpoint the user can see, grouped online / offline / app,
    with volume, trend, orders and NPS; filters answer the ``map`` partial to htmx."""
    user = request.user
    departments = list(departments_visible_to(user).order_by("name"))
    form = TouchpointMapFilterForm(request.GET or None, departments=departments)
    touchpoint_map_data = touchpoint_map(user, filters=form.filters() if form.is_bound else None)
    context = {
        "active_circle": "experience",
        "form": form,
        "map": touchpoint_map_data,
        "can_create": has_role_anywhere(user, Role.EDITOR),
    }
    if request.htmx and not request.htmx.history_restore_request:
        return render(request, "experience/index.html#map", context)
    return render(request, "experience/index.html", context)


# --- One touchpoint --------------------------------------------------------------------------


def touchpoint_detail(request: HttpRequest, pk: int) -> HttpResponse:
    """A touchpoint's description, values, owner and shares, volume and NPS with comments."""
    user = request.user
    touchpoint = get_visible_or_404(
        Touchpoint.objects.select_related("owner_department").prefetch_related("experience_values"),
        user,
        pk=pk,
    )
    return render(
        request,
        "experience/touchpoints/detail.html",
        {
            "active_circle": "experience",
            "touchpoint": touchpoint,
            "shares": touchpoint.shares.select_related("department").order_by("department__name"),
            "surveys": touchpoint_surveys(touchpoint, user),
            "show_pii": can_view_pii(user),
            "can_edit": Touchpoint.objects.editable_by(user).filter(pk=touchpoint.pk).exists(),
            "detail_weeks": DETAIL_WEEKS,
            **touchpoint_detail_figures(touchpoint),
        },
    )


def _form_page(request: HttpRequest, *, touchpoint: Touchpoint | None) -> HttpResponse:
    user = request.user
    if request.method == "POST":
        form = TouchpointForm(request.POST, user=user)
        if form.is_valid():
            try:
                if touchpoint is None:
                    saved = touchpoint_create(by=user, **form.cleaned_data)
                else:
                    saved = touchpoint_update(touchpoint=touchpoint, by=user, **form.cleaned_data)
            except ValidationError as exc:
                _apply_errors(form, exc)
            else:
                messages.success(request, gettext("Touchpoint saved."))
                return redirect("experience:touchpoint", pk=saved.pk)
        status = 400
    else:
        initial = TouchpointForm.initial_for(touchpoint) if touchpoint else {}
        form = TouchpointForm(initial=initial, user=user)
        status = 200
    return render(
        request,
        "experience/touchpoints/form.html",
        {"active_circle": "experience", "form": form, "touchpoint": touchpoint},
        status=status,
    )


def touchpoint_create_view(request: HttpRequest) -> HttpResponse:
    """A new touchpoint, for editors and managers (viewers answer 403)."""
    if not has_role_anywhere(request.user, Role.EDITOR):
        raise PermissionDenied
    return _form_page(request, touchpoint=None)


def touchpoint_edit(request: HttpRequest, pk: int) -> HttpResponse:
    """Change a touchpoint: 404 when the user cannot see it, 403 when they may only read."""
    touchpoint = get_visible_or_404(
        Touchpoint.objects.select_related("owner_department"), request.user, pk=pk
    )
    if not Touchpoint.objects.editable_by(request.user).filter(pk=pk).exists():
        raise PermissionDenied
    return _form_page(request, touchpoint=touchpoint)


# --- The five values -------------------------------------------------------------------------


def values(request: HttpRequest) -> HttpResponse:
    """The experience-value taxonomy with what is meant to deliver each value."""
    return render(
        request,
        "experience/values.html",
        {"active_circle": "experience", "values": experience_value_overview(request.user)},
    )


# --- Staff activity on a profile -------------------------------------------------------------


@require_POST
def activity_record_view(request: HttpRequest, customer_pk: int) -> HttpResponse:
    """Record a visit, call or meeting (editors of any department; viewers answer 403).

    htmx swaps the form with a fresh one and a confirmation, and tells the page to reload
    its timeline; without JavaScript the browser goes back to the profile.
    """
    user = request.user
    if not has_role_anywhere(user, Role.EDITOR):
        raise PermissionDenied
    customer = get_object_or_404(Customer, pk=customer_pk)
    form = ActivityForm(request.POST, touchpoints=touchpoints_for_activity(user))
    if form.is_valid():
        data = form.cleaned_data
        try:
            activity_record(
                customer=customer,
                kind=data["kind"],
                touchpoint=data["touchpoint"],
                occurred_at=data["occurred_at"],
                note=data["note"],
                outcome=data["outcome"],
                values=data["values"],
                by=user,
            )
        except ValidationError as exc:
            _apply_errors(form, exc)
        else:
            message = gettext("Recorded. It is on the timeline now.")
            if request.htmx:
                response = render(
                    request,
                    "experience/_activity_panel.html#activity-form",
                    {
                        "customer": customer,
                        "panel": activity_panel_context(
                            user=user, customer=customer, message=message
                        ),
                    },
                )
                response["HX-Trigger"] = "activity-recorded"
                return response
            messages.success(request, message)
            url = reverse("customers:detail", args=[customer.pk])
            return redirect(f"{url}#timeline")
    context = {
        "active_circle": "customer",
        "customer": customer,
        "panel": activity_panel_context(user=user, customer=customer, form=form),
    }
    if request.htmx:
        return render(request, "experience/_activity_panel.html#activity-form", context)
    return render(request, "experience/touchpoints/activity.html", context, status=400)


urlpatterns = [
    path("", index, name="index"),
    path("values/", values, name="values"),
    path("touchpoints/new/", touchpoint_create_view, name="touchpoint_create"),
    path("touchpoints/<int:pk>/", touchpoint_detail, name="touchpoint"),
    path("touchpoints/<int:pk>/edit/", touchpoint_edit, name="touchpoint_edit"),
    path(
        "customers/<int:customer_pk>/activity/",
        activity_record_view,
        name="activity_record",
    ),
]
