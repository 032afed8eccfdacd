"""Scoring throughput: pure Python, NumPy and the Numba `score_batch` on one population.

`python -m benchmarks.scoring_bench [--customers N]` prints customers/s for each (best of 3
after a warm-up) and the largest relative difference between their CLVs.
"""

from __future__ import annotations

import argparse
import math
import os
import platform
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import numba
import numpy as np
import orjson
from numpy.typing import NDArray

from engine.app.generator import ChainConfig, generate_events
from engine.core.catalog import Catalog
from engine.core.records import RawBatch, ShardBatch
from engine.flow.processor import ShardProcessor
from engine.flow.routing import BatchRouter
from engine.flow.runner import redis_endpoint
from engine.scoring.customer_scores import SCORING_TIME
from engine.scoring.kernels import SERIES_EPS, discount_factor, score_batch, warm_up
from engine.scoring.model import DEFAULT_MODEL, ScoreModel
from engine.storage.redis_client import connect
from journeys_dsl.loader import load_journeys
from journeys_dsl.segments import load_segments

FloatArray = NDArray[np.float64]
Batch = tuple[FloatArray, FloatArray, FloatArray, FloatArray]
Scorer = Callable[[Batch, ScoreModel], FloatArray]


EXAMPLES = Path(__file__).resolve().parents[1] / "examples" / "journeys"


def population(customers: int, seed: int = 7) -> Batch:
    """A restaurant-like population in days: ages up to two years, visits every ~3 weeks."""
    rng = np.random.default_rng(seed)
    T = rng.uniform(0.0, 730.0, customers)
    rate = rng.gamma(0.8, 1.0 / 20.0, customers)
    x = rng.poisson(rate * T).astype(np.float64)
    t_x = np.where(x > 0, T * rng.beta(3.0, 1.0, customers), 0.0)
    monetary = np.where(x > 0, rng.gamma(6.0, 40.0 / 6.0, customers), 0.0)
    return x, t_x, T, monetary


def _python_clv(batch: Batch, model: ScoreModel) -> FloatArray:
    bg, gg = model.bgnbd, model.gamma_gamma
    r, alpha, a, b = bg.r, bg.alpha, bg.a, bg.b
    horizon = model.horizon_days / model.unit_days
    factor = model.margin * discount_factor(model.horizon_days, model.annual_discount)
    out = []
    for x, t_x, T, m in zip(*(column.tolist() for column in batch), strict=True):
        age = max(T, t_x)
        alive = 1.0
        if x > 0:
            log_odds = (math.log(a) - math.log(b + x - 1)
                        + (r + x) * math.log1p((age - t_x) / (alpha + t_x)))
            alive = 0.0 if log_odds > 700 else 1.0 / (1.0 + math.exp(log_odds))
        c = a + b + x - 1
        e = c - r - x
        log_1mz = -math.log1p(horizon / (alpha + age))
        z = horizon / (alpha + age + horizon)
        u = (a - 1) * log_1mz
        head = -log_1mz if u == 0 else -log_1mz * math.expm1(u) / u
        term = total = e * z
        k = 1.0
        while term != 0.0:
            rho = z * max(1.0, (a + k - 1) / (k + 1))
            if e + k >= 0 and rho < 1 and abs(term) * rho <= SERIES_EPS * abs(total) * (1 - rho):
                break
            term *= z * (e + k) * (a + k - 1) / ((c + k) * (k + 1))
            total += term
            k += 1
        visits = (c * head - math.exp(u) * total) * alive
        spend = (gg.p * gg.v / (gg.q - 1) if x <= 0
                 else gg.p * (gg.v + x * m) / (gg.p * x + gg.q - 1))
        out.append(visits * spend * factor)
    return np.array(out)


def _numpy_clv(batch: Batch, model: ScoreModel) -> FloatArray:
    x, t_x, T, m = batch
    bg, gg = model.bgnbd, model.gamma_gamma
    r, alpha, a, b = bg.r, bg.alpha, bg.a, bg.b
    horizon = model.horizon_days / model.unit_days
    age = np.maximum(T, t_x)
    with np.errstate(over="ignore", divide="ignore", invalid="ignore"):
        log_odds = (math.log(a) - np.log(b + x - 1)
                    + (r + x) * np.log1p((age - t_x) / (alpha + t_x)))
        alive = np.where(x > 0, 1.0 / (1.0 + np.exp(log_odds)), 1.0)
    c = a + b + x - 1
    e = c - r - x
    log_1mz = -np.log1p(horizon / (alpha + age))
    z = horizon / (alpha + age + horizon)
    u = (a - 1) * log_1mz
    head = -log_1mz if a == 1 else -log_1mz * np.expm1(u) / u
    term = e * z
    total = term.copy()
    k = 1.0
    while True:
        rho = z * max(1.0, (a + k - 1) / (k + 1))
        done = (term == 0) | ((e + k >= 0) & (np.abs(term) * rho
                                              <= SERIES_EPS * np.abs(total) * (1 - rho)))
        if done.all():
            break
        term = term * z * (e + k) * (a + k - 1) / ((c + k) * (k + 1))
        total += term
        k += 1
    visits = (c * head - np.exp(u) * total) * alive
    spend = np.where(x > 0, gg.p * (gg.v + x * m) / (gg.p * x + gg.q - 1),
                     gg.p * gg.v / (gg.q - 1))
    factor = model.margin * discount_factor(model.horizon_days, model.annual_discount)
    return visits * spend * factor


def _numba_clv(batch: Batch, model: ScoreModel) -> FloatArray:
    return score_batch(*batch, model).clv


def best_rate(scorer: Scorer, batch: Batch, model: ScoreModel,
              repeats: int = 3) -> tuple[float, FloatArray]:
    """Customers per second, best of `repeats`, after one warm-up call on a small slice."""
    x, t_x, T, monetary = batch
    scorer((x[:100], t_x[:100], T[:100], monetary[:100]), model)
    best, result = math.inf, np.empty(0)
    for _ in range(repeats):
        started = time.perf_counter()
        result = scorer(batch, model)
        best = min(best, time.perf_counter() - started)
    return batch[0].shape[0] / best, result


def main(argv: Sequence[str] | None = None) -> int:
    """Run the three implementations and print the table."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.scoring_bench",
                                     description="Customers scored per second, three ways.")
    parser.add_argument("--customers", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--chain-customers", type=int, default=1500,
                        help="customers of the generated chain whose year the shard processor "
                             "runs to measure the share of scoring (0: skip)")
    parser.add_argument("--redis", help="Redis URL for that run (default: embedded)")
    args = parser.parse_args(argv)
    if args.customers < 100:
        parser.error("--customers must be at least 100")
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, "
          f"Python {platform.python_version()}, NumPy {np.__version__}, Numba {numba.__version__}")
    print(f"warm_up (Numba kernels): {warm_up():.3f} s")
    batch = population(args.customers, args.seed)
    model = DEFAULT_MODEL
    rates, results = {}, {}
    for name, scorer in (("pure Python", _python_clv), ("NumPy", _numpy_clv),
                         ("Numba", _numba_clv)):
        rates[name], results[name] = best_rate(scorer, batch, model)
    base = rates["pure Python"]
    print(f"{args.customers} customers, CLV over {model.horizon_days:g} days "
          f"(P(alive), expected visits, expected spend)")
    print(f"{'implementation':<16}{'customers/s':>14}{'vs pure Python':>16}")
    for name, rate in rates.items():
        print(f"{name:<16}{rate:>14,.0f}{rate / base:>15.1f}x")
    reference = results["pure Python"]
    spread = max(float(np.max(np.abs(r - reference) / np.maximum(np.abs(reference), 1e-300)))
                 for r in results.values())
    print(f"largest relative CLV difference between implementations: {spread:.1e}")
    if args.chain_customers:
        print()
        print(processor_share(args.chain_customers, args.seed, args.redis))
    return 0


def processor_share(customers: int, seed: int, redis_url: str | None) -> str:
    """The share of the shard processor's time spent scoring, on a generated chain's year."""
    chain = ChainConfig(seed=seed, customers=customers, days=365, ts_format="ms")
    lines = [orjson.dumps(event) for event in generate_events(chain)]
    catalog = Catalog(load_journeys([str(EXAMPLES)]))
    with redis_endpoint(redis_url) as url:
        client = connect(url)
        prefix = f"bench-scoring-{seed}-{time.time_ns()}"
        shards = 4
        processor = ShardProcessor(client, catalog, prefix=prefix, source_id="bench",
                                   shards=shards, customer_model=load_segments())
        router = BatchRouter(shards, "bench")
        before = SCORING_TIME.seconds
        started = time.perf_counter()
        for start in range(0, len(lines), 2000):
            chunk = [(start + i, line) for i, line in enumerate(lines[start:start + 2000])]
            for _, batch in router.route(RawBatch(chunk, chunk[-1][0])):
                if isinstance(batch, ShardBatch):
                    processor.process(batch)
        total = time.perf_counter() - started
        scoring = SCORING_TIME.seconds - before
        for key in client.scan_iter(match=f"*{prefix}*"):
            client.delete(key)
    return (f"shard processor on {len(lines):,} events ({customers} customers, one year, "
            f"{len(catalog.current)} journeys, real Redis): {len(lines) / total:,.0f} events/s, "
            f"{scoring / total:.1%} of the time in scoring ({scoring:.2f} s of {total:.2f} s)")


if __name__ == "__main__":
    raise SystemExit(main())
