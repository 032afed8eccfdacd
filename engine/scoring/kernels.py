"""Numba kernels that score whole batches of customers (BG/NBD, Gamma-Gamma, CLV, RFM).

Inputs are float64 arrays, one entry per customer, with times in the model's unit:

- `x`: repeat visits (visits on distinct days after the first one),
- `t_x`: time of the last visit since the first visit (0 when x = 0),
- `T`: age, the time from the first visit to now (values below `t_x` are read as `t_x`),
- `monetary`: mean spend of the repeat visits (the first visit excluded, as in the
  Gamma-Gamma fit); ignored when x = 0.

Every kernel works in log space where powers appear, so x = 1000 or a long silence neither
overflows nor loses the result to cancellation. Kernels are compiled with `cache=True`;
`warm_up` loads (or compiles) them all before the first batch.
"""

from __future__ import annotations

import functools
import math
import time
from typing import NamedTuple

import numpy as np
from numba import njit
from numpy.typing import NDArray

from engine.errors import JourneysError
from engine.scoring.model import DEFAULT_MODEL, ScoreModel

FloatArray = NDArray[np.float64]
SERIES_EPS = 1e-16
SERIES_MAX_TERMS = 1_000_000
DAYS_PER_YEAR = 365.25
RFM_QUANTILES = (0.2, 0.4, 0.6, 0.8)


class ScoreInputError(JourneysError, ValueError):
    """Batch arrays that cannot be scored together, with what is wrong."""

    code = "score_input"


class ScoreArrays(NamedTuple):
    """Per-customer scores of one batch, aligned with the input arrays."""

    p_alive: FloatArray
    expected_visits: FloatArray
    expected_spend: FloatArray
    clv: FloatArray
    churn_risk: FloatArray


class RfmBreakpoints(NamedTuple):
    """Ascending cut points splitting a population into score levels (4 cuts give 1-5)."""

    recency: FloatArray
    frequency: FloatArray
    monetary: FloatArray


@njit(cache=True)
def _log_odds_dead(x: float, t_x: float, T: float, r: float, alpha: float, a: float,
                   b: float) -> float:
    """log(P(dead) / P(alive)) for x > 0: log(a/(b+x-1)) + (r+x) log((alpha+T)/(alpha+t_x))."""
    age = max(T, t_x)
    return (math.log(a) - math.log(b + x - 1.0)
            + (r + x) * math.log1p((age - t_x) / (alpha + t_x)))


@njit(cache=True)
def _logistic_of_minus(log_odds: float) -> float:
    """1 / (1 + exp(log_odds)) without overflow on either side."""
    if log_odds > 0.0:
        e = math.exp(-log_odds)
        return e / (1.0 + e)
    return 1.0 / (1.0 + math.exp(log_odds))


@njit(cache=True)
def _p_alive_one(x: float, t_x: float, T: float, r: float, alpha: float, a: float,
                 b: float) -> float:
    if x <= 0.0:
        return 1.0
    return _logistic_of_minus(_log_odds_dead(x, t_x, T, r, alpha, a, b))


@njit(cache=True)
def _churn_one(x: float, t_x: float, T: float, r: float, alpha: float, a: float,
               b: float) -> float:
    if x <= 0.0:
        return 0.0
    return _logistic_of_minus(-_log_odds_dead(x, t_x, T, r, alpha, a, b))


@njit(cache=True)
def _scaled_euler_series(e: float, a: float, c: float, z: float) -> float:
    """c * sum_{k>=1} (e)_k (a)_{k-1} / ((c)_k k!) z^k for 0 <= z < 1, c > -1.

    Term k+1 is term k times z (e+k)(a+k-1) / ((c+k)(k+1)). Once e + k >= 0, every later
    ratio is at most rho = z * max(1, (a+k-1)/(k+1)) in size (because e < c), so the
    remainder is below |term| rho / (1 - rho); summing stops when that bound falls under
    SERIES_EPS of the sum. About 37 / -log(z) terms are needed; NaN after SERIES_MAX_TERMS.
    """
    term = e * z
    total = term
    k = 1.0
    for _ in range(SERIES_MAX_TERMS):
        if term == 0.0:
            return total
        if e + k >= 0.0:
            rho = z * max(1.0, (a + k - 1.0) / (k + 1.0))
            if rho < 1.0 and abs(term) * rho <= SERIES_EPS * abs(total) * (1.0 - rho):
                return total
        term *= z * (e + k) * (a + k - 1.0) / ((c + k) * (k + 1.0))
        total += term
        k += 1.0
    return math.nan


@njit(cache=True)
def _expected_visits_one(x: float, t_x: float, T: float, horizon: float, r: float,
                         alpha: float, a: float, b: float) -> float:
    """E[visits in (T, T + horizon] | x, t_x, T] (BG/NBD conditional expectation).

    The closed form is c/(a-1) [1 - (1-z)^m 2F1(m, b+x; c; z)] * P(alive) with m = r + x,
    c = a + b + x - 1, z = horizon / (alpha + T + horizon). Euler's transformation turns the
    bracket into (1 - (1-z)^(a-1)) / (a-1) - (1-z)^(a-1) S with S a series in (c-m)_k (a)_{k-1},
    which has bounded terms for any x and no removable singularity at a = 1.
    """
    if horizon <= 0.0:
        return 0.0
    age = max(T, t_x)
    m = r + x
    c = a + b + x - 1.0
    log_1mz = -math.log1p(horizon / (alpha + age))
    z = horizon / (alpha + age + horizon)
    u = (a - 1.0) * log_1mz
    head = -log_1mz if u == 0.0 else -log_1mz * (math.expm1(u) / u)
    scaled = c * head - math.exp(u) * _scaled_euler_series(c - m, a, c, z)
    return scaled * _p_alive_one(x, t_x, age, r, alpha, a, b)


@njit(cache=True)
def _expected_spend_one(x: float, monetary: float, p: float, q: float, v: float) -> float:
    """Gamma-Gamma E[mean spend | x, monetary] = p (v + x m) / (p x + q - 1)."""
    if x <= 0.0:
        return p * v / (q - 1.0)
    return p * (v + x * monetary) / (p * x + q - 1.0)


@njit(cache=True)
def p_alive(x: FloatArray, t_x: FloatArray, T: FloatArray, r: float, alpha: float, a: float,
            b: float) -> FloatArray:
    """P(alive | x, t_x, T) per customer; 1 for x = 0."""
    out = np.empty(x.shape[0])
    for i in range(x.shape[0]):
        out[i] = _p_alive_one(x[i], t_x[i], T[i], r, alpha, a, b)
    return out


@njit(cache=True)
def churn_risk(x: FloatArray, t_x: FloatArray, T: FloatArray, r: float, alpha: float, a: float,
               b: float) -> FloatArray:
    """1 - P(alive), computed directly from the odds so it keeps precision near 0."""
    out = np.empty(x.shape[0])
    for i in range(x.shape[0]):
        out[i] = _churn_one(x[i], t_x[i], T[i], r, alpha, a, b)
    return out


@njit(cache=True)
def expected_visits(x: FloatArray, t_x: FloatArray, T: FloatArray, horizon: float, r: float,
                    alpha: float, a: float, b: float) -> FloatArray:
    """Expected visits in the next `horizon` model units per customer."""
    out = np.empty(x.shape[0])
    for i in range(x.shape[0]):
        out[i] = _expected_visits_one(x[i], t_x[i], T[i], horizon, r, alpha, a, b)
    return out


@njit(cache=True)
def expected_spend(x: FloatArray, monetary: FloatArray, p: float, q: float,
                   v: float) -> FloatArray:
    """Gamma-Gamma expected spend per visit; the population mean p v / (q - 1) for x = 0."""
    out = np.empty(x.shape[0])
    for i in range(x.shape[0]):
        out[i] = _expected_spend_one(x[i], monetary[i], p, q, v)
    return out


@njit(cache=True)
def clv(visits: FloatArray, spend: FloatArray, margin: float, discount: float) -> FloatArray:
    """Lifetime value over the horizon: visits * spend * margin * average discount factor."""
    out = np.empty(visits.shape[0])
    for i in range(visits.shape[0]):
        out[i] = visits[i] * spend[i] * margin * discount
    return out


@njit(cache=True)
def rfm_scores(x: FloatArray, t_x: FloatArray, T: FloatArray, monetary: FloatArray,
               r_cuts: FloatArray, f_cuts: FloatArray, m_cuts: FloatArray) -> NDArray[np.int8]:
    """Columns R, F, M of level scores 1..len(cuts)+1 (1-5 with four cuts).

    A value scores 1 + the number of cuts strictly below it, so a value equal to a cut stays in
    the lower level. Recency is the time since the last visit (T - t_x) and scores in reverse:
    the most recent customers get the top level. Frequency is x and monetary the mean spend.
    """
    n = x.shape[0]
    out = np.empty((n, 3), dtype=np.int8)
    top = r_cuts.shape[0] + 1
    for i in range(n):
        out[i, 0] = top - np.searchsorted(r_cuts, max(T[i] - t_x[i], 0.0), side="left")
        out[i, 1] = 1 + np.searchsorted(f_cuts, x[i], side="left")
        out[i, 2] = 1 + np.searchsorted(m_cuts, monetary[i], side="left")
    return out


@njit(cache=True)
def _score_one(x: float, t_x: float, T: float, monetary: float, r: float, alpha: float,
               a: float, b: float, p: float, q: float, v: float, horizon: float,
               value_factor: float) -> tuple[float, float, float, float, float]:
    """One customer's scores: p_alive, expected visits and spend, value, churn risk."""
    visits = _expected_visits_one(x, t_x, T, horizon, r, alpha, a, b)
    spend = _expected_spend_one(x, monetary, p, q, v)
    return (_p_alive_one(x, t_x, T, r, alpha, a, b), visits, spend,
            visits * spend * value_factor, _churn_one(x, t_x, T, r, alpha, a, b))


@njit(cache=True)
def _score_fused(x: FloatArray, t_x: FloatArray, T: FloatArray, monetary: FloatArray, r: float,
                 alpha: float, a: float, b: float, p: float, q: float, v: float,
                 horizon: float, value_factor: float
                 ) -> tuple[FloatArray, FloatArray, FloatArray, FloatArray, FloatArray]:
    n = x.shape[0]
    alive = np.empty(n)
    visits = np.empty(n)
    spend = np.empty(n)
    value = np.empty(n)
    churn = np.empty(n)
    for i in range(n):
        alive[i], visits[i], spend[i], value[i], churn[i] = _score_one(
            x[i], t_x[i], T[i], monetary[i], r, alpha, a, b, p, q, v, horizon, value_factor)
    return alive, visits, spend, value, churn


def discount_factor(horizon_days: float, annual_discount: float) -> float:
    """Average discount factor over the horizon, with visits spread evenly across it.

    With continuous rate d = ln(1 + annual_discount) per year and H the horizon in years, this
    is (1 - exp(-d H)) / (d H). Real visits lean towards the start of the horizon (customers
    drop out), so the true discount is slightly milder; the approximation is exact for a
    constant visit rate.
    """
    rate_h = math.log1p(annual_discount) * horizon_days / DAYS_PER_YEAR
    return 1.0 if rate_h == 0.0 else -math.expm1(-rate_h) / rate_h


def score_batch(x: FloatArray, t_x: FloatArray, T: FloatArray, monetary: FloatArray,
                model: ScoreModel) -> ScoreArrays:
    """Score a batch (times in the model's unit) with one fused kernel call."""
    xs, t_xs, Ts, ms = _as_batch(x=x, t_x=t_x, T=T, monetary=monetary)
    bg, gg = model.bgnbd, model.gamma_gamma
    result = _score_fused(xs, t_xs, Ts, ms, bg.r, bg.alpha, bg.a, bg.b, gg.p, gg.q, gg.v,
                          model.horizon_days / model.unit_days, _value_factor(model))
    return ScoreArrays(*result)


def score_one(x: float, t_x: float, T: float, monetary: float,
              model: ScoreModel) -> tuple[float, float, float, float, float]:
    """One customer's (p_alive, expected_visits, expected_spend, clv, churn_risk), equal to
    its row of `score_batch` (times in the model's unit; `T` below `t_x` reads as `t_x`)."""
    bg, gg = model.bgnbd, model.gamma_gamma
    return _score_one(float(x), float(t_x), max(float(T), float(t_x)), float(monetary),
                      bg.r, bg.alpha, bg.a, bg.b, gg.p, gg.q, gg.v,
                      model.horizon_days / model.unit_days, _value_factor(model))


@functools.lru_cache(maxsize=16)
def _value_factor(model: ScoreModel) -> float:
    return model.margin * discount_factor(model.horizon_days, model.annual_discount)


def rfm_breakpoints(x: FloatArray, t_x: FloatArray, T: FloatArray, monetary: FloatArray,
                    quantiles: tuple[float, ...] = RFM_QUANTILES) -> RfmBreakpoints:
    """Population quantile cut points for `rfm_scores` (recency is T - t_x)."""
    x, t_x, T, monetary = _as_batch(x=x, t_x=t_x, T=T, monetary=monetary)
    if x.shape[0] == 0:
        raise ScoreInputError("cannot take RFM breakpoints of an empty population")
    levels = np.asarray(quantiles, dtype=np.float64)
    return RfmBreakpoints(np.quantile(np.maximum(T - t_x, 0.0), levels),
                          np.quantile(x, levels), np.quantile(monetary, levels))


def score_rfm(x: FloatArray, t_x: FloatArray, T: FloatArray, monetary: FloatArray,
              cuts: RfmBreakpoints) -> NDArray[np.int8]:
    """RFM levels of a batch against population cut points; columns R, F, M."""
    xs, t_xs, Ts, ms = _as_batch(x=x, t_x=t_x, T=T, monetary=monetary)
    checked = []
    for name, values in zip(cuts._fields, cuts, strict=True):
        array = np.ascontiguousarray(values, dtype=np.float64)
        if array.ndim != 1 or not np.all(np.isfinite(array)) or np.any(np.diff(array) < 0):
            raise ScoreInputError(f"{name} breakpoints must be a finite ascending 1-D array")
        checked.append(array)
    return rfm_scores(xs, t_xs, Ts, ms, *checked)


def warm_up() -> float:
    """Load or compile every kernel on a tiny batch; returns the seconds it took."""
    started = time.perf_counter()
    one = np.ones(2)
    x = np.array([0.0, 3.0])
    t_x = np.array([0.0, 2.0])
    bg = DEFAULT_MODEL.bgnbd
    score_batch(x, t_x, one * 4.0, one, DEFAULT_MODEL)
    score_one(3.0, 2.0, 4.0, 1.0, DEFAULT_MODEL)
    p_alive(x, t_x, one, bg.r, bg.alpha, bg.a, bg.b)
    churn_risk(x, t_x, one, bg.r, bg.alpha, bg.a, bg.b)
    expected_visits(x, t_x, one, 1.0, bg.r, bg.alpha, bg.a, bg.b)
    expected_spend(x, one, 1.0, 2.0, 1.0)
    clv(one, one, 1.0, 1.0)
    score_rfm(x, t_x, one, one, RfmBreakpoints(one, one, one))
    return time.perf_counter() - started


def _as_batch(**arrays: FloatArray) -> list[FloatArray]:
    converted = [np.ascontiguousarray(values, dtype=np.float64) for values in arrays.values()]
    size = converted[0].shape
    for name, array in zip(arrays, converted, strict=True):
        if array.ndim != 1 or array.shape != size:
            shapes = ", ".join(f"{n}={a.shape}" for n, a in zip(arrays, converted, strict=True))
            raise ScoreInputError(f"{name}: batch arrays must be 1-D and of one length ({shapes})")
    return converted
