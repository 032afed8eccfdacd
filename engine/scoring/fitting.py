"""Maximum-likelihood fits of BG/NBD and Gamma-Gamma to a transaction log.

Conventions (those of Fader, Hardie and Lee 2005 and the Gamma-Gamma note on CDNOW):
transactions on one calendar day count as one purchase with the day's total amount; x is the
number of purchase days after the first, t_x the time from the first to the last purchase day
and T the time from the first purchase day to the calibration end, both in the chosen unit
(days / unit_days). Only transactions up to and including the calibration end count;
customers whose first purchase falls after it are left out. The spend model is fitted on
customers with x > 0, using the mean of their repeat purchases (the first one excluded) —
the same `monetary` the scoring kernels expect.
"""

from __future__ import annotations

import csv
import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta, timezone
from pathlib import Path

import numpy as np
import orjson
from numba import njit
from numpy.typing import NDArray
from scipy.optimize import minimize  # type: ignore[import-untyped, unused-ignore]

from engine.core.events import EventError, parse_timestamp
from engine.errors import JourneysError
from engine.scoring.model import BgNbdParams, GammaGammaParams

FloatArray = NDArray[np.float64]
Transaction = tuple[str, int, float]  # customer id, day ordinal, amount
CSV_COLUMNS = ("customer_id", "date", "amount")
LOG_BOUND = 12.0  # parameters are searched in [exp(-12), exp(12)]


class FitError(JourneysError, ValueError):
    """A transaction log that cannot be fitted, with where and why."""

    code = "fit_input"

    def __init__(self, problem: str, *, source: str | None = None,
                 line: int | None = None) -> None:
        where = "" if source is None else (f"{source}:{line}: " if line else f"{source}: ")
        super().__init__(where + problem)
        self.problem = problem
        self.source = source
        self.line = line


@dataclass(frozen=True)
class CustomerSummary:
    """Per-customer (x, t_x, T, mean repeat spend) arrays for one calibration period."""

    customer_ids: list[str]
    x: FloatArray
    t_x: FloatArray
    T: FloatArray
    monetary: FloatArray
    calibration_end: date


@dataclass(frozen=True)
class FitResult:
    """Fitted parameters with the maximised log-likelihoods and the data sizes."""

    bgnbd: BgNbdParams
    gamma_gamma: GammaGammaParams
    bgnbd_log_likelihood: float
    gamma_gamma_log_likelihood: float
    customers: int
    repeat_customers: int


def parse_day(text: str) -> date:
    """A calendar date from `YYYY-MM-DD`, `YYYYMMDD` or an ISO-8601 date-time (its local date)."""
    value = text.strip()
    try:
        return date.fromisoformat(value)
    except ValueError:
        pass
    try:
        return datetime.fromisoformat(value).date()
    except ValueError:
        raise ValueError(f"not a date (YYYY-MM-DD or YYYYMMDD): {value[:40]!r}") from None


def read_transactions(path: str | Path) -> list[Transaction]:
    """Transactions of a CSV (`customer_id,date,amount` header) or an events JSONL file."""
    name = str(path)
    with open(path, encoding="utf-8", newline="") as handle:
        try:
            head = handle.read(4096).lstrip()
            handle.seek(0)
            rows = list(_read_jsonl(handle, name) if head.startswith("{")
                        else _read_csv(handle, name))
        except UnicodeDecodeError as exc:
            raise FitError(f"not UTF-8 text: {exc.reason}", source=name) from None
    if not rows:
        raise FitError("no transactions in the file", source=name)
    return rows


def _read_csv(handle: Iterator[str], name: str) -> Iterator[Transaction]:
    reader = csv.DictReader(handle)
    missing = [c for c in CSV_COLUMNS if c not in (reader.fieldnames or [])]
    if missing:
        raise FitError(f"CSV header lacks {', '.join(missing)} (expected "
                       f"{','.join(CSV_COLUMNS)})", source=name, line=1)
    for row in reader:
        line = reader.line_num
        customer = (row["customer_id"] or "").strip()
        if not customer:
            raise FitError("empty customer_id", source=name, line=line)
        try:
            day = parse_day(row["date"] or "")
        except ValueError as exc:
            raise FitError(str(exc), source=name, line=line) from None
        yield customer, day.toordinal(), _amount(row["amount"], name, line)


def _read_jsonl(handle: Iterator[str], name: str) -> Iterator[Transaction]:
    for line, text in enumerate(handle, start=1):
        if not text.strip():
            continue
        try:
            raw = orjson.loads(text)
        except orjson.JSONDecodeError as exc:
            raise FitError(f"not valid JSON: {exc}", source=name, line=line) from None
        if not isinstance(raw, dict):
            raise FitError("an event must be a JSON object", source=name, line=line)
        if raw.get("type") != "visit":
            continue
        customer = raw.get("customer_id")
        if isinstance(customer, bool) or not isinstance(customer, str | int) or customer == "":
            raise FitError("missing or empty 'customer_id'", source=name, line=line)
        try:
            ts, offset = parse_timestamp(raw.get("ts"))
        except EventError as exc:
            raise FitError(exc.reason, source=name, line=line) from None
        zone = UTC if offset is None else timezone(timedelta(seconds=offset))
        day = datetime.fromtimestamp(ts / 1000, zone).date()
        yield str(customer), day.toordinal(), _amount(raw.get("amount"), name, line)


def _amount(value: object, name: str, line: int) -> float:
    try:
        amount = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise FitError(f"amount is not a number: {value!r:.40}", source=name, line=line) from None
    if isinstance(value, bool) or not math.isfinite(amount) or amount < 0:
        raise FitError(f"amount must be a finite number >= 0, got {value!r:.40}",
                       source=name, line=line)
    return amount


def summarise(transactions: list[Transaction], unit_days: float,
              calibration_end: date | None = None) -> CustomerSummary:
    """Collapse transactions into per-customer BG/NBD statistics (see the module docstring)."""
    if not transactions:
        raise FitError("no transactions")
    end = calibration_end.toordinal() if calibration_end else max(t[1] for t in transactions)
    days_by_customer: dict[str, dict[int, float]] = {}
    for customer, day, amount in transactions:
        if day <= end:
            days = days_by_customer.setdefault(customer, {})
            days[day] = days.get(day, 0.0) + amount
    if not days_by_customer:
        raise FitError(f"no transactions on or before the calibration end "
                       f"{date.fromordinal(end).isoformat()}")
    size = len(days_by_customer)
    x, t_x, T, monetary = (np.zeros(size) for _ in range(4))
    for i, days in enumerate(days_by_customer.values()):
        ordered = sorted(days)
        first = ordered[0]
        x[i] = len(ordered) - 1
        t_x[i] = (ordered[-1] - first) / unit_days
        T[i] = (end - first) / unit_days
        if len(ordered) > 1:
            monetary[i] = sum(days[d] for d in ordered[1:]) / (len(ordered) - 1)
    return CustomerSummary(list(days_by_customer), x, t_x, T, monetary, date.fromordinal(end))


@njit(cache=True)
def bgnbd_log_likelihood(x: FloatArray, t_x: FloatArray, T: FloatArray, r: float, alpha: float,
                         a: float, b: float) -> float:
    """Sum over customers of the BG/NBD log-likelihood (FHL 2005, equation 6), in log space."""
    common = (r * math.log(alpha) - math.lgamma(r) + math.lgamma(a + b) - math.lgamma(b))
    total = 0.0
    for i in range(x.shape[0]):
        n = x[i]
        ll = common + math.lgamma(r + n) + math.lgamma(b + n) - math.lgamma(a + b + n)
        alive = -(r + n) * math.log(alpha + T[i])
        if n > 0:
            dead = math.log(a) - math.log(b + n - 1.0) - (r + n) * math.log(alpha + t_x[i])
            top = max(alive, dead)
            ll += top + math.log1p(math.exp(min(alive, dead) - top))
        else:
            ll += alive
        total += ll
    return total


@njit(cache=True)
def gamma_gamma_log_likelihood(x: FloatArray, monetary: FloatArray, p: float, q: float,
                               v: float) -> float:
    """Sum of the Gamma-Gamma log density of each mean spend given its x transactions."""
    common = q * math.log(v) - math.lgamma(q)
    total = 0.0
    for i in range(x.shape[0]):
        px = p * x[i]
        total += (common + math.lgamma(px + q) - math.lgamma(px) + (px - 1.0)
                  * math.log(monetary[i]) + px * math.log(x[i])
                  - (px + q) * math.log(v + x[i] * monetary[i]))
    return total


def fit_bgnbd(x: FloatArray, t_x: FloatArray, T: FloatArray) -> tuple[BgNbdParams, float]:
    """Maximum-likelihood BG/NBD parameters and the maximised log-likelihood."""
    if x.shape[0] == 0:
        raise FitError("no customers to fit")
    if not np.any(x > 0):
        raise FitError("no repeat customers: every customer bought once, BG/NBD is not "
                       "identified")
    alpha0 = max(float(np.mean(T)) / max(float(np.mean(x)), 1e-3), 1e-3)

    def objective(theta: FloatArray) -> float:
        r, alpha, a, b = np.exp(theta)
        return -float(bgnbd_log_likelihood(x, t_x, T, r, alpha, a, b)) / x.shape[0]

    theta, value = _minimise(objective, [1.0, alpha0, 1.0, 1.0], ("r", "alpha", "a", "b"),
                             "BG/NBD")
    return BgNbdParams(*theta), -value * x.shape[0]


def fit_gamma_gamma(x: FloatArray, monetary: FloatArray) -> tuple[GammaGammaParams, float]:
    """Gamma-Gamma parameters from customers with x > 0 and a positive mean repeat spend."""
    keep = (x > 0) & (monetary > 0)
    xs, ms = np.ascontiguousarray(x[keep]), np.ascontiguousarray(monetary[keep])
    if xs.shape[0] == 0:
        raise FitError("no repeat customers with a positive spend: Gamma-Gamma cannot be fitted")

    def objective(theta: FloatArray) -> float:
        p, q, v = np.exp(theta)
        return -float(gamma_gamma_log_likelihood(xs, ms, p, q, v)) / xs.shape[0]

    theta, value = _minimise(objective, [1.0, 2.0, float(np.mean(ms))], ("p", "q", "v"),
                             "Gamma-Gamma")
    return GammaGammaParams(*theta), -value * xs.shape[0]


def fit_summary(summary: CustomerSummary) -> FitResult:
    """Fit both models to a customer summary."""
    bgnbd, bg_ll = fit_bgnbd(summary.x, summary.t_x, summary.T)
    gamma_gamma, gg_ll = fit_gamma_gamma(summary.x, summary.monetary)
    return FitResult(bgnbd, gamma_gamma, bg_ll, gg_ll, len(summary.customer_ids),
                     int(np.count_nonzero(summary.x > 0)))


def _minimise(objective: Callable[[FloatArray], float], start: list[float],
              names: tuple[str, ...], model: str) -> tuple[list[float], float]:
    """Powell's method on log-parameters within [-LOG_BOUND, LOG_BOUND]; FitError on trouble.

    Derivative-free and, unlike Nelder-Mead, it does not stall on the shallow a-b ridge of
    the BG/NBD likelihood (on CDNOW, Nelder-Mead stops with a and b about 1% off).
    """
    theta0 = np.log(np.asarray(start, dtype=np.float64))
    if not math.isfinite(objective(theta0)):
        raise FitError(f"{model}: the log-likelihood is not finite at the starting point")
    result = minimize(objective, theta0, method="Powell",
                      bounds=[(-LOG_BOUND, LOG_BOUND)] * len(start),
                      options={"xtol": 1e-10, "ftol": 1e-15, "maxiter": 20_000,
                               "maxfev": 100_000})
    if not result.success or not math.isfinite(result.fun):
        raise FitError(f"{model}: optimiser did not converge: {result.message}")
    at_bound = [n for n, t in zip(names, result.x, strict=True) if abs(t) >= LOG_BOUND - 1e-6]
    if at_bound:
        raise FitError(f"{model}: optimiser did not converge: {', '.join(at_bound)} ran to "
                       f"the search bound exp(+/-{LOG_BOUND:g}); the data do not identify it")
    return [float(v) for v in np.exp(result.x)], float(result.fun)
