"""Customer predictions: each customer's purchase summary, the CLV fits and their storage.

The summary follows the models' reading of a purchase history (see ``reports.clv``), in
**local days** (``settings.TIME_ZONE``): all completed orders of a customer on one local
day are one purchase. ``frequency`` is the number of purchase days after the first,
``recency_days`` the days from the first to the last purchase day, ``age_days`` the days
from the first purchase day to the last day observed, ``monetary`` the mean value of the
repeat purchase days (0 without repeats). Merged profiles are left out (their orders belong
to the surviving profile).

:func:`predictions_refresh` reads every completed order up to ``now`` in ONE query (one row
per customer and purchase day), fits the models twice — a *calibration* fit on the days
before ``now − holdout_days`` to check the model against what customers then bought, and
the full fit up to ``now`` — and replaces every :class:`~reports.models.CustomerPrediction`.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass
from decimal import Decimal

import numpy as np
from django.db import transaction
from django.db.models import Sum
from django.utils import timezone

from experience.models import Order
from reports import clv
from reports.customer_rollups import clv_summary_store
from reports.models import ClvFit, CustomerPrediction
from reports.rollups import day_bounds, local_day

logger = logging.getLogger(__name__)

BATCH_SIZE = 2000
FREQUENCY_BUCKETS = 7
"""Holdout chart buckets: calibration frequency 0 … 6, then "7+"."""


@dataclass(frozen=True)
class PurchaseDays:
    """Completed orders as one row per (customer, local purchase day), sorted by both.

    ``days`` are proleptic ordinals (``date.toordinal()``); ``totals`` the day's value.
    """

    customers: np.ndarray
    days: np.ndarray
    totals: np.ndarray

    def before(self, day: dt.date) -> PurchaseDays:
        keep = self.days < day.toordinal()
        return PurchaseDays(self.customers[keep], self.days[keep], self.totals[keep])


@dataclass(frozen=True)
class Summary:
    """The models' view of each customer who bought before the end (sorted by id)."""

    customer_ids: np.ndarray
    frequency: np.ndarray
    recency: np.ndarray
    age: np.ndarray
    monetary: np.ndarray

    def __len__(self) -> int:
        return len(self.customer_ids)


def purchase_days(*, end: dt.datetime) -> PurchaseDays:
    """Completed orders before ``end`` per customer and local day, in one aggregate query."""
    rows = (
        Order.objects.filter(
            status=Order.Status.COMPLETED,
            ordered_at__lt=end,
            customer__merged_into__isnull=True,
        )
        .annotate(day=local_day("ordered_at"))
        .values("customer_id", "day")
        .annotate(total=Sum("total"))
        .order_by("customer_id", "day")
        .values_list("customer_id", "day", "total")
    )
    customers, days, totals = [], [], []
    for customer_id, day, total in rows.iterator(chunk_size=10_000):
        customers.append(customer_id)
        days.append(day.toordinal())
        totals.append(float(total or 0))
    return PurchaseDays(
        np.asarray(customers, dtype=np.int64),
        np.asarray(days, dtype=np.int64),
        np.asarray(totals, dtype=float),
    )


def summarise(purchases: PurchaseDays, *, last_day: dt.date) -> Summary:
    """Frequency, recency, age (days, observed through ``last_day``) and monetary value."""
    c, d, v = purchases.customers, purchases.days, purchases.totals
    if len(c) == 0:
        empty = np.zeros(0)
        return Summary(np.zeros(0, dtype=np.int64), empty, empty, empty, empty)
    starts = np.flatnonzero(np.r_[True, c[1:] != c[:-1]])
    ends = np.r_[starts[1:], len(c)]
    frequency = (ends - starts - 1).astype(float)
    first, last = d[starts], d[ends - 1]
    repeat_value = np.add.reduceat(v, starts) - v[starts]
    monetary = np.divide(
        repeat_value, frequency, out=np.zeros_like(repeat_value), where=frequency > 0
    )
    return Summary(
        customer_ids=c[starts],
        frequency=frequency,
        recency=(last - first).astype(float),
        age=(last_day.toordinal() - first).astype(float),
        monetary=monetary,
    )


def customer_summary(*, end: dt.datetime) -> Summary:
    """Each customer's summary from completed orders before ``end``."""
    return summarise(purchase_days(end=end), last_day=_last_day(end))


def _last_day(end: dt.datetime) -> dt.date:
    """The last local day observed by orders before ``end``."""
    return timezone.localdate(end - dt.timedelta(microseconds=1))


# --- Fits -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Fitted:
    bgnbd: clv.BgNbdFit
    gamma_gamma: clv.GammaGammaFit


def fit_models(summary: Summary) -> Fitted:
    """BG/NBD on every customer, Gamma-Gamma on repeat buyers; ``ClvFitError`` if neither
    can be fitted."""
    bgnbd = clv.bgnbd_fit(summary.frequency, summary.recency, summary.age)
    gamma_gamma = clv.gamma_gamma_fit(summary.frequency, summary.monetary)
    return Fitted(bgnbd, gamma_gamma)


def holdout_check(
    purchases: PurchaseDays, *, calibration_end: dt.datetime, now: dt.datetime
) -> dict:
    """Fit on the purchase days before ``calibration_end`` (a local midnight), predict each
    of those customers' purchase days up to ``now`` and compare with what they bought.

    Returns plain JSON: totals, mean absolute error per customer, and per calibration
    frequency bucket the customers and mean predicted / actual purchases.
    """
    first_holdout = timezone.localdate(calibration_end)
    calibration = summarise(purchases.before(first_holdout), last_day=_last_day(calibration_end))
    bgnbd = clv.bgnbd_fit(calibration.frequency, calibration.recency, calibration.age)
    span = (now - calibration_end).total_seconds() / 86400
    predicted = clv.bgnbd_expected_purchases(
        bgnbd.params, span, calibration.frequency, calibration.recency, calibration.age
    )
    in_holdout = purchases.days >= first_holdout.toordinal()
    holdout_customers = purchases.customers[in_holdout]
    ids, counts = np.unique(holdout_customers, return_counts=True)
    actual = np.zeros(len(calibration))
    position = np.searchsorted(calibration.customer_ids, ids)
    found = (position < len(calibration)) & (
        calibration.customer_ids[np.minimum(position, len(calibration) - 1)] == ids
    )
    actual[position[found]] = counts[found]  # new customers of the holdout are not predicted

    buckets = []
    bucket_of = np.minimum(calibration.frequency, FREQUENCY_BUCKETS).astype(int)
    for bucket in range(FREQUENCY_BUCKETS + 1):
        members = bucket_of == bucket
        n = int(members.sum())
        label = str(bucket) if bucket < FREQUENCY_BUCKETS else f"{FREQUENCY_BUCKETS}+"
        buckets.append(
            {
                "frequency": label,
                "customers": n,
                "predicted": float(predicted[members].mean()) if n else 0.0,
                "actual": float(actual[members].mean()) if n else 0.0,
            }
        )
    return {
        "calibration_end": calibration_end.isoformat(),
        "days": round(span, 3),
        "customers": len(calibration),
        "params": _floats(bgnbd.params.as_dict()),
        "log_likelihood": float(bgnbd.log_likelihood),
        "predicted_total": float(predicted.sum()),
        "actual_total": float(actual.sum()),
        "mae": float(np.abs(predicted - actual).mean()),
        "buckets": buckets,
    }


def predictions_refresh(
    *, now: dt.datetime | None = None, horizon_days: int = 365, holdout_days: int = 90
) -> ClvFit:
    """Refit the CLV models and replace every customer's prediction.

    The calibration fit ends at the local midnight ``holdout_days`` before ``now``; its
    check is stored in ``ClvFit.holdout_check`` (``{"error": …}`` when that shorter history
    cannot be fitted, which does not stop the full fit). When the full fit fails, the
    returned ``ClvFit`` carries ``error`` and the previous predictions stay in place.
    The fitting runs outside the transaction, so a slow fit never holds the write lock.
    """
    now = now or timezone.now()
    calibration_day = timezone.localdate(now - dt.timedelta(days=holdout_days))
    calibration_end = day_bounds(calibration_day, calibration_day)[0]
    purchases = purchase_days(end=now)
    summary = summarise(purchases, last_day=_last_day(now))
    fit = ClvFit(
        fitted_at=now,
        calibration_end=calibration_end,
        holdout_days=holdout_days,
        horizon_days=horizon_days,
    )
    try:
        check = holdout_check(purchases, calibration_end=calibration_end, now=now)
    except clv.ClvFitError as exc:
        check = {"error": str(exc), "calibration_end": calibration_end.isoformat()}
    fit.holdout_check = check
    try:
        fitted = fit_models(summary)
    except clv.ClvFitError as exc:
        fit.error = str(exc)
        fit.customers = len(summary)
        fit.save()
        logger.warning("CLV fit failed, previous predictions kept: %s", exc)
        return fit
    fit.params = _floats({**fitted.bgnbd.params.as_dict(), **fitted.gamma_gamma.params.as_dict()})
    fit.log_likelihood = {
        "bgnbd": float(fitted.bgnbd.log_likelihood),
        "gamma_gamma": float(fitted.gamma_gamma.log_likelihood),
        "repeat_buyers": fitted.bgnbd.repeat_buyers,
        "gamma_gamma_customers": fitted.gamma_gamma.customers,
    }
    fit.customers = len(summary)
    predictions_store(fit=fit, summary=summary, fitted=fitted)
    return fit


def predict(summary: Summary, fitted: Fitted, *, horizon_days: int) -> dict[str, np.ndarray]:
    """Each customer's P(alive), expected purchases, expected order value and CLV."""
    b, g = fitted.bgnbd.params, fitted.gamma_gamma.params
    x, t_x, age, m = summary.frequency, summary.recency, summary.age, summary.monetary
    purchases = clv.bgnbd_expected_purchases(b, horizon_days, x, t_x, age)
    value = clv.gamma_gamma_expected_value(g, x, m)
    return {
        "p_alive": clv.bgnbd_p_alive(b, x, t_x, age),
        "expected_purchases": purchases,
        "expected_value": value,
        "clv": purchases * value,
    }


@transaction.atomic
def predictions_store(*, fit: ClvFit, summary: Summary, fitted: Fitted) -> int:
    """Save ``fit`` and replace every customer prediction with its results (one transaction)."""
    fit.save()
    values = predict(summary, fitted, horizon_days=fit.horizon_days)
    CustomerPrediction.objects.all().delete()
    rows = (
        CustomerPrediction(
            customer_id=int(customer_id),
            fit=fit,
            frequency=int(summary.frequency[i]),
            recency_days=float(summary.recency[i]),
            age_days=float(summary.age[i]),
            monetary=_yen(summary.monetary[i]),
            p_alive=float(values["p_alive"][i]),
            expected_purchases=float(values["expected_purchases"][i]),
            expected_value=_yen(values["expected_value"][i]),
            clv=_yen(values["clv"][i]),
        )
        for i, customer_id in enumerate(summary.customer_ids)
    )
    created = 0
    batch: list[CustomerPrediction] = []
    for row in rows:
        batch.append(row)
        if len(batch) == BATCH_SIZE:
            created += len(CustomerPrediction.objects.bulk_create(batch))
            batch = []
    if batch:
        created += len(CustomerPrediction.objects.bulk_create(batch))
    # The CLV report's totals and histograms, over the rows just written.
    clv_summary_store(fit)
    return created


def _yen(value: float) -> Decimal:
    return Decimal(round(float(value))) if np.isfinite(value) else Decimal(0)


def _floats(params: dict) -> dict[str, float]:
    return {key: float(value) for key, value in params.items()}
