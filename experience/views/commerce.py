"""Circle ② pages: the product catalogue and one product's history.

The catalogue is company-wide, like customers: every member reads it, and any editor or
manager of any department may correct a product (prices and stock normally arrive from
the store system's nightly file; staff fix what is wrong). Viewers read only. Every change
goes through :func:`experience.commerce.product_update`, so it is recorded as a price or
stock change and audited.
"""

from __future__ import annotations

from django import forms
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.paginator import Paginator
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import path, reverse
from django.utils.cache import patch_vary_headers
from django.utils.http import urlencode
from django.utils.translation import gettext_lazy as _

from customers.selectors import can_view_pii
from experience.commerce import (
    LOW_STOCK,
    catalogue_editable_by,
    product_categories,
    product_changes,
    product_fans,
    product_list,
    product_open_cart_count,
    product_update,
)
from experience.models import Product

PAGE_SIZE = 50
HISTORY_SIZE = 50
EDIT_SOURCE = "dashboard"


class ProductSearchForm(forms.Form):
    q = forms.CharField(label=_("SKU or name"), required=False, strip=True, max_length=100)
    category = forms.CharField(label=_("Category"), required=False, max_length=100)


class ProductForm(forms.ModelForm):
    """The fields staff may correct; validation is the service's, so rules live in one place."""

    class Meta:
        model = Product
        fields = ["name", "category", "price", "stock", "is_active"]


def products(request):
    """The catalogue: search by SKU or name, filter by category; htmx swaps the results."""
    form = ProductSearchForm(request.GET)
    status = 200
    if form.is_valid():
        q, category = form.cleaned_data["q"], form.cleaned_data["category"]
        rows = product_list(q=q, category=category)
    else:
        q, category, status = "", "", 400
        rows = product_list().none()
    page_obj = Paginator(rows, PAGE_SIZE).get_page(request.GET.get("page"))
    filters = urlencode({k: v for k, v in (("q", q), ("category", category)) if v})
    template = "experience/products/list.html"
    partial = request.htmx and not request.htmx.history_restore_request
    if partial:
        template += "#results"
    response = render(
        request,
        template,
        {
            "active_circle": "experience",
            "form": form,
            "page_obj": page_obj,
            "q": q,
            "category": category,
            "categories": [] if partial else product_categories(),
            "filters": filters,
            "low_stock": LOW_STOCK,
        },
        status=status,
    )
    patch_vary_headers(response, ("HX-Request",))
    return response


def product(request, pk: int):
    """One product: details, price and stock history, who favourited it, and the edit form.

    Editors (of any department) may post the form; viewers get the page without it and a
    403 when they post anyway. Customers who favourited it are listed without links and
    masked unless the user may see personal data.
    """
    item = get_object_or_404(Product, pk=pk)
    can_edit = catalogue_editable_by(request.user)
    status = 200
    form = ProductForm(instance=item) if can_edit else None
    if request.method == "POST":
        if not can_edit:
            raise PermissionDenied
        form = ProductForm(request.POST, instance=Product.objects.get(pk=item.pk))
        if form.is_valid():
            try:
                product_update(
                    product=item, source=EDIT_SOURCE, by=request.user, **form.cleaned_data
                )
            except ValidationError as exc:
                for name, errors in exc.message_dict.items():
                    form.add_error(name if name in form.fields else None, errors)
            else:
                return redirect(f"{reverse('experience:product', args=[item.pk])}?saved=1")
        status = 400
    fan_count, fans = product_fans(item)
    response = render(
        request,
        "experience/products/detail.html",
        {
            "active_circle": "experience",
            "product": item,
            "changes": list(product_changes(product=item)[:HISTORY_SIZE]),
            "history_size": HISTORY_SIZE,
            "fan_count": fan_count,
            "fans": fans,
            "show_names": can_view_pii(request.user),
            "open_cart_count": product_open_cart_count(item),
            "form": form,
            "saved": request.GET.get("saved") == "1" and request.method == "GET",
            "low_stock": LOW_STOCK,
        },
        status=status,
    )
    return response


urlpatterns = [
    path("products/", products, name="products"),
    path("products/<int:pk>/", product, name="product"),
]
