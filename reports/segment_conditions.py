"""The segment condition ``prediction``, registered into circle ①'s rule-tree registry.

- ``prediction`` [field, op, value]: the customer's latest CLV prediction
  (:class:`~reports.models.CustomerPrediction`) compared with a number, e.g.
  ``{"type": "prediction", "field": "p_alive", "op": "lt", "value": 0.3}`` — customers
  who have probably stopped buying.

Fields: ``p_alive`` (0–1), ``expected_purchases`` (over the fit's horizon),
``expected_value`` (expected order value, yen) and ``clv`` (predicted value over the
horizon, yen). It compiles to one ``EXISTS`` on the prediction table (primary key =
customer), so it stays one SQL query. A customer without a prediction (no completed order
yet, or no fit yet) never matches, so ``NOT`` includes them, as with the metric condition.
"""

from __future__ import annotations

from django.db.models import Exists, OuterRef, Q
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from customers.segments import (
    COMPARISON_SIGNS,
    CompileContext,
    SegmentRuleError,
    ValidationContext,
    register_condition,
)
from reports.models import CustomerPrediction

PREDICTION_FIELDS = {
    "p_alive": _("P(alive)"),
    "expected_purchases": _("expected purchases"),
    "expected_value": _("expected order value"),
    "clv": _("predicted value"),
}
PREDICTION_OPS = ("lt", "lte", "gt", "gte")


def compile_prediction(params: dict, ctx: CompileContext) -> Q:
    lookup = f"{params['field']}__{params['op']}"
    rows = CustomerPrediction.objects.filter(customer=OuterRef("pk"), **{lookup: params["value"]})
    return Q(Exists(rows))


def check_prediction(params: dict, path: str, ctx: ValidationContext) -> None:
    if params["field"] == "p_alive" and not 0 <= params["value"] <= 1:
        raise SegmentRuleError(f"{path}.value", "P(alive) is a probability between 0 and 1")


def describe_prediction(params: dict) -> str:
    return gettext("predicted %(field)s %(op)s %(value)s") % {
        "field": PREDICTION_FIELDS[params["field"]],
        "op": COMPARISON_SIGNS[params["op"]],
        "value": params["value"],
    }


register_condition(
    "prediction",
    compile_prediction,
    label=_("Predicted value (CLV model)"),
    schema={
        "type": "object",
        "properties": {
            "field": {"type": "string", "enum": list(PREDICTION_FIELDS), "title": _("Figure")},
            "op": {"type": "string", "enum": list(PREDICTION_OPS), "title": _("Comparison")},
            "value": {"type": "number", "minimum": 0, "title": _("Value")},
        },
        "required": ["field", "op", "value"],
    },
    check=check_prediction,
    describe=describe_prediction,
)
