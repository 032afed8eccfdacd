"""A customer's scores, computed when a condition or template first reads one that day.

Scores are read as of the start of the day, or of a visit that day, whichever is later, so
they do not depend on batch boundaries. Computing them only when read costs nothing for the
many customers whose journeys read no score; each computation is one call of the Numba kernel
that `score_batch` runs on whole populations, with the same result.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from engine.core.state import CustomerState
from engine.core.timeutil import DAY_MS
from engine.scoring.kernels import score_one
from engine.scoring.model import ScoreModel

SCORE_NAMES = ("p_alive", "expected_visits", "expected_spend", "clv", "churn_risk")
"""The scores, in the order `score_one` returns them."""


@dataclass
class ScoringTime:
    """Time spent in `score_state` in this process, and customers scored (for benchmarks)."""

    seconds: float = 0.0
    customers: int = 0


SCORING_TIME = ScoringTime()


def score_state(state: CustomerState, clock: int, model: ScoreModel) -> None:
    """Set `state.scores` as of `clock` (None for a customer with no visit yet).

    Inputs follow the models' conventions: x is the number of repeat visits, t_x the time of
    the last visit and T the age, both since the first visit, in the model's time unit;
    monetary is the mean amount of the repeat visits.
    """
    began = time.perf_counter()
    profile = state.profile
    first, last = profile.first_visit_at, profile.last_visit_at
    if first is None or last is None:
        state.scores = None
        state.scores_basis = None
    else:
        unit_ms = DAY_MS * model.unit_days
        repeats = profile.visit_count - 1
        monetary = ((profile.total_spend - (profile.first_visit_amount or 0.0)) / repeats
                    if repeats > 0 else 0.0)
        values = score_one(repeats, (last - first) / unit_ms, max(clock - first, 0) / unit_ms,
                           monetary, model)
        state.scores = dict(zip(SCORE_NAMES, values, strict=True))
        state.scores_basis = (profile.visit_count, profile.total_spend, clock)
    SCORING_TIME.seconds += time.perf_counter() - began
    SCORING_TIME.customers += 1
