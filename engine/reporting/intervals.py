"""Confidence intervals for proportions and their differences.

Wilson score interval for one proportion p = x/n, with z the normal quantile (1.96 for 95%):

    centre = (p + z²/2n) / (1 + z²/n)
    half   = z / (1 + z²/n) * sqrt(p(1-p)/n + z²/4n²)

Newcombe's hybrid score interval (Newcombe 1998, method 10) for d = p1 - p2, from the Wilson
intervals (l1, u1) of p1 and (l2, u2) of p2:

    lower = d - sqrt((p1 - l1)² + (u2 - p2)²)
    upper = d + sqrt((u1 - p1)² + (p2 - l2)²)

Unlike the textbook Wald interval it stays inside [-1, 1], behaves at 0% and 100%, and keeps
close to its nominal coverage with the small holdout groups journeys have.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

Z_95 = 1.959963984540054
"""The 97.5% quantile of the standard normal distribution."""


@dataclass(frozen=True)
class Interval:
    """A closed interval [low, high]."""

    low: float
    high: float

    def contains(self, value: float) -> bool:
        return self.low <= value <= self.high


def wilson(successes: int, trials: int, z: float = Z_95) -> Interval:
    """Wilson score interval of the proportion successes/trials."""
    if trials <= 0:
        raise ValueError(f"a proportion needs at least one trial, got {trials}")
    if not 0 <= successes <= trials:
        raise ValueError(f"successes must be within 0..{trials}, got {successes}")
    p = successes / trials
    z2 = z * z
    denominator = 1 + z2 / trials
    centre = (p + z2 / (2 * trials)) / denominator
    half = z / denominator * math.sqrt(p * (1 - p) / trials + z2 / (4 * trials * trials))
    return Interval(max(0.0, centre - half), min(1.0, centre + half))


def newcombe(x1: int, n1: int, x2: int, n2: int, z: float = Z_95) -> Interval:
    """Newcombe's hybrid score interval of x1/n1 - x2/n2."""
    p1, p2 = x1 / n1 if n1 else 0.0, x2 / n2 if n2 else 0.0
    first, second = wilson(x1, n1, z), wilson(x2, n2, z)
    d = p1 - p2
    lower = d - math.sqrt((p1 - first.low) ** 2 + (second.high - p2) ** 2)
    upper = d + math.sqrt((first.high - p1) ** 2 + (p2 - second.low) ** 2)
    return Interval(lower, upper)
