"""Likely mistakes that do not stop a journey: warnings at FILE:LINE:COL, exit status 0."""

from __future__ import annotations

import io
from pathlib import Path

from journeys_dsl.commands import validate_command
from journeys_dsl.errors import Problem
from journeys_dsl.loader import check_journeys, load_journey_text

ENTRY = "journey: j\nversion: 1\nentry:\n  event: visit\n"


def warnings_of(text: str, tmp_path: Path) -> list[Problem]:
    file = tmp_path / "j.yaml"
    file.write_text(text)
    checked = check_journeys([file])
    assert checked.problems == [], checked.problems
    return [Problem("j.yaml", w.line, w.col, w.message, w.path, w.warning)
            for w in checked.warnings]


def steps(*timings: str) -> str:
    body = "".join(f"  - id: s{number}\n    at: {timing}\n"
                   f"    actions: [{{send: email, template: t{number}}}]\n"
                   for number, timing in enumerate(timings))
    return "steps:\n" + body


def test_a_step_timed_before_the_step_it_follows_is_flagged(tmp_path: Path) -> None:
    # line 5 steps, 6 s0, 7 at day 10, 8 actions, 9 s1, 10 at day 3 (value at column 9)
    [warning] = warnings_of(ENTRY + steps("day 10", "day 3"), tmp_path)
    assert (warning.line, warning.col, warning.path) == (10, 9, "steps[1].at")
    assert warning.warning
    assert warning.message.startswith("day 3 comes after step 's0' at day 10: steps run in "
                                      "order, so 's1' runs at day 10 at the earliest")


def test_steps_in_time_order_are_not_flagged(tmp_path: Path) -> None:
    assert warnings_of(ENTRY + steps("day 1", "day 7", "day 15"), tmp_path) == []


def test_a_goal_window_closing_before_the_first_message_is_flagged(tmp_path: Path) -> None:
    text = (ENTRY + "goal:\n  event: visit\n  within: 1d\n" + steps("day 10"))
    [warning] = warnings_of(text, tmp_path)
    assert (warning.line, warning.col, warning.path) == (7, 11, "goal.within")
    assert "the goal's window (1d) closes before the first message can go out (day 10)" \
        in warning.message
    ok = ENTRY + "goal:\n  event: visit\n  within: 30d\n" + steps("day 10")
    assert warnings_of(ok, tmp_path) == []


def test_the_first_message_counts_waits_along_the_way(tmp_path: Path) -> None:
    text = (ENTRY + "goal:\n  event: visit\n  within: 2d\nsteps:\n"
            "  - id: pause\n    after: 3d\n    actions: [{tag: waited}]\n"
            "  - id: hello\n    actions: [{send: sms, template: hi}]\n")
    [warning] = warnings_of(text, tmp_path)
    assert "(day 3)" in warning.message


def test_text_fields_compared_with_numbers_and_the_reverse_are_flagged(tmp_path: Path) -> None:
    text = ENTRY.replace("  event: visit\n", "  event: visit\n  when: \"customer.segment > 3 "
                         "or customer.visit_count == 'three' or customer.segment != 2\"\n")
    found = warnings_of(text + steps("day 1"), tmp_path)
    assert [(w.line, w.col) for w in found] == [(5, 29), (5, 58), (5, 89)]
    assert found[0].message == ("'customer.segment' is text but '>' compares it with the "
                                "number 3: that is never true; compare it with text in quotes")
    assert "compares it with the text 'three': that is never true" in found[1].message
    assert "that is always true" in found[2].message


def test_warnings_do_not_stop_a_journey_and_validate_exits_0(tmp_path: Path) -> None:
    text = ENTRY + steps("day 10", "day 3")
    assert load_journey_text(text, "j.yaml").journey_id == "j"
    file = tmp_path / "j.yaml"
    file.write_text(text)
    out, err = io.StringIO(), io.StringIO()
    assert validate_command([str(file)], out, err) == 0
    assert out.getvalue() == "ok: 1 journey in 1 file (1 warning)\n"
    assert err.getvalue().startswith(f"{file}:10:9: warning: day 3 comes after step 's0'")


def test_the_reference_journeys_raise_no_warning() -> None:
    examples = Path(__file__).resolve().parents[2] / "examples" / "journeys"
    assert check_journeys([examples]).warnings == []
