"""Durations, step times, local times and holdout shares as written in journey YAML.

    timeout: 45d          wait: 1d12h          at: day 1 at 11:00          holdout: 10%
"""

from __future__ import annotations

import math
import re

from engine.errors import JourneysError

__all__ = [
    "DURATION_PATTERN",
    "SIGNED_DURATION_PATTERN",
    "UNIT_PATTERN",
    "DurationError",
    "ShareError",
    "format_duration",
    "parse_duration",
    "parse_local_time",
    "parse_share",
    "parse_step_time",
]

_UNIT_SECONDS = {"w": 604_800, "d": 86_400, "h": 3_600, "m": 60, "s": 1}
_UNIT_WORDS = {
    "s": "s", "sec": "s", "secs": "s", "second": "s", "seconds": "s",
    "m": "m", "min": "m", "mins": "m", "minute": "m", "minutes": "m",
    "h": "h", "hr": "h", "hrs": "h", "hour": "h", "hours": "h",
    "d": "d", "day": "d", "days": "d",
    "w": "w", "wk": "w", "wks": "w", "week": "w", "weeks": "w",
}
_MONTHS = frozenset({"mo", "mon", "month", "months", "y", "yr", "year", "years"})
_UNIT_ALTERNATIVES = "|".join(sorted(_UNIT_WORDS, key=lambda word: (-len(word), word)))
DURATION_PATTERN = rf"^\s*(\d+\s*({_UNIT_ALTERNATIVES})\s*)+$"
"""What `parse_duration` reads, as the JSON Schema's pattern: the one grammar of both."""
SIGNED_DURATION_PATTERN = rf"^\s*[+-]?\s*(\d+\s*({_UNIT_ALTERNATIVES})\s*)+$"
"""`DURATION_PATTERN` with an optional sign (offsets such as `-7d`)."""
UNIT_PATTERN = f"({_UNIT_ALTERNATIVES})"
_PART = re.compile(r"(\d+)([.,]\d+)?\s*([^\W\d_]*)")
_STEP_DAY = re.compile(r"day\s*(-?\s*\d+)(?:\s+(?:at\s+)?(.*))?", re.IGNORECASE)
_LOCAL_TIME = re.compile(r"(\d{1,2}):(\d{2})")
_SHARE = re.compile(r"[+-]?(\d+(\.\d*)?|\.\d+)")


class DurationError(JourneysError, ValueError):
    """A duration, step time or local time that cannot be read; `text` is the input."""

    code = "duration"

    def __init__(self, message: str, text: object = None) -> None:
        super().__init__(message)
        self.message = message
        self.text = text

    def __str__(self) -> str:
        return self.message


class ShareError(JourneysError, ValueError):
    """A holdout share outside [0, 1) or not a number; `value` is the input."""

    code = "share"

    def __init__(self, message: str, value: object = None) -> None:
        super().__init__(message)
        self.message = message
        self.value = value

    def __str__(self) -> str:
        return self.message


def parse_duration(text: str | int, *, allow_negative: bool = False) -> int:
    """Seconds in a duration such as "45d", "12h", "1d12h" or "1w 2d" ("-7d" if allowed)."""
    if isinstance(text, bool) or not isinstance(text, str | int):
        raise DurationError(f"expected a duration like '45d', not {text!r}", text)
    if isinstance(text, int):
        raise DurationError(f"add a unit, e.g. '{text}d' for {text} days", text)
    body = text.strip()
    if not body:
        raise DurationError("the duration is empty; write e.g. '45d' or '12h'", text)
    sign = 1
    if body[0] in "+-":
        sign = -1 if body[0] == "-" else 1
        body = body[1:].lstrip()
        if sign < 0 and not allow_negative:
            raise DurationError(f"a duration cannot be negative: '{text}'", text)
    if not body:
        raise DurationError(f"expected a duration like '45d', not '{text}'", text)
    total, pos = 0, 0
    while pos < len(body):
        if body[pos].isspace():
            pos += 1
            continue
        match = _PART.match(body, pos)
        if match is None:
            raise DurationError(f"unexpected '{body[pos]}' in '{text}'; write e.g. '45d' or "
                                "'1d12h'", text)
        total += _part_seconds(match, text, only=pos == 0 and match.end() == len(body))
        pos = match.end()
    return sign * total


def _part_seconds(match: re.Match[str], text: str, *, only: bool) -> int:
    number, fraction, written = match.group(1), match.group(2), match.group(3)
    word = written.lower()
    if not word:
        if only and not fraction:
            return _raise(f"add a unit, e.g. '{number}d' for {number} days", text)
        return _raise(f"add a unit after '{number}{fraction or ''}' in '{text}'; "
                      "use s, m, h, d or w", text)
    if word in _MONTHS or written == "M":
        return _raise(f"months and years vary in length; use days or weeks in '{text}', "
                      "e.g. '30d' or '52w'", text)
    if written != word:
        return _raise(f"write the unit in lowercase in '{text}': '{number}{word}'", text)
    unit = _UNIT_WORDS.get(word)
    if unit is None:
        return _raise(f"unknown unit '{word}' in '{text}'; use s, m, h, d or w", text)
    if fraction:
        value = float(f"{number}.{fraction[1:]}") * _UNIT_SECONDS[unit]
        hint = f" '{format_duration(round(value))}'" if value == round(value) else ""
        return _raise(f"use whole numbers in '{text}', e.g.{hint or ' 1d12h'} instead of "
                      f"'{number}{fraction}{word}'", text)
    return int(number) * _UNIT_SECONDS[unit]


def _raise(message: str, text: object) -> int:
    raise DurationError(message, text)


def parse_step_time(text: str) -> tuple[int, tuple[int, int] | None]:
    """Offset from entry and optional local time: "day 7", "day 1 at 11:00", "36h"."""
    if not isinstance(text, str):
        return parse_duration(text), None
    body = text.strip()
    match = _STEP_DAY.fullmatch(body)
    if match is None:
        if body.lower().startswith("day"):
            raise DurationError(f"expected 'day N' or 'day N at HH:MM' (e.g. 'day 7 at 11:00'), "
                                f"not '{text}'", text)
        return parse_duration(body), None
    day = int(match.group(1).replace(" ", ""))
    if day < 0:
        raise DurationError(f"the day cannot be negative in '{text}'; 'day 0' is the day of "
                            "entry", text)
    clock = match.group(2)
    local_time = parse_local_time(clock) if clock is not None else None
    return day * _UNIT_SECONDS["d"], local_time


def parse_local_time(text: str | int) -> tuple[int, int]:
    """Hour and minute of a local time such as "10:00" or "9:30"."""
    if not isinstance(text, str):
        raise DurationError(f"expected a time like 10:00, not {text!r}; put the time in quotes "
                            "in YAML, e.g. '10:00'", text)
    match = _LOCAL_TIME.fullmatch(text.strip())
    if match is None:
        raise DurationError(f"expected a time like 10:00, not '{text}'", text)
    hour, minute = int(match.group(1)), int(match.group(2))
    if hour > 23 or minute > 59:
        raise DurationError(f"'{text.strip()}' is not a time of day; expected a time like 10:00 "
                            "(hours 0-23, minutes 0-59)", text)
    return hour, minute


def parse_share(value: str | int | float) -> float:
    """Holdout share in [0, 1): "10%", 0.1 or "0.1"."""
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise ShareError(f"holdout must be a share like '10%' or 0.1, not {value!r}", value)
    if isinstance(value, str):
        body = value.strip()
        percent = body.endswith("%")
        number = body[:-1].strip() if percent else body
        if not _SHARE.fullmatch(number):
            raise ShareError(f"holdout must be a share like '10%' or 0.1, not '{value}'", value)
        share = float(number) / 100 if percent else float(number)
    else:
        share = float(value)
    if not (math.isfinite(share) and 0 <= share < 1):
        as_percent = not isinstance(value, str) and 1 <= share < 100
        hint = f"; did you mean '{value}%'?" if as_percent else ""
        raise ShareError(f"holdout must be between 0% and 99%, not {value!r}{hint}", value)
    return share


def format_duration(seconds: int) -> str:
    """Compact text for a number of seconds: 129600 -> "1d12h", 0 -> "0s"."""
    if seconds < 0:
        return "-" + format_duration(-seconds)
    if seconds == 0:
        return "0s"
    parts: list[str] = []
    rest = int(seconds)
    for unit in ("d", "h", "m", "s"):
        count, rest = divmod(rest, _UNIT_SECONDS[unit])
        if count:
            parts.append(f"{count}{unit}")
    return "".join(parts)
