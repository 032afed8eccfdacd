"""Declared event types: the event types file, parsed and compiled.

The built-in types (visit, rating, presence, ...; see `journeys_dsl.fields`) are always
known. An event types file declares more, with their fields and field types, whether they
count as a visit and whether they carry a venue, and may add presence zones:

```yaml
types:
  table_booked:
    description: A table booked through the booking widget.
    venue: true              # carries a required venue_id (venue.* reads it)
    visit: false             # true: updates the visit counters like a visit
    fields:
      party_size: int                              # text, int, number, bool, datetime, date
      booked_for: {type: datetime, required: true}
      area: {type: text, values: [terrace, inside]}
presence_zones: [cloakroom, rooftop]               # beside the built-in zones
```
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from journeys_dsl import fields
from journeys_dsl.config_files import compile_file
from journeys_dsl.dates import DateKind
from journeys_dsl.node_reader import NodeReader
from journeys_dsl.vocabulary import Vocabulary
from journeys_dsl.yaml_nodes import MappingNode, Node, ScalarNode, SequenceNode

FIELD_TYPES: tuple[str, ...] = ("text", "int", "number", "bool", "datetime", "date")
"""What a declared field may hold."""
TYPE_KEYS = ("description", "venue", "visit", "fields")
FIELD_KEYS = ("type", "required", "values", "min", "max", "description")
_NAME = re.compile(r"^[a-z][a-z0-9_]*$")
_NAME_RULE = "use lowercase letters, digits and _, starting with a letter"
_KINDS = {"text": "text", "int": "number", "number": "number", "datetime": "text",
          "date": "text"}
"""How journeys compare each field type (bool fields may hold either)."""


@dataclass(frozen=True)
class DeclaredField:
    name: str
    type: str
    required: bool = False
    values: tuple[str, ...] = ()
    """For text: the values it may take (empty: any text)."""
    minimum: float | None = None
    maximum: float | None = None


@dataclass(frozen=True)
class DeclaredType:
    """One event type of the file, with its fields in the order they are declared."""

    name: str
    fields: tuple[DeclaredField, ...]
    venue: bool = False
    """Carries a required `venue_id`."""
    visit: bool = False
    """Updates the visit counters (visit count, first and last visit, venue) as a visit;
    its spend is the `amount` field when declared, else 0."""
    description: str = ""

    @property
    def field_names(self) -> tuple[str, ...]:
        """Names `event.<name>` may read, `venue_id` first when it carries a venue."""
        own = tuple(f.name for f in self.fields)
        return ("venue_id", *own) if self.venue else own


@dataclass(frozen=True)
class EventTypes:
    """The declared types and extra presence zones of an event types file."""

    source_file: str = ""
    types: Mapping[str, DeclaredType] = field(default_factory=dict)
    presence_zones: tuple[str, ...] = ()

    def event_fields(self) -> dict[str, tuple[str, ...]]:
        """Fields of every event type, built-in and declared (see `fields.EVENT_FIELDS`)."""
        return {**fields.EVENT_FIELDS,
                **{name: kind.field_names for name, kind in self.types.items()}}

    def date_fields(self) -> dict[str, dict[str, DateKind]]:
        """The `datetime` and `date` fields of each declared type: dates steps and entries
        can time by (`at: {date: event.booked_for}`)."""
        found: dict[str, dict[str, DateKind]] = {}
        for name, kind in self.types.items():
            names: dict[str, DateKind] = {one.name: "iso" for one in kind.fields
                                          if one.type in ("datetime", "date")}
            if names:
                found[name] = names
        return found


NO_EVENT_TYPES = EventTypes()
"""No file: the built-in types only."""


class _EventTypesParser(NodeReader):
    def model(self, root: Node) -> EventTypes | None:
        top = self.mapping(root, "an event types file", "")
        if top is None:
            return None
        self.keys(top, ("types", "presence_zones"), "in an event types file", "")
        types: dict[str, DeclaredType] = {}
        types_node = self.optional(top, "types")
        mapping = self.mapping(types_node, "'types'", "types") if types_node else None
        for entry in mapping.entries if mapping is not None else ():
            declared = self.declared_type(entry.key, entry.value)
            if declared is not None:
                types[declared.name] = declared
        zones = self.zones(self.optional(top, "presence_zones"))
        return EventTypes(self.filename, types, zones)

    def name(self, node: ScalarNode, what: str, path: str) -> str | None:
        text = node.text
        if not _NAME.match(text):
            self.report(node, f"{what} '{text}' is not valid; {_NAME_RULE}", path)
            return None
        return text

    def declared_type(self, key: ScalarNode, node: Node) -> DeclaredType | None:
        path = f"types.{key.text}"
        name = self.name(key, "event type", path)
        if name is None:
            return None
        if name in fields.EVENT_FIELDS:
            self.report(key, f"'{name}' is a built-in event type; give the declared type "
                             "another name", path)
            return None
        body = self.mapping(node, f"event type '{name}'", path)
        if body is None:
            return None
        self.keys(body, TYPE_KEYS, f"in event type '{name}'", path)
        venue = self.flag(body, "venue", path)
        visit = self.flag(body, "visit", path)
        declared: list[DeclaredField] = []
        fields_node = self.optional(body, "fields")
        fields_map = (self.mapping(fields_node, "'fields'", f"{path}.fields")
                      if fields_node is not None else None)
        for entry in fields_map.entries if fields_map is not None else ():
            one = self.declared_field(entry.key, entry.value, f"{path}.fields", venue)
            if one is not None:
                declared.append(one)
        description_node = self.optional(body, "description")
        description = (description_node.text.strip()
                       if isinstance(description_node, ScalarNode) else "")
        amount = next((f for f in declared if f.name == "amount"), None)
        if visit and amount is not None and amount.type not in ("int", "number"):
            self.report(key, f"'{name}' counts as a visit, so its 'amount' must be a number "
                             f"(int or number), not {amount.type}", path)
        return DeclaredType(name, tuple(declared), venue, visit, description)

    def flag(self, body: MappingNode, key: str, path: str) -> bool:
        node = self.optional(body, key)
        if node is None:
            return False
        if isinstance(node, ScalarNode) and isinstance(node.value, bool):
            return node.value
        self.report(node, f"'{key}' must be true or false", f"{path}.{key}")
        return False

    def declared_field(self, key: ScalarNode, node: Node, path: str, venue: bool
                       ) -> DeclaredField | None:
        path = f"{path}.{key.text}"
        name = self.name(key, "field name", path)
        if name is None:
            return None
        if name in fields.EVENT_COMMON or name == "venue_id" or name in ("daypart",):
            hint = ("; set 'venue: true' to give the type a venue_id"
                    if name == "venue_id" and not venue else "")
            self.report(key, f"'{name}' is a field every event has or the engine sets; "
                             f"do not declare it{hint}", path)
            return None
        if isinstance(node, ScalarNode):
            kind = self.field_type(node, path)
            return DeclaredField(name, kind) if kind is not None else None
        body = self.mapping(node, f"field '{name}'", path)
        if body is None:
            return None
        self.keys(body, FIELD_KEYS, f"in field '{name}'", path)
        type_node = self.require(body, "type", f"in field '{name}'", path)
        kind = self.field_type(type_node, f"{path}.type") if type_node is not None else None
        if kind is None:
            return None
        required = self.flag(body, "required", path)
        values: tuple[str, ...] = ()
        values_node = self.optional(body, "values")
        if values_node is not None:
            if kind != "text":
                self.report(values_node, f"'values' applies to text fields, not {kind}",
                            f"{path}.values")
            else:
                values = self.texts(values_node, f"{path}.values")
        bounds: list[float | None] = []
        for bound in ("min", "max"):
            bound_node = self.optional(body, bound)
            value: float | None = None
            if bound_node is not None:
                raw = bound_node.value if isinstance(bound_node, ScalarNode) else None
                if kind not in ("int", "number"):
                    self.report(bound_node, f"'{bound}' applies to int and number fields, "
                                            f"not {kind}", f"{path}.{bound}")
                elif isinstance(raw, bool) or not isinstance(raw, int | float):
                    self.report(bound_node, f"'{bound}' must be a number", f"{path}.{bound}")
                else:
                    value = float(raw)
            bounds.append(value)
        return DeclaredField(name, kind, required, values, bounds[0], bounds[1])

    def field_type(self, node: Node, path: str) -> str | None:
        return self.choice(node, "field type", path, FIELD_TYPES)

    def texts(self, node: Node, path: str) -> tuple[str, ...]:
        items = self.sequence(node, "the values", path, "[terrace, inside]")
        found: list[str] = []
        for index, item in enumerate(items.items if isinstance(items, SequenceNode) else ()):
            text = self.text(item, "a value", f"{path}[{index}]")
            if text is not None and text not in found:
                found.append(text)
        return tuple(found)

    def zones(self, node: Node | None) -> tuple[str, ...]:
        if node is None:
            return ()
        zones = []
        items = self.sequence(node, "'presence_zones'", "presence_zones", "[cloakroom]")
        for index, item in enumerate(items.items if isinstance(items, SequenceNode) else ()):
            path = f"presence_zones[{index}]"
            if not isinstance(item, ScalarNode):
                self.report(item, "a zone must be a single name", path)
                continue
            zone = self.name(item, "zone", path)
            if zone is not None and zone not in fields.PRESENCE_ZONES and zone not in zones:
                zones.append(zone)
        return tuple(zones)


def load_event_types_text(text: str, filename: str) -> EventTypes:
    """Compile an event types file; raises `JourneyValidationError` with FILE:LINE:COL
    problems."""
    return compile_file(text, filename, _EventTypesParser(filename),
                        _EventTypesParser.model, "event types")


def load_event_types(path: str | Path | None) -> EventTypes:
    """The event types file at `path`; None: the built-in types only."""
    if path is None:
        return NO_EVENT_TYPES
    source = Path(path)
    return load_event_types_text(source.read_text(encoding="utf-8"), str(source))


def field_kinds(event_types: EventTypes) -> dict[str, str]:
    """`type:event.field` -> "number" or "text", for the declared fields."""
    return {f"{name}:event.{one.name}": _KINDS[one.type]
            for name, kind in event_types.types.items() for one in kind.fields
            if one.type in _KINDS}


def journey_vocabulary(segments: str | Path | None = None,
                       event_types: str | Path | None = None) -> Vocabulary:
    """What journeys are checked against: the segments file's ids (None: the shipped
    file) and the event types file's types, fields and zones (None: built-in only)."""
    from journeys_dsl.segments import segments_vocabulary

    return segments_vocabulary(segments).with_event_types(load_event_types(event_types))


def schema_with_types(schema: Any, names: Sequence[str], dates: Sequence[str] = ()) -> Any:
    """The journey JSON Schema with the declared types added wherever it lists event types,
    and their date fields (`event.booked_for`) wherever it lists dates."""
    from journeys_dsl.schema import date_sources

    return _with_types(schema, names, date_sources(), dates)


def _with_types(schema: Any, names: Sequence[str], sources: list[str],
                dates: Sequence[str]) -> Any:
    if isinstance(schema, dict):
        if schema.get("enum") == list(fields.EVENT_TYPES):
            return {**schema, "enum": [*fields.EVENT_TYPES, *names]}
        if dates and schema.get("enum") == sources:
            return {**schema, "enum": [*dict.fromkeys([*sources, *dates])]}
        return {key: _with_types(value, names, sources, dates) for key, value in schema.items()}
    if isinstance(schema, list):
        return [_with_types(value, names, sources, dates) for value in schema]
    return schema


def date_sources(event_types: EventTypes) -> tuple[str, ...]:
    """`event.<field>` of every declared date field, once each, for the JSON Schema."""
    return tuple(dict.fromkeys(f"event.{name}" for names in event_types.date_fields().values()
                               for name in names))
