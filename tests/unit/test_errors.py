"""The root error, the stderr filter, Ctrl-C in a finalizer, and the input faults a user makes."""

from __future__ import annotations

import base64
import hashlib
import os
import signal
import sys
import time
from pathlib import Path

import orjson
import pytest

from connectors.jsonl import DEAD_LETTER_RAW_BYTES, JsonlSource, encode_dead_letter
from connectors.kafka_config import KafkaConnectorError
from engine.core.events import EventError, validate_event
from engine.core.records import DeadLetter
from engine.errors import (
    JourneysError,
    PanicFilter,
    cause_of,
    interrupts_kept,
    one_line,
    rust_panics_hidden,
)
from engine.flow.routing import RunCounters
from engine.flow.telemetry import TelemetryError, telemetry_from_environment

T0 = 1_741_000_000_000
PANIC = (b"thread '<unnamed>' panicked at src/outputs.rs:332:45:\nBox<dyn Any>\n"
         b"note: run with `RUST_BACKTRACE=1` environment variable to display a backtrace\n\n")


# -- the root error ----------------------------------------------------------------------------

def test_a_journeys_error_puts_its_context_first() -> None:
    error = JourneysError("cannot apply it", file=Path("events.jsonl"), key="c1", shard=3,
                          position=120)
    assert str(error) == "events.jsonl, key 'c1', shard 3, position 120: cannot apply it"
    assert str(JourneysError("no context")) == "no context"


def test_the_product_errors_derive_from_the_root_error() -> None:
    for error in (EventError("bad"), TelemetryError("bad"), KafkaConnectorError("bad")):
        assert isinstance(error, JourneysError)
        assert str(error) == "bad"
    assert isinstance(EventError("bad"), ValueError)  # callers that catch ValueError still do


def test_one_line_joins_the_lines_of_a_message() -> None:
    assert one_line(RuntimeError("first\n\n  second \n")) == "first; second"
    assert one_line(RuntimeError()) == "RuntimeError"


def test_cause_of_finds_an_error_a_runtime_error_was_raised_from() -> None:
    try:
        try:
            raise JourneysError("the user's")
        except JourneysError as inner:
            raise RuntimeError("error calling a step") from inner
    except RuntimeError as outer:
        found = cause_of(outer, (JourneysError,))
    assert found is not None and found.message == "the user's"
    assert cause_of(RuntimeError("alone"), (JourneysError,)) is None


def test_an_unknown_telemetry_mode_is_a_journeys_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("JOURNEYS_TELEMETRY", "bogus")
    with pytest.raises(JourneysError,
                       match=r"telemetry 'bogus' is not a mode.*console, otlp or none"):
        telemetry_from_environment()


# -- Rust panic reports kept off stderr --------------------------------------------------------

def test_the_filter_drops_a_panic_report_and_keeps_every_other_line() -> None:
    panic_filter = PanicFilter()
    shown = panic_filter.feed(b"INFO before\n" + PANIC + b"journeys: lost Redis\n")
    assert shown + panic_filter.flush() == b"INFO before\njourneys: lost Redis\n"


def test_the_filter_drops_a_report_that_arrives_byte_by_byte() -> None:
    panic_filter = PanicFilter()
    data = PANIC + b"after\n"
    shown = b"".join(panic_filter.feed(data[index:index + 1]) for index in range(len(data)))
    assert shown + panic_filter.flush() == b"after\n"


def test_the_filter_passes_a_redrawn_progress_line_at_once() -> None:
    panic_filter = PanicFilter()
    assert panic_filter.feed(b"\rreplaying [###...] 10%") == b"\rreplaying [###...] 10%"
    assert panic_filter.feed(b"\rreplaying [####..] 20%" + PANIC) == b"\rreplaying [####..] 20%"
    assert panic_filter.feed(b"thr") == b""  # may open a report: held until the line ends
    assert panic_filter.feed(b"ee lines\n") == b"three lines\n"


def test_a_second_report_without_a_note_is_dropped_too() -> None:
    second = b"thread '<unnamed>' panicked at src/inputs.rs:397:29:\nBox<dyn Any>\n\n"
    panic_filter = PanicFilter()
    assert panic_filter.feed(PANIC + second + b"end\n") == b"end\n"


def test_stderr_within_the_block_shows_all_but_panic_reports(
        capfd: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RUST_BACKTRACE", "1")
    with rust_panics_hidden():
        os.write(2, b"kept 1\n" + PANIC)
        os.write(2, b"kept 2\n")
    assert capfd.readouterr().err == "kept 1\nkept 2\n"
    assert os.environ["RUST_BACKTRACE"] == "0"


# -- Ctrl-C ------------------------------------------------------------------------------------

class _InterruptedWhileFinalized:
    def __del__(self) -> None:
        os.kill(os.getpid(), signal.SIGINT)
        time.sleep(0.01)  # the KeyboardInterrupt is raised here, inside __del__


def test_ctrl_c_in_a_finalizer_still_interrupts(capfd: pytest.CaptureFixture[str]) -> None:
    hook = sys.unraisablehook
    # Ctrl-C as a terminal delivers it, also when the suite was started in the background
    # by a shell, which starts its children with SIGINT ignored
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        with pytest.raises(KeyboardInterrupt), interrupts_kept():
            _InterruptedWhileFinalized()
            time.sleep(2)
    finally:
        signal.signal(signal.SIGINT, previous)
    assert "Exception ignored" not in capfd.readouterr().err
    assert sys.unraisablehook is hook


# -- events ------------------------------------------------------------------------------------

@pytest.mark.parametrize(("value", "said"), [
    (424242, "'customer_id' must be a string, got a number: quote it"),
    (4.5, "'customer_id' must be a string, got a number: quote it"),
    (True, "'customer_id' must be a string, got a boolean"),
    (["c1"], "'customer_id' must be a string, got an array"),
    ({"id": "c1"}, "'customer_id' must be a string, got an object"),
    ("", "missing or empty 'customer_id'"),
])
def test_a_customer_id_must_be_a_string(value: object, said: str) -> None:
    raw = {"event_id": "e1", "customer_id": value, "type": "rating", "ts": T0, "stars": 5}
    with pytest.raises(EventError) as caught:
        validate_event(raw)
    assert caught.value.reason == said


def test_an_event_id_must_be_a_string() -> None:
    raw = {"event_id": 7, "customer_id": "c1", "type": "rating", "ts": T0, "stars": 5}
    with pytest.raises(EventError, match="'event_id' must be a string, got a number: quote it"):
        validate_event(raw)
    assert validate_event({**raw, "event_id": "7"}).event_id == "7"


# -- dead letters ------------------------------------------------------------------------------

def _dead_letter(raw: bytes) -> dict[str, object]:
    record: dict[str, object] = orjson.loads(encode_dead_letter(DeadLetter("too long", raw, 9,
                                                                           "events.jsonl")))
    return record


def test_a_huge_line_keeps_its_start_length_and_hash_in_the_dead_letter() -> None:
    raw = b'{"pad": "' + b"x" * 20_000_000 + b'"}'
    encoded = encode_dead_letter(DeadLetter("too long", raw, 9, "events.jsonl"))
    assert len(encoded) < 2 * DEAD_LETTER_RAW_BYTES
    record = orjson.loads(encoded)
    assert record["raw"] == raw[:DEAD_LETTER_RAW_BYTES].decode()
    assert record["raw_truncated"] is True
    assert record["raw_length"] == len(raw)
    assert record["raw_sha256"] == hashlib.sha256(raw).hexdigest()


def test_a_cut_through_a_character_keeps_the_text_before_it() -> None:
    raw = b"a" * (DEAD_LETTER_RAW_BYTES - 1) + "é".encode() * 10
    assert _dead_letter(raw)["raw"] == "a" * (DEAD_LETTER_RAW_BYTES - 1)


def test_a_huge_line_that_is_not_utf8_keeps_its_start_in_base64() -> None:
    raw = b"\xff" * (DEAD_LETTER_RAW_BYTES + 10)
    record = _dead_letter(raw)
    assert "raw" not in record and record["raw_truncated"] is True
    assert base64.b64decode(str(record["raw_base64"])) == raw[:DEAD_LETTER_RAW_BYTES]


def test_a_short_line_is_kept_whole_without_truncation_fields() -> None:
    assert _dead_letter(b"{bad") == {"reason": "too long", "source": "events.jsonl",
                                     "position": 9, "raw": "{bad"}


# -- blank lines -------------------------------------------------------------------------------

def _read_all(source: JsonlSource) -> list[tuple[int, bytes]]:
    part = source.build_part("events", source.list_parts()[0], None)
    lines: list[tuple[int, bytes]] = []
    try:
        while True:
            for batch in part.next_batch():
                lines.extend(batch.lines)
    except StopIteration:
        part.close()
    return lines


def test_blank_lines_are_skipped_and_counted(tmp_path: Path) -> None:
    path = tmp_path / "events.jsonl"
    path.write_bytes(b'{"a":1}\n\n   \n{"b":2}\r\n\r\n{"c":3}\n  ')
    counters = RunCounters()
    source = JsonlSource(path, on_blank=lambda n: counters.add(blank=n))
    assert _read_all(source) == [(0, b'{"a":1}'), (13, b'{"b":2}'), (24, b'{"c":3}')]
    assert counters.blank_lines == 4


def test_a_file_without_blank_lines_counts_none(tmp_path: Path) -> None:
    path = tmp_path / "events.jsonl"
    path.write_bytes(b'{"a":1}\n{"b":2}')
    counted: list[int] = []
    assert len(_read_all(JsonlSource(path, on_blank=counted.append))) == 2
    assert counted == []


def test_a_line_said_before_os_exit_reaches_the_real_stderr() -> None:
    import subprocess
    import sys
    code = ("import os\nfrom engine.errors import rust_panics_hidden, say_before_exit\n"
            "with rust_panics_hidden():\n"
            "    say_before_exit('journeys: the broker took no message')\n"
            "    os._exit(3)\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, timeout=60)
    assert done.returncode == 3
    assert done.stderr.decode().strip() == "journeys: the broker took no message"
