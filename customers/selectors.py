"""Reads of circle ①: headline figures and the customer list.

Customer profiles are company-wide (the customer is the centre), so these reads take no
department scope; who may see personal data unmasked is decided by ``can_view_pii``.
"""

from __future__ import annotations

from django.db.models import Count, IntegerField, OuterRef, Q, QuerySet, Subquery
from django.db.models.functions import Coalesce

from customers.models import Customer, Identity


def customer_headline() -> dict[str, int | float | None]:
    """Customers (profiles merged into others excluded) and the % known by 2+ identifiers.

    One aggregate query: the identifier count is grouped once over the identity index and
    used as an ``IN`` set, so no per-customer work happens in Python.
    """
    known_twice = (
        Identity.objects.order_by()
        .values("customer_id")
        .annotate(n=Count("pk"))
        .filter(n__gt=1)
        .values("customer_id")
    )
    totals = Customer.objects.filter(merged_into__isnull=True).aggregate(
        total=Count("pk"), multi=Count("pk", filter=Q(pk__in=known_twice))
    )
    total = totals["total"]
    return {
        "customers_total": total,
        "customers_multi_identifier_pct": (
            round(totals["multi"] * 100 / total, 1) if total else None
        ),
    }


def can_view_pii(user) -> bool:
    """Personal data (names, identifiers, dates) is shown unmasked only with ``view_pii``.

    One rule for pages, API and exports; administrators hold every permission.
    """
    return bool(user.is_authenticated and user.has_perm("customers.view_pii"))


def customer_list(*, q: str = "") -> QuerySet[Customer]:
    """Unmerged customers, newest first, with their identifier count; ``q`` searches names.

    Every word of ``q`` must match the family or given name, in kanji or kana. The
    identifier count is a correlated sub-query, so a page of 50 costs 50 index probes
    rather than a grouped scan of every customer.
    """
    identity_count = (
        Identity.objects.filter(customer=OuterRef("pk"))
        .order_by()
        .values("customer")
        .annotate(n=Count("pk"))
        .values("n")
    )
    customers = Customer.objects.filter(merged_into__isnull=True).annotate(
        identity_count=Coalesce(Subquery(identity_count, output_field=IntegerField()), 0)
    )
    for word in q.split():
        customers = customers.filter(
            Q(family_name__icontains=word)
            | Q(given_name__icontains=word)
            | Q(family_name_kana__icontains=word)
            | Q(given_name_kana__icontains=word)
        )
    return customers.order_by("-created_at", "-pk")
