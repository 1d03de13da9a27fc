"""API paging, in a module of its own: DRF imports its default paginator while loading.

``config.org.api`` imports DRF's viewsets, which read ``DEFAULT_PAGINATION_CLASS`` as they
load, so the class that setting names cannot live there.
"""

from __future__ import annotations

from rest_framework.exceptions import ValidationError
from rest_framework.pagination import LimitOffsetPagination


def query_int(request, name: str, default: int | None, minimum: int, maximum: int):
    """A whole-number query parameter within bounds, else a 400 naming it.

    DRF's paginators silently fall back to their defaults on ``limit=abc``, ``offset=-1`` or
    ``page_size=x``, so a client's mistake returned a page it did not ask for; and an
    enormous number overflowed the database's LIMIT/OFFSET (a 500 on SQLite). A repeated
    parameter counts by every value: all must be valid.
    """
    values = request.query_params.getlist(name)
    if not values:
        return default
    for raw in values:
        try:
            value = int(raw)
        except ValueError:
            raise ValidationError({name: ["Enter a whole number."]}) from None
        if not minimum <= value <= maximum:
            raise ValidationError({name: [f"Enter a whole number from {minimum} to {maximum}."]})
    return value


def bound_schema_parameters(parameters: list[dict], bounds: dict[str, tuple[int, int]]):
    """Write the bounds :func:`query_int` enforces into the OpenAPI parameters."""
    for parameter in parameters:
        if parameter["name"] in bounds:
            minimum, maximum = bounds[parameter["name"]]
            parameter["schema"].update(minimum=minimum, maximum=maximum)
    return parameters


class StrictLimitOffsetPagination(LimitOffsetPagination):
    """``limit``/``offset`` paging that refuses bad values with a 400 naming the parameter."""

    max_limit = 1000
    max_offset = 2**31 - 1

    def get_limit(self, request):
        return query_int(request, self.limit_query_param, self.default_limit, 1, self.max_limit)

    def get_offset(self, request):
        return query_int(request, self.offset_query_param, 0, 0, self.max_offset)

    def get_schema_operation_parameters(self, view):
        return bound_schema_parameters(
            super().get_schema_operation_parameters(view),
            {
                self.limit_query_param: (1, self.max_limit),
                self.offset_query_param: (0, self.max_offset),
            },
        )
