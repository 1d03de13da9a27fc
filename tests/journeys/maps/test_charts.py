"""Chart builders of circle ③ are pure: plain data in, a figure out, no database."""

from __future__ import annotations

import json

import pytest

from journeys.charts import emotion_curve_figure, funnel_figure


def test_emotion_curve_plots_one_point_per_stage_on_the_emotion_scale():
    figure = emotion_curve_figure(["Awareness", "Purchase", "Use"], [1, -2, 2])

    (line,) = figure.data
    assert line.type == "scatter"
    assert list(line.x) == ["Awareness", "Purchase", "Use"]
    assert list(line.y) == [1, -2, 2]
    assert figure.layout.xaxis.type == "category"
    assert list(figure.layout.yaxis.tickvals) == [-2, -1, 0, 1, 2]
    low, high = figure.layout.yaxis.range
    assert low < -2
    assert high > 2
    assert figure.layout.yaxis.zeroline is True


def test_emotion_curve_adds_reach_as_bars_on_a_second_axis():
    figure = emotion_curve_figure(["A", "B"], [0, 1], reach=[120, None])

    bars = next(trace for trace in figure.data if trace.type == "bar")
    assert list(bars.y) == [120, 0]
    assert bars.yaxis == "y2"
    assert figure.layout.yaxis2.overlaying == "y"
    assert figure.layout.showlegend is True


def test_emotion_curve_keeps_stages_with_the_same_name_apart():
    figure = emotion_curve_figure(["Visit", "Visit"], [1, -1])

    assert list(figure.data[0].x) == ["Visit", "Visit (2)"]


def test_emotion_curve_of_an_empty_journey_is_an_empty_line():
    figure = emotion_curve_figure([], [])

    assert list(figure.data[0].x) == []


@pytest.mark.parametrize(
    ("names", "emotions", "reach", "message"),
    [
        (["A"], [1, 2], None, "same length"),
        (["A"], [3], None, "outside"),
        (["A", "B"], [0, 0], [1], "one value per stage"),
    ],
)
def test_emotion_curve_refuses_inconsistent_data(names, emotions, reach, message):
    with pytest.raises(ValueError, match=message):
        emotion_curve_figure(names, emotions, reach=reach)


def test_emotion_curve_axis_titles_name_what_they_show():
    figure = emotion_curve_figure(["A"], [0], reach=[3])

    assert figure.layout.yaxis.title.text == "Emotion"
    assert figure.layout.yaxis2.title.text == "Reach (people)"


def test_emotion_curve_serialises_to_json_for_plotly_js():
    payload = json.loads(emotion_curve_figure(["<b>x</b>"], [1]).to_json())

    assert payload["data"][0]["x"] == ["<b>x</b>"]


def test_funnel_shows_each_stage_as_a_share_of_the_first():
    figure = funnel_figure([("Sent", 200), ("Opened", 50), ("Converted", 0)])

    (bars,) = figure.data
    assert bars.orientation == "h"
    assert list(bars.y) == ["Sent", "Opened", "Converted"]
    assert list(bars.text) == ["200 (100.0%)", "50 (25.0%)", "0 (0.0%)"]
    assert figure.layout.yaxis.autorange == "reversed"


def test_funnel_without_sends_shows_plain_counts():
    figure = funnel_figure([("Sent", 0), ("Opened", 0)])

    assert list(figure.data[0].text) == ["0", "0"]
