"""The ingest sources file: what it accepts, and one FILE:LINE:COL line for each mistake."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from connectors.ingest.config import (
    DEFAULT_SIGNATURE_HEADER,
    DEFAULT_TOLERANCE_S,
    load_ingest_config,
    parse_ingest_config,
)
from connectors.ingest.errors import IngestConfigError

ENV = {"POS_KEY": "k" * 20, "POS_KEY_NEXT": "n" * 20, "BOOK_SECRET": "s" * 24, "SHORT": "abc"}
GOOD = """\
sources:
  - name: pos-downtown
    api_keys_env: [POS_KEY, POS_KEY_NEXT]
  - name: bookings
    hmac:
      secret_env: BOOK_SECRET
      timestamp_header: X-Booking-Time
      tolerance: 2m
"""


def test_a_good_file_gives_each_source_its_secrets() -> None:
    config = parse_ingest_config(GOOD, "sources.yaml", ENV)
    pos, bookings = config.sources
    assert (pos.name, pos.api_keys, pos.hmac) == ("pos-downtown", (b"k" * 20, b"n" * 20), None)
    assert bookings.api_keys == ()
    assert bookings.hmac is not None
    assert bookings.hmac.secret == b"s" * 24
    assert bookings.hmac.signature_header == DEFAULT_SIGNATURE_HEADER
    assert bookings.hmac.timestamp_header == "X-Booking-Time"
    assert bookings.hmac.tolerance_s == 120


def test_defaults_of_a_signed_source() -> None:
    text = "sources:\n  - name: b\n    hmac: {secret_env: BOOK_SECRET}\n"
    hmac = parse_ingest_config(text, "s.yaml", ENV).sources[0].hmac
    assert hmac is not None and hmac.tolerance_s == DEFAULT_TOLERANCE_S


@pytest.mark.parametrize(("text", "expected"), [
    ("sources:\n  - name: a\n    api_keys_env: MISSING_VAR\n",
     "s.yaml:3:19: sources[0].api_keys_env[0]: environment variable MISSING_VAR is not set"),
    ("sources:\n  - name: a\n    api_keys_env: SHORT\n",
     "s.yaml:3:19: sources[0].api_keys_env[0]: the value of SHORT is shorter than 16 bytes"),
    ("sources:\n  - name: a\n    hmac:\n      secret: hunter2hunter2hunter2\n",
     "s.yaml:4:7: sources[0].hmac.secret: secrets are not written in the file"),
    ("sources:\n  - name: a\n", "s.yaml:2:5: sources[0]: give either api_keys_env or hmac"),
    ("sources:\n  - name: a\n    api_keys_env: POS_KEY\n    hmac: {secret_env: BOOK_SECRET}\n",
     "s.yaml:2:5: sources[0]: give either api_keys_env or hmac"),
    ("sources:\n  - name: a\n    api_keys_env: POS_KEY\n  - name: a\n    api_keys_env: POS_KEY\n",
     "s.yaml:4:5: sources[1].name: 'a' is already the name of sources[0]"),
    ("sources:\n  - name: a\n    api_key_env: POS_KEY\n",
     "s.yaml:3:5: sources[0].api_key_env: is not a known setting"),
    ("sources:\n  - name: a b\n    api_keys_env: POS_KEY\n",
     "s.yaml:2:11: sources[0].name: must be a name of letters"),
    ("sources:\n  - name: a\n    hmac: {secret_env: BOOK_SECRET, tolerance: 3}\n",
     "s.yaml:3:48: sources[0].hmac.tolerance: must be a duration"),
    ("sources: []\n", "s.yaml:1:10: sources: must list at least one source"),
    ("sources:\n  - name: a\n   bad: [\n", "s.yaml:3:"),
    ("", "s.yaml:1:1: the file is empty"),
    ("# nothing yet\n", "s.yaml:1:1: the file is empty; list the sources"),
])
def test_each_mistake_is_one_line_with_its_position(text: str, expected: str) -> None:
    with pytest.raises(IngestConfigError) as caught:
        parse_ingest_config(text, "s.yaml", ENV)
    message = str(caught.value)
    assert message.startswith(expected), message
    assert "\n" not in message


def test_an_unreadable_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(IngestConfigError, match=r"absent\.yaml:1:1: cannot read the file"):
        load_ingest_config(tmp_path / "absent.yaml", ENV)


def test_the_sources_file_in_the_docs_loads() -> None:
    document = Path(__file__).resolve().parents[2] / "docs" / "ingest.md"
    (block,) = [b for b in re.findall(r"```yaml\n(.*?)```", document.read_text(), re.DOTALL)
                if b.startswith("sources:")]
    env = {"POS_DOWNTOWN_KEY": "k" * 24, "POS_DOWNTOWN_KEY_NEXT": "n" * 24,
           "BOOKINGS_SECRET": "s" * 32}
    config = parse_ingest_config(block, "docs/ingest.md", env)
    assert [source.name for source in config.sources] == ["pos-downtown", "bookings"]
