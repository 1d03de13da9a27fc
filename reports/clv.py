"""Predicted customer lifetime value: the BG/NBD and Gamma-Gamma models, pure numpy/scipy.

Each customer is summarised as ``(x, t_x, T)`` and a mean spend ``m``:

- ``x`` (frequency): repeat purchases, i.e. purchase periods after the first one;
- ``t_x`` (recency): time from the first to the last purchase;
- ``T`` (age): time from the first purchase to the end of the observation;
- ``m`` (monetary): mean value of the repeat purchases (0 when ``x == 0``).

Any time unit works (the fitted ``alpha`` and predictions are in that unit); the app uses
days, the published CDNOW figures use weeks.

**BG/NBD** (Fader, Hardie & Lee 2005, "Counting your customers the easy way"): while alive a
customer buys as a Poisson process with rate λ ~ Gamma(r, α); after each purchase they drop
out with probability p ~ Beta(a, b). Fitted by maximum likelihood (eq. 6), with conditional
expected purchases in the next ``t`` (eq. 10) and P(alive) (eq. 11).

**Gamma-Gamma** (Fader & Hardie 2013, "The Gamma-Gamma model of monetary value"): a
customer's order values are Gamma(p, ν) with ν ~ Gamma(q, γ); fitted on repeat buyers'
mean spend, it predicts each customer's expected average order value, shrinking their own
mean towards the population mean ``p·γ/(q−1)`` (customers without repeat purchases get the
population mean). It assumes spend is independent of purchase frequency.

**CLV** = expected purchases over the horizon × expected average order value. With an
annual ``discount_rate`` the horizon is split into steps and each step's expected
purchases are discounted to the present, ``(1 + rate) ** -(step end / year)``; without one
(the default), it is the plain product.

Fits optimise the log of the parameters (so they stay positive) with
``scipy.optimize.minimize`` and raise :class:`ClvFitError` when the data cannot identify the
model (too few customers or repeat buyers) or the optimiser does not converge.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
from scipy.optimize import minimize
from scipy.special import betaln, gammaln, hyp2f1

MIN_CUSTOMERS = 20
MIN_REPEAT_BUYERS = 10


class ClvFitError(ValueError):
    """The data cannot be fitted: too few customers or repeat buyers, or no convergence."""


@dataclass(frozen=True)
class BgNbdParams:
    """BG/NBD: purchase rate λ ~ Gamma(r, alpha); dropout probability p ~ Beta(a, b)."""

    r: float
    alpha: float
    a: float
    b: float

    def as_dict(self) -> dict[str, float]:
        return asdict(self)


@dataclass(frozen=True)
class GammaGammaParams:
    """Gamma-Gamma: order value ~ Gamma(p, ν) with ν ~ Gamma(q, gamma)."""

    p: float
    q: float
    gamma: float

    def as_dict(self) -> dict[str, float]:
        return asdict(self)

    @property
    def population_mean(self) -> float:
        """The expected average order value of a customer we know nothing about."""
        return self.p * self.gamma / (self.q - 1)


@dataclass(frozen=True)
class BgNbdFit:
    params: BgNbdParams
    log_likelihood: float
    customers: int
    repeat_buyers: int


@dataclass(frozen=True)
class GammaGammaFit:
    params: GammaGammaParams
    log_likelihood: float
    customers: int


def _arrays(*values) -> list[np.ndarray]:
    return [np.asarray(value, dtype=float) for value in values]


def _check_summary(x: np.ndarray, t_x: np.ndarray, T: np.ndarray) -> None:
    if not (x.shape == t_x.shape == T.shape):
        raise ValueError("frequency, recency and age must have the same length")
    if np.any(x < 0) or np.any(t_x < 0) or np.any(t_x > T + 1e-9):
        raise ValueError("need 0 ≤ frequency and 0 ≤ recency ≤ age")
    if np.any((x == 0) & (t_x != 0)):
        raise ValueError("recency must be 0 when frequency is 0")


# --- BG/NBD ---------------------------------------------------------------------------------


def bgnbd_log_likelihood(params: BgNbdParams, x, t_x, T) -> np.ndarray:
    """Each customer's log-likelihood under BG/NBD (Fader, Hardie & Lee 2005, eq. 6)."""
    x, t_x, T = _arrays(x, t_x, T)
    r, alpha, a, b = params.r, params.alpha, params.a, params.b
    common = gammaln(r + x) - gammaln(r) + r * np.log(alpha)
    beta_ratio = betaln(a, b + x) - betaln(a, b)
    still_alive = -(r + x) * np.log(alpha + T)
    repeat = x > 0
    dropped = np.full_like(x, -np.inf)
    xr = x[repeat]
    dropped[repeat] = np.log(a) - np.log(b + xr - 1) - (r + xr) * np.log(alpha + t_x[repeat])
    return common + beta_ratio + np.logaddexp(still_alive, dropped)


def bgnbd_fit(x, t_x, T, *, weights=None) -> BgNbdFit:
    """Maximum-likelihood BG/NBD parameters; ``weights`` counts identical customers."""
    x, t_x, T = _arrays(x, t_x, T)
    _check_summary(x, t_x, T)
    w = np.ones_like(x) if weights is None else np.asarray(weights, dtype=float)
    (x, t_x, T), w = _compress([x, t_x, T], w)
    customers = int(w.sum())
    repeat_buyers = int(w[x > 0].sum())
    if customers < MIN_CUSTOMERS:
        raise ClvFitError(
            f"too few customers to fit BG/NBD ({customers}; at least {MIN_CUSTOMERS})"
        )
    if repeat_buyers < MIN_REPEAT_BUYERS:
        raise ClvFitError(
            f"too few repeat buyers to fit BG/NBD ({repeat_buyers}; at least {MIN_REPEAT_BUYERS})"
        )
    scale = float(np.mean(T)) or 1.0  # start alpha at the typical age: same unit as T

    def negative(log_params: np.ndarray) -> float:
        with np.errstate(all="ignore"):  # extreme trial points give inf, refused below
            r, alpha, a, b = np.exp(log_params)
            ll = bgnbd_log_likelihood(BgNbdParams(r, alpha, a, b), x, t_x, T)
            value = -float(np.dot(w, ll))
        return value if np.isfinite(value) else 1e300

    start = np.log([1.0, scale, 1.0, 1.0])
    result = _minimize(negative, start)
    r, alpha, a, b = np.exp(result.x)
    return BgNbdFit(BgNbdParams(r, alpha, a, b), -float(result.fun), customers, repeat_buyers)


def bgnbd_expected_purchases(params: BgNbdParams, t, x, t_x, T) -> np.ndarray:
    """Expected purchases in the next ``t`` given ``(x, t_x, T)`` (FHL 2005, eq. 10)."""
    x, t_x, T = _arrays(x, t_x, T)
    t = np.asarray(t, dtype=float)
    r, alpha, a, b = params.r, params.alpha, params.a, params.b
    if np.isclose(a, 1.0):
        a = 1.0 + 1e-9  # eq. 10 has a removable singularity at a = 1
    z = t / (alpha + T + t)
    head = (a + b + x - 1) / (a - 1)
    tail = 1 - ((alpha + T) / (alpha + T + t)) ** (r + x) * hyp2f1(r + x, b + x, a + b + x - 1, z)
    return head * tail / _alive_denominator(params, x, t_x, T)


def bgnbd_p_alive(params: BgNbdParams, x, t_x, T) -> np.ndarray:
    """Probability that each customer is still active at ``T`` (FHL 2005, eq. 11).

    Exactly 1 for customers without a repeat purchase: under BG/NBD a customer can only
    drop out right after a purchase, and the first one does not count.
    """
    x, t_x, T = _arrays(x, t_x, T)
    return 1.0 / _alive_denominator(params, x, t_x, T)


def _alive_denominator(params: BgNbdParams, x, t_x, T) -> np.ndarray:
    r, alpha, a, b = params.r, params.alpha, params.a, params.b
    repeat = x > 0
    safe_x = np.where(repeat, x, 1.0)
    log_odds = (
        np.log(a) - np.log(b + safe_x - 1) + (r + safe_x) * np.log((alpha + T) / (alpha + t_x))
    )
    return 1.0 + np.where(repeat, np.exp(np.minimum(log_odds, 700.0)), 0.0)


# --- Gamma-Gamma ----------------------------------------------------------------------------


def gamma_gamma_log_likelihood(params: GammaGammaParams, x, m) -> np.ndarray:
    """Each repeat buyer's log-likelihood of their mean spend ``m`` over ``x`` purchases
    (Fader & Hardie 2013, eq. 3 for the mean; constant terms included)."""
    x, m = _arrays(x, m)
    p, q, gamma = params.p, params.q, params.gamma
    return (
        gammaln(p * x + q)
        - gammaln(p * x)
        - gammaln(q)
        + q * np.log(gamma)
        + (p * x - 1) * np.log(m)
        + p * x * np.log(x)
        - (p * x + q) * np.log(gamma + m * x)
    )


def gamma_gamma_fit(x, m, *, weights=None) -> GammaGammaFit:
    """Maximum-likelihood Gamma-Gamma parameters from repeat buyers (``x > 0``, ``m > 0``)
    only; other rows are ignored."""
    x, m = _arrays(x, m)
    if x.shape != m.shape:
        raise ValueError("frequency and monetary value must have the same length")
    w = np.ones_like(x) if weights is None else np.asarray(weights, dtype=float)
    keep = (x > 0) & (m > 0)
    (x, m), w = _compress([x[keep], m[keep]], w[keep])
    customers = int(w.sum())
    if customers < MIN_REPEAT_BUYERS:
        raise ClvFitError(
            f"too few repeat buyers with a spend to fit Gamma-Gamma "
            f"({customers}; at least {MIN_REPEAT_BUYERS})"
        )
    scale = float(np.average(m, weights=w))

    def negative(log_params: np.ndarray) -> float:
        p, q, gamma = np.exp(log_params)
        with np.errstate(all="ignore"):
            ll = gamma_gamma_log_likelihood(GammaGammaParams(p, q, gamma), x, m)
            value = -float(np.dot(w, ll))
        return value if np.isfinite(value) else 1e300

    # Start at a mean that matches the data: p·γ/(q−1) = mean spend with p=1, q=2.
    result = _minimize(negative, np.log([1.0, 2.0, scale]))
    p, q, gamma = np.exp(result.x)
    if q <= 1:
        raise ClvFitError(
            f"Gamma-Gamma fit has q = {q:.3g} ≤ 1: the expected spend is undefined "
            "(spend too dispersed for the model)"
        )
    return GammaGammaFit(GammaGammaParams(p, q, gamma), -float(result.fun), customers)


def gamma_gamma_expected_value(params: GammaGammaParams, x, m) -> np.ndarray:
    """Each customer's expected average order value given ``x`` repeat purchases with mean
    ``m`` (Fader & Hardie 2013, eq. 5); the population mean when ``x == 0``."""
    x, m = _arrays(x, m)
    p, q, gamma = params.p, params.q, params.gamma
    m = np.where(x > 0, m, 0.0)
    return p * (gamma + m * x) / (p * x + q - 1)


# --- CLV ------------------------------------------------------------------------------------


def clv(
    bgnbd: BgNbdParams,
    gamma_gamma: GammaGammaParams,
    *,
    x,
    t_x,
    T,
    m,
    horizon: float,
    discount_rate: float = 0.0,
    periods_per_year: float = 365.0,
    steps: int = 12,
) -> np.ndarray:
    """Predicted value over ``horizon`` (same time unit as ``T``).

    Without a discount rate: expected purchases in the horizon × expected average order
    value. With an annual ``discount_rate``: the horizon is cut into ``steps`` equal steps
    and each step's expected purchases are discounted by ``(1 + rate) ** -(end / year)``,
    where ``periods_per_year`` says how many time units make a year (365 for days).
    """
    value = gamma_gamma_expected_value(gamma_gamma, x, m)
    if not discount_rate:
        return bgnbd_expected_purchases(bgnbd, horizon, x, t_x, T) * value
    total = np.zeros_like(value)
    previous = np.zeros_like(value)
    for step in range(1, steps + 1):
        end = horizon * step / steps
        cumulative = bgnbd_expected_purchases(bgnbd, end, x, t_x, T)
        total += (cumulative - previous) * (1 + discount_rate) ** -(end / periods_per_year)
        previous = cumulative
    return total * value


def _minimize(function, start: np.ndarray):
    """L-BFGS-B from ``start``; Nelder-Mead when the gradient method gives up."""
    result = minimize(function, start, method="L-BFGS-B")
    if not (result.success and np.isfinite(result.fun)):
        result = minimize(
            function, start, method="Nelder-Mead", options={"maxiter": 4000, "fatol": 1e-9}
        )
        if not result.success:
            raise ClvFitError(f"the optimiser did not converge: {result.message}")
    if not np.isfinite(result.fun) or result.fun >= 1e300 or np.any(np.abs(result.x) > 50):
        raise ClvFitError("the optimiser did not converge to finite parameters")
    return result


def _compress(
    columns: list[np.ndarray], weights: np.ndarray
) -> tuple[list[np.ndarray], np.ndarray]:
    """Identical rows merged into one with their summed weight (the likelihood is a
    weighted sum, so this only saves work: a few thousand distinct rows in a big shop)."""
    stacked = np.column_stack(columns)
    unique, inverse = np.unique(stacked, axis=0, return_inverse=True)
    summed = np.bincount(inverse.ravel(), weights=weights, minlength=len(unique))
    return [unique[:, i] for i in range(unique.shape[1])], summed
