"""The predicted-value (CLV) report: the fitted models and what they mean, how well they
predicted a held-out stretch of purchases, how P(alive) and predicted value are spread, and
predicted value by segment. No customer is named (the 360 page shows a person's figures).
"""

from __future__ import annotations

from django.utils import timezone
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from reports.catalog import Block, Column, Metric, ReportSpec, Table, register_report
from reports.charts import clv as clv_charts
from reports.models import ClvFit
from reports.selectors import clv as clv_selectors

PARAMETER_MEANINGS = (
    ("r", "r", _("Shape of how purchase rates vary between customers (Gamma).")),
    ("alpha", "α", _("Scale of purchase rates, in days (Gamma); mean rate = r / α per day.")),
    ("a", "a", _("Drop-out after a purchase (Beta, first parameter).")),
    ("b", "b", _("Drop-out after a purchase (Beta, second); mean chance = a / (a + b).")),
    ("p", "p", _("Shape of each customer's order values (Gamma).")),
    ("q", "q", _("Shape of how customers' average spend varies (Gamma).")),
    ("gamma", "γ", _("Scale of average spend; population mean order value = p·γ / (q − 1).")),
)
HOLDOUT_NOTE = _(
    "The segment filter does not apply here: the check covers every customer of the "
    "calibration period."
)


def _fit_note(state: clv_selectors.FitState) -> str:
    notes = []
    if state.failed is not None:
        notes.append(
            gettext("The refit of %(date)s failed: %(error)s")
            % {
                "date": timezone.localtime(state.failed.fitted_at).strftime("%Y-%m-%d %H:%M"),
                "error": state.failed.error,
            }
        )
    if state.current is None:
        notes.append(
            gettext(
                "No model has been fitted yet. Predictions appear after the weekly refit, "
                "once there are enough repeat buyers."
            )
        )
    return " ".join(notes)


def _model_block(state: clv_selectors.FitState, totals: clv_selectors.Totals) -> Block:
    fit = state.current
    rows = []
    help_text = ""
    if fit is not None:
        params = fit.params
        rows = [
            {"parameter": symbol, "value": params.get(key), "meaning": str(meaning)}
            for key, symbol, meaning in PARAMETER_MEANINGS
        ]
        r, alpha, a, b = (params.get(k) for k in ("r", "alpha", "a", "b"))
        p, q, gamma = (params.get(k) for k in ("p", "q", "gamma"))
        derived = [
            (gettext("Mean purchases per year while active"), 365 * r / alpha),
            (gettext("Mean chance to drop out after a purchase"), a / (a + b)),
            (gettext("Population mean order value (¥)"), p * gamma / (q - 1) if q > 1 else None),
        ]
        rows += [{"parameter": label, "value": value, "meaning": ""} for label, value in derived]
        help_text = gettext(
            "BG/NBD (purchases and P(alive)) and Gamma-Gamma (order value), fitted on %(date)s "
            "on every completed order up to then, counting one purchase per customer and day. "
            "Predictions cover the next %(days)s days; predicted value = expected purchases × "
            "expected order value, not discounted."
        ) % {
            "date": timezone.localtime(fit.fitted_at).strftime("%Y-%m-%d %H:%M"),
            "days": fit.horizon_days,
        }
    return Block(
        key="model",
        title=_("Fitted model"),
        help=help_text,
        note=_fit_note(state),
        metrics=[
            Metric("customers", _("Customers predicted"), totals.customers),
            Metric("repeat_buyers", _("Repeat buyers"), totals.repeat_buyers),
            Metric("mean_p_alive", _("Mean P(alive)"), totals.mean_p_alive, unit="ratio"),
            Metric(
                "likely_lapsed",
                _("Likely lapsed (P(alive) < 0.3)"),
                totals.likely_lapsed,
            ),
            Metric(
                "expected_purchases",
                _("Expected purchases in the horizon"),
                round(totals.expected_purchases, 1),
                unit="float",
            ),
            Metric("clv", _("Predicted value in the horizon"), totals.clv, unit="yen"),
        ],
        table=Table(
            [
                Column("parameter", _("Parameter"), "text"),
                Column("value", _("Value"), "float"),
                Column("meaning", _("Meaning"), "text"),
            ],
            rows,
        ),
    )


def _holdout_block(fit: ClvFit | None, *, segment_set: bool) -> Block:
    check = fit.holdout_check if fit is not None else {}
    buckets = check.get("buckets") or []
    note = ""
    if check.get("error"):
        note = gettext("The holdout check could not be fitted: %(error)s") % {
            "error": check["error"]
        }
    elif segment_set:
        note = HOLDOUT_NOTE
    predicted, actual = check.get("predicted_total"), check.get("actual_total")
    error_pct = (predicted - actual) / actual * 100 if predicted is not None and actual else None
    help_text = ""
    if buckets:
        help_text = gettext(
            "The model refitted on the orders before %(date)s predicted each of those "
            "customers' purchase days in the following %(days)s days; compared here with what "
            "they actually bought, grouped by their repeat purchases before the cut."
        ) % {"date": check["calibration_end"][:10], "days": fit.holdout_days}
    return Block(
        key="holdout",
        title=_("Holdout check: predicted vs actual purchases"),
        help=help_text,
        note=note,
        metrics=[
            Metric("customers", _("Customers checked"), check.get("customers")),
            Metric(
                "predicted_total",
                _("Predicted purchases"),
                round(predicted, 1) if predicted is not None else None,
                unit="float",
            ),
            Metric("actual_total", _("Actual purchases"), actual),
            Metric(
                "error_pct",
                _("Total error"),
                round(error_pct, 1) if error_pct is not None else None,
                unit="percent",
            ),
            Metric(
                "mae",
                _("Mean absolute error per customer"),
                check.get("mae"),
                unit="float",
            ),
        ],
        figure=clv_charts.holdout_figure(
            [b["frequency"] for b in buckets],
            [b["predicted"] for b in buckets],
            [b["actual"] for b in buckets],
        )
        if buckets
        else None,
        table=Table(
            [
                Column("frequency", _("Repeat purchases before the cut"), "text"),
                Column("customers", _("Customers"), "int"),
                Column("predicted", _("Predicted per customer"), "float"),
                Column("actual", _("Actual per customer"), "float"),
            ],
            [dict(bucket) for bucket in buckets],
        ),
    )


def _histogram_block(key: str, title, help_text, bins, *, x_title: str, with_value: bool):
    columns = [
        Column("bin", x_title, "text"),
        Column("repeat", _("Repeat buyers"), "int"),
        Column("one_time", _("One purchase so far"), "int"),
        Column("customers", _("Customers"), "int"),
    ]
    if with_value:
        columns.append(Column("clv", _("Predicted value"), "yen"))
    rows = [
        {
            "bin": b.label,
            "repeat": b.repeat,
            "one_time": b.one_time,
            "customers": b.customers,
            "clv": b.clv,
        }
        for b in bins
    ]
    has_data = any(b.customers for b in bins)
    return Block(
        key=key,
        title=title,
        help=help_text,
        figure=clv_charts.histogram_figure(
            [b.label for b in bins],
            [b.one_time for b in bins],
            [b.repeat for b in bins],
            x_title=x_title,
        )
        if has_data
        else None,
        table=Table(columns, [{c.key: row[c.key] for c in columns} for row in rows]),
    )


def _segments_block(rows: list[clv_selectors.SegmentValue]) -> Block:
    return Block(
        key="segments",
        title=_("Predicted value by segment"),
        help=_(
            "Segments you can see, by total predicted value of their current members; "
            "members without a prediction (no completed order yet) count as members only."
        ),
        figure=clv_charts.segment_value_figure(
            [row.name for row in rows], [float(row.clv) for row in rows]
        )
        if rows
        else None,
        table=Table(
            [
                Column("segment", _("Segment"), "text"),
                Column("members", _("Members"), "int"),
                Column("predicted", _("Predicted"), "int"),
                Column("mean_p_alive", _("Mean P(alive)"), "ratio"),
                Column("expected_purchases", _("Expected purchases"), "float"),
                Column("clv", _("Predicted value"), "yen"),
                Column("mean_clv", _("Per predicted customer"), "yen"),
            ],
            [
                {
                    "segment": row.name,
                    "members": row.members,
                    "predicted": row.predicted,
                    "mean_p_alive": row.mean_p_alive,
                    "expected_purchases": round(row.expected_purchases, 1),
                    "clv": row.clv,
                    "mean_clv": row.mean_clv,
                }
                for row in rows
            ],
        ),
    )


def build(user, filters) -> list[Block]:
    segment_id = filters.segment_id
    state = clv_selectors.fit_state()
    totals, p_alive_bins, value_bins = clv_selectors.prediction_figures(segment_id=segment_id)
    return [
        _model_block(state, totals),
        _holdout_block(state.current, segment_set=segment_id is not None),
        _histogram_block(
            "p-alive",
            _("How likely customers are still active"),
            _(
                "Customers by P(alive), the model's probability that they still buy. Customers "
                "with a single purchase day count as active (P(alive) = 1) until they buy again "
                "and then pause: the model learns drop-out only from repeat buyers."
            ),
            p_alive_bins,
            x_title=gettext("P(alive)"),
            with_value=False,
        ),
        _histogram_block(
            "value",
            _("Predicted value"),
            _("Customers by predicted value over the horizon, in yen bands."),
            value_bins,
            x_title=gettext("Predicted value"),
            with_value=True,
        ),
        _segments_block(
            clv_selectors.value_by_segment(
                user=user, department=filters.department, segment_id=segment_id
            )
        ),
    ]


register_report(
    ReportSpec(
        slug="clv",
        title=_("Predicted value (CLV)"),
        summary=_(
            "What customers are likely to buy next: P(alive), expected purchases and predicted "
            "value from the latest model fit, and how well the model predicted held-out "
            "purchases. Figures are as of the fit; the period does not apply."
        ),
        build=build,
        filters=("department", "segment", "persona"),
        order=70,
        default_days=30,
    )
)
