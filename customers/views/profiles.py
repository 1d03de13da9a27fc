"""Circle ① pages: the customer list, search and the customer 360 profile."""

from __future__ import annotations

from django.core.paginator import Paginator
from django.shortcuts import render
from django.urls import path
from django.utils.cache import patch_vary_headers

from customers.selectors import can_view_pii, customer_list

PAGE_SIZE = 50


def index(request):
    """The most recent customers, searchable by name or kana; htmx swaps only the results."""
    show_names = can_view_pii(request.user)
    # Searching by name would reveal names to people who may not read them.
    q = request.GET.get("q", "").strip()[:100] if show_names else ""
    page_obj = Paginator(customer_list(q=q), PAGE_SIZE).get_page(request.GET.get("page"))
    template = "customers/index.html"
    if request.htmx and not request.htmx.history_restore_request:
        template += "#results"
    response = render(
        request,
        template,
        {"active_circle": "customer", "page_obj": page_obj, "q": q, "show_names": show_names},
    )
    patch_vary_headers(response, ("HX-Request",))
    return response


urlpatterns = [
    path("", index, name="index"),
]
