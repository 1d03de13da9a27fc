"""Filters of the experience API: touchpoints, surveys and the product catalogue."""

from __future__ import annotations

from config.org.api import DepartmentOwnedFilterSet, IdFilter, StrictFilterSet
from experience.models import Product, Survey, Touchpoint


class TouchpointFilter(DepartmentOwnedFilterSet):
    class Meta:
        model = Touchpoint
        fields = ["channel", "kind", "is_active"]


class SurveyFilter(DepartmentOwnedFilterSet):
    touchpoint = IdFilter(field_name="touchpoint_id")

    class Meta:
        model = Survey
        fields = ["kind", "is_active"]


class ProductFilter(StrictFilterSet):
    class Meta:
        model = Product
        fields = ["category", "is_active"]
