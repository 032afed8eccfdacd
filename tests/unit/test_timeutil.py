"""The one ISO-8601 time parser outside event validation."""

from __future__ import annotations

import pytest

from engine.core.timeutil import iso_to_ms, parse_iso


def test_offsets_and_z_give_the_same_instant() -> None:
    assert iso_to_ms("2025-03-03T10:00:00Z") == iso_to_ms("2025-03-03T11:00:00+01:00")
    assert iso_to_ms("2025-03-03T10:00:00.250Z") == 1_740_996_000_250


def test_a_time_without_offset_is_utc_unless_refused() -> None:
    assert iso_to_ms("2025-03-03T10:00:00") == iso_to_ms("2025-03-03T10:00:00Z")
    with pytest.raises(ValueError, match="no UTC offset"):
        parse_iso("2025-03-03T10:00:00", naive_as_utc=False)


def test_text_that_is_no_time_is_a_value_error() -> None:
    with pytest.raises(ValueError):
        iso_to_ms("next tuesday")
