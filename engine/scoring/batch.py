"""Scores of a batch's customers, computed together by one Numba kernel at the batch's clock."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from engine.core.state import CustomerState
from engine.core.timeutil import DAY_MS
from engine.scoring.kernels import score_batch
from engine.scoring.model import ScoreModel


@dataclass
class ScoringTime:
    """Time spent in `score_states` in this process, and customers scored (for benchmarks)."""

    seconds: float = 0.0
    customers: int = 0
    calls: int = 0


SCORING_TIME = ScoringTime()


def score_states(states: Sequence[CustomerState], clock: int, model: ScoreModel) -> None:
    """Set `state.scores` of every customer with a visit, as of `clock`; others get None.

    Inputs follow the models' conventions: x is the number of repeat visits, t_x the time of
    the last visit and T the age, both since the first visit, in the model's time unit;
    monetary is the mean amount of the repeat visits.
    """
    began = time.perf_counter()
    try:
        _score(states, clock, model)
    finally:
        SCORING_TIME.seconds += time.perf_counter() - began
        SCORING_TIME.customers += len(states)
        SCORING_TIME.calls += 1


def _score(states: Sequence[CustomerState], clock: int, model: ScoreModel) -> None:
    scored = [s for s in states if s.profile.first_visit_at is not None
              and s.profile.last_visit_at is not None]
    for state in states:
        state.scores = None
        state.scores_basis = None
    if not scored:
        return
    count = len(scored)
    x = np.empty(count)
    t_x = np.empty(count)
    age = np.empty(count)
    monetary = np.empty(count)
    unit_ms = DAY_MS * model.unit_days
    for index, state in enumerate(scored):
        profile = state.profile
        first = profile.first_visit_at or 0
        repeats = profile.visit_count - 1
        x[index] = repeats
        t_x[index] = ((profile.last_visit_at or first) - first) / unit_ms
        age[index] = max(clock - first, 0) / unit_ms
        monetary[index] = ((profile.total_spend - (profile.first_visit_amount or 0.0)) / repeats
                           if repeats > 0 else 0.0)
    np.maximum(age, t_x, out=age)
    result = score_batch(x, t_x, age, monetary, model)
    for index, state in enumerate(scored):
        state.scores_basis = (state.profile.visit_count, state.profile.total_spend, clock)
        state.scores = {
            "p_alive": float(result.p_alive[index]),
            "churn_risk": float(result.churn_risk[index]),
            "expected_visits": float(result.expected_visits[index]),
            "expected_spend": float(result.expected_spend[index]),
            "clv": float(result.clv[index]),
        }
