"""Journey chart builders skip plotly's validation for speed; plotly's validators still
accept every figure they build, and the JSON is what the validated figure would give."""

from __future__ import annotations

import json

import plotly.graph_objects as go
import pytest

from journeys.charts import emotion_curve_figure, funnel_figure

BUILDERS = {
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
