"""The package-level API: every public name resolves, and `import engine` stays light."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

import engine

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("name", engine.__all__)
def test_every_public_name_resolves(name: str) -> None:
    assert getattr(engine, name) is not None
    assert name in dir(engine)


def test_an_unknown_name_is_an_attribute_error() -> None:
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        _ = engine.nope  # type: ignore[attr-defined]


def test_importing_the_package_and_its_runtime_loads_no_dataflow_and_no_console() -> None:
    code = ("import sys, engine, engine.core.runtime, engine.testing\n"
            "heavy = [m for m in ('bytewax', 'starlette', 'uvicorn', 'confluent_kafka')"
            " if m in sys.modules]\n"
            "print(','.join(heavy))")
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True,
                          text=True, check=True)
    assert done.stdout.strip() == ""


def test_the_facade_runs_a_customer_through_a_journey() -> None:
    plans = engine.load_journeys([ROOT / "examples" / "journeys" / "02_lost_regular.yaml"])
    tester = engine.JourneyTester(*plans, customer_id="ivy")
    for _ in range(4):
        tester.visit()
        tester.advance(days=10)
    tester.advance(days=60)
    assert isinstance(tester.state, engine.CustomerState)
    assert [step for step, _ in tester.sent()] == ["miss_you", "incentive", "last_reminder"]


def test_all_lists_exactly_the_exported_names() -> None:
    assert sorted(engine.__all__) == sorted(engine._EXPORTS)


def test_the_command_line_starts_without_the_heavy_parts() -> None:
    """`journeys --help` and `journeys validate` load no dataflow, Redis, kernels or SciPy."""
    code = ("import sys, engine.app.cli\n"
            "engine.app.cli._parser()\n"
            "heavy = [m for m in ('bytewax', 'redis', 'numba', 'scipy', 'confluent_kafka',"
            " 'nats', 'starlette', 'opentelemetry') if m in sys.modules]\n"
            "print(','.join(heavy))")
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True,
                          text=True, check=True)
    assert done.stdout.strip() == ""
