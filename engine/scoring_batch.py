"""Scores of a batch's customers, computed together at the batch's clock."""

from __future__ import annotations

from collections.abc import Iterable

from engine.scoring import BgNbdParams, profile_p_alive
from engine.state import CustomerState


def score_states(states: Iterable[CustomerState], clock: int, params: BgNbdParams) -> None:
    """Set `state.scores` of every customer with a visit, as of `clock`."""
    for state in states:
        profile = state.profile
        p_alive = profile_p_alive(profile.visit_count, profile.first_visit_at,
                                  profile.last_visit_at, clock, params)
        state.scores = None if p_alive is None else {"p_alive": p_alive,
                                                     "churn_risk": 1.0 - p_alive}
