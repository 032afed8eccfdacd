"""`journeys fit`: CDNOW's published parameters, recovery of simulated ones, inputs and errors."""

from __future__ import annotations

import importlib.util
import io
import json
import math
from collections.abc import Callable
from datetime import date
from pathlib import Path

import numpy as np
import orjson
import pytest

from engine.scoring.fit_command import fit_command
from engine.scoring.fitting import (
    FitError,
    bgnbd_log_likelihood,
    fit_bgnbd,
    fit_gamma_gamma,
    gamma_gamma_log_likelihood,
    read_transactions,
    summarise,
)
from engine.scoring.model import load_model

# Fader, Hardie and Lee (2005), CDNOW sample, 39-week calibration period
PUBLISHED_BGNBD = {"r": 0.243, "alpha": 4.414, "a": 0.793, "b": 2.426}
PUBLISHED_LOG_LIKELIHOOD = -9582.4
# Fader and Hardie's Gamma-Gamma note on the same customers
PUBLISHED_GAMMA_GAMMA = {"p": 6.25, "q": 3.74, "v": 15.44}


def _cdnow_sample() -> Path:
    spec = importlib.util.find_spec("lifetimes")
    if spec is None or not spec.submodule_search_locations:
        pytest.skip("the lifetimes package (which ships the CDNOW sample) is not installed")
    path = Path(spec.submodule_search_locations[0]) / "datasets" / "CDNOW_sample.txt"
    if not path.is_file():
        pytest.skip(f"the lifetimes package has no CDNOW sample at {path}")
    return path


def _cdnow_rows() -> list[tuple[str, str, str]]:
    """(customer id, YYYYMMDD, amount) rows of `customer_id id2 YYYYMMDD quantity amount`."""
    rows = []
    for line in _cdnow_sample().read_text(encoding="utf-8").splitlines():
        parts = line.split()
        if parts:
            rows.append((parts[0], parts[2], parts[4]))
    return rows


def _run(path: Path, **options: str | None) -> tuple[int, str, str]:
    stdout, stderr = io.StringIO(), io.StringIO()
    code = fit_command(str(path), unit=options.get("unit") or "week",
                       calibration_end=options.get("calibration_end"), out=options.get("out"),
                       stdout=stdout, stderr=stderr)
    return code, stdout.getvalue(), stderr.getvalue()


def _assert_cdnow_parameters(fitted: dict[str, object]) -> None:
    for section, published in (("bgnbd", PUBLISHED_BGNBD), ("gamma_gamma", PUBLISHED_GAMMA_GAMMA)):
        values = fitted[section]
        assert isinstance(values, dict)
        for name, want in published.items():
            assert abs(values[name] - want) <= 0.02 * want, (section, name, values[name], want)
    assert fitted["customers"] == 2357 and fitted["repeat_customers"] == 946
    assert isinstance(fitted["log_likelihood"], float)
    assert abs(fitted["log_likelihood"] - PUBLISHED_LOG_LIKELIHOOD) < 0.1


def test_fit_reproduces_the_published_cdnow_parameters(tmp_path: Path) -> None:
    source = tmp_path / "cdnow.csv"
    lines = ["customer_id,date,amount"]
    lines += [f"{customer},{day},{amount}" for customer, day, amount in _cdnow_rows()]
    source.write_text("\n".join(lines) + "\n", encoding="utf-8")
    out = tmp_path / "scores.json"
    code, printed, errors = _run(source, unit="week", calibration_end="1997-09-30", out=str(out))
    assert code == 0, errors
    fitted = json.loads(printed)
    _assert_cdnow_parameters(fitted)
    assert fitted["unit"] == "week" and fitted["calibration_end"] == "1997-09-30"
    assert json.loads(out.read_text(encoding="utf-8")) == fitted
    model = load_model(out)
    assert model.unit_days == 7.0 and model.bgnbd.r == fitted["bgnbd"]["r"]


def test_fit_reads_the_same_log_as_events_jsonl(tmp_path: Path) -> None:
    """Events must lie in 2000-2100: 1997-98 moves to 2025-26 (same calendar, no 29 February)."""
    source = tmp_path / "events.jsonl"
    with source.open("wb") as handle:
        for n, (customer, day, amount) in enumerate(_cdnow_rows()):
            moment = f"{int(day[:4]) + 28}-{day[4:6]}-{day[6:]}T19:30:00+01:00"
            event = {"event_id": f"e{n}", "customer_id": customer, "type": "visit",
                     "ts": moment, "amount": float(amount), "venue_id": "v1"}
            handle.write(orjson.dumps(event) + b"\n")
            if n % 500 == 0:
                handle.write(orjson.dumps({"event_id": f"r{n}", "customer_id": customer,
                                           "type": "rating", "ts": moment, "stars": 4}) + b"\n")
    code, printed, errors = _run(source, unit="week", calibration_end="20250930")
    assert code == 0, errors
    _assert_cdnow_parameters(json.loads(printed))


def _simulate_bgnbd(rng: np.random.Generator, n: int, r: float, alpha: float, a: float,
                    b: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Purchases as a Poisson(lambda) process; after each repeat purchase, drop out with p."""
    lam = rng.gamma(r, 1.0 / alpha, n)
    drop = rng.beta(a, b, n)
    last_repeat = rng.geometric(drop)  # the repeat purchase after which the customer leaves
    T = rng.uniform(26.0, 52.0, n)
    now, t_x, x = np.zeros(n), np.zeros(n), np.zeros(n)
    active = np.ones(n, dtype=bool)
    while active.any():
        idx = np.flatnonzero(active)
        now[idx] += rng.exponential(1.0 / lam[idx])
        inside = now[idx] <= T[idx]
        bought = idx[inside]
        x[bought] += 1
        t_x[bought] = now[bought]
        active[idx[~inside]] = False
        active[bought[x[bought] >= last_repeat[bought]]] = False
    return x, t_x, T


def _standard_errors(negative_ll: Callable[[np.ndarray], float],
                     theta: np.ndarray) -> np.ndarray:
    """Standard errors of log-parameters from a central-difference Hessian (observed info)."""
    h, size = 1e-4, theta.shape[0]
    hessian = np.zeros((size, size))
    for i in range(size):
        for j in range(size):
            ei, ej = np.eye(size)[i] * h, np.eye(size)[j] * h
            hessian[i, j] = (negative_ll(theta + ei + ej) - negative_ll(theta + ei - ej)
                             - negative_ll(theta - ei + ej) + negative_ll(theta - ei - ej)) \
                / (4 * h * h)
    return np.sqrt(np.diag(np.linalg.inv(hessian)))


def test_fit_recovers_simulated_bgnbd_parameters() -> None:
    """Each log-parameter lands within 4 asymptotic standard errors of the truth.

    The standard errors come from the observed information at the estimate, so the tolerance
    follows the sample's own precision (4 SE: a 6e-5 two-sided normal tail per parameter);
    the second check keeps the test meaningful by requiring those errors to be small.
    """
    truth = np.array([0.5, 6.0, 0.7, 2.5])
    x, t_x, T = _simulate_bgnbd(np.random.default_rng(20050101), 20_000, *truth)
    params, log_likelihood = fit_bgnbd(x, t_x, T)
    estimate = np.log([params.r, params.alpha, params.a, params.b])
    assert math.isclose(log_likelihood, bgnbd_log_likelihood(x, t_x, T, *np.exp(estimate)),
                        rel_tol=1e-12)
    se = _standard_errors(lambda th: -bgnbd_log_likelihood(x, t_x, T, *np.exp(th)), estimate)
    assert np.all(np.abs(estimate - np.log(truth)) < 4 * se), (np.exp(estimate), se)
    assert np.all(se < 0.15)


def test_fit_recovers_simulated_gamma_gamma_parameters() -> None:
    """Same criterion as for BG/NBD, on mean spends drawn from the Gamma-Gamma model."""
    p, q, v = 6.0, 4.0, 20.0
    rng = np.random.default_rng(2013)
    x = rng.integers(1, 15, 5_000).astype(np.float64)
    scale = 1.0 / rng.gamma(q, 1.0 / v, x.shape[0])  # each customer's nu ~ Gamma(q, rate v)
    monetary = rng.gamma(p * x, scale) / x  # the mean of x Gamma(p, rate nu) spends
    params, _ = fit_gamma_gamma(x, monetary)
    estimate = np.log([params.p, params.q, params.v])
    se = _standard_errors(lambda th: -gamma_gamma_log_likelihood(x, monetary, *np.exp(th)),
                          estimate)
    assert np.all(np.abs(estimate - np.log([p, q, v])) < 4 * se), (np.exp(estimate), se)
    assert np.all(se < 0.15)


def test_events_are_summarised_by_local_purchase_day(tmp_path: Path) -> None:
    day_ms = 86_400_000
    jan8_utc_noon = 1_736_337_600_000  # 2025-01-08T12:00:00Z
    events = [
        {"customer_id": "c1", "type": "visit", "ts": "2025-01-01T12:00:00+01:00", "amount": 10},
        {"customer_id": "c1", "type": "visit", "ts": "2025-01-01T23:30:00-05:00", "amount": 5},
        {"customer_id": "c1", "type": "visit", "ts": jan8_utc_noon, "amount": 20},
        {"customer_id": "c1", "type": "rating", "ts": jan8_utc_noon, "stars": 5},
        {"customer_id": "c1", "type": "visit", "ts": jan8_utc_noon + 7 * day_ms, "amount": 40},
        {"customer_id": 42, "type": "visit", "ts": "2025-01-15T10:00:00Z", "amount": 7.5},
        {"customer_id": "c3", "type": "visit", "ts": "2025-02-20T10:00:00Z", "amount": 9},
    ]
    path = tmp_path / "events.jsonl"
    path.write_bytes(b"\n".join(orjson.dumps(e) for e in events) + b"\n\n")
    summary = summarise(read_transactions(path), 7.0, date(2025, 1, 29))
    assert summary.customer_ids == ["c1", "42"]
    assert summary.x.tolist() == [2.0, 0.0]
    assert summary.t_x.tolist() == [2.0, 0.0]
    assert summary.T.tolist() == [4.0, 2.0]
    assert summary.monetary.tolist() == [30.0, 0.0]
    assert summarise(read_transactions(path), 1.0).calibration_end == date(2025, 2, 20)


def test_csv_accepts_both_date_forms_and_extra_columns(tmp_path: Path) -> None:
    path = tmp_path / "log.csv"
    path.write_text("store,customer_id,amount,date\ns1,a,10,2024-03-01\ns1,a,12.5,20240311\n",
                    encoding="utf-8")
    summary = summarise(read_transactions(path), 1.0)
    assert (summary.x[0], summary.t_x[0], summary.T[0], summary.monetary[0]) == (1, 10, 10, 12.5)


@pytest.mark.parametrize(("content", "problem"), [
    ("customer_id,date,amount\n", "no transactions"),
    ("customer_id,amount\na,3\n", "CSV header lacks date"),
    ("customer_id,date,amount\na,2024-13-01,3\n", "log.csv:2: not a date"),
    ("customer_id,date,amount\na,2024-01-01,-3\n", "log.csv:2: amount must be"),
    ("customer_id,date,amount\na,2024-01-01,x\n", "amount is not a number"),
    ("customer_id,date,amount\na,2024-01-01,3\nb,2024-01-05,4\na,2024-01-01,2\n",
     "no repeat customers"),
    ('{"type": "visit", "customer_id": "a", "ts": "2024-01-01T10:00:00", "amount": 1}\n',
     "log.csv:1: 'ts' has no UTC offset"),
    ('{"type": "visit"\n', "log.csv:1: not valid JSON"),
])
def test_unfittable_logs_exit_1_with_the_reason(tmp_path: Path, content: str,
                                                problem: str) -> None:
    path = tmp_path / "log.csv"
    path.write_text(content, encoding="utf-8")
    code, printed, errors = _run(path, unit="day")
    assert (code, printed) == (1, "")
    assert problem in errors


def test_a_calibration_end_before_every_purchase_is_a_fit_error(tmp_path: Path) -> None:
    path = tmp_path / "log.csv"
    path.write_text("customer_id,date,amount\na,2024-01-01,3\na,2024-01-09,3\n",
                    encoding="utf-8")
    code, _, errors = _run(path, unit="day", calibration_end="2023-12-31")
    assert code == 1 and "no transactions on or before the calibration end 2023-12-31" in errors
    with pytest.raises(FitError) as caught:
        summarise(read_transactions(path), 1.0, date(2023, 12, 31))
    assert caught.value.source is None


def test_usage_problems_exit_2(tmp_path: Path) -> None:
    code, _, errors = _run(tmp_path / "absent.csv", unit="week")
    assert code == 2 and "absent.csv" in errors
    path = tmp_path / "log.csv"
    path.write_text("customer_id,date,amount\na,2024-01-01,3\n", encoding="utf-8")
    code, _, errors = _run(path, unit="month")
    assert code == 2 and "unknown unit 'month'" in errors
    code, _, errors = _run(path, unit="week", calibration_end="end of Q3")
    assert code == 2 and "--calibration-end" in errors
