"""Predictions from orders: the per-customer summary, the refresh with its holdout check,
failures, the ``prediction`` segment condition and the 360 panel.

Expected figures are computed in plain Python from the rows the test creates.
"""

from __future__ import annotations

import datetime as dt
import random
from collections import defaultdict
from decimal import Decimal
from zoneinfo import ZoneInfo

import numpy as np
import pytest
from django.urls import reverse

from customers.models import Customer
from customers.segments import SegmentRuleError, describe_rules, segment_queryset, validate_rules
from experience.models import Order
from reports import clv
from reports.models import ClvFit, CustomerPrediction
from reports.predictions import customer_summary, predictions_refresh
from tests.factories import CustomerFactory, OrderFactory

pytestmark = pytest.mark.django_db

TOKYO = ZoneInfo("Asia/Tokyo")
NOW = dt.datetime(2026, 6, 1, 15, 0, tzinfo=TOKYO)


def at(day: dt.date, hour: int = 10, minute: int = 0) -> dt.datetime:
    return dt.datetime(day.year, day.month, day.day, hour, minute, tzinfo=TOKYO)


def expected_summary(orders, *, end: dt.datetime) -> dict[int, tuple[int, int, int, float]]:
    """(frequency, recency, age, monetary) per customer from (customer, when, total, status),
    by hand: local days, completed orders before ``end``."""
    days: dict[int, dict[dt.date, float]] = defaultdict(lambda: defaultdict(float))
    for customer_id, when, total, status in orders:
        if status == Order.Status.COMPLETED and when < end:
            days[customer_id][when.astimezone(TOKYO).date()] += float(total)
    last_day = (end - dt.timedelta(microseconds=1)).astimezone(TOKYO).date()
    result = {}
    for customer_id, by_day in days.items():
        ordered = sorted(by_day)
        frequency = len(ordered) - 1
        repeat = sum(by_day[day] for day in ordered[1:])
        result[customer_id] = (
            frequency,
            (ordered[-1] - ordered[0]).days,
            (last_day - ordered[0]).days,
            repeat / frequency if frequency else 0.0,
        )
    return result


def make_population(count: int = 160, seed: int = 7):
    """Customers buying at random over the 400 days before NOW (bulk-created, fast)."""
    rng = random.Random(seed)
    customers = Customer.objects.bulk_create(Customer(given_name=f"c{i}") for i in range(count))
    orders, plain = [], []
    for customer in customers:
        first = NOW.date() - dt.timedelta(days=rng.randint(1, 400))
        rate = rng.choice((0.0, 0.005, 0.02, 0.05))
        lifetime = rng.randint(10, 400)
        days = [first] + [
            first + dt.timedelta(days=offset)
            for offset in range(1, lifetime)
            if first + dt.timedelta(days=offset) < NOW.date() and rng.random() < rate
        ]
        for day in days:
            when = at(day, rng.randint(9, 20))
            total = rng.choice((1500, 3000, 4800, 9000))
            status = Order.Status.CANCELLED if rng.random() < 0.05 else Order.Status.COMPLETED
            orders.append(
                Order(
                    customer=customer,
                    number=f"P-{len(orders)}",
                    ordered_at=when,
                    total=total,
                    status=status,
                )
            )
            plain.append((customer.pk, when, total, status))
    Order.objects.bulk_create(orders)
    return customers, plain


def test_summary_counts_local_purchase_days_of_completed_orders():
    end = at(dt.date(2026, 5, 31), 0)  # midnight: the last observed day is 30 May
    a, b, c, merged = CustomerFactory(), CustomerFactory(), CustomerFactory(), CustomerFactory()
    merged.merged_into = a
    merged.save()
    rows = [
        # a: two orders on one Tokyo day (23:50 and 00:10 UTC differ), then two more days.
        (a, at(dt.date(2026, 5, 1), 0, 10), 1000, Order.Status.COMPLETED),
        (a, at(dt.date(2026, 5, 1), 23, 50), 2000, Order.Status.COMPLETED),
        (a, at(dt.date(2026, 5, 2), 0, 10), 4000, Order.Status.COMPLETED),
        (a, at(dt.date(2026, 5, 20)), 6000, Order.Status.COMPLETED),
        (a, at(dt.date(2026, 5, 21)), 9999, Order.Status.CANCELLED),
        (a, at(dt.date(2026, 5, 31), 9), 9999, Order.Status.COMPLETED),  # after the end
        # b: one purchase day only.
        (b, at(dt.date(2026, 4, 10)), 3000, Order.Status.COMPLETED),
        # c: only a returned order: not a buyer.
        (c, at(dt.date(2026, 4, 10)), 3000, Order.Status.RETURNED),
        # a merged profile is left out whatever it bought.
        (merged, at(dt.date(2026, 4, 1)), 3000, Order.Status.COMPLETED),
    ]
    for customer, when, total, status in rows:
        OrderFactory(customer=customer, ordered_at=when, total=total, status=status)

    summary = customer_summary(end=end)

    expected = expected_summary([(c.pk, w, t, s) for c, w, t, s in rows if c != merged], end=end)
    got = {
        int(pk): (int(f), int(r), int(age), float(m))
        for pk, f, r, age, m in zip(
            summary.customer_ids,
            summary.frequency,
            summary.recency,
            summary.age,
            summary.monetary,
            strict=True,
        )
    }
    assert got == expected
    assert got[a.pk] == (2, 19, 29, 5000.0)  # days 1, 2 and 20 May; (4000 + 6000) / 2
    assert got[b.pk] == (0, 0, 50, 0.0)


def test_refresh_stores_each_buyers_prediction_from_the_fitted_models():
    _customers, plain = make_population()
    fit = predictions_refresh(now=NOW, horizon_days=180, holdout_days=60)

    assert fit.error == ""
    expected = expected_summary(plain, end=NOW)
    assert fit.customers == len(expected)
    rows = {p.customer_id: p for p in CustomerPrediction.objects.all()}
    assert set(rows) == set(expected)
    assert all(row.fit_id == fit.pk for row in rows.values())
    bg = clv.BgNbdParams(*(fit.params[k] for k in ("r", "alpha", "a", "b")))
    gg = clv.GammaGammaParams(*(fit.params[k] for k in ("p", "q", "gamma")))
    for customer_id, (x, t_x, age, m) in expected.items():
        row = rows[customer_id]
        assert (row.frequency, row.recency_days, row.age_days) == (x, t_x, age)
        assert row.monetary == Decimal(round(m))
        assert row.p_alive == pytest.approx(clv.bgnbd_p_alive(bg, [x], [t_x], [age])[0])
        purchases = clv.bgnbd_expected_purchases(bg, 180, [x], [t_x], [age])[0]
        value = clv.gamma_gamma_expected_value(gg, [x], [m])[0]
        assert row.expected_purchases == pytest.approx(purchases)
        assert row.expected_value == Decimal(round(value))
        assert abs(row.clv - Decimal(purchases * value)) <= 1
        if x == 0:
            assert row.p_alive == 1.0


def test_holdout_check_compares_with_the_purchase_days_after_the_cut():
    _customers, plain = make_population()
    fit = predictions_refresh(now=NOW, horizon_days=365, holdout_days=60)

    cut = at(NOW.date() - dt.timedelta(days=60), 0)
    assert fit.calibration_end == cut
    calibration = expected_summary(plain, end=cut)
    holdout_days: dict[int, set] = defaultdict(set)
    for customer_id, when, _total, status in plain:
        if status == Order.Status.COMPLETED and cut <= when < NOW and customer_id in calibration:
            holdout_days[customer_id].add(when.date())
    actual = {pk: len(holdout_days[pk]) for pk in calibration}

    check = fit.holdout_check
    assert check["customers"] == len(calibration)
    assert check["actual_total"] == sum(actual.values())
    # The calibration fit, re-done here from the hand-made summary, predicts the same.
    x, t_x, age = (np.array([calibration[pk][i] for pk in calibration]) for i in range(3))
    refit = clv.bgnbd_fit(x, t_x, age)
    span = (NOW - cut).total_seconds() / 86400
    predicted = clv.bgnbd_expected_purchases(refit.params, span, x, t_x, age)
    assert check["predicted_total"] == pytest.approx(predicted.sum(), rel=1e-3)
    errors = np.abs(predicted - np.array([actual[pk] for pk in calibration]))
    assert check["mae"] == pytest.approx(errors.mean(), rel=1e-3)
    buckets = {bucket["frequency"]: bucket for bucket in check["buckets"]}
    assert sum(bucket["customers"] for bucket in buckets.values()) == len(calibration)
    zeros = [pk for pk in calibration if calibration[pk][0] == 0]
    assert buckets["0"]["customers"] == len(zeros)
    assert buckets["0"]["actual"] == pytest.approx(sum(actual[pk] for pk in zeros) / len(zeros))


def test_refresh_replaces_the_previous_predictions():
    make_population()
    first = predictions_refresh(now=NOW - dt.timedelta(days=7))
    count = CustomerPrediction.objects.count()
    second = predictions_refresh(now=NOW)

    assert CustomerPrediction.objects.count() >= count
    assert set(CustomerPrediction.objects.values_list("fit", flat=True)) == {second.pk}
    assert ClvFit.objects.filter(pk=first.pk).exists()  # the history of fits stays


def test_a_failed_fit_is_recorded_and_keeps_the_previous_predictions():
    make_population()
    good = predictions_refresh(now=NOW)
    before = list(CustomerPrediction.objects.order_by("pk").values_list("pk", "fit", "clv"))
    # Every order cancelled: nobody left to fit.
    Order.objects.update(status=Order.Status.CANCELLED)

    failed = predictions_refresh(now=NOW + dt.timedelta(days=7))

    assert failed.pk is not None
    assert "too few customers" in failed.error
    assert failed.params == {}
    assert list(CustomerPrediction.objects.order_by("pk").values_list("pk", "fit", "clv")) == (
        before
    )
    assert all(fit == good.pk for _pk, fit, _clv in before)


def test_too_few_repeat_buyers_is_a_clear_error():
    for _ in range(30):
        OrderFactory(ordered_at=NOW - dt.timedelta(days=40))
    fit = predictions_refresh(now=NOW)
    assert "too few repeat buyers" in fit.error
    assert "too few" in fit.holdout_check["error"]
    assert not CustomerPrediction.objects.exists()


# --- The segment condition -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("field", "op"),
    [
        ("p_alive", "lt"),
        ("p_alive", "gte"),
        ("expected_purchases", "gte"),
        ("clv", "gt"),
        ("expected_value", "lte"),
    ],
)
def test_prediction_condition_counts_what_python_finds_in_the_predictions(field, op):
    make_population()
    predictions_refresh(now=NOW)
    CustomerFactory()  # no orders: no prediction, never matches
    figures = sorted(float(v) for v in CustomerPrediction.objects.values_list(field, flat=True))
    value = round(figures[len(figures) // 2], 2)  # the median splits the customers
    compare = {
        "lt": lambda a, b: a < b,
        "lte": lambda a, b: a <= b,
        "gt": lambda a, b: a > b,
        "gte": lambda a, b: a >= b,
    }[op]
    expected = {
        pk
        for pk, figure in CustomerPrediction.objects.values_list("customer_id", field)
        if compare(float(figure), value)
    }
    rules = {"type": "prediction", "field": field, "op": op, "value": value}

    assert set(segment_queryset(rules).values_list("pk", flat=True)) == expected
    assert 0 < len(expected) < Customer.objects.count()
    negated = set(segment_queryset({"op": "not", "child": rules}).values_list("pk", flat=True))
    assert negated == set(Customer.objects.values_list("pk", flat=True)) - expected


def test_prediction_condition_validates_and_describes_itself():
    with pytest.raises(SegmentRuleError) as error:
        validate_rules({"type": "prediction", "field": "p_alive", "op": "lt", "value": 3})
    assert error.value.path == "rules.value"
    with pytest.raises(SegmentRuleError) as error:
        validate_rules({"type": "prediction", "field": "age", "op": "lt", "value": 3})
    assert error.value.path == "rules.field"
    rules = {"type": "prediction", "field": "p_alive", "op": "lt", "value": 0.3}
    assert describe_rules(validate_rules(rules)) == "predicted P(alive) < 0.3"


# --- The 360 panel ---------------------------------------------------------------------------


def test_customer_page_shows_the_prediction(client, crm_viewer):
    make_population(count=60)
    fit = predictions_refresh(now=NOW)
    prediction = CustomerPrediction.objects.filter(frequency__gt=0).order_by("pk").first()
    client.force_login(crm_viewer)

    html = client.get(reverse("customers:detail", args=[prediction.customer_id])).content.decode()

    assert 'data-testid="prediction-panel"' in html
    assert f"{round(prediction.p_alive * 100)}%" in html
    assert f"¥{int(prediction.clv):,}" in html
    assert f"{prediction.expected_purchases:.1f}" in html
    assert fit.fitted_at.astimezone(TOKYO).strftime("%Y-%m-%d %H:%M") in html
    assert "Expected purchases in the next 365 days" in html


def test_customer_page_says_when_there_is_no_prediction(client, crm_viewer):
    customer = CustomerFactory()
    client.force_login(crm_viewer)
    html = client.get(reverse("customers:detail", args=[customer.pk])).content.decode()
    assert 'data-testid="prediction-panel"' in html
    assert "Not predicted yet" in html
