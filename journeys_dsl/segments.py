"""Segments and loyalty tiers: the customer model file, parsed and compiled.

```yaml
activity:            # exclusive: the first match is customer.segment
  - {id: sleeping, when: "customer.days_since_last_visit > 30"}
  - {id: new}        # no condition: everyone left
check_tier:          # exclusive: the first match is customer.check_tier
  - {id: high, when: "customer.check_percentile >= 67"}
segments:            # every match is listed in customer.segments (with the two above)
  - {id: vip, when: "customer.spend_percentile >= 75"}
loyalty:
  accrue_points: true              # the engine grants points on visits by tier
  points_expire_after: 365d        # without a visit, the balance expires
  tiers:                           # the first match is customer.loyalty_tier
    - {id: top, when: "customer.spend_365d >= 1200", points_per_eur: 2}
    - {id: starter, points_per_eur: 1}
```
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

from journeys_dsl import plan
from journeys_dsl.config_files import compile_file
from journeys_dsl.node_reader import NodeReader, Scope
from journeys_dsl.vocabulary import BUILT_IN, Vocabulary
from journeys_dsl.yaml_nodes import MappingNode, Node, ScalarNode, SequenceNode

DEFAULT_SEGMENTS = Path(__file__).resolve().parent / "defaults" / "segments.yaml"
DERIVED_FIELDS = ("segment", "segments", "check_tier", "loyalty_tier")
"""Customer fields computed from this file, which its own conditions may not read."""

_SCOPE = Scope(
    event_type=None,
    no_event="segments are computed from the customer's profile; use customer.* instead",
    no_enrollment="segments do not belong to a journey",
)


@dataclass(frozen=True)
class SegmentRule:
    segment_id: str
    condition: plan.Expression | None


@dataclass(frozen=True)
class LoyaltyTier:
    tier_id: str
    condition: plan.Expression | None
    points_per_eur: float


@dataclass(frozen=True)
class CustomerModel:
    """Compiled segments and loyalty rules."""

    source_file: str
    activity: tuple[SegmentRule, ...]
    check_tier: tuple[SegmentRule, ...]
    segments: tuple[SegmentRule, ...]
    tiers: tuple[LoyaltyTier, ...]
    accrue_points: bool
    points_expire_after_s: int | None

    @cached_property
    def kinds(self) -> Mapping[str, str]:
        """Each segment id's list: "activity", "check_tier" or "segments"."""
        kinds = {rule.segment_id: "segments" for rule in self.segments}
        kinds.update((rule.segment_id, "check_tier") for rule in self.check_tier)
        kinds.update((rule.segment_id, "activity") for rule in self.activity)
        return kinds

    @cached_property
    def _rules(self) -> Mapping[str, SegmentRule]:
        return {rule.segment_id: rule for rule in self.segments}

    def segment_rule(self, segment_id: str) -> SegmentRule | None:
        """The non-exclusive segment rule with this id, if any."""
        return self._rules.get(segment_id)

    def segment_ids(self) -> tuple[str, ...]:
        return tuple(rule.segment_id for rule in (*self.activity, *self.check_tier,
                                                  *self.segments))

    def vocabulary(self, source: str | None = None) -> Vocabulary:
        """The engine's own field values plus this file's segments and tiers, for
        checking the text journeys compare them with; `source` names the file."""
        return BUILT_IN.with_segments(
            activity=(rule.segment_id for rule in self.activity),
            check_tiers=(rule.segment_id for rule in self.check_tier),
            segments=(rule.segment_id for rule in self.segments),
            tiers=(tier.tier_id for tier in self.tiers),
            source=source or self.source_file or "the segments file")


EMPTY_MODEL = CustomerModel("", (), (), (), (), False, None)


class _SegmentParser(NodeReader):
    def model(self, root: Node) -> CustomerModel | None:
        top = self.mapping(root, "a segments file", "")
        if top is None:
            return None
        self.keys(top, ("activity", "check_tier", "segments", "loyalty"), "in a segments file",
                  "")
        seen: dict[str, str] = {}
        activity = self.rules(top, "activity", seen)
        check_tier = self.rules(top, "check_tier", seen)
        segments = self.rules(top, "segments", seen)
        loyalty = self.optional(top, "loyalty")
        tiers: tuple[LoyaltyTier, ...] = ()
        accrue, expire = False, None
        if loyalty is not None:
            tiers, accrue, expire = self.loyalty(loyalty)
        return CustomerModel(self.filename, activity, check_tier, segments, tiers, accrue,
                             expire)

    def rules(self, top: MappingNode, key: str, seen: dict[str, str]
              ) -> tuple[SegmentRule, ...]:
        node = self.optional(top, key)
        if node is None:
            return ()
        items = self.sequence(node, f"'{key}'", key, "- {id: vip, when: \"...\"}")
        if items is None:
            return ()
        rules = []
        for index, item in enumerate(items.items):
            path = f"{key}[{index}]"
            rule = self.rule(item, path, seen)
            if rule is not None:
                rules.append(rule)
        return tuple(rules)

    def rule(self, node: Node, path: str, seen: dict[str, str]) -> SegmentRule | None:
        entry = self.mapping(node, "a segment", path)
        if entry is None:
            return None
        self.keys(entry, ("id", "when", "description"), "in a segment", path)
        id_node = self.require(entry, "id", "in a segment", path)
        segment_id = self.ident(id_node, "segment id", f"{path}.id") if id_node else None
        if segment_id is not None and id_node is not None:
            if segment_id in seen:
                self.report(id_node, f"duplicate segment id '{segment_id}' (first at "
                                     f"{seen[segment_id]})", f"{path}.id")
            seen[segment_id] = path
        condition = self.own_condition(entry, path)
        return SegmentRule(segment_id, condition) if segment_id is not None else None

    def own_condition(self, entry: MappingNode, path: str) -> plan.Expression | None:
        node = self.optional(entry, "when")
        if node is None:
            return None
        expression = self.expression(node, f"{path}.when", _SCOPE)
        if expression is not None and isinstance(node, ScalarNode):
            for ref in getattr(expression, "refs", ()):
                if ref.root == "customer" and ref.path and ref.path[0] in DERIVED_FIELDS:
                    self.report(node, f"'customer.{ref.path[0]}' is computed from this file; "
                                      "a segment's condition cannot read it", f"{path}.when")
                    return None
        return expression

    def loyalty(self, node: Node) -> tuple[tuple[LoyaltyTier, ...], bool, int | None]:
        loyalty = self.mapping(node, "'loyalty'", "loyalty")
        if loyalty is None:
            return (), False, None
        self.keys(loyalty, ("tiers", "accrue_points", "points_expire_after"), "in 'loyalty'",
                  "loyalty")
        accrue = False
        accrue_node = self.optional(loyalty, "accrue_points")
        if accrue_node is not None:
            value = self.choice(accrue_node, "accrue_points value", "loyalty.accrue_points",
                                ("true", "false"))
            accrue = value == "true"
        expire_node = self.optional(loyalty, "points_expire_after")
        expire = (self.duration(expire_node, "'points_expire_after'",
                                "loyalty.points_expire_after")
                  if expire_node is not None else None)
        tiers_node = self.require(loyalty, "tiers", "in 'loyalty'", "loyalty")
        tiers: list[LoyaltyTier] = []
        items = (self.sequence(tiers_node, "'tiers'", "loyalty.tiers", "- {id: top, ...}")
                 if tiers_node is not None else None)
        seen: set[str] = set()
        for index, item in enumerate(items.items if isinstance(items, SequenceNode) else ()):
            tier = self.tier(item, f"loyalty.tiers[{index}]", seen)
            if tier is not None:
                tiers.append(tier)
        return tuple(tiers), accrue, expire

    def tier(self, node: Node, path: str, seen: set[str]) -> LoyaltyTier | None:
        entry = self.mapping(node, "a tier", path)
        if entry is None:
            return None
        self.keys(entry, ("id", "when", "points_per_eur", "description"), "in a tier", path)
        id_node = self.require(entry, "id", "in a tier", path)
        tier_id = self.ident(id_node, "tier id", f"{path}.id") if id_node else None
        if tier_id is not None and tier_id in seen and id_node is not None:
            self.report(id_node, f"duplicate tier id '{tier_id}'", f"{path}.id")
        if tier_id is not None:
            seen.add(tier_id)
        rate = 1.0
        rate_node = self.optional(entry, "points_per_eur")
        if rate_node is not None:
            text = self.text(rate_node, "points_per_eur", f"{path}.points_per_eur")
            try:
                rate = float(text) if text is not None else 1.0
                if rate < 0:
                    raise ValueError
            except ValueError:
                self.report(rate_node, f"points_per_eur must be a number of 0 or more, "
                                       f"not '{text}'", f"{path}.points_per_eur")
        condition = self.own_condition(entry, path)
        return LoyaltyTier(tier_id, condition, rate) if tier_id is not None else None


def load_segments_text(text: str, filename: str) -> CustomerModel:
    """Compile a segments file; raises `JourneyValidationError` with FILE:LINE:COL problems."""
    return compile_file(text, filename, _SegmentParser(filename), _SegmentParser.model,
                        "segments")


def segments_vocabulary(path: str | Path | None = None) -> Vocabulary:
    """The values journeys may compare fields with, given this segments file (None: the
    shipped one): see `journeys_dsl.vocabulary`."""
    model = load_segments(path)
    if path is None:
        return model.vocabulary("the shipped segments file")
    return model.vocabulary()


def load_segments(path: str | Path | None = None) -> CustomerModel:
    """The segments file at `path`, or the defaults shipped with the engine."""
    source = Path(path) if path is not None else DEFAULT_SEGMENTS
    return load_segments_text(source.read_text(encoding="utf-8"), str(source))
