"""Probability that a customer is still active (BG/NBD, Fader, Hardie and Lee 2005).

Time is measured in days. `x` is the number of repeat visits, `t_x` the time of the last
visit and `T` the customer's age, both from the first visit. The crossing time solves
P(alive) = threshold for T in closed form, so an entry on "P(alive) below 0.3" is a timer,
not a daily scan.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from engine.timeutil import DAY_MS


@dataclass(frozen=True)
class BgNbdParams:
    """BG/NBD parameters in days; defaults suit a restaurant chain's visit pattern."""

    r: float = 0.8
    alpha: float = 20.0
    a: float = 0.5
    b: float = 3.0


DEFAULT_PARAMS = BgNbdParams()


def p_alive(x: int, t_x: float, age: float, params: BgNbdParams = DEFAULT_PARAMS) -> float:
    """P(alive | x, t_x, T). One-visit customers (x = 0) are alive with probability 1."""
    if x <= 0:
        return 1.0
    r, alpha, a, b = params.r, params.alpha, params.a, params.b
    age = max(age, t_x)
    log_ratio = (r + x) * (math.log(alpha + age) - math.log(alpha + t_x))
    log_odds = math.log(a) - math.log(b + x - 1) + log_ratio
    if log_odds > 700:
        return 0.0
    return 1.0 / (1.0 + math.exp(log_odds))


def crossing_age(x: int, t_x: float, threshold: float,
                 params: BgNbdParams = DEFAULT_PARAMS) -> float | None:
    """The age (days since first visit) at which P(alive) falls to `threshold`.

    None when it never does (one-visit customers).
    """
    if x <= 0:
        return None
    r, alpha, a, b = params.r, params.alpha, params.a, params.b
    log_k = math.log(1.0 / threshold - 1.0) + math.log(b + x - 1) - math.log(a)
    if log_k <= 0:
        return t_x
    age = (alpha + t_x) * math.exp(log_k / (r + x)) - alpha
    return max(age, t_x)


def profile_p_alive(visit_count: int, first_ms: int | None, last_ms: int | None, now_ms: int,
                    params: BgNbdParams = DEFAULT_PARAMS) -> float | None:
    """P(alive) of a profile at `now_ms`; None before the first visit."""
    if first_ms is None or last_ms is None:
        return None
    return p_alive(visit_count - 1, (last_ms - first_ms) / DAY_MS, (now_ms - first_ms) / DAY_MS,
                   params)


def p_alive_crossing_ms(visit_count: int, first_ms: int | None, last_ms: int | None,
                        threshold: float, params: BgNbdParams = DEFAULT_PARAMS) -> int | None:
    """The epoch ms at which the profile's P(alive) falls to `threshold`, if it ever does."""
    if first_ms is None or last_ms is None:
        return None
    age = crossing_age(visit_count - 1, (last_ms - first_ms) / DAY_MS, threshold, params)
    if age is None:
        return None
    return first_ms + math.ceil(age * DAY_MS)
