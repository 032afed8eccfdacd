"""The complete journeys shown in README.md, docs/journeys.md and docs/extending.md compile
as written."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from journeys_dsl.event_types import journey_vocabulary
from journeys_dsl.loader import load_journey_text

ROOT = Path(__file__).resolve().parents[2]
BLOCK = re.compile(r"```yaml\n(.*?)```", re.DOTALL)


def complete_journeys(path: Path) -> list[str]:
    """YAML blocks of the file that are whole journeys (they start with `journey:`)."""
    return [b for b in BLOCK.findall(path.read_text()) if b.startswith("journey:")]


@pytest.mark.parametrize("document", ["README.md", "docs/journeys.md", "docs/extending.md"])
def test_complete_journeys_in_the_docs_compile(document: str) -> None:
    blocks = complete_journeys(ROOT / document)
    assert blocks, f"{document} shows no complete journey"
    # the shipped event types file declares the types the examples use
    vocabulary = journey_vocabulary(None, ROOT / "examples" / "event_types.yaml")
    for block in blocks:
        plan = load_journey_text(block, document, vocabulary)
        assert plan.steps
