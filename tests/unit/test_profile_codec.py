"""The field-by-field writers of a stored state agree with the fields they write.

`Profile.to_dict` and a stored enrollment's row name every field in code (compiled, a read
by name is several times faster than `getattr` in a loop). These tests hold them to the
dataclasses' own fields and defaults, so that a field added later cannot be left out.
"""

from __future__ import annotations

import contextlib
import random
from dataclasses import MISSING, Field, fields
from typing import Any

import pytest

from engine.core.profile import Profile
from engine.core.state import Enrollment, _enrollment_row


def _default(field: Field[Any]) -> Any:
    if field.default is not MISSING:
        return field.default
    if field.default_factory is not MISSING:
        return field.default_factory()
    return None


def _set_value(profile: Profile, field: Field[Any], rng: random.Random) -> None:
    """Give the field a value that differs from its default: one of the default's kind, or
    for a field whose default is None the first candidate its type takes (the compiled
    class checks the types it is given; its fields carry no annotations to read)."""
    number = rng.randint(1, 10**6)
    default = _default(field)
    if default is None:
        candidates: list[Any] = [f"{field.name}-{number}", number, number / 100, {"k": number}]
    elif isinstance(default, bool):
        candidates = [not default]
    elif isinstance(default, int):
        candidates = [number]
    elif isinstance(default, float):
        candidates = [number / 100]
    elif isinstance(default, dict):
        candidates = [{f"k{number % 7}": number}]
    else:
        candidates = [[number / 100] if field.name.endswith("amounts") else [number]]
    for value in candidates:
        try:
            setattr(profile, field.name, value)
            return
        except TypeError:
            continue
    raise AssertionError(f"no test value for {field.name}")


def _reflected(profile: Profile) -> dict[str, Any]:
    """The definition: every field whose value is set and differs from its default."""
    out = {}
    for field in fields(Profile):
        value = getattr(profile, field.name)
        if value is not None and value != _default(field):
            out[field.name] = value
    return out


@pytest.mark.parametrize("seed", range(100))
def test_profile_to_dict_is_the_set_fields_in_order(seed: int) -> None:
    rng = random.Random(seed)
    profile = Profile()
    for field in fields(Profile):
        draw = rng.random()
        if draw < 0.5:
            _set_value(profile, field, rng)
        elif draw < 0.6 and _default(field) is None:
            with contextlib.suppress(TypeError):  # not a dict field: the compiled class checks
                setattr(profile, field.name, {})  # set, though empty: kept
    written = profile.to_dict()
    assert written == _reflected(profile)
    assert list(written) == list(_reflected(profile))  # the stored JSON's order too


def test_profile_to_dict_writes_every_field() -> None:
    rng = random.Random(1)
    profile = Profile()
    for field in fields(Profile):
        _set_value(profile, field, rng)
    assert list(profile.to_dict()) == [field.name for field in fields(Profile)]
    assert Profile().to_dict() == {}


def test_enrollment_row_is_every_field_in_declaration_order() -> None:
    enrollment = Enrollment("lost_regular", 2, 3, 100, True, 1, 200, due_at=300, ended_at=400,
                            end_reason="completed", goal_deadline=500, goal_reached=True,
                            vouchers={"o": "CODE"}, segment="regular", variant="a,b",
                            dates=[1, "x", None])
    assert _enrollment_row("other", enrollment) == [
        getattr(enrollment, field.name) for field in fields(Enrollment)]
    assert _enrollment_row("lost_regular", enrollment)[0] is None  # the key names it


def test_enrollment_row_leaves_out_trailing_defaults() -> None:
    enrollment = Enrollment("j", 1, 1, 100, False, 0, 100)
    assert _enrollment_row("j", enrollment) == [None, 1, 1, 100, False, 0, 100]
    enrollment.segment = "new"
    assert _enrollment_row("j", enrollment) == [None, 1, 1, 100, False, 0, 100, None, None,
                                                None, None, False, {}, "new"]
