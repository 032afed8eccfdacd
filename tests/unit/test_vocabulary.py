"""Text compared with a field of known values must be one of them, with "did you mean".

Positions are counted by hand from each test's YAML text (1-based lines and columns).
"""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from journeys_dsl.commands import validate_command
from journeys_dsl.errors import JourneyValidationError, Problem
from journeys_dsl.loader import load_journey_text
from journeys_dsl.segments import segments_vocabulary
from journeys_dsl.vocabulary import BUILT_IN

FILE = "j.yaml"
SHIPPED = segments_vocabulary()


def journey(condition: str, *, event: str = "visit") -> str:
    """Line 5 holds the condition, which starts at column 10 (after `  when: "`)."""
    return (f"journey: j\nversion: 1\nentry:\n  event: {event}\n  when: \"{condition}\"\n"
            "steps:\n  - id: hello\n    actions: [{send: email, template: hello}]\n")


def problems_of(text: str, vocabulary: object = SHIPPED) -> list[Problem]:
    with pytest.raises(JourneyValidationError) as caught:
        load_journey_text(text, FILE, vocabulary)  # type: ignore[arg-type]
    return list(caught.value.problems)


@pytest.mark.parametrize(("condition", "event", "col", "message"), [
    ("customer.segment == 'regulars'", "visit", 30,
     "'regulars' is not a segment; did you mean 'regular'? (segments in the shipped "
     "segments file: sleeping, loyal, regular, new, occasional)"),
    ("event.daypart == 'diner'", "visit", 27,
     "'diner' is not a daypart; did you mean 'dinner'? (dayparts: breakfast, lunch, "
     "afternoon, dinner, late)"),
    ("'vipp' in customer.segments", "visit", 10, "'vipp' is not a segment; did you mean 'vip'?"),
    ("customer.loyalty_tier == 'gold'", "visit", 35,
     "'gold' is not a loyalty tier (loyalty tiers in the shipped segments file: top, middle, "
     "starter)"),
    ("event.status == 'clickd'", "message", 26,
     "'clickd' is not a message status; did you mean 'clicked'? (message statuses:"),
    ("event.daypart in ['lunch', 'dinr']", "visit", 37, "'dinr' is not a daypart"),
    ("'loyall' != customer.segment", "visit", 10, "did you mean 'loyal'?"),
    ("customer.check_tier == 'hi'", "visit", 33, "'hi' is not a check tier"),
    ("customer.usual_weekday == 'sunday ' or true", "visit", 36, "'sunday ' is not a weekday"),
])
def test_misspelt_text_is_refused_where_it_is_written(condition: str, event: str, col: int,
                                                      message: str) -> None:
    [problem] = problems_of(journey(condition, event=event))
    assert (problem.line, problem.col) == (5, col)
    assert message in problem.message
    assert problem.path == "entry.when"


@pytest.mark.parametrize("condition", [
    "customer.segment == 'regular' and event.daypart in ['lunch', 'dinner']",
    "'vip' in customer.segments and customer.loyalty_tier != 'top'",
    "customer.favourite_item == 'tiramisu'",  # free text: no known values
    "customer.segment in 'regular, loyal'",  # a substring test, not a set of values
    "lower(customer.segment) == 'anything'",  # a computed value is not checked
])
def test_known_values_and_free_text_pass(condition: str) -> None:
    assert load_journey_text(journey(condition), FILE, SHIPPED).journey_id == "j"


def test_without_a_vocabulary_nothing_is_checked() -> None:
    """Stored journey versions reload as they were accepted, whatever the segments now."""
    assert load_journey_text(journey("customer.segment == 'regulars'"), FILE).journey_id == "j"


def test_a_segments_file_of_its_own_defines_the_known_segments(tmp_path: Path) -> None:
    segments = tmp_path / "segments.yaml"
    segments.write_text(
        "activity:\n  - id: brunch_regular\n    when: \"customer.visit_count >= 3\"\n"
        "  - id: newcomer\n")
    vocabulary = segments_vocabulary(segments)
    text = journey("customer.segment == 'brunch_regular'")
    assert load_journey_text(text, FILE, vocabulary).journey_id == "j"
    [problem] = problems_of(journey("customer.segment == 'regular'"), vocabulary)
    assert f"(segments in {segments}: brunch_regular, newcomer)" in problem.message


def test_journeys_validate_checks_against_the_segments_it_is_given(tmp_path: Path) -> None:
    file = tmp_path / "typo.yaml"
    file.write_text(journey("event.daypart == 'diner'"))
    out, err = io.StringIO(), io.StringIO()
    assert validate_command([str(file)], out, err, BUILT_IN) == 1
    assert err.getvalue().startswith(f"{file}:5:27: 'diner' is not a daypart")
    assert validate_command([str(file)], io.StringIO(), io.StringIO()) == 0
