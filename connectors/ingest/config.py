"""The ingest sources file: who may post events, and how each proves it.

    sources:
      - name: pos-downtown
        api_keys_env: [POS_DOWNTOWN_KEY, POS_DOWNTOWN_KEY_NEXT]
      - name: bookings
        hmac:
          secret_env: BOOKINGS_SECRET
          signature_header: X-Signature        # default
          timestamp_header: X-Timestamp        # default
          tolerance: 5m                        # default

A source proves itself either with an API key (`Authorization: Bearer <key>`; several keys
so that one can be rotated without downtime) or with an HMAC-SHA256 signature of the
request (see `connectors.ingest.auth`). Secrets are never written in the file: `*_env`
keys name the environment variables that hold them, read once at start. Every error is one
line naming FILE:LINE:COL and the key.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from connectors.ingest.errors import IngestConfigError
from journeys_dsl.durations import DurationError, parse_duration
from journeys_dsl.yaml_nodes import MappingNode, Node, ScalarNode, SequenceNode, load_nodes

__all__ = [
    "DEFAULT_SIGNATURE_HEADER",
    "DEFAULT_TIMESTAMP_HEADER",
    "DEFAULT_TOLERANCE_S",
    "HmacSettings",
    "IngestConfig",
    "SourceConfig",
    "load_ingest_config",
    "parse_ingest_config",
]

DEFAULT_SIGNATURE_HEADER = "X-Signature"
DEFAULT_TIMESTAMP_HEADER = "X-Timestamp"
DEFAULT_TOLERANCE_S = 300
"""Five minutes: the window Stripe and Slack give their webhook timestamps."""
MIN_SECRET_BYTES = 16
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,63}$")
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_HEADER = re.compile(r"^[A-Za-z0-9\-]+$")
_INLINE_SECRETS = {"secret": "secret_env", "api_keys": "api_keys_env", "api_key": "api_keys_env"}


@dataclass(frozen=True)
class HmacSettings:
    """A signing secret and where the signature and its timestamp travel."""

    secret: bytes
    signature_header: str = DEFAULT_SIGNATURE_HEADER
    timestamp_header: str = DEFAULT_TIMESTAMP_HEADER
    tolerance_s: int = DEFAULT_TOLERANCE_S


@dataclass(frozen=True)
class SourceConfig:
    """One system that posts events: its name (each event is tagged with it) and its proof."""

    name: str
    api_keys: tuple[bytes, ...] = ()
    hmac: HmacSettings | None = None


@dataclass(frozen=True)
class IngestConfig:
    """A loaded sources file."""

    path: str
    sources: tuple[SourceConfig, ...]


class _Reader:
    """Typed reads of located nodes, with errors naming the line and the key."""

    def __init__(self, path: str, environ: Mapping[str, str]) -> None:
        self.path = path
        self.environ = environ

    def error(self, node: Node, key: str, reason: str) -> IngestConfigError:
        return IngestConfigError(self.path, node.line, node.col, key, reason)

    def mapping(self, node: Node, key: str, known: tuple[str, ...]) -> MappingNode:
        if not isinstance(node, MappingNode):
            raise self.error(node, key, f"must be a mapping, not {node.kind}")
        for duplicate in node.duplicates:
            raise self.error(duplicate.entry.key, f"{key}.{duplicate.entry.key.text}",
                             f"is given twice (first on line {duplicate.first.line})")
        for entry in node.entries:
            if entry.key.text in _INLINE_SECRETS:
                raise self.error(entry.key, f"{key}.{entry.key.text}",
                                 "secrets are not written in the file; put it in an "
                                 f"environment variable and name that with "
                                 f"{_INLINE_SECRETS[entry.key.text]}")
            if entry.key.text not in known:
                raise self.error(entry.key, f"{key}.{entry.key.text}",
                                 f"is not a known setting; use {', '.join(known)}")
        return node

    def text(self, node: Node, key: str, pattern: re.Pattern[str], what: str) -> str:
        if not isinstance(node, ScalarNode) or not isinstance(node.value, str):
            raise self.error(node, key, f"must be {what}, not {node.kind}")
        if not pattern.match(node.value):
            raise self.error(node, key, f"must be {what}, not {node.value!r}")
        return node.value

    def secret(self, node: Node, key: str) -> bytes:
        """The value of the environment variable `node` names."""
        variable = self.text(node, key, _ENV_NAME, "an environment variable name")
        value = self.environ.get(variable, "")
        if not value:
            raise self.error(node, key, f"environment variable {variable} is not set")
        if len(value.encode()) < MIN_SECRET_BYTES:
            raise self.error(node, key, f"the value of {variable} is shorter than "
                                        f"{MIN_SECRET_BYTES} bytes; use a longer secret")
        return value.encode()


def parse_ingest_config(text: str, path: str,
                        environ: Mapping[str, str] | None = None) -> IngestConfig:
    """An `IngestConfig` from the file's text; `environ` defaults to `os.environ`."""
    root, problems = load_nodes(text, path) if text.strip() else (None, [])
    if root is None or problems:
        if root is None and (not problems or "empty" in problems[0].message):
            raise IngestConfigError(path, 1, 1, "", "the file is empty; list the sources "
                                                    "under 'sources:'")
        first = problems[0]
        raise IngestConfigError(path, first.line, first.col, "", first.message)
    reader = _Reader(path, os.environ if environ is None else environ)
    top = reader.mapping(root, "", ("sources",))
    entry = top.get("sources")
    if entry is None or not isinstance(entry.value, SequenceNode) or not entry.value.items:
        raise reader.error(entry.value if entry else top, "sources",
                           "must list at least one source")
    sources: list[SourceConfig] = []
    names: dict[str, int] = {}
    for index, item in enumerate(entry.value.items):
        source = _source(reader, item, f"sources[{index}]")
        if source.name in names:
            raise reader.error(item, f"sources[{index}].name",
                               f"{source.name!r} is already the name of sources"
                               f"[{names[source.name]}]")
        names[source.name] = index
        sources.append(source)
    return IngestConfig(path, tuple(sources))


def _source(reader: _Reader, node: Node, key: str) -> SourceConfig:
    section = reader.mapping(node, key, ("name", "api_keys_env", "hmac"))
    name_entry = section.get("name")
    if name_entry is None:
        raise reader.error(section, f"{key}.name", "is required")
    name = reader.text(name_entry.value, f"{key}.name", _NAME,
                       "a name of letters, digits, '.', '_' or '-' (at most 64)")
    keys_entry, hmac_entry = section.get("api_keys_env"), section.get("hmac")
    if (keys_entry is None) == (hmac_entry is None):
        raise reader.error(section, key, "give either api_keys_env or hmac (one of them)")
    if keys_entry is not None:
        return SourceConfig(name, api_keys=_api_keys(reader, keys_entry.value,
                                                     f"{key}.api_keys_env"))
    assert hmac_entry is not None
    return SourceConfig(name, hmac=_hmac(reader, hmac_entry.value, f"{key}.hmac"))


def _api_keys(reader: _Reader, node: Node, key: str) -> tuple[bytes, ...]:
    items = node.items if isinstance(node, SequenceNode) else [node]
    if not items:
        raise reader.error(node, key, "must name at least one environment variable")
    return tuple(reader.secret(item, f"{key}[{index}]") for index, item in enumerate(items))


def _hmac(reader: _Reader, node: Node, key: str) -> HmacSettings:
    section = reader.mapping(node, key, ("secret_env", "signature_header", "timestamp_header",
                                         "tolerance"))
    secret_entry = section.get("secret_env")
    if secret_entry is None:
        raise reader.error(section, f"{key}.secret_env", "is required")
    settings = HmacSettings(reader.secret(secret_entry.value, f"{key}.secret_env"))
    headers = {}
    for name in ("signature_header", "timestamp_header"):
        entry = section.get(name)
        if entry is not None:
            headers[name] = reader.text(entry.value, f"{key}.{name}", _HEADER,
                                        "an HTTP header name")
    tolerance = settings.tolerance_s
    entry = section.get("tolerance")
    if entry is not None:
        tolerance = _tolerance(reader, entry.value, f"{key}.tolerance")
    return HmacSettings(settings.secret, headers.get("signature_header",
                                                     DEFAULT_SIGNATURE_HEADER),
                        headers.get("timestamp_header", DEFAULT_TIMESTAMP_HEADER), tolerance)


def _tolerance(reader: _Reader, node: Node, key: str) -> int:
    if not isinstance(node, ScalarNode) or not isinstance(node.value, str):
        raise reader.error(node, key, "must be a duration such as 5m")
    try:
        seconds = parse_duration(node.value)
    except DurationError as exc:
        raise reader.error(node, key, exc.message) from None
    if not 1 <= seconds <= 86_400:
        raise reader.error(node, key, "must be from 1s to 1d")
    return seconds


def load_ingest_config(path: str | Path,
                       environ: Mapping[str, str] | None = None) -> IngestConfig:
    """Read and check the sources file at `path`."""
    file = Path(path)
    try:
        text = file.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise IngestConfigError(str(file), 1, 1, "", f"cannot read the file: {reason}") from None
    return parse_ingest_config(text, str(file), environ)
