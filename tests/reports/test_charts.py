"""Chart builders are pure: plain data in, a plotly figure out, no database."""

from __future__ import annotations

import datetime as dt
import json

import pytest

from reports.charts import monthly_orders_figure

MONTHS = [dt.date(2025, 1, 1), dt.date(2025, 2, 1), dt.date(2025, 3, 1)]


def test_monthly_orders_figure_has_order_bars_and_a_revenue_line_on_its_own_axis():
    figure = monthly_orders_figure(MONTHS, [3, 0, 5], [15000, 0, 27000])

    bars, line = figure.data
    assert bars.type == "bar"
    assert list(bars.x) == ["2025-01", "2025-02", "2025-03"]
    assert list(bars.y) == [3, 0, 5]
    assert line.type == "scatter"
    assert list(line.y) == [15000, 0, 27000]
    assert line.yaxis == "y2"
    assert figure.layout.yaxis2.overlaying == "y"
    assert figure.layout.yaxis2.side == "right"


def test_monthly_orders_figure_serialises_to_json_that_is_safe_inside_a_script_element():
    figure = monthly_orders_figure(MONTHS, [1, 2, 3], [100, 200, 300])

    text = figure.to_json()

    assert "</" not in text
    assert json.loads(text)["data"][0]["name"] == "Orders"


def test_monthly_orders_figure_of_an_empty_year_still_has_both_traces():
    figure = monthly_orders_figure([], [], [])

    assert len(figure.data) == 2


def test_monthly_orders_figure_rejects_series_of_different_lengths():
    with pytest.raises(ValueError, match="same length"):
        monthly_orders_figure(MONTHS, [1, 2], [100, 200, 300])
