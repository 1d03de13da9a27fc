"""Report and journey chart builders skip plotly's validation for speed; plotly's validators still
accept every figure they build, and the JSON is what the validated figure would give."""

from __future__ import annotations

import datetime as dt
import json

import plotly.graph_objects as go
import pytest

from journeys.charts import emotion_curve_figure, funnel_figure
from reports.charts import PURPLES, clv, cx, lift, monthly_orders_figure, nps, overview, rfm, value

DAYS = [dt.date(2025, 1, 1) + dt.timedelta(days=7 * index) for index in range(5)]
BUILDERS = {
    "monthly orders": lambda: monthly_orders_figure(DAYS, [1, 2, 3, 4, 5], [10, 20, 30, 40, 50]),
    "clv holdout": lambda: clv.holdout_figure(["0", "1", "2+"], [0.1, 0.5, 1.2], [0.2, 0.4, 1]),
    "clv histogram": lambda: clv.histogram_figure(["a", "b"], [1, 2], [3, 4], x_title="X"),
    "clv segments": lambda: clv.segment_value_figure(["s1", "s2"], [100.5, 20.0]),
    "cx heatmap": lambda: cx.value_heatmap(
        ["v1", "v2"], ["m1", "m2"], [[1.0, None], [-2.0, 3.0]], [["1", "—"], ["-2", "3"]]
    ),
    "cx trend": lambda: cx.value_trend(DAYS[:2], {"Deal": [1, 2], "Fun": [3, 4]}, {"Deal": [0, 1]}),
    "lift": lambda: lift.lift_figure(
        [lift.LiftPoint("c1", 1.0, -0.5, 2.5), lift.LiftPoint("c2", -1.0, -2, 0)],
        [lift.LiftPoint("c1", 0.5, 0, 1)],
    ),
    "nps trend": lambda: nps.trend_figure(DAYS, [1] * 5, [2] * 5, [3] * 5, [10, None, 0, -5, 9]),
    "nps breakdown": lambda: nps.breakdown_figure(["a", "b"], [10.0, None], [5, 0]),
    "loop": lambda: overview.loop_figure(
        DAYS, {"Events": [1] * 5, "New": [2] * 5}, {"Sent": [3] * 5}, {"Orders": [4] * 5}
    ),
    "circulation": lambda: overview.circulation_figure(["o1", "o2"], ["u1"], [[1, 2]]),
    "rfm": lambda: rfm.rfm_heatmap_figure(
        [[1, 2], [3, 4]], [[1.0, 2.0], [3.0, 4.5]], [1, 2], [1, 2]
    ),
    "dormancy": lambda: rfm.dormancy_figure(DAYS[:2], [10.0, None], [5.0, 1.5]),
    "ltv": lambda: value.ltv_figure({"Web": [(0, 100), (1, 250)], "Store": [(0, 50)]}),
    "f2": lambda: value.f2_figure(["2025-01", "2025-02"], [0.1, None], [0.05, 0.02]),
    "retention": lambda: value.retention_figure(["2025-01", "2025-02"], 2, [[1, 0.2], [1, None]]),
    "funnel": lambda: funnel_figure([("Sent", 100), ("Opened", 40)]),
    "empty funnel": lambda: funnel_figure([("Sent", 0), ("Opened", 0)]),
    "emotion curve": lambda: emotion_curve_figure(["A", "B", "A"], [1, -2, 0]),
    "emotion curve with reach": lambda: emotion_curve_figure(["A", "B"], [1, -2], [10, None]),
}


@pytest.mark.parametrize("name", BUILDERS)
def test_plotly_validators_accept_the_figure_and_give_the_same_json(name):
    figure = BUILDERS[name]()
    fast = json.loads(figure.to_json())

    validated = go.Figure(fast)  # raises on any property plotly does not know

    assert json.loads(validated.to_json()) == fast


def test_named_colour_scales_are_written_out_for_plotly_js():
    """plotly.js knows no "Purples": the builder writes the scale the validator would."""
    figure = rfm.rfm_heatmap_figure([[1]], [[1.0]], [1], [1])

    assert json.loads(figure.to_json())["data"][0]["colorscale"] == PURPLES


def test_the_loop_panels_share_the_bottom_time_axis():
    figure = BUILDERS["loop"]()
    layout = json.loads(figure.to_json())["layout"]

    assert layout["xaxis"]["matches"] == layout["xaxis2"]["matches"] == "x3"
    assert [trace.yaxis for trace in figure.data] == ["y", "y", "y2", "y3"]
    assert [a["text"] for a in layout["annotations"]] == ["Data in", "Action out", "Results"]
