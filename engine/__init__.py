"""The journey engine's public API: what an application embedding the engine imports.

    import engine

    plans = engine.load_journeys(["examples/journeys"])
    summary = engine.run(engine.RunOptions(journeys=["examples/journeys"],
                                           events="events.jsonl", commands="commands.jsonl"))
    print(summary.events_read, summary.commands)

    tester = engine.JourneyTester(plans[0])     # one customer, a fake clock, no Redis
    tester.visit()

Every error the engine raises derives from `engine.JourneysError`. The names below are the
stable surface; the modules behind them may move. They load on first use, so `import
engine` stays cheap and the runtime never pulls in the dataflow (Bytewax) or the console.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from engine import compiled_core

compiled_core.install()  # before any core module: the compiled form or the Python source

_EXPORTS: dict[str, str] = {
    # journeys: the language and its files
    "JourneyPlan": "journeys_dsl.plan",
    "JourneyValidationError": "journeys_dsl.errors",
    "load_journeys": "journeys_dsl.loader",
    "load_journey_text": "journeys_dsl.loader",
    "load_segments": "journeys_dsl.segments",
    "load_policies": "journeys_dsl.policies",
    "CustomerModel": "journeys_dsl.segments",
    "Policies": "journeys_dsl.policies",
    # the runtime: one customer at a time, time passed in
    "Catalog": "engine.core.catalog",
    "JourneyRuntime": "engine.core.runtime",
    "Effects": "engine.core.runtime",
    "CustomerState": "engine.core.state",
    "Event": "engine.core.events",
    "EventError": "engine.core.events",
    "validate_event": "engine.core.events",
    "decode_line": "engine.core.decoding",
    "ScoreModel": "engine.scoring.model",
    "load_model": "engine.scoring.model",
    # a run of the dataflow over Redis
    "RunOptions": "engine.flow.runner",
    "KafkaOptions": "engine.flow.runner",
    "RunSummary": "engine.flow.runner",
    "run": "engine.flow.runner",
    "ShardProcessor": "engine.flow.processor",
    # errors and testing
    "JourneysError": "engine.errors",
    "JourneyTester": "engine.testing",
}

__all__ = [
    "Catalog",
    "CustomerModel",
    "CustomerState",
    "Effects",
    "Event",
    "EventError",
    "JourneyPlan",
    "JourneyRuntime",
    "JourneyTester",
    "JourneyValidationError",
    "JourneysError",
    "KafkaOptions",
    "Policies",
    "RunOptions",
    "RunSummary",
    "ScoreModel",
    "ShardProcessor",
    "decode_line",
    "load_journey_text",
    "load_journeys",
    "load_model",
    "load_policies",
    "load_segments",
    "run",
    "validate_event",
]

if TYPE_CHECKING:
    from engine.core.catalog import Catalog
    from engine.core.decoding import decode_line
    from engine.core.events import Event, EventError, validate_event
    from engine.core.runtime import Effects, JourneyRuntime
    from engine.core.state import CustomerState
    from engine.errors import JourneysError
    from engine.flow.processor import ShardProcessor
    from engine.flow.runner import KafkaOptions, RunOptions, RunSummary, run
    from engine.scoring.model import ScoreModel, load_model
    from engine.testing import JourneyTester
    from journeys_dsl.errors import JourneyValidationError
    from journeys_dsl.loader import load_journey_text, load_journeys
    from journeys_dsl.plan import JourneyPlan
    from journeys_dsl.policies import Policies, load_policies
    from journeys_dsl.segments import CustomerModel, load_segments


def __getattr__(name: str) -> Any:
    """Load a public name from its module on first use (PEP 562)."""
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'engine' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
