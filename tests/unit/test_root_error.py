"""Every error the product raises derives from one root, `JourneysError`, with its own code."""

from __future__ import annotations

import importlib
import inspect
import pkgutil

import pytest

from engine.errors import JourneysError
from engine.storage.store import LayoutError
from journeys_dsl.errors import JourneyValidationError

PACKAGES = ("engine", "journeys_dsl", "connectors")


def product_exceptions() -> list[type[BaseException]]:
    found: list[type[BaseException]] = []
    for name in PACKAGES:
        package = importlib.import_module(name)
        for info in pkgutil.walk_packages(package.__path__, f"{name}."):
            if info.name.endswith("__main__"):
                continue
            module = importlib.import_module(info.name)
            found.extend(
                member for _, member in inspect.getmembers(module, inspect.isclass)
                if issubclass(member, BaseException) and member.__module__ == info.name)
    return found


def test_the_product_defines_errors_to_check() -> None:
    assert len(product_exceptions()) >= 20


@pytest.mark.parametrize("error", product_exceptions(), ids=lambda e: e.__qualname__)
def test_every_product_error_derives_from_the_root(error: type[BaseException]) -> None:
    assert issubclass(error, JourneysError), f"{error.__module__}.{error.__qualname__}"


def test_every_error_class_names_its_own_code() -> None:
    errors = [error for error in product_exceptions() if issubclass(error, JourneysError)]
    codes = [error.__dict__.get("code") for error in errors]
    missing = [error.__qualname__ for error, code in zip(errors, codes, strict=True) if not code]
    assert not missing
    assert len(set(codes)) == len(codes)


def test_context_set_by_a_subclass_survives_and_reads_first() -> None:
    error = JourneysError("give --shards 8, the number the state was written with",
                          file="events.jsonl", shard=3)
    assert str(error) == ("events.jsonl, shard 3: "
                          "give --shards 8, the number the state was written with")
    assert LayoutError("written with 8 shards").code == "state_layout"


def test_a_journey_validation_error_is_caught_as_the_root() -> None:
    with pytest.raises(JourneysError) as caught:
        raise JourneyValidationError([])
    assert caught.value.code == "journey_invalid"
