"""The CLV models against the published CDNOW figures, and their basic properties.

The data sets ship in the ``Lifetimes`` wheel (a dev dependency used for its files only:
the package itself is never imported). Published figures: BG/NBD r=0.243, α=4.414,
a=0.793, b=2.426 (Fader, Hardie & Lee 2005, on the 2,357-customer summary in weeks);
Gamma-Gamma p=6.25, q=3.74, γ=15.44 (Fader & Hardie 2013, on the 946 repeat buyers' mean
spend ``zbar``).
"""

from __future__ import annotations

import csv
import datetime as dt
from decimal import Decimal
from importlib.metadata import PackageNotFoundError, distribution
from pathlib import Path

import numpy as np
import pytest
from django.utils import timezone

from reports import clv

try:
    DATASETS = Path(str(distribution("Lifetimes").locate_file("lifetimes/datasets")))
except PackageNotFoundError:  # pragma: no cover - the dev extras install it
    DATASETS = None

needs_cdnow = pytest.mark.skipif(DATASETS is None, reason="the Lifetimes wheel is not installed")
CALIBRATION_LAST_DAY = dt.date(1997, 9, 30)


def _rows(name: str) -> list[dict[str, str]]:
    with open(DATASETS / name, newline="") as handle:
        return list(csv.DictReader(handle))


@pytest.fixture(scope="module")
def cdnow_summary():
    rows = _rows("cdnow_customers_summary.csv")
    return {
        key: np.array([float(row[key]) for row in rows])
        for key in ("ID", "frequency", "recency", "T")
    }


@pytest.fixture(scope="module")
def cdnow_bgnbd(cdnow_summary):
    s = cdnow_summary
    return clv.bgnbd_fit(s["frequency"], s["recency"], s["T"])


def _two_figures(value: float) -> str:
    return f"{value:.2g}"


@needs_cdnow
def test_bgnbd_reproduces_the_published_cdnow_parameters(cdnow_bgnbd):
    params = cdnow_bgnbd.params
    assert cdnow_bgnbd.customers == 2357
    assert cdnow_bgnbd.repeat_buyers == 946
    published = {"r": 0.243, "alpha": 4.414, "a": 0.793, "b": 2.426}
    for name, value in published.items():
        assert _two_figures(getattr(params, name)) == _two_figures(value), name
        assert getattr(params, name) == pytest.approx(value, rel=2e-3), name
    # The paper's maximised log-likelihood.
    assert cdnow_bgnbd.log_likelihood == pytest.approx(-9582.4, abs=0.1)


@needs_cdnow
def test_gamma_gamma_reproduces_the_published_cdnow_parameters():
    rows = _rows("cdnow_customers_summary_with_transactions.csv")
    x = np.array([float(row["x"]) for row in rows])
    zbar = np.array([float(row["zbar"]) for row in rows])
    # The paper fits repeat buyers only; the fit drops x == 0 rows itself.
    fit = clv.gamma_gamma_fit(x, zbar)
    assert fit.customers == int((x > 0).sum()) == 946
    published = {"p": 6.25, "q": 3.74, "gamma": 15.44}
    for name, value in published.items():
        assert _two_figures(getattr(fit.params, name)) == _two_figures(value), name
        assert getattr(fit.params, name) == pytest.approx(value, rel=2e-3), name
    # Population mean spend p·γ/(q−1) ≈ $35.2 per transaction.
    assert fit.params.population_mean == pytest.approx(35.2, abs=0.1)


@needs_cdnow
def test_p_alive_is_one_without_repeat_purchases(cdnow_bgnbd, cdnow_summary):
    s = cdnow_summary
    p_alive = clv.bgnbd_p_alive(cdnow_bgnbd.params, s["frequency"], s["recency"], s["T"])
    one_time = s["frequency"] == 0
    assert one_time.sum() == 2357 - 946
    assert np.all(p_alive[one_time] == 1.0)
    assert np.all((p_alive[~one_time] > 0) & (p_alive[~one_time] <= 1))
    # A customer who bought often but long ago is probably gone.
    assert clv.bgnbd_p_alive(cdnow_bgnbd.params, [10], [5.0], [38.0])[0] < 0.01


@needs_cdnow
def test_expected_purchases_grow_with_the_horizon(cdnow_bgnbd, cdnow_summary):
    s = cdnow_summary
    previous = np.zeros_like(s["frequency"])
    for horizon in (1, 4, 13, 39, 52, 104):
        current = clv.bgnbd_expected_purchases(
            cdnow_bgnbd.params, horizon, s["frequency"], s["recency"], s["T"]
        )
        assert np.all(np.isfinite(current))
        assert np.all(current > previous)
        previous = current


def test_expected_purchases_equal_a_direct_sum_of_the_series():
    """Eq. 10 against its definition with the hypergeometric series summed by hand."""
    params = clv.BgNbdParams(r=0.5, alpha=6.0, a=1.5, b=3.0)
    x, t_x, T, t = 3.0, 20.0, 30.0, 10.0
    r, alpha, a, b = params.r, params.alpha, params.a, params.b
    z = t / (alpha + T + t)
    term, series = 1.0, 1.0
    for n in range(400):
        term *= (r + x + n) * (b + x + n) / ((a + b + x - 1 + n) * (n + 1)) * z
        series += term
    numerator = (
        (a + b + x - 1) / (a - 1) * (1 - ((alpha + T) / (alpha + T + t)) ** (r + x) * series)
    )
    denominator = 1 + a / (b + x - 1) * ((alpha + T) / (alpha + t_x)) ** (r + x)
    assert clv.bgnbd_expected_purchases(params, t, [x], [t_x], [T])[0] == pytest.approx(
        numerator / denominator, rel=1e-9
    )


def test_gamma_gamma_expected_value_shrinks_towards_the_population_mean():
    params = clv.GammaGammaParams(p=6.0, q=4.0, gamma=15.0)
    values = clv.gamma_gamma_expected_value(params, [0, 1, 10, 1000], [0, 100, 100, 100])
    assert values[0] == pytest.approx(params.population_mean)  # 30
    assert params.population_mean < values[1] < values[2] < values[3] < 100


def test_clv_is_purchases_times_value_and_discounting_lowers_it():
    bg = clv.BgNbdParams(r=0.25, alpha=4.4, a=0.8, b=2.4)
    gg = clv.GammaGammaParams(p=6.25, q=3.74, gamma=15.44)
    summary = {"x": [0, 2, 5], "t_x": [0, 30, 37], "T": [38, 38, 38], "m": [0, 20, 50]}
    plain = clv.clv(bg, gg, horizon=52, **summary)
    expected = clv.bgnbd_expected_purchases(
        bg, 52, summary["x"], summary["t_x"], summary["T"]
    ) * clv.gamma_gamma_expected_value(gg, summary["x"], summary["m"])
    assert plain == pytest.approx(expected)
    discounted = clv.clv(bg, gg, horizon=52, discount_rate=0.1, periods_per_year=52, **summary)
    assert np.all(discounted < plain)
    assert np.all(discounted > plain / 1.1)  # no step is discounted by more than a year


def test_fits_refuse_data_they_cannot_identify():
    with pytest.raises(clv.ClvFitError, match="too few customers"):
        clv.bgnbd_fit([1, 0], [3, 0], [5, 5])
    with pytest.raises(clv.ClvFitError, match="too few repeat buyers"):
        clv.bgnbd_fit([0] * 50 + [1] * 3, [0] * 50 + [2] * 3, [10] * 53)
    with pytest.raises(clv.ClvFitError, match="too few repeat buyers"):
        clv.gamma_gamma_fit([0] * 50 + [2] * 5, [0] * 50 + [10] * 5)
    with pytest.raises(ValueError, match="recency"):
        clv.bgnbd_fit([1], [9], [5])


# --- The raw CDNOW transactions through the app's summary -------------------------------------


@needs_cdnow
@pytest.mark.django_db
def test_cdnow_transactions_as_orders_reproduce_the_published_summary(cdnow_summary):
    """Load CDNOW_sample.txt as customers and completed orders (amounts in cents as yen),
    summarise them with the calibration ending on 1997-09-30, compare with the summary
    files: frequency exactly, recency and T (weeks, two decimals), mean repeat spend."""
    from customers.models import Customer
    from experience.models import Order
    from reports.predictions import customer_summary

    tz = timezone.get_current_timezone()
    raw = [line.split() for line in (DATASETS / "CDNOW_sample.txt").read_text().splitlines()]
    ids = sorted({int(row[1]) for row in raw})  # the second column is the summary's ID
    customers = Customer.objects.bulk_create(Customer() for _ in ids)
    by_id = {cdnow_id: customer.pk for cdnow_id, customer in zip(ids, customers, strict=True)}
    Order.objects.bulk_create(
        Order(
            customer_id=by_id[int(row[1])],
            number=f"CDNOW-{index}",
            ordered_at=dt.datetime.strptime(row[2], "%Y%m%d").replace(hour=12, tzinfo=tz),
            total=Decimal(row[4]) * 100,
        )
        for index, row in enumerate(raw)
    )
    end = dt.datetime.combine(CALIBRATION_LAST_DAY + dt.timedelta(days=1), dt.time.min, tzinfo=tz)

    summary = customer_summary(end=end)

    assert len(summary) == 2357
    assert list(cdnow_summary["ID"].astype(int)) == ids
    pk_to_row = {pk: i for i, pk in enumerate(summary.customer_ids)}
    rows = np.array([pk_to_row[by_id[cdnow_id]] for cdnow_id in ids])
    assert np.array_equal(summary.frequency[rows], cdnow_summary["frequency"])
    assert np.allclose(summary.recency[rows] / 7, cdnow_summary["recency"], atol=0.005)
    assert np.allclose(summary.age[rows] / 7, cdnow_summary["T"], atol=0.005)
    spend = _rows("cdnow_customers_summary_with_transactions.csv")
    zbar = np.array([float(row["zbar"]) for row in spend])
    repeat = cdnow_summary["frequency"] > 0
    assert np.allclose(summary.monetary[rows][repeat] / 100, zbar[repeat], atol=0.006)
