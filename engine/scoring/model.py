"""Customer-value model parameters and the scalar P(alive) (BG/NBD, Fader, Hardie and Lee 2005).

`x` is the number of repeat visits, `t_x` the time of the last visit and `T` (`age`) the
customer's age, both from the first visit. The scalar functions take times in days and divide
by `unit_days` (the unit the parameters were fitted in: 1.0 for days, 7.0 for weeks). The
crossing time solves P(alive) = threshold for T in closed form, so an entry on "P(alive) below
0.3" is a timer, not a daily scan. Array kernels for whole batches live in
`engine.scoring.kernels`.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from engine.core.timeutil import DAY_MS
from engine.errors import JourneysError

UNIT_DAYS: dict[str, float] = {"day": 1.0, "week": 7.0}


class ScoreModelError(JourneysError, ValueError):
    """A score model file that cannot be used, with the file and the problem."""

    code = "score_model"

    def __init__(self, path: str, problem: str) -> None:
        super().__init__(f"{path}: {problem}")
        self.path = path
        self.problem = problem


@dataclass(frozen=True)
class BgNbdParams:
    """BG/NBD parameters; the defaults (in days) suit a restaurant chain's visit pattern."""

    r: float = 0.8
    alpha: float = 20.0
    a: float = 0.5
    b: float = 3.0


@dataclass(frozen=True)
class GammaGammaParams:
    """Gamma-Gamma spend parameters; the defaults give a mean check of p*v/(q-1) = 40."""

    p: float = 6.0
    q: float = 4.0
    v: float = 20.0


@dataclass(frozen=True)
class ScoreModel:
    """Everything the batch scorer needs: both models, their time unit and the CLV terms."""

    bgnbd: BgNbdParams
    gamma_gamma: GammaGammaParams
    unit_days: float
    horizon_days: float = 365.0
    annual_discount: float = 0.10
    margin: float = 1.0


DEFAULT_PARAMS = BgNbdParams()
DEFAULT_GAMMA_GAMMA = GammaGammaParams()
DEFAULT_MODEL = ScoreModel(DEFAULT_PARAMS, DEFAULT_GAMMA_GAMMA, unit_days=1.0)


def p_alive(x: int, t_x: float, age: float, params: BgNbdParams = DEFAULT_PARAMS, *,
            unit_days: float = 1.0) -> float:
    """P(alive | x, t_x, T) with times in days. One-visit customers (x = 0) are alive."""
    if x <= 0:
        return 1.0
    r, alpha, a, b = params.r, params.alpha, params.a, params.b
    t_x /= unit_days
    age = max(age / unit_days, t_x)
    log_ratio = (r + x) * math.log1p((age - t_x) / (alpha + t_x))
    log_odds = math.log(a) - math.log(b + x - 1) + log_ratio
    if log_odds > 700:
        return 0.0
    return 1.0 / (1.0 + math.exp(log_odds))


def crossing_age(x: int, t_x: float, threshold: float, params: BgNbdParams = DEFAULT_PARAMS,
                 *, unit_days: float = 1.0) -> float | None:
    """The age in days since the first visit at which P(alive) falls to `threshold`.

    None when it never does (one-visit customers).
    """
    if x <= 0:
        return None
    r, alpha, a, b = params.r, params.alpha, params.a, params.b
    log_k = math.log(1.0 / threshold - 1.0) + math.log(b + x - 1) - math.log(a)
    if log_k <= 0:
        return t_x
    t_units = t_x / unit_days
    age = t_units + (alpha + t_units) * math.expm1(log_k / (r + x))
    return max(age * unit_days, t_x)


def profile_p_alive(visit_count: int, first_ms: int | None, last_ms: int | None, now_ms: int,
                    params: BgNbdParams = DEFAULT_PARAMS, *,
                    unit_days: float = 1.0) -> float | None:
    """P(alive) of a profile at `now_ms`; None before the first visit."""
    if first_ms is None or last_ms is None:
        return None
    return p_alive(visit_count - 1, (last_ms - first_ms) / DAY_MS, (now_ms - first_ms) / DAY_MS,
                   params, unit_days=unit_days)


def p_alive_crossing_ms(visit_count: int, first_ms: int | None, last_ms: int | None,
                        threshold: float, params: BgNbdParams = DEFAULT_PARAMS, *,
                        unit_days: float = 1.0) -> int | None:
    """The epoch ms at which the profile's P(alive) falls to `threshold`, if it ever does."""
    if first_ms is None or last_ms is None:
        return None
    age = crossing_age(visit_count - 1, (last_ms - first_ms) / DAY_MS, threshold, params,
                       unit_days=unit_days)
    if age is None:
        return None
    return first_ms + math.ceil(age * DAY_MS)


def load_model(path: str | Path) -> ScoreModel:
    """Read the JSON written by `journeys fit` (`unit`, `bgnbd`, `gamma_gamma`, optional terms)."""
    name = str(path)
    try:
        raw = json.loads(Path(path).read_text(encoding="utf-8"))
    except OSError as exc:
        raise ScoreModelError(name, f"cannot read the file: {exc.strerror or exc}") from None
    except json.JSONDecodeError as exc:
        raise ScoreModelError(name, f"not valid JSON: {exc}") from None
    if not isinstance(raw, dict):
        raise ScoreModelError(name, "the top level must be a JSON object")
    unit = raw.get("unit")
    if unit not in UNIT_DAYS:
        raise ScoreModelError(name, f"unknown unit {unit!r}; known units: "
                                    f"{', '.join(UNIT_DAYS)}")
    bgnbd = BgNbdParams(*_positive_section(name, raw, "bgnbd", ("r", "alpha", "a", "b")))
    gamma_gamma = GammaGammaParams(*_positive_section(name, raw, "gamma_gamma", ("p", "q", "v")))
    if gamma_gamma.q <= 1.0:
        raise ScoreModelError(name, f"gamma_gamma.q must exceed 1 for a finite expected spend, "
                                    f"got {gamma_gamma.q}")
    horizon = _optional_number(name, raw, "horizon_days", 365.0, minimum=0.0)
    discount = _optional_number(name, raw, "annual_discount", 0.10, minimum=0.0)
    margin = _optional_number(name, raw, "margin", 1.0, minimum=0.0)
    return ScoreModel(bgnbd, gamma_gamma, UNIT_DAYS[unit], horizon, discount, margin)


def _positive_section(name: str, raw: dict[str, Any], section: str,
                      keys: tuple[str, ...]) -> list[float]:
    block = raw.get(section)
    if not isinstance(block, dict):
        raise ScoreModelError(name, f"missing object {section!r}")
    values = []
    for key in keys:
        if key not in block:
            raise ScoreModelError(name, f"missing key {section}.{key}")
        value = block[key]
        if isinstance(value, bool) or not isinstance(value, int | float) \
                or not math.isfinite(value) or value <= 0:
            raise ScoreModelError(name, f"{section}.{key} must be a positive number, "
                                        f"got {value!r}")
        values.append(float(value))
    return values


def _optional_number(name: str, raw: dict[str, Any], key: str, default: float, *,
                     minimum: float) -> float:
    value = raw.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int | float) \
            or not math.isfinite(value) or value < minimum:
        raise ScoreModelError(name, f"{key} must be a number of at least {minimum:g}, "
                                    f"got {value!r}")
    return float(value)
