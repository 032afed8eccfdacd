"""Every kind of problem in a journey file is reported at its exact line and column.

Expected positions are counted by hand from each test's YAML text (1-based).
"""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from journeys_dsl.commands import validate_command
from journeys_dsl.errors import JourneyValidationError, Problem
from journeys_dsl.loader import load_journey_text, load_journeys, validate_paths

FILE = "j.yaml"

# Lines: 1 journey, 2 version, 3 entry, 4 event, 5 steps, 6 first step.
HEAD = """\
journey: j
version: 1
entry:
  event: visit
steps:
"""


def problems_of(text: str) -> list[Problem]:
    with pytest.raises(JourneyValidationError) as caught:
        load_journey_text(text, FILE)
    return list(caught.value.problems)


def assert_problem(text: str, line: int, col: int, fragment: str,
                   path: str | None = None) -> Problem:
    """Exactly one problem at FILE:line:col whose message contains `fragment`."""
    found = problems_of(text)
    matching = [p for p in found if fragment in p.message]
    assert len(matching) == 1, "\n".join(str(p) for p in found)
    problem = matching[0]
    assert str(problem).startswith(f"{FILE}:{line}:{col}: "), str(problem)
    if path is not None:
        assert problem.path == path
    return problem


# --------------------------------------------------------------------------- YAML level


def test_yaml_syntax_error_has_its_position() -> None:
    text = "journey: j\nversion: 1\nentry:\n  event: visit\n\tsteps: []\n"
    problem = assert_problem(text, 5, 1, "YAML syntax error")
    assert "tab" in problem.message


def test_yaml_unclosed_flow_list() -> None:
    text = "journey: j\nversion: [1\nentry: x\n"
    # the scanner sees 'entry' inside the list, then ':' at line 3 column 6
    assert_problem(text, 3, 6, "YAML syntax error: expected ',' or ']'")


def test_top_level_must_be_a_mapping() -> None:
    assert_problem("- journey: j\n- version: 1\n", 1, 1,
                   "a journey file must be a mapping")


def test_empty_file() -> None:
    assert_problem("# nothing yet\n", 1, 1, "the file is empty")


def test_duplicate_yaml_key_is_detected() -> None:
    text = HEAD + "  - id: a\n    at: day 1\n    at: day 2\n"
    assert_problem(text, 8, 5, "duplicate key 'at' in step 'a' (first given at line 7)",
                   "steps[0].at")


def test_duplicate_top_level_key() -> None:
    text = HEAD + "  - id: a\nversion: 2\n"
    assert_problem(text, 7, 1, "duplicate key 'version' at the top level (first given at "
                               "line 2)")


# --------------------------------------------------------------------------- keys and types


def test_unknown_key_with_did_you_mean() -> None:
    text = HEAD + "  - id: thanks\n    acitons: []\n"
    problem = assert_problem(text, 7, 5, "unknown key", "steps[0].acitons")
    assert problem.message == "unknown key 'acitons' in step 'thanks'; did you mean 'actions'?"


def test_unknown_top_level_key() -> None:
    text = HEAD + "  - id: a\nexits: []\n"
    assert_problem(text, 7, 1, "unknown key 'exits' at the top level; did you mean 'exit'?")


def test_unknown_key_in_an_action() -> None:
    text = HEAD + "  - id: a\n    actions:\n      - send: email\n        templat: hi\n"
    assert_problem(text, 9, 9, "unknown key 'templat' in an action of step 'a'; did you mean "
                               "'template'?")


def test_missing_required_top_level_key() -> None:
    text = "journey: j\nversion: 1\nsteps:\n  - id: a\n"
    assert_problem(text, 1, 1, "missing required key 'entry' at the top level", "entry")


def test_missing_required_key_in_an_offer() -> None:
    text = (HEAD + "  - id: a\noffers:\n  dessert:\n    description: Free dessert\n")
    assert_problem(text, 9, 5, "missing required key 'valid_for' in offer 'dessert'",
                   "offers.dessert.valid_for")


def test_missing_template_with_send() -> None:
    text = HEAD + "  - id: a\n    actions:\n      - send: email\n"
    assert_problem(text, 8, 9, "missing required key 'template'")


def test_list_where_a_mapping_is_expected() -> None:
    text = "journey: j\nversion: 1\nentry:\n  - event: visit\nsteps:\n  - id: a\n"
    assert_problem(text, 4, 3, "entry must be a mapping of 'key: value' lines, not a list",
                   "entry")


def test_mapping_where_a_list_is_expected() -> None:
    text = "journey: j\nversion: 1\nentry:\n  event: visit\nsteps:\n  id: a\n"
    assert_problem(text, 6, 3, "steps must be a list", "steps")


def test_empty_steps() -> None:
    text = "journey: j\nversion: 1\nentry:\n  event: visit\nsteps: []\n"
    assert_problem(text, 5, 8, "steps is empty")


# --------------------------------------------------------------------------- values


@pytest.mark.parametrize(("value", "fragment"), [
    ("0", "not '0'"),
    ("-3", "not '-3'"),
    ("one", "not 'one'"),
    ("1.5", "not '1.5'"),
    ("true", "not 'true'"),
])
def test_version_must_be_a_positive_integer(value: str, fragment: str) -> None:
    text = f"journey: j\nversion: {value}\nentry:\n  event: visit\nsteps:\n  - id: a\n"
    problem = assert_problem(text, 2, 10, "version must be a whole number")
    assert fragment in problem.message


def test_bad_journey_id() -> None:
    text = "journey: Impressed-Newcomer\n" + HEAD.split("\n", 1)[1] + "  - id: a\n"
    assert_problem(text, 1, 10, "the journey id 'Impressed-Newcomer' is not valid", "journey")


def test_bad_step_id_and_end_as_step_id() -> None:
    text = HEAD + "  - id: 2nd\n  - id: end\n"
    assert_problem(text, 6, 9, "the step id '2nd' is not valid", "steps[0].id")
    assert_problem(text, 7, 9, "'end' cannot be a step id", "steps[1].id")


def test_bad_duration_uses_the_duration_message() -> None:
    text = HEAD + ("  - id: a\noffers:\n  dessert:\n    description: Free dessert\n"
                   "    valid_for: 14\n")
    assert_problem(text, 10, 16, "add a unit, e.g. '14d'", "offers.dessert.valid_for")


def test_bad_step_time() -> None:
    text = HEAD + "  - id: a\n    at: day x\n"
    assert_problem(text, 7, 9, "expected 'day N'", "steps[0].at")


def test_bad_local_time_of_date_entry() -> None:
    text = ('journey: j\nversion: 1\nentry:\n  date: birthday\n  at: "25:00"\n'
            "steps:\n  - id: a\n")
    assert_problem(text, 5, 7, "is not a time of day", "entry.at")


def test_bad_share() -> None:
    text = HEAD + "  - id: a\nholdout: 150%\n"
    assert_problem(text, 7, 10, "holdout must be between 0% and 99%", "holdout")


def test_bad_re_entry() -> None:
    text = HEAD + "  - id: a\nre_entry: nevr\n"
    assert_problem(text, 7, 11, "did you mean 'never'?", "re_entry")


def test_negative_duration_is_refused_where_not_allowed() -> None:
    text = HEAD + "  - id: a\n    after: -2d\n"
    assert_problem(text, 7, 12, "cannot be negative", "steps[0].after")


# --------------------------------------------------------------------------- duplicates


def test_duplicate_step_ids() -> None:
    text = HEAD + "  - id: thanks\n  - id: thanks\n"
    assert_problem(text, 7, 9, "duplicate step id 'thanks' (also used by steps[0] at line 6)",
                   "steps[1].id")


def test_duplicate_offer_ids() -> None:
    text = HEAD + ("  - id: a\noffers:\n  dessert:\n    description: A\n    valid_for: 7d\n"
                   "  dessert:\n    description: B\n    valid_for: 7d\n")
    assert_problem(text, 11, 3, "duplicate offer id 'dessert' (first defined at line 8)",
                   "offers.dessert")


# --------------------------------------------------------------------------- references


def test_unknown_step_in_goto() -> None:
    text = HEAD + ("  - id: a\n    branch:\n      - if: customer.visit_count > 1\n"
                   "        goto: remindr\n  - id: reminder\n")
    assert_problem(text, 9, 15, "unknown step 'remindr' in goto; did you mean 'reminder'?",
                   "steps[0].branch[0].goto")


def test_unknown_step_in_next() -> None:
    text = HEAD + "  - id: a\n    next: finish\n"
    assert_problem(text, 7, 11, "unknown step 'finish' in next", "steps[0].next")


def test_unknown_step_in_on_timeout() -> None:
    text = HEAD + ("  - id: a\n    wait_for:\n      event: rating\n      timeout: 3d\n"
                   "      on_timeout: secnd_ask\n  - id: second_ask\n")
    assert_problem(text, 10, 19, "unknown step 'secnd_ask' in on_timeout; did you mean "
                                 "'second_ask'?", "steps[0].wait_for.on_timeout")


def test_unknown_offer_in_issue() -> None:
    text = HEAD + ("  - id: a\n    actions:\n      - issue: desert\noffers:\n  dessert:\n"
                   "    description: Free dessert\n    valid_for: 14d\n")
    assert_problem(text, 8, 16, "unknown offer 'desert'; did you mean 'dessert'?",
                   "steps[0].actions[0].issue")


def test_unknown_offer_in_expression() -> None:
    text = HEAD + ("  - id: a\n    if: not offer.desert.redeemed\noffers:\n  dessert:\n"
                   "    description: Free dessert\n    valid_for: 14d\n")
    # '    if: ' is 8 characters; 'offer' starts at offset 4, 'desert' at offset 10
    assert_problem(text, 7, 19, "unknown offer 'desert'; did you mean 'dessert'?",
                   "steps[0].if")


def test_unknown_offer_field_in_expression() -> None:
    text = HEAD + ("  - id: a\n    if: offer.dessert.redeemd\noffers:\n  dessert:\n"
                   "    description: Free dessert\n    valid_for: 14d\n")
    assert_problem(text, 7, 23, "unknown field 'redeemd' of an offer; did you mean "
                                "'redeemed'?")


def test_unknown_event_type() -> None:
    text = "journey: j\nversion: 1\nentry:\n  event: ratings\nsteps:\n  - id: a\n"
    assert_problem(text, 4, 10, "unknown event type 'ratings'; did you mean 'rating'?",
                   "entry.event")


def test_unknown_channel() -> None:
    text = HEAD + "  - id: a\n    actions:\n      - send: mail\n        template: hi\n"
    assert_problem(text, 8, 15, "unknown channel 'mail'; did you mean 'email'?",
                   "steps[0].actions[0].send")


def test_unknown_daypart() -> None:
    text = HEAD + ("  - id: a\noffers:\n  dessert:\n    description: Free dessert\n"
                   "    dayparts: [lunch, diner]\n    valid_for: 14d\n")
    assert_problem(text, 10, 23, "unknown daypart 'diner'; did you mean 'dinner'?",
                   "offers.dessert.dayparts[1]")


# --------------------------------------------------------------------------- expressions


def test_expression_syntax_error_in_plain_scalar() -> None:
    text = "journey: j\nversion: 1\nentry:\n  event: visit\n  when: event.amount >\n"
    text += "steps:\n  - id: a\n"
    # '  when: ' is 8 characters; the condition ends at offset 14 -> column 9 + 14
    assert_problem(text, 5, 23, "expected a value after '>'", "entry.when")


def test_expression_syntax_error_in_double_quoted_scalar() -> None:
    text = ('journey: j\nversion: 1\nentry:\n  event: visit\n'
            '  when: "event.amount = 5"\nsteps:\n  - id: a\n')
    # the quote is column 9; '=' is at offset 13 -> column 9 + 1 + 13
    assert_problem(text, 5, 23, "use '==' to compare", "entry.when")


def test_expression_syntax_error_in_single_quoted_scalar_with_escape() -> None:
    text = ("journey: j\nversion: 1\nentry:\n  event: visit\n"
            "  when: 'event.type == ''visit'' && true'\nsteps:\n  - id: a\n")
    # value: event.type == 'visit' && true ; '&' at offset 22, two '' pairs before it
    assert_problem(text, 5, 34, "use 'and' instead of '&&'")


def test_expression_syntax_error_in_block_scalar_points_at_its_start() -> None:
    text = ("journey: j\nversion: 1\nentry:\n  event: visit\n  when: |\n"
            "    event.amount >\nsteps:\n  - id: a\n")
    assert_problem(text, 5, 9, "expected a value after '>'", "entry.when")


def test_unknown_function() -> None:
    text = HEAD + "  - id: a\n    if: day_since(customer.last_visit_at) > 3\n"
    assert_problem(text, 7, 9, "unknown function 'day_since'; did you mean 'days_since'?",
                   "steps[0].if")


def test_unknown_root() -> None:
    text = HEAD + "  - id: a\n    if: custmer.visit_count > 3\n"
    assert_problem(text, 7, 9, "unknown name 'custmer' in the condition; did you mean "
                               "'customer'?")


def test_bare_word_suggests_quotes() -> None:
    text = HEAD + "  - id: a\n    if: customer.favourite_category == meat\n"
    # '    if: ' is 8 characters; 'meat' is at offset 31
    assert_problem(text, 7, 40, "unknown name 'meat'")


def test_unknown_customer_field() -> None:
    text = HEAD + "  - id: a\n    if: customer.vist_count > 3\n"
    assert_problem(text, 7, 18, "unknown field 'vist_count' of the customer; did you mean "
                                "'visit_count'?")


def test_unknown_event_field_of_the_entry_event() -> None:
    text = ("journey: j\nversion: 1\nentry:\n  event: rating\n  when: event.amount > 5\n"
            "steps:\n  - id: a\n")
    assert_problem(text, 5, 15, "unknown field 'amount' of a rating event", "entry.when")


def test_event_fields_of_the_exit_event_are_known() -> None:
    text = HEAD + "  - id: a\nexit:\n  - event: rating\n    when: event.stars <= 2\n"
    load_journey_text(text, FILE)
    bad = HEAD + "  - id: a\nexit:\n  - event: rating\n    when: event.star <= 2\n"
    assert_problem(bad, 9, 17, "unknown field 'star' of a rating event; did you mean "
                               "'stars'?", "exit[0].when")


def test_unknown_venue_and_journey_fields() -> None:
    text = HEAD + "  - id: a\n    if: venue.avg > 1 and journey.days > 2\n"
    assert_problem(text, 7, 15, "unknown field 'avg' of the venue")
    assert_problem(text, 7, 35, "unknown field 'days' of the journey")


def test_event_in_a_step_condition() -> None:
    text = HEAD + "  - id: a\n    if: event.stars == 5\n"
    assert_problem(text, 7, 9, "there is no triggering event in a step; use customer.* or "
                               "offer.*", "steps[0].if")


def test_event_in_a_step_variable() -> None:
    text = HEAD + ("  - id: a\n    actions:\n      - send: email\n        template: hi\n"
                   "        vars:\n          amount: event.amount\n")
    assert_problem(text, 11, 19, "there is no triggering event in a step",
                   "steps[0].actions[0].vars.amount")


@pytest.mark.parametrize("entry", [
    "  inactive_for: 45d\n  when: event.amount > 5\n",
    "  date: birthday\n  when: event.amount > 5\n",
    "  p_alive_below: 0.3\n  when: event.amount > 5\n",
])
def test_event_in_a_profile_entry_condition(entry: str) -> None:
    text = "journey: j\nversion: 1\nentry:\n" + entry + "steps:\n  - id: a\n"
    problem = assert_problem(text, 5, 9, "has no triggering event", "entry.when")
    assert "checked on the customer's profile" in problem.message


def test_offer_in_the_entry_condition() -> None:
    text = ("journey: j\nversion: 1\nentry:\n  event: visit\n  when: journey.days_in > 1\n"
            "steps:\n  - id: a\n")
    assert_problem(text, 5, 9, "has not entered the journey yet")


# --------------------------------------------------------------------------- steps


def test_unreachable_step() -> None:
    text = HEAD + "  - id: a\n    next: end\n  - id: orphan\n"
    assert_problem(text, 8, 5, "step 'orphan' can never be reached", "steps[1]")


def test_step_reached_only_by_timeout_is_reachable() -> None:
    text = HEAD + ("  - id: a\n    wait_for:\n      event: rating\n      timeout: 3d\n"
                   "      on_timeout: c\n    next: end\n  - id: b\n  - id: c\n")
    assert_problem(text, 12, 5, "step 'b' can never be reached")


def test_loop_without_waiting() -> None:
    text = HEAD + "  - id: a\n  - id: b\n    next: a\n"
    assert_problem(text, 6, 5, "go round in a loop without waiting")


def test_loop_with_a_wait_is_fine() -> None:
    text = HEAD + "  - id: a\n    after: 7d\n  - id: b\n    next: a\n"
    assert load_journey_text(text, FILE).steps[1].next_index == 0


def test_more_than_one_timing() -> None:
    text = HEAD + "  - id: a\n    at: day 1\n    after: 2d\n"
    assert_problem(text, 8, 5, "a step has at most one timing: 'at' and 'after'",
                   "steps[0].after")


def test_more_than_one_action_kind() -> None:
    text = HEAD + ("  - id: a\n    actions:\n      - send: email\n        template: hi\n"
                   "        tag: vip\n")
    assert_problem(text, 10, 9, "one action per list item: 'send' and 'tag'",
                   "steps[0].actions[0].tag")


def test_action_without_a_kind() -> None:
    text = HEAD + "  - id: a\n    actions:\n      - template: hi\n"
    assert_problem(text, 8, 9, "an action needs one of: send, issue, points, tag, untag")


def test_points_must_be_positive() -> None:
    text = HEAD + "  - id: a\n    actions:\n      - points: 0\n"
    assert_problem(text, 8, 17, "points must be a whole number above 0")


def test_else_must_be_last() -> None:
    text = HEAD + ("  - id: a\n    branch:\n      - else: end\n      - if: customer.points > 1\n"
                   "        goto: b\n  - id: b\n")
    assert_problem(text, 8, 9, "the 'else' arm must be the last branch",
                   "steps[0].branch[0].else")


def test_branch_with_else_and_next() -> None:
    text = HEAD + ("  - id: a\n    branch:\n      - if: customer.points > 1\n        goto: b\n"
                   "      - else: end\n    next: b\n  - id: b\n")
    assert_problem(text, 11, 5, "has both 'next' and an 'else' branch", "steps[0].next")


def test_branch_without_else_and_next_is_fine() -> None:
    text = HEAD + ("  - id: a\n    branch:\n      - if: customer.points > 1\n        goto: c\n"
                   "    next: b\n  - id: b\n    next: end\n  - id: c\n")
    step = load_journey_text(text, FILE).steps[0]
    assert step.next_index == 1 and step.branches[0].target == 2


def test_branch_arm_with_if_and_else() -> None:
    text = HEAD + "  - id: a\n    branch:\n      - if: customer.points > 1\n        else: end\n"
    assert_problem(text, 8, 9, "either 'if' with 'goto', or 'else' alone")


def test_entry_with_two_kinds() -> None:
    text = ("journey: j\nversion: 1\nentry:\n  event: visit\n  inactive_for: 45d\n"
            "steps:\n  - id: a\n")
    assert_problem(text, 5, 3, "entry has both 'event' and 'inactive_for'")


def test_entry_without_a_kind() -> None:
    text = "journey: j\nversion: 1\nentry:\n  when: customer.points > 1\nsteps:\n  - id: a\n"
    assert_problem(text, 4, 3, "entry needs one of: event, inactive_for, date, p_alive_below")


def test_p_alive_threshold_range() -> None:
    text = "journey: j\nversion: 1\nentry:\n  p_alive_below: 30\nsteps:\n  - id: a\n"
    assert_problem(text, 4, 18, "p_alive_below must be a probability between 0 and 1")


# --------------------------------------------------------------------------- all at once


def test_three_problems_reported_in_one_run() -> None:
    text = ("journey: j\nversion: 1\nentry:\n  event: vist\nsteps:\n  - id: a\n"
            "    acitons: []\n    next: nowhere\n")
    found = problems_of(text)
    assert [str(p) for p in found] == [
        "j.yaml:4:10: unknown event type 'vist'; did you mean 'visit'? (at entry.event)",
        "j.yaml:7:5: unknown key 'acitons' in step 'a'; did you mean 'actions'? "
        "(at steps[0].acitons)",
        "j.yaml:8:11: unknown step 'nowhere' in next; use a step id of this journey or "
        "'end' (at steps[0].next)",
    ]


def test_error_lists_every_problem() -> None:
    text = "journey: J\nversion: 0\nentry:\n  event: visit\nsteps:\n  - id: a\n"
    with pytest.raises(JourneyValidationError) as caught:
        load_journey_text(text, FILE)
    lines = str(caught.value).splitlines()
    assert lines[0] == "2 problems in journey files:"
    assert lines[1].startswith("j.yaml:1:10: the journey id 'J'")
    assert lines[2].startswith("j.yaml:2:10: version must be")


def test_problem_str() -> None:
    problem = Problem("a.yaml", 3, 7, "something is wrong", "steps[2].branch[0].goto")
    assert str(problem) == "a.yaml:3:7: something is wrong (at steps[2].branch[0].goto)"


# --------------------------------------------------------------------------- many files

VALID = HEAD + "  - id: a\n"


def test_same_journey_and_version_in_two_files(tmp_path: Path) -> None:
    (tmp_path / "a.yaml").write_text(VALID)
    (tmp_path / "b.yml").write_text(VALID)
    found = validate_paths([tmp_path])
    assert len(found) == 1
    assert str(found[0]).startswith(f"{tmp_path / 'b.yml'}:1:10: journey 'j' version 1 is "
                                    f"also defined in {tmp_path / 'a.yaml'}")


def test_load_journeys_collects_problems_across_files(tmp_path: Path) -> None:
    (tmp_path / "a.yaml").write_text(VALID.replace("visit", "vist"))
    (tmp_path / "b.yaml").write_text(VALID.replace("version: 1", "version: 0"))
    (tmp_path / "notes.txt").write_text("not a journey")
    with pytest.raises(JourneyValidationError) as caught:
        load_journeys([tmp_path])
    assert [(Path(p.file).name, p.line) for p in caught.value.problems] == [
        ("a.yaml", 4), ("b.yaml", 2)]


def test_validate_command_exit_codes_and_output(tmp_path: Path) -> None:
    good = tmp_path / "good"
    good.mkdir()
    (good / "a.yaml").write_text(VALID)
    (good / "b.yaml").write_text(VALID.replace("journey: j", "journey: k"))
    out, err = io.StringIO(), io.StringIO()
    assert validate_command([str(good)], out, err) == 0
    assert out.getvalue() == "ok: 2 journeys in 2 files\n"
    assert err.getvalue() == ""

    bad = tmp_path / "bad.yaml"
    bad.write_text(VALID.replace("visit", "vist").replace("journey: j", "journey: x"))
    out, err = io.StringIO(), io.StringIO()
    assert validate_command([str(good), str(bad)], out, err) == 1
    assert out.getvalue() == ""
    lines = err.getvalue().splitlines()
    assert lines[0] == (f"{bad}:4:10: unknown event type 'vist'; did you mean 'visit'? "
                        "(at entry.event)")
    assert lines[-1] == "1 problem in 1 of 3 files"

    out, err = io.StringIO(), io.StringIO()
    assert validate_command([str(tmp_path / "missing.yaml")], out, err) == 2
    assert "no such file or directory" in err.getvalue()
