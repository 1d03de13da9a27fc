"""Filters of the customers API: lists of customers and segments."""

from __future__ import annotations

import django_filters

from config.org.api import DepartmentOwnedFilterSet
from customers.models import Customer, Segment


class CustomerFilter(django_filters.FilterSet):
    """Filters on profile facts that carry no personal data."""

    created_after = django_filters.IsoDateTimeFilter(field_name="created_at", lookup_expr="gte")
    created_before = django_filters.IsoDateTimeFilter(field_name="created_at", lookup_expr="lt")
    merged = django_filters.BooleanFilter(
        field_name="merged_into", lookup_expr="isnull", exclude=True
    )

    class Meta:
        model = Customer
        fields = ["lifecycle_stage", "is_anonymous", "prefecture", "language"]


class SegmentFilter(DepartmentOwnedFilterSet):
    class Meta:
        model = Segment
        fields = ["kind"]
