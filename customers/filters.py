"""Filters of the customers API: lists of customers and segments."""

from __future__ import annotations

from config.org.api import (
    DepartmentOwnedFilterSet,
    StrictBooleanFilter,
    StrictFilterSet,
    UtcIsoDateTimeFilter,
)
from customers.models import Customer, Segment


class CustomerFilter(StrictFilterSet):
    """Filters on profile facts that carry no personal data."""

    created_after = UtcIsoDateTimeFilter(field_name="created_at", lookup_expr="gte")
    created_before = UtcIsoDateTimeFilter(field_name="created_at", lookup_expr="lt")
    merged = StrictBooleanFilter(field_name="merged_into", lookup_expr="isnull", exclude=True)

    class Meta:
        model = Customer
        fields = ["lifecycle_stage", "is_anonymous", "prefecture", "language"]


class SegmentFilter(DepartmentOwnedFilterSet):
    class Meta:
        model = Segment
        fields = ["kind"]
