"""The options of a run, from one model: flags, then `JOURNEYS_*` variables, then a file.

`--kafka-config` and `--kafka-until-end` are flags only: `JOURNEYS_KAFKA_*` variables are
librdkafka settings (docs/kafka.md).

`journeys run` reads its options here. A flag given on the command line wins; a flag left
out falls back to the environment variable of the same name (`--batch-lines` is
`JOURNEYS_BATCH_LINES`), then to the settings file (`--settings FILE` or
`JOURNEYS_SETTINGS`, YAML or TOML, keys as the flags without dashes: `batch_lines: 2000`),
then to the default. Durations read as the journey language writes them (`30d`, `12h`).
A value that cannot be used is refused with the place it came from and what to write.
"""

from __future__ import annotations

import os
import tomllib
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BeforeValidator, Field, ValidationError, field_validator
from pydantic_settings import (
    BaseSettings,
    NoDecode,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
    YamlConfigSettingsSource,
)

from engine.errors import JourneysError
from engine.run_defaults import (
    DEFAULT_BATCH_LINES,
    DEFAULT_CACHE_CUSTOMERS,
    DEFAULT_DEDUP_WINDOW_MS,
    DEFAULT_MAX_AMOUNT,
    DEFAULT_NATS_EVENTS_STREAM,
    DEFAULT_NATS_OUTPUTS_STREAM,
    TIMELINE_KEPT,
)
from journeys_dsl.durations import DurationError, parse_duration

__all__ = ["SETTINGS_ENV", "RunSettings", "SettingsError", "load_run_settings"]

SETTINGS_ENV = "JOURNEYS_SETTINGS"
"""The environment variable naming a settings file when `--settings` is not given."""


class SettingsError(JourneysError):
    """A run option that cannot be used; names where it came from."""

    code = "settings"


def _duration_ms(value: Any) -> Any:
    """A duration written as journeys write them (`30d`) as milliseconds. A bare number is
    refused wherever it comes from, as the flags refuse it: 86400 is not a day."""
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        return value
    try:
        seconds = parse_duration(value if isinstance(value, str) else int(value))
    except DurationError as exc:
        raise ValueError(str(exc)) from None
    return seconds * 1000


DurationMs = Annotated[int, BeforeValidator(_duration_ms), Field(gt=0)]


def _comma_list(value: Any) -> Any:
    """`a,b` (one string, as the environment gives it) as a list."""
    if isinstance(value, str):
        return [part.strip() for part in value.split(",") if part.strip()]
    return value


Paths = Annotated[list[str], NoDecode, BeforeValidator(_comma_list)]


class RunSettings(BaseSettings):
    """Every option of `journeys run` (see `journeys run --help` for each one's meaning)."""

    model_config = SettingsConfigDict(env_prefix="JOURNEYS_", extra="forbid", frozen=True,
                                      validate_default=True)

    journeys: Paths = Field(min_length=1)
    events: str | None = None
    commands: str = "-"
    segments: str | None = None
    event_types: str | None = None
    scores: str | None = None
    policies: str | None = None
    dead_letter: str = "dead-letter.jsonl"
    redis: str | None = None
    state_dir: str | None = None
    shards: int = Field(8, ge=1)
    prefix: str = Field("je", min_length=1)
    clock: Literal["event", "wall"] = "event"
    tail: bool = False
    until: str | None = None
    batch_lines: int = Field(DEFAULT_BATCH_LINES, ge=1)
    max_skew: DurationMs | None = None
    max_amount: float = Field(DEFAULT_MAX_AMOUNT, gt=0)
    dedup_window: DurationMs = Field(DEFAULT_DEDUP_WINDOW_MS, validate_default=False)
    timeline: int = Field(TIMELINE_KEPT, ge=0)
    cache_customers: int = Field(DEFAULT_CACHE_CUSTOMERS, ge=0)
    tick: float = Field(1.0, gt=0)
    idle_exit: float | None = Field(None, gt=0)
    source_id: str | None = None
    workers: int = Field(1, ge=1)
    outage_limit: float = Field(300.0, ge=0)
    process_id: int | None = Field(None, ge=0)
    addresses: Paths = Field(default_factory=list)
    kafka: str | None = None
    events_topic: str | None = None
    commands_topic: str | None = None
    dead_letter_topic: str | None = None
    nats: str | None = None
    events_subject: str | None = None
    commands_subject: str | None = None
    dead_letter_subject: str | None = None
    events_stream: str = DEFAULT_NATS_EVENTS_STREAM
    outputs_stream: str = DEFAULT_NATS_OUTPUTS_STREAM
    nats_until_end: bool = False
    telemetry: Literal["none", "console", "otlp"] = "none"

    @field_validator("telemetry", mode="before")
    @classmethod
    def _telemetry_mode(cls, value: Any) -> Any:
        if isinstance(value, str):
            value = value.strip().lower()
            return "none" if value in ("", "off") else value
        return value

    @classmethod
    def settings_customise_sources(
            cls, settings_cls: type[BaseSettings], init_settings: PydanticBaseSettingsSource,
            env_settings: PydanticBaseSettingsSource,
            dotenv_settings: PydanticBaseSettingsSource,
            file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        """Flags, then the environment (no .env file, no secrets folder)."""
        return init_settings, env_settings


def load_run_settings(flags: dict[str, Any], settings_file: str | None = None) -> RunSettings:
    """The run's settings: `flags` (only those given) over the environment over the file
    (`settings_file`, else $JOURNEYS_SETTINGS), over the defaults.

    Raises `SettingsError` naming the flag, the variable or the file, and the option.
    """
    named = settings_file or os.environ.get(SETTINGS_ENV)
    if named is not None:
        _check_file(named)
    try:
        return _with_file(named)(**flags)
    except ValidationError as exc:
        raise _settings_error(exc, flags, named) from None
    except (OSError, ValueError, yaml.YAMLError, tomllib.TOMLDecodeError) as exc:
        raise SettingsError(f"cannot be read as settings: {' '.join(str(exc).split())}",
                            file=named) from None


def _with_file(named: str | None) -> type[RunSettings]:
    """`RunSettings` that also reads the settings file `named`, after the environment."""
    if named is None:
        return RunSettings
    path = Path(named)

    class FileRunSettings(RunSettings):
        @classmethod
        def settings_customise_sources(
                cls, settings_cls: type[BaseSettings],
                init_settings: PydanticBaseSettingsSource,
                env_settings: PydanticBaseSettingsSource,
                dotenv_settings: PydanticBaseSettingsSource,
                file_secret_settings: PydanticBaseSettingsSource,
        ) -> tuple[PydanticBaseSettingsSource, ...]:
            source = (TomlConfigSettingsSource(settings_cls, toml_file=path)
                      if path.suffix.lower() == ".toml"
                      else YamlConfigSettingsSource(settings_cls, yaml_file=path))
            return init_settings, env_settings, source

    return FileRunSettings


def _check_file(named: str) -> None:
    path = Path(named)
    if not path.is_file():
        raise SettingsError("no such settings file: check the path (--settings or "
                            f"{SETTINGS_ENV})", file=named)


def _settings_error(exc: ValidationError, flags: dict[str, Any],
                    named: str | None) -> SettingsError:
    first = exc.errors()[0]
    option = ".".join(str(part) for part in first["loc"]) or "settings"
    if first["type"] == "extra_forbidden":
        message = f"{option}: not a run option (see journeys run --help)"
    elif first["type"] == "missing":
        flag = "--" + option.replace("_", "-")
        return SettingsError(f"give {flag} (or {option} in the settings file, or "
                             f"JOURNEYS_{option.upper()})")
    else:
        message = f"{option}: {first['msg'].removeprefix('Value error, ')}"
    variable = f"JOURNEYS_{option.upper()}"
    if option in flags:
        where = "--" + option.replace("_", "-")
    elif variable in os.environ:
        where = variable
    else:
        where = named or variable
    more = len(exc.errors()) - 1
    suffix = f" (and {more} more)" if more else ""
    return SettingsError(f"{message}{suffix}", file=where)
