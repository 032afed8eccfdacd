"""`journeys fit`: fit BG/NBD and Gamma-Gamma to a transaction log and write the model file."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path
from typing import Any, TextIO

from engine.scoring.fitting import (
    FitError,
    FitResult,
    fit_summary,
    parse_day,
    read_transactions,
    summarise,
)
from engine.scoring.model import UNIT_DAYS

EXIT_OK = 0
EXIT_FIT_ERROR = 1
EXIT_USAGE = 2


def fit_command(path: str, *, unit: str, calibration_end: str | None, out: str | None,
                stdout: TextIO, stderr: TextIO) -> int:
    """Fit the log at `path`, print the model JSON and write it to `out` when given.

    Exit 0 on success, 1 when the data cannot be fitted (or `out` cannot be written), 2 for a
    missing file, an unknown unit or a malformed calibration end.
    """
    if unit not in UNIT_DAYS:
        stderr.write(f"journeys fit: unknown unit {unit!r}; use one of {', '.join(UNIT_DAYS)}\n")
        return EXIT_USAGE
    end: date | None = None
    if calibration_end is not None:
        try:
            end = parse_day(calibration_end)
        except ValueError as exc:
            stderr.write(f"journeys fit: --calibration-end: {exc}\n")
            return EXIT_USAGE
    try:
        transactions = read_transactions(path)
        summary = summarise(transactions, UNIT_DAYS[unit], end)
        result = fit_summary(summary)
    except FitError as exc:
        stderr.write(f"journeys fit: {path}: {exc}\n" if exc.source is None
                     else f"journeys fit: {exc}\n")
        return EXIT_FIT_ERROR
    except OSError as exc:
        stderr.write(f"journeys fit: cannot read {path}: {exc.strerror or exc}\n")
        return EXIT_USAGE
    text = json.dumps(model_json(result, unit, summary.calibration_end), indent=2) + "\n"
    stdout.write(text)
    if out is not None:
        try:
            Path(out).write_text(text, encoding="utf-8")
        except OSError as exc:
            stderr.write(f"journeys fit: cannot write {out}: {exc.strerror or exc}\n")
            return EXIT_FIT_ERROR
    return EXIT_OK


def model_json(result: FitResult, unit: str, calibration_end: date) -> dict[str, Any]:
    """The model file's content; `engine.scoring.model.load_model` reads it back."""
    bg, gg = result.bgnbd, result.gamma_gamma
    return {
        "bgnbd": {"r": _sig(bg.r), "alpha": _sig(bg.alpha), "a": _sig(bg.a), "b": _sig(bg.b)},
        "gamma_gamma": {"p": _sig(gg.p), "q": _sig(gg.q), "v": _sig(gg.v)},
        "unit": unit,
        "calibration_end": calibration_end.isoformat(),
        "customers": result.customers,
        "repeat_customers": result.repeat_customers,
        "log_likelihood": round(result.bgnbd_log_likelihood, 4),
        "gamma_gamma_log_likelihood": round(result.gamma_gamma_log_likelihood, 4),
    }


def _sig(value: float) -> float:
    return float(f"{value:.6g}")
