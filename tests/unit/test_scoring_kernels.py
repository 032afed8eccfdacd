"""Scoring kernels against independent float64 references (closed forms, scipy's 2F1, loops)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
from scipy.special import hyp2f1  # type: ignore[import-untyped, unused-ignore]

from engine.scoring import kernels as k
from engine.scoring.model import (
    DEFAULT_MODEL,
    BgNbdParams,
    GammaGammaParams,
    ScoreModel,
    ScoreModelError,
    crossing_age,
    load_model,
    p_alive,
)

REL = 1e-9
CDNOW = BgNbdParams(r=0.243, alpha=4.414, a=0.793, b=2.426)
# (x, t_x, T): no repeat visit, brand-new customer, one visit, recency equal to age, 1,000 visits
EDGES = [(0, 0.0, 0.0), (0, 0.0, 38.86), (1, 0.0, 0.0), (1, 5.0, 5.0), (1, 1.71, 38.86),
         (2, 30.43, 38.86), (7, 12.0, 12.0), (1000, 39.0, 39.0), (1000, 38.9, 39.0),
         (1000, 38.0, 38.86), (30, 0.5, 0.7)]


def _ref_p_alive(x: float, t_x: float, T: float, p: BgNbdParams) -> float:
    if x == 0:
        return 1.0
    return 1.0 / (1.0 + p.a / (p.b + x - 1) * ((p.alpha + T) / (p.alpha + t_x)) ** (p.r + x))


def _ref_churn(x: float, t_x: float, T: float, p: BgNbdParams) -> float:
    if x == 0:
        return 0.0
    odds = p.a / (p.b + x - 1) * ((p.alpha + T) / (p.alpha + t_x)) ** (p.r + x)
    return odds / (1.0 + odds)


def _ref_expected_visits(x: float, t_x: float, T: float, t: float, p: BgNbdParams) -> float:
    """FHL 2005 eq. 10 with scipy's 2F1; Euler's transform of the 2F1 when it would overflow."""
    r, alpha, a, b = p.r, p.alpha, p.a, p.b
    c = a + b + x - 1
    z = t / (alpha + T + t)
    if x < 200:
        power_2f1 = ((alpha + T) / (alpha + T + t)) ** (r + x) * hyp2f1(r + x, b + x, c, z)
    else:
        power_2f1 = ((alpha + T) / (alpha + T + t)) ** (a - 1) * hyp2f1(c - r - x, a - 1, c, z)
    return c / (a - 1) * (1.0 - power_2f1) * _ref_p_alive(x, t_x, T, p)


def _ref_spend(x: float, m: float, g: GammaGammaParams) -> float:
    if x == 0:
        return g.p * g.v / (g.q - 1)
    return (g.q - 1) / (g.p * x + g.q - 1) * (g.p * g.v / (g.q - 1)) \
        + g.p * x / (g.p * x + g.q - 1) * m


def _arrays(*columns: list[float]) -> list[np.ndarray]:
    return [np.array(column, dtype=np.float64) for column in columns]


def _random_population(seed: int, n: int = 300) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    x = rng.integers(0, 60, n).astype(np.float64)
    T = rng.uniform(0.0, 100.0, n)
    t_x = np.where(x > 0, T * rng.uniform(0.0, 1.0, n), 0.0)
    monetary = np.where(x > 0, rng.gamma(4.0, 10.0, n), 0.0)
    return [x, t_x, T, monetary]


def _random_params(seed: int) -> BgNbdParams:
    rng = np.random.default_rng(1000 + seed)
    a = rng.uniform(0.1, 3.0)
    if abs(a - 1.0) < 0.05:
        a += 0.1  # the scipy reference divides by a - 1
    return BgNbdParams(rng.uniform(0.1, 3.0), rng.uniform(1.0, 50.0), a, rng.uniform(0.5, 5.0))


@pytest.mark.parametrize("seed", range(5))
def test_p_alive_and_churn_match_the_closed_form_on_random_inputs(seed: int) -> None:
    x, t_x, T, _ = _random_population(seed)
    p = _random_params(seed)
    alive = k.p_alive(x, t_x, T, p.r, p.alpha, p.a, p.b)
    churn = k.churn_risk(x, t_x, T, p.r, p.alpha, p.a, p.b)
    for i in range(x.shape[0]):
        assert math.isclose(alive[i], _ref_p_alive(x[i], t_x[i], T[i], p), rel_tol=REL)
        assert math.isclose(churn[i], _ref_churn(x[i], t_x[i], T[i], p), rel_tol=REL)


@pytest.mark.parametrize(("x", "t_x", "T"), EDGES)
def test_p_alive_and_churn_on_edge_inputs(x: float, t_x: float, T: float) -> None:
    xs, t_xs, Ts = _arrays([x], [t_x], [T])
    for p in (CDNOW, BgNbdParams()):
        alive = k.p_alive(xs, t_xs, Ts, p.r, p.alpha, p.a, p.b)[0]
        churn = k.churn_risk(xs, t_xs, Ts, p.r, p.alpha, p.a, p.b)[0]
        assert math.isclose(alive, _ref_p_alive(x, t_x, T, p), rel_tol=REL)
        assert math.isclose(churn, _ref_churn(x, t_x, T, p), rel_tol=REL, abs_tol=0.0)
        assert math.isclose(alive + churn, 1.0, rel_tol=1e-15)


def test_p_alive_survives_values_whose_power_overflows() -> None:
    xs, t_xs, Ts = _arrays([1000.0, 1000.0], [1.0, 10.0], [500.0, 10.0])
    alive = k.p_alive(xs, t_xs, Ts, CDNOW.r, CDNOW.alpha, CDNOW.a, CDNOW.b)
    churn = k.churn_risk(xs, t_xs, Ts, CDNOW.r, CDNOW.alpha, CDNOW.a, CDNOW.b)
    assert alive[0] == 0.0 and churn[0] == 1.0
    assert math.isclose(alive[1], 1.0 / (1.0 + CDNOW.a / (CDNOW.b + 999)), rel_tol=REL)


def test_kernel_p_alive_agrees_with_the_scalar_one_in_days_and_weeks() -> None:
    x, t_x, T, _ = _random_population(7, n=50)
    p = BgNbdParams()
    alive = k.p_alive(x, t_x / 7.0, T / 7.0, p.r, p.alpha, p.a, p.b)
    for i in range(x.shape[0]):
        scalar = p_alive(int(x[i]), t_x[i], T[i], p, unit_days=7.0)
        assert math.isclose(alive[i], scalar, rel_tol=REL)


@pytest.mark.parametrize("seed", range(5))
def test_expected_visits_matches_the_hypergeometric_closed_form(seed: int) -> None:
    x, t_x, T, _ = _random_population(seed, n=150)
    p = _random_params(seed)
    for horizon in (0.5, 13.0, 52.0, 365.0):
        got = k.expected_visits(x, t_x, T, horizon, p.r, p.alpha, p.a, p.b)
        for i in range(x.shape[0]):
            want = _ref_expected_visits(x[i], t_x[i], T[i], horizon, p)
            assert math.isclose(got[i], want, rel_tol=REL), (i, horizon, p)


@pytest.mark.parametrize(("x", "t_x", "T"), EDGES)
@pytest.mark.parametrize("horizon", [1.0, 39.0, 52.0])
def test_expected_visits_on_edge_inputs(x: float, t_x: float, T: float, horizon: float) -> None:
    xs, t_xs, Ts = _arrays([x], [t_x], [T])
    for p in (CDNOW, BgNbdParams(r=2.0, alpha=3.0, a=2.5, b=0.7)):
        got = k.expected_visits(xs, t_xs, Ts, horizon, p.r, p.alpha, p.a, p.b)[0]
        assert math.isclose(got, _ref_expected_visits(x, t_x, T, horizon, p), rel_tol=REL)


def test_expected_visits_converges_when_z_is_close_to_one() -> None:
    p = BgNbdParams(r=0.8, alpha=0.5, a=0.5, b=3.0)
    xs, t_xs, Ts = _arrays([0.0, 2.0], [0.0, 0.1], [0.0, 0.2])
    got = k.expected_visits(xs, t_xs, Ts, 365.0, p.r, p.alpha, p.a, p.b)
    for i in range(2):
        want = _ref_expected_visits(xs[i], t_xs[i], Ts[i], 365.0, p)
        assert math.isclose(got[i], want, rel_tol=REL)


def test_expected_visits_is_continuous_through_a_equal_to_one() -> None:
    xs, t_xs, Ts = _arrays([0.0, 3.0, 40.0], [0.0, 10.0, 30.0], [20.0, 20.0, 31.0])
    at_one = k.expected_visits(xs, t_xs, Ts, 52.0, 0.7, 5.0, 1.0, 2.0)
    below = k.expected_visits(xs, t_xs, Ts, 52.0, 0.7, 5.0, 1.0 - 1e-5, 2.0)
    above = k.expected_visits(xs, t_xs, Ts, 52.0, 0.7, 5.0, 1.0 + 1e-5, 2.0)
    assert np.all(np.isfinite(at_one))
    np.testing.assert_allclose(at_one, (below + above) / 2.0, rtol=1e-8)


def test_expected_visits_is_zero_over_an_empty_horizon() -> None:
    xs, t_xs, Ts = _arrays([0.0, 4.0], [0.0, 3.0], [1.0, 5.0])
    assert list(k.expected_visits(xs, t_xs, Ts, 0.0, 0.8, 20.0, 0.5, 3.0)) == [0.0, 0.0]


def test_expected_spend_matches_the_gamma_gamma_weighted_mean() -> None:
    x, _, _, monetary = _random_population(3)
    x = np.concatenate([x, [0.0, 1.0, 1000.0]])
    monetary = np.concatenate([monetary, [0.0, 12.5, 41.0]])
    for g in (GammaGammaParams(), GammaGammaParams(6.25, 3.74, 15.44),
              GammaGammaParams(0.3, 1.2, 90.0)):
        got = k.expected_spend(x, monetary, g.p, g.q, g.v)
        for i in range(x.shape[0]):
            assert math.isclose(got[i], _ref_spend(x[i], monetary[i], g), rel_tol=REL)


def test_discount_factor_and_clv_follow_the_documented_approximation() -> None:
    horizon_days, annual = 365.0, 0.10
    delta_h = math.log(1.0 + annual) * horizon_days / 365.25
    assert math.isclose(k.discount_factor(horizon_days, annual),
                        (1.0 - math.exp(-delta_h)) / delta_h, rel_tol=1e-12)
    assert k.discount_factor(365.0, 0.0) == 1.0
    visits, spend = _arrays([0.0, 1.5, 12.0], [40.0, 22.0, 35.5])
    got = k.clv(visits, spend, 0.3, 0.95)
    for i in range(3):
        assert math.isclose(got[i], visits[i] * spend[i] * 0.3 * 0.95, rel_tol=REL)


@pytest.mark.parametrize("seed", range(3))
def test_score_batch_equals_the_separate_kernels(seed: int) -> None:
    x, t_x, T, monetary = _random_population(seed)
    x[:4] = [0.0, 1.0, 1000.0, 5.0]
    t_x[:4] = [0.0, T[1], T[2], 0.0]
    model = ScoreModel(_random_params(seed), GammaGammaParams(6.25, 3.74, 15.44), unit_days=7.0,
                       horizon_days=180.0, annual_discount=0.08, margin=0.4)
    scores = k.score_batch(x, t_x, T, monetary, model)
    p = model.bgnbd
    horizon = 180.0 / 7.0
    visits = k.expected_visits(x, t_x, T, horizon, p.r, p.alpha, p.a, p.b)
    spend = k.expected_spend(x, monetary, 6.25, 3.74, 15.44)
    value = k.clv(visits, spend, 0.4, k.discount_factor(180.0, 0.08))
    np.testing.assert_allclose(scores.p_alive, k.p_alive(x, t_x, T, p.r, p.alpha, p.a, p.b),
                               rtol=1e-14)
    np.testing.assert_allclose(scores.churn_risk,
                               k.churn_risk(x, t_x, T, p.r, p.alpha, p.a, p.b), rtol=1e-14)
    np.testing.assert_allclose(scores.expected_visits, visits, rtol=1e-14)
    np.testing.assert_allclose(scores.expected_spend, spend, rtol=1e-14)
    np.testing.assert_allclose(scores.clv, value, rtol=1e-14)


@pytest.mark.parametrize("seed", range(3))
def test_one_customer_scores_exactly_as_its_row_of_a_batch(seed: int) -> None:
    x, t_x, T, monetary = _random_population(seed)
    x[:4] = [0.0, 1.0, 1000.0, 5.0]
    t_x[:4] = [0.0, T[1], T[2], 0.0]
    T[4] = t_x[4] - 1.0  # an age below t_x reads as t_x in both
    model = ScoreModel(_random_params(seed), GammaGammaParams(6.25, 3.74, 15.44), unit_days=7.0,
                       horizon_days=180.0, annual_discount=0.08, margin=0.4)
    rows = k.score_batch(x, t_x, np.maximum(T, t_x), monetary, model)
    for i in range(x.shape[0]):
        one = k.score_one(x[i], t_x[i], T[i], monetary[i], model)
        row = tuple(float(column[i]) for column in rows)
        assert one == row or all(a == b or (math.isnan(a) and math.isnan(b))
                                 for a, b in zip(one, row, strict=True))


def test_score_batch_rejects_misaligned_arrays() -> None:
    with pytest.raises(k.ScoreInputError, match="monetary"):
        k.score_batch(np.zeros(3), np.zeros(3), np.zeros(3), np.zeros(2), DEFAULT_MODEL)
    assert k.score_batch(np.zeros(0), np.zeros(0), np.zeros(0), np.zeros(0),
                         DEFAULT_MODEL).clv.shape == (0,)


def _slow_level(value: float, cuts: np.ndarray) -> int:
    level = 1
    for cut in cuts:
        if cut < value:
            level += 1
    return level


def test_rfm_scores_match_a_slow_loop() -> None:
    x, t_x, T, monetary = _random_population(11, n=500)
    cuts = k.rfm_breakpoints(x, t_x, T, monetary)
    x = np.concatenate([x, [cuts.frequency[1], 0.0, 1000.0]])
    t_x = np.concatenate([t_x, [0.0, 0.0, 50.0]])
    T = np.concatenate([T, [cuts.recency[2], 0.0, 50.0]])
    monetary = np.concatenate([monetary, [cuts.monetary[0], 0.0, 1e6]])
    scores = k.score_rfm(x, t_x, T, monetary, cuts)
    for i in range(x.shape[0]):
        assert scores[i, 0] == 6 - _slow_level(T[i] - t_x[i], cuts.recency)
        assert scores[i, 1] == _slow_level(x[i], cuts.frequency)
        assert scores[i, 2] == _slow_level(monetary[i], cuts.monetary)
    assert scores.min() >= 1 and scores.max() <= 5
    assert scores[-1].tolist() == [5, 5, 5] and scores[-2, 1] == 1


def test_rfm_rejects_unsorted_breakpoints() -> None:
    cuts = k.RfmBreakpoints(np.array([3.0, 1.0]), np.array([1.0, 2.0]), np.array([1.0, 2.0]))
    with pytest.raises(k.ScoreInputError, match="recency"):
        k.score_rfm(np.ones(2), np.ones(2), np.ones(2), np.ones(2), cuts)


def test_warm_up_reports_its_time() -> None:
    assert 0.0 < k.warm_up() < 60.0


def test_scalar_functions_take_days_and_a_unit() -> None:
    params = BgNbdParams(0.243, 4.414, 0.793, 2.426)
    in_weeks = p_alive(3, 10.0, 20.0, params)
    assert math.isclose(p_alive(3, 70.0, 140.0, params, unit_days=7.0), in_weeks, rel_tol=1e-12)
    age = crossing_age(3, 70.0, 0.3, params, unit_days=7.0)
    assert age is not None and age > 70.0
    assert math.isclose(p_alive(3, 70.0, age, params, unit_days=7.0), 0.3, rel_tol=1e-9)


def _write(tmp_path: Path, content: object) -> Path:
    path = tmp_path / "scores.json"
    path.write_text(json.dumps(content), encoding="utf-8")
    return path


GOOD = {"unit": "week", "bgnbd": {"r": 0.243, "alpha": 4.414, "a": 0.793, "b": 2.426},
        "gamma_gamma": {"p": 6.25, "q": 3.74, "v": 15.44}}


def test_load_model_reads_the_fit_output(tmp_path: Path) -> None:
    model = load_model(_write(tmp_path, {**GOOD, "margin": 0.3, "horizon_days": 180}))
    assert model.unit_days == 7.0 and model.bgnbd == CDNOW
    assert model.gamma_gamma == GammaGammaParams(6.25, 3.74, 15.44)
    assert (model.margin, model.horizon_days, model.annual_discount) == (0.3, 180.0, 0.10)


@pytest.mark.parametrize(("change", "problem"), [
    ({"unit": "fortnight"}, "unknown unit 'fortnight'"),
    ({"bgnbd": {"r": 0.2, "alpha": 4.0, "a": 0.8}}, "missing key bgnbd.b"),
    ({"bgnbd": {"r": 0.2, "alpha": -4.0, "a": 0.8, "b": 2.0}},
     "bgnbd.alpha must be a positive number"),
    ({"gamma_gamma": {"p": 6.0, "q": 0.0, "v": 15.0}}, "gamma_gamma.q must be a positive number"),
    ({"gamma_gamma": {"p": 6.0, "q": 0.9, "v": 15.0}}, "must exceed 1"),
    ({"gamma_gamma": None}, "missing object 'gamma_gamma'"),
    ({"margin": -1}, "margin must be a number"),
])
def test_load_model_names_the_file_and_the_problem(tmp_path: Path, change: dict[str, object],
                                                   problem: str) -> None:
    path = _write(tmp_path, {**GOOD, **change})
    with pytest.raises(ScoreModelError) as caught:
        load_model(path)
    assert str(path) in str(caught.value) and problem in str(caught.value)


def test_load_model_rejects_missing_and_malformed_files(tmp_path: Path) -> None:
    with pytest.raises(ScoreModelError, match="cannot read"):
        load_model(tmp_path / "absent.json")
    bad = tmp_path / "bad.json"
    bad.write_text("{not json", encoding="utf-8")
    with pytest.raises(ScoreModelError, match="not valid JSON"):
        load_model(bad)
