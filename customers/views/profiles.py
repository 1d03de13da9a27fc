"""Circle ① pages: the customer list, search and the customer 360 profile."""

from __future__ import annotations

from django import forms
from django.core.paginator import Paginator
from django.shortcuts import redirect, render
from django.urls import path, reverse
from django.utils.cache import patch_vary_headers
from django.utils.http import urlencode
from django.utils.translation import gettext_lazy as _

from config.org.selectors import departments_visible_to
from config.org.services import audit_record
from customers.forms import CustomerSearchForm
from customers.models import LifecycleStage
from customers.panels import profile_panels
from customers.privacy import can_handle_subject_requests
from customers.selectors import (
    can_view_pii,
    customer_for_profile,
    customer_list,
    customer_merge_winner,
    customer_profile,
    preference_token,
)
from customers.timeline import (
    TimelineCursor,
    TimelineCursorError,
    TimelineFilters,
    timeline_channels,
    timeline_page,
    timeline_sources,
)

PAGE_SIZE = 50
TIMELINE_PAGE_SIZE = 50


def index(request):
    """Customers newest first, searchable and filterable; htmx swaps only the results."""
    show_names = can_view_pii(request.user)
    form = CustomerSearchForm(request.GET)
    status = 200
    if form.is_valid():
        q, stage = form.cleaned_data["q"], form.cleaned_data["stage"]
        customers = form.customers(request.user)
    else:
        q, stage, status = "", "", 400
        customers = customer_list().none()
    page_obj = Paginator(customers, PAGE_SIZE).get_page(request.GET.get("page"))
    filters = urlencode({key: value for key, value in (("q", q), ("stage", stage)) if value})
    template = "customers/index.html"
    if request.htmx and not request.htmx.history_restore_request:
        template += "#results"
    response = render(
        request,
        template,
        {
            "active_circle": "customer",
            "page_obj": page_obj,
            "q": q,
            "stage": stage,
            "form": form,
            "filters": filters,
            "stages": LifecycleStage.choices,
            "show_names": show_names,
        },
        status=status,
    )
    patch_vary_headers(response, ("HX-Request",))
    return response


class TimelineFilterForm(forms.Form):
    """Filters and the keyset position of the 360 timeline, all from the query string."""

    type = forms.MultipleChoiceField(
        required=False, label=_("Type"), widget=forms.CheckboxSelectMultiple
    )
    channel = forms.ChoiceField(required=False, label=_("Channel"))
    department = forms.ModelChoiceField(
        queryset=None, required=False, label=_("Department"), empty_label=_("All departments")
    )
    before = forms.CharField(required=False)

    def __init__(self, *args, user, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["type"].choices = [(source.name, source.label) for source in timeline_sources()]
        self.fields["channel"].choices = [("", _("All channels")), *timeline_channels()]
        self.fields["department"].queryset = departments_visible_to(user)

    def clean_before(self) -> TimelineCursor | None:
        token = self.cleaned_data["before"]
        if not token:
            return None
        try:
            return TimelineCursor.decode(token)
        except TimelineCursorError as exc:
            raise forms.ValidationError(str(exc)) from exc

    def filter_query(self) -> str:
        """The filters as a query string, for the "older" and "newest" links."""
        data = self.cleaned_data
        pairs = [("type", name) for name in data["type"]]
        if data["channel"]:
            pairs.append(("channel", data["channel"]))
        if data["department"]:
            pairs.append(("department", data["department"].pk))
        return urlencode(pairs)


def _timeline_context(request, customer) -> tuple[dict, int]:
    form = TimelineFilterForm(request.GET, user=request.user)
    if not form.is_valid():
        return {"timeline_form": form, "entries": [], "next_cursor": None}, 400
    data = form.cleaned_data
    filters = TimelineFilters(
        viewer=request.user,
        sources=frozenset(data["type"]),
        channel=data["channel"],
        department_id=data["department"].pk if data["department"] else None,
    )
    entries, next_cursor = timeline_page(
        customer.pk, before=data["before"], limit=TIMELINE_PAGE_SIZE, filters=filters
    )
    context = {
        "timeline_form": form,
        "entries": entries,
        "next_cursor": next_cursor.encode() if next_cursor else "",
        "is_first_page": data["before"] is None,
        "timeline_filters": form.filter_query(),
    }
    return context, 200


def detail(request, pk: int):
    """The customer 360: who the person is, what they did and what we sent them.

    A merged profile sends the visitor to the profile it now lives in. An unmasked page
    view is audit-logged once; the htmx timeline pages that follow carry no personal data
    of the header and are not logged again.
    """
    customer = customer_for_profile(pk)
    if customer.merged_into_id is not None:
        winner = customer_merge_winner(customer)
        url = reverse("customers:detail", args=[winner.pk])
        return redirect(f"{url}?{urlencode({'merged_from': customer.pk})}")

    timeline, status = _timeline_context(request, customer)
    if request.htmx and not request.htmx.history_restore_request:
        response = render(
            request,
            "customers/detail.html#timeline",
            {"customer": customer, **timeline},
            status=status,
        )
        patch_vary_headers(response, ("HX-Request",))
        return response

    profile = customer_profile(customer, user=request.user)
    preference_url = ""
    if profile.show_pii:
        audit_record(
            actor=request.user,
            action="customer.view_pii",
            target=customer,
            detail={"via": "web"},
            ip_address=request.META.get("REMOTE_ADDR"),
        )
        preference_url = request.build_absolute_uri(
            reverse("customers:preferences", args=[preference_token(customer)])
        )
    merged_from = request.GET.get("merged_from", "")
    response = render(
        request,
        "customers/detail.html",
        {
            "active_circle": "customer",
            "customer": customer,
            "profile": profile,
            "panels": profile_panels(request=request, customer=customer, show_pii=profile.show_pii),
            "preference_url": preference_url,
            "merged_from": merged_from if merged_from.isdigit() else "",
            "can_handle_subject_requests": can_handle_subject_requests(request.user),
            **timeline,
        },
        status=status,
    )
    patch_vary_headers(response, ("HX-Request",))
    return response


urlpatterns = [
    path("", index, name="index"),
    path("<int:pk>/", detail, name="detail"),
]
