"""Journey YAML nodes -> the validated model, collecting every problem on the way.

The parser never stops at the first problem: it reports each one with its place in the
file and goes on with a placeholder, so a marketer sees everything wrong in one run.
Step references are checked by the compiler, which resolves them.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from journeys_dsl import fields, plan
from journeys_dsl.broadcasts import read_broadcast, warn_once_only
from journeys_dsl.channels import CHANNELS
from journeys_dsl.date_timing import read_at_date, read_date_field_entry
from journeys_dsl.durations import (
    DurationError,
    ShareError,
    parse_local_time,
    parse_share,
    parse_step_time,
)
from journeys_dsl.errors import Problem
from journeys_dsl.expressions import (
    parse_expression,
)
from journeys_dsl.model import (
    END_NAME,
    BranchSpec,
    JourneySpec,
    StepRef,
    StepSpec,
    TimingSpec,
    WaitForSpec,
)
from journeys_dsl.node_reader import NodeReader, Scope, did_you_mean
from journeys_dsl.splits import SplitReader
from journeys_dsl.timing_lint import timing_warnings
from journeys_dsl.vocabulary import Vocabulary
from journeys_dsl.yaml_nodes import MappingNode, Node, ScalarNode

__all__ = ["JourneyParser", "parse_journey"]

TAG_PATTERN = r"^[a-z0-9][a-z0-9_.:-]*$"
TEMPLATE_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_./-]*$"
VAR_PATTERN = r"^[A-Za-z_][A-Za-z0-9_]*$"

TOP_KEYS = ("journey", "version", "name", "description", "entry", "re_entry", "holdout",
            "goal", "exit", "offers", "steps")
ENTRY_KINDS = ("event", "inactive_for", "date", "p_alive_below", "segment", "broadcast")
ENTRY_KEYS = (*ENTRY_KINDS, "when", "offset", "at")
GOAL_KEYS = ("event", "when", "within")
EXIT_KEYS = ("event", "when", "reason")
OFFER_KEYS = ("description", "item", "category", "discount", "dayparts", "valid_for")
STEP_KEYS = ("id", "at", "after", "wait_for", "if", "actions", "branch", "next", "split")
TIMING_KEYS = ("at", "after", "wait_for")
WAIT_KEYS = ("event", "when", "timeout", "on_timeout")
ACTION_KINDS = ("send", "issue", "points", "tag", "untag")
ACTION_EXTRAS = {"send": ("template", "vars"), "points": ("reason",)}
ACTION_KEYS = (*ACTION_KINDS, "template", "vars", "reason")
BRANCH_KEYS = ("if", "goto", "else")
SEGMENT_KEYS = ("enters", "leaves")
DEFAULT_DATE_TIME = (10, 0)

_TAG = re.compile(TAG_PATTERN)
_TEMPLATE = re.compile(TEMPLATE_PATTERN)
_VAR = re.compile(VAR_PATTERN)


_BEFORE_ENTRY = ("the customer has not entered the journey yet when the entry condition is "
                 "checked")
_IN_STEP = "there is no triggering event in a step; use customer.* or offer.*"
_CONDITION_EXIT = ("an exit rule without 'event' is a condition exit, checked whenever the "
                   "customer's profile or the clock changes: it has no triggering event; use "
                   "customer.*, offer.* or journey.*, or add 'event:' to react to an event")


def _profile_entry(kind: str) -> str:
    return (f"{kind} has no triggering event: its condition is checked on the customer's "
            "profile; use customer.* instead")


def parse_journey(root: Node | None, filename: str, vocabulary: Vocabulary | None = None
                  ) -> tuple[JourneySpec | None, list[Problem], list[Problem]]:
    """Validate a journey's node tree: the spec (None when the file is not a journey),
    its problems and its warnings (likely mistakes that do not stop it).

    With a `vocabulary`, text compared with a field of known values must be one of them."""
    parser = JourneyParser(filename, vocabulary)
    spec = parser.journey(root) if root is not None else None
    warnings = list(parser.warnings)
    if spec is not None and not parser.problems:
        warnings.extend(timing_warnings(spec, filename, parser.positions))
    return spec, parser.problems, warnings


class JourneyParser(NodeReader):
    """The journey grammar over the node reader: entry, goal, exits, offers, steps."""

    def __init__(self, filename: str, vocabulary: Vocabulary | None = None) -> None:
        super().__init__(filename, vocabulary)
        self.positions: dict[str, tuple[int, int]] = {}
        """Where some values are written, by path (`steps[2].at`, `goal.within`)."""
        self.offer_ids: list[str] = []
        self.splits = SplitReader(self)
        self.condition_exits: list[plan.ConditionExit] = []
        """Exit rules with `when` and no `event` (read with the event exits)."""
        self.entered_by: plan.Entry | None = None
        """The journey's entry, once read: what `event.*` of a date step reads."""

    def step_ref(self, node: Node, what: str, path: str) -> StepRef | None:
        name = self.text(node, what, path)
        if name is None:
            return None
        return StepRef(name, node.line, node.col, path)

    # ------------------------------------------------------------------ offers

    def offer_field(self, path: tuple[str, ...]) -> tuple[int, str] | None:
        if not path:
            return 0, "'offer' needs an offer id and a field, e.g. offer.dessert.redeemed"
        offer_id = path[0]
        if offer_id not in self.offer_ids:
            if self.offer_ids:
                hint = (did_you_mean(offer_id, self.offer_ids)
                        or f"; offers of this journey: {', '.join(self.offer_ids)}")
            else:
                hint = "; this journey defines no offers"
            return 1, f"unknown offer '{offer_id}'{hint}"
        if len(path) < 2:
            return 1, f"'offer.{offer_id}' needs a field, e.g. offer.{offer_id}.redeemed"
        if path[1] not in fields.OFFER_FIELDS:
            return 2, (f"unknown field '{path[1]}' of an offer"
                       f"{did_you_mean(path[1], fields.OFFER_FIELDS)}")
        return None

    # ------------------------------------------------------------------ journey

    def journey(self, root: Node) -> JourneySpec | None:
        top = self.mapping(root, "a journey file", "")
        if top is None:
            return None
        self.keys(top, TOP_KEYS, "at the top level", "")
        journey_node = self.require(top, "journey", "at the top level", "")
        journey_id = ""
        if journey_node is not None:
            journey_id = self.ident(journey_node, "the journey id", "journey") or ""
        version = self.version(top)
        name_node = self.optional(top, "name")
        name = self.text(name_node, "name", "name") if name_node is not None else None
        description_node = self.optional(top, "description")
        description = (self.scalar(description_node, "description", "description")
                       if description_node is not None else None)
        offers = self.offers(top)
        entry_node = self.require(top, "entry", "at the top level", "")
        entry = self.entry(entry_node) if entry_node is not None else None
        self.entered_by = entry
        steps_node = self.require(top, "steps", "at the top level", "")
        if steps_node is not None:
            self.vocabulary = self.splits.with_variants(steps_node, self.vocabulary)
        steps = self.steps(steps_node) if steps_node is not None else ()
        goal_node = self.optional(top, "goal")
        exit_node = self.optional(top, "exit")
        exits = self.exits(exit_node) if exit_node is not None else ()
        re_entry = self.re_entry(top)
        if isinstance(entry, plan.BroadcastEntry):
            warn_once_only(self, entry, top, re_entry)
        return JourneySpec(
            journey_id=journey_id,
            version=version,
            name=name or journey_id,
            description=description.text.strip() if description is not None else "",
            entry=entry or plan.EventEntry("visit", None),
            re_entry=re_entry,
            holdout=self.holdout(top),
            goal=self.goal(goal_node) if goal_node is not None else None,
            exits=exits,
            offers=offers,
            steps=steps,
            id_line=journey_node.line if journey_node is not None else top.line,
            id_col=journey_node.col if journey_node is not None else top.col,
            condition_exits=tuple(self.condition_exits),
        )

    def version(self, top: MappingNode) -> int:
        node = self.require(top, "version", "at the top level", "")
        if node is None:
            return 0
        value = node.value if isinstance(node, ScalarNode) else None
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            shown = f"'{node.text}'" if isinstance(node, ScalarNode) else node.kind
            hint = ("; write it without quotes" if isinstance(node, ScalarNode)
                    and node.style in ("'", '"') and node.text.isdigit() else "")
            self.report(node, f"version must be a whole number from 1 up (1, 2, ...), not "
                              f"{shown}{hint}", "version")
            return 0
        return value

    def re_entry(self, top: MappingNode) -> plan.ReEntry:
        node = self.optional(top, "re_entry")
        if node is None:
            return plan.ReEntry("never")
        scalar = self.scalar(node, "re_entry", "re_entry")
        if scalar is None:
            return plan.ReEntry("never")
        text = scalar.text.strip()
        if text == "never":
            return plan.ReEntry("never")
        if text == "always":
            return plan.ReEntry("always")
        if not any(ch.isdigit() for ch in text):
            hint = did_you_mean(text, ("never", "always"))
            self.report(node, f"re_entry must be 'never', 'always' or a duration such as 90d, "
                              f"not '{text}'{hint}", "re_entry")
            return plan.ReEntry("never")
        seconds = self.duration(node, "re_entry", "re_entry")
        if seconds is None:
            return plan.ReEntry("never")
        return plan.ReEntry("after", seconds)

    def holdout(self, top: MappingNode) -> float:
        node = self.optional(top, "holdout")
        if node is None:
            return 0.0
        scalar = self.scalar(node, "holdout", "holdout")
        if scalar is None:
            return 0.0
        try:
            return parse_share(scalar.value)
        except ShareError as exc:
            self.report(node, exc.message, "holdout")
            return 0.0

    # ------------------------------------------------------------------ entry, goal, exit

    def event_type(self, node: Node, path: str) -> str | None:
        known = (self.vocabulary.event_types if self.vocabulary is not None
                 else fields.EVENT_TYPES)
        text = node.text if isinstance(node, ScalarNode) else None
        if text is not None and text not in known and not did_you_mean(text, known):
            self.report(node, f"unknown event type '{text}'; use one of: {', '.join(known)}, "
                              "or declare it in an event types file given with --event-types",
                        path)
            return None
        return self.choice(node, "event type", path, known)

    def entry(self, node: Node) -> plan.Entry | None:
        entry = self.mapping(node, "entry", "entry")
        if entry is None:
            return None
        self.keys(entry, ENTRY_KEYS, "in entry", "entry")
        kinds = [e for e in entry.entries if e.key.text in ENTRY_KINDS]
        if not kinds:
            self.report(entry, f"entry needs one of: {', '.join(ENTRY_KINDS)}", "entry")
            return None
        for extra in kinds[1:]:
            self.report(extra.key, f"entry has both '{kinds[0].key.text}' and "
                                   f"'{extra.key.text}'; a journey has exactly one entry",
                        f"entry.{extra.key.text}")
        kind, value = kinds[0].key.text, kinds[0].value
        for key in ("offset", "at"):
            misplaced = entry.get(key)
            if misplaced is not None and kind != "date" and (kind, key) != ("event", "at"):
                where = ("applies to an event entry (event: booking, at: {date: "
                         "event.booked_for, before: 1d}) or a date entry (date: {field: "
                         "customer.birthday, every: year, time: \"10:00\"})" if key == "at" else
                         "only applies to a date entry (date: birthday | "
                         "first_visit_anniversary)")
                self.report(misplaced.key, f"'{key}' {where}, not with '{kind}'",
                            f"entry.{key}")
        when = self.optional(entry, "when")
        if kind == "broadcast":
            return self.broadcast_entry(entry, value)
        if kind == "event":
            event_type = self.event_type(value, "entry.event")
            scope = Scope(event_type, no_event=None, no_enrollment=_BEFORE_ENTRY)
            condition = self.condition(when, "entry.when", scope)
            at_node = self.optional(entry, "at")
            if at_node is not None:
                return self.event_date_entry(at_node, event_type, condition)
            return plan.EventEntry(event_type or "", condition)
        names = {"inactive_for": "an inactivity entry", "date": "a date entry",
                 "p_alive_below": "a p_alive_below entry", "segment": "a segment entry"}
        scope = Scope(None, no_event=_profile_entry(names[kind]), no_enrollment=_BEFORE_ENTRY)
        condition = self.condition(when, "entry.when", scope)
        if kind == "inactive_for":
            after_s = self.duration(value, "inactive_for", "entry.inactive_for")
            return plan.InactivityEntry(after_s or 0, condition)
        if kind == "date":
            return self.date_entry(entry, value, condition)
        if kind == "segment":
            return self.segment_entry(value, condition)
        return plan.PAliveEntry(self.threshold(value), condition)

    def event_date_entry(self, node: Node, event_type: str | None,
                         condition: plan.Expression | None) -> plan.Entry | None:
        """`entry: {event: booking, at: {date: event.booked_for, before: 1d}}`."""
        if not isinstance(node, MappingNode):
            self.report(node, "'at' of an event entry is a date and a shift, e.g. "
                              "{date: event.booked_for, before: 1d, time: \"10:00\"}",
                        "entry.at")
            return None
        at = read_at_date(self, node, "entry.at", event_type, None)
        if at is None or event_type is None:
            return None
        return plan.EventDateEntry(event_type, condition, at)

    def date_entry(self, entry: MappingNode, value: Node,
                   condition: plan.Expression | None) -> plan.Entry | None:
        if isinstance(value, MappingNode):
            for key in ("offset", "at"):
                misplaced = entry.get(key)
                if misplaced is not None:
                    self.report(misplaced.key, f"'{key}' goes with 'date: birthday'; with "
                                               "'date: {field: ...}' write 'before' or "
                                               "'after' and 'time' inside it",
                                f"entry.{key}")
            return read_date_field_entry(self, value, "entry.date", condition)
        date_kind = self.choice(value, "date", "entry.date", plan.DATE_ENTRY_KINDS)
        offset_node = self.optional(entry, "offset")
        offset = 0
        if offset_node is not None:
            offset = self.duration(offset_node, "offset", "entry.offset", allow_negative=True,
                                   positive=False) or 0
        at_node = self.optional(entry, "at")
        local_time = DEFAULT_DATE_TIME
        if at_node is not None:
            scalar = self.scalar(at_node, "at", "entry.at")
            if scalar is not None:
                try:
                    local_time = parse_local_time(scalar.text)
                except DurationError as exc:
                    self.report(at_node, exc.message, "entry.at")
        return plan.DateEntry(date_kind or "birthday", offset,  # type: ignore[arg-type]
                              local_time, condition)

    def segment_entry(self, node: Node, condition: plan.Expression | None
                      ) -> plan.SegmentEntry | None:
        """`segment: {enters: vip}` or `segment: {leaves: regular}`."""
        if isinstance(node, ScalarNode):
            self.report(node, f"segment needs 'enters' or 'leaves': write segment: "
                              f"{{enters: {node.text}}} or segment: {{leaves: {node.text}}}",
                        "entry.segment")
            return None
        value = self.mapping(node, "segment", "entry.segment")
        if value is None:
            return None
        self.keys(value, SEGMENT_KEYS, "in segment", "entry.segment")
        given = [e for e in value.entries if e.key.text in SEGMENT_KEYS]
        if not given:
            self.report(value, "segment needs 'enters' or 'leaves', e.g. "
                               "segment: {enters: vip}", "entry.segment")
            return None
        for extra in given[1:]:
            self.report(extra.key, "segment takes one of 'enters' and 'leaves'; a journey "
                                   "has exactly one entry", f"entry.segment.{extra.key.text}")
        key, id_node = given[0].key.text, given[0].value
        path = f"entry.segment.{key}"
        segment_id = self.ident(id_node, "segment id", path)
        if segment_id is None:
            return None
        domain = self.vocabulary.domain("customer.segments") if self.vocabulary else None
        if domain is not None and segment_id not in domain.values:
            self.report(id_node, domain.refusal(segment_id,
                                                did_you_mean(segment_id, domain.values)), path)
            return None
        return plan.SegmentEntry(segment_id, key == "enters", condition)

    def broadcast_entry(self, entry: MappingNode, value: Node) -> plan.BroadcastEntry | None:
        when = entry.get("when")
        if when is not None:
            self.report(when.key, "a broadcast entry takes its condition as "
                                  "'broadcast: {audience: ...}', not 'when'", "entry.when")
        return read_broadcast(self, value)

    def threshold(self, node: Node) -> float:
        value = node.value if isinstance(node, ScalarNode) else None
        if (isinstance(value, bool) or not isinstance(value, int | float)
                or not 0 < value < 1):
            shown = f"'{node.text}'" if isinstance(node, ScalarNode) else node.kind
            self.report(node, "p_alive_below must be a probability between 0 and 1 "
                              f"(exclusive), such as 0.3, not {shown}", "entry.p_alive_below")
            return 0.5
        return float(value)

    def condition(self, node: Node | None, path: str, scope: Scope) -> plan.Expression | None:
        if node is None:
            return None
        return self.expression(node, path, scope)

    def event_rule(self, node: MappingNode, where: str, path: str
                   ) -> tuple[str, plan.Expression | None]:
        """The `event` and `when` keys shared by goal, exit and wait_for."""
        event_node = self.require(node, "event", where, path)
        event_type = (self.event_type(event_node, f"{path}.event")
                      if event_node is not None else None)
        scope = Scope(event_type)
        condition = self.condition(self.optional(node, "when"), f"{path}.when", scope)
        return event_type or "", condition

    def goal(self, node: Node) -> plan.Goal | None:
        goal = self.mapping(node, "goal", "goal")
        if goal is None:
            return None
        self.keys(goal, GOAL_KEYS, "in goal", "goal")
        event_type, condition = self.event_rule(goal, "in goal", "goal")
        within_node = self.require(goal, "within", "in goal", "goal")
        if within_node is not None:
            self.positions["goal.within"] = (within_node.line, within_node.col)
        within = self.duration(within_node, "within", "goal.within") if within_node else None
        return plan.Goal(event_type, condition, within or 0)

    def exits(self, node: Node) -> tuple[plan.ExitRule, ...]:
        items = self.sequence(node, "exit", "exit", "'- event: visit'")
        if items is None:
            return ()
        rules: list[plan.ExitRule] = []
        reasons: dict[str, int] = {}
        for index, item in enumerate(items.items):
            path = f"exit[{index}]"
            rule = self.mapping(item, "an exit rule", path)
            if rule is None:
                continue
            where = f"in exit rule {index + 1}"
            self.keys(rule, EXIT_KEYS, where, path)
            when_node = self.optional(rule, "when")
            on_condition = rule.get("event") is None and when_node is not None
            if rule.get("event") is None and when_node is None:
                self.report(rule, f"exit rule {index + 1} needs 'event' (end on an event) or "
                                  "'when' (end when a condition becomes true)", path)
                continue
            if on_condition:
                event_type = "condition"
                condition = self.condition(when_node, f"{path}.when",
                                           Scope(None, no_event=_CONDITION_EXIT))
            else:
                event_type, condition = self.event_rule(rule, where, path)
            reason_node = self.optional(rule, "reason")
            reason = f"{event_type}_{index}"
            if reason_node is not None:
                reason = self.ident(reason_node, "the exit reason", f"{path}.reason") or reason
                if reason in reasons:
                    self.report(reason_node, f"exit reason '{reason}' is already used by exit "
                                             f"rule {reasons[reason] + 1}; give each its own "
                                             "reason", f"{path}.reason")
            reasons.setdefault(reason, index)
            if not on_condition:
                rules.append(plan.ExitRule(event_type, condition, reason))
            elif condition is not None:
                self.condition_exits.append(plan.ConditionExit(condition, reason))
        return tuple(rules)

    # ------------------------------------------------------------------ offers

    def offers(self, top: MappingNode) -> tuple[plan.OfferPlan, ...]:
        node = self.optional(top, "offers")
        if node is None:
            return ()
        offers = self.mapping(node, "offers", "offers")
        if offers is None:
            return ()
        for dup in offers.duplicates:
            key = dup.entry.key.text
            self.report(dup.entry.key, f"duplicate offer id '{key}' (first defined at line "
                                       f"{dup.first.line})", f"offers.{key}")
        self.offer_ids = [entry.key.text for entry in offers.entries]
        result: list[plan.OfferPlan] = []
        for entry in offers.entries:
            offer_id = entry.key.text
            path = f"offers.{offer_id}"
            self.ident(entry.key, "the offer id", path)
            offer = self.offer(offer_id, entry.value, path)
            if offer is not None:
                result.append(offer)
        return tuple(result)

    def offer(self, offer_id: str, node: Node, path: str) -> plan.OfferPlan | None:
        offer = self.mapping(node, f"offer '{offer_id}'", path)
        if offer is None:
            return None
        where = f"in offer '{offer_id}'"
        self.keys(offer, OFFER_KEYS, where, path)
        description_node = self.require(offer, "description", where, path)
        description = (self.text(description_node, "description", f"{path}.description")
                       if description_node is not None else None)
        optional: dict[str, str | None] = {}
        for key in ("item", "category", "discount"):
            value = self.optional(offer, key)
            optional[key] = (self.text(value, key, f"{path}.{key}")
                             if value is not None else None)
        dayparts: list[str] = []
        dayparts_node = self.optional(offer, "dayparts")
        if dayparts_node is not None:
            items = self.sequence(dayparts_node, "dayparts", f"{path}.dayparts", "[lunch]")
            for index, item in enumerate(items.items if items else ()):
                daypart = self.choice(item, "daypart", f"{path}.dayparts[{index}]",
                                      tuple(plan.DAYPARTS))
                if daypart is not None:
                    dayparts.append(daypart)
        valid_node = self.require(offer, "valid_for", where, path)
        valid_for = (self.duration(valid_node, "valid_for", f"{path}.valid_for")
                     if valid_node is not None else None)
        return plan.OfferPlan(offer_id, description or "", optional["item"],
                              optional["category"], optional["discount"], tuple(dayparts),
                              valid_for or 0)

    # ------------------------------------------------------------------ steps

    def steps(self, node: Node) -> tuple[StepSpec, ...]:
        items = self.sequence(node, "steps", "steps", "'- id: thanks'")
        if items is None:
            return ()
        if not items.items:
            self.report(node, "steps is empty; a journey needs at least one step", "steps")
            return ()
        seen: dict[str, str] = {}
        steps: list[StepSpec] = []
        for index, item in enumerate(items.items):
            steps.append(self.step(index, item, seen))
        return tuple(steps)

    def step(self, index: int, node: Node, seen: dict[str, str]) -> StepSpec:
        path = f"steps[{index}]"
        step = self.mapping(node, "a step", path)
        if step is None:
            return StepSpec("", node.line, node.col, path, plan.Immediate(), None, (), (),
                            None)
        id_entry = step.get("id")
        step_id = id_entry.value.text if id_entry and isinstance(id_entry.value,
                                                                    ScalarNode) else ""
        where = f"in step '{step_id}'" if step_id else f"in {path}"
        self.keys(step, STEP_KEYS, where, path)
        id_node = self.require(step, "id", where, path)
        if id_node is not None:
            self.step_id(id_node, f"{path}.id", seen)
        timing = self.timing(step, where, path)
        guard_node = self.optional(step, "if")
        guard = (self.expression(guard_node, f"{path}.if", Scope(None, no_event=_IN_STEP))
                 if guard_node is not None else None)
        actions_node = self.optional(step, "actions")
        actions = self.actions(actions_node, where, path) if actions_node is not None else ()
        branch_node = self.optional(step, "branch")
        branches = self.branches(branch_node, where, path) if branch_node is not None else ()
        next_entry = step.get("next")
        next_ref = None
        if next_entry is not None:
            next_ref = self.step_ref(next_entry.value, "next", f"{path}.next")
            if any(branch.condition is None for branch in branches):
                self.report(next_entry.key, f"step '{step_id}' has both 'next' and an 'else' "
                                            "branch; the else arm already says where to go, "
                                            "so remove one of them", f"{path}.next")
        split_node = self.optional(step, "split")
        split = (self.splits.split(step, split_node, step_id, path)
                 if split_node is not None else ())
        return StepSpec(step_id, step.line, step.col, path, timing, guard, actions,
                        branches, next_ref, split)

    def step_id(self, node: Node, path: str, seen: dict[str, str]) -> None:
        step_id = self.ident(node, "the step id", path)
        if step_id is None:
            return
        if step_id == END_NAME:
            self.report(node, "'end' cannot be a step id: it means the journey is complete",
                        path)
        elif step_id in seen:
            self.report(node, f"duplicate step id '{step_id}' (also used by {seen[step_id]})",
                        path)
        else:
            seen[step_id] = f"{path.removesuffix('.id')} at line {node.line}"

    def timing(self, step: MappingNode, where: str, path: str) -> TimingSpec:
        given = [entry for entry in step.entries if entry.key.text in TIMING_KEYS]
        for extra in given[1:]:
            self.report(extra.key, f"a step has at most one timing: '{given[0].key.text}' and "
                                   f"'{extra.key.text}' are both given {where}",
                        f"{path}.{extra.key.text}")
        if not given:
            return plan.Immediate()
        key, node = given[0].key.text, given[0].value
        if key == "at" and isinstance(node, MappingNode):
            self.positions[f"{path}.at"] = (node.line, node.col)
            return self.at_date(node, f"{path}.at")
        if key == "at":
            scalar = self.scalar(node, "at", f"{path}.at")
            if scalar is None:
                return plan.Immediate()
            self.positions[f"{path}.at"] = (node.line, node.col)
            try:
                offset_s, local_time = parse_step_time(scalar.text)
            except DurationError as exc:
                self.report(node, exc.message, f"{path}.at")
                return plan.Immediate()
            return plan.AtTime(offset_s, local_time)
        if key == "after":
            delay = self.duration(node, "after", f"{path}.after", positive=False)
            return plan.After(delay or 0)
        return self.wait_for(node, where, f"{path}.wait_for")

    def at_date(self, node: MappingNode, path: str) -> TimingSpec:
        """A step timed by a date: `event.*` reads the event that entered the customer."""
        entry = self.entered_by
        event_type = entry.event_type if isinstance(entry, plan.EventEntry) else None
        no_event = None
        if isinstance(entry, plan.EventDateEntry):
            no_event = ("the customer enters this journey at a time computed from the event, "
                        "which is not kept until then; enter on the event itself "
                        "(entry: {event: " + entry.event_type + "}) to time steps by its "
                        "dates, or time this step from entry")
        elif entry is not None and not isinstance(entry, plan.EventEntry):
            no_event = ("this journey is not entered on an event, so there is no event date; "
                        "use a date of the customer (customer.birthday)")
        timing = read_at_date(self, node, path, event_type, no_event)
        return timing if timing is not None else plan.Immediate()

    def wait_for(self, node: Node, where: str, path: str) -> TimingSpec:
        wait = self.mapping(node, "wait_for", path)
        if wait is None:
            return plan.Immediate()
        where = f"in wait_for of {where.removeprefix('in ')}"
        self.keys(wait, WAIT_KEYS, where, path)
        event_type, condition = self.event_rule(wait, where, path)
        timeout_node = self.require(wait, "timeout", where, path)
        timeout = (self.duration(timeout_node, "timeout", f"{path}.timeout")
                   if timeout_node is not None else None)
        on_timeout_node = self.optional(wait, "on_timeout")
        on_timeout = (self.step_ref(on_timeout_node, "on_timeout", f"{path}.on_timeout")
                      if on_timeout_node is not None else None)
        return WaitForSpec(event_type, condition, timeout or 0, on_timeout)

    def actions(self, node: Node, where: str, path: str) -> tuple[plan.Action, ...]:
        items = self.sequence(node, "actions", f"{path}.actions", "'- send: email'")
        if items is None:
            return ()
        actions: list[plan.Action] = []
        for index, item in enumerate(items.items):
            action = self.action(item, where, f"{path}.actions[{index}]")
            if action is not None:
                actions.append(action)
        return tuple(actions)

    def action(self, node: Node, where: str, path: str) -> plan.Action | None:
        action = self.mapping(node, "an action", path)
        if action is None:
            return None
        where = f"in an action of {where.removeprefix('in ')}"
        self.keys(action, ACTION_KEYS, where, path)
        kinds = [entry for entry in action.entries if entry.key.text in ACTION_KINDS]
        if not kinds:
            self.report(action, f"an action needs one of: {', '.join(ACTION_KINDS)}", path)
            return None
        kind = kinds[0].key.text
        for extra in kinds[1:]:
            self.report(extra.key, f"one action per list item: '{kind}' and "
                                   f"'{extra.key.text}' are both here; start the second "
                                   "with its own '- '", f"{path}.{extra.key.text}")
        for entry in action.entries:
            key = entry.key.text
            if key in ACTION_KEYS and key not in ACTION_KINDS and key not in ACTION_EXTRAS.get(
                    kind, ()):
                owner = next(k for k, extras in ACTION_EXTRAS.items() if key in extras)
                self.report(entry.key, f"'{key}' goes with '{owner}', not with '{kind}'",
                            f"{path}.{key}")
        build: dict[str, Callable[[MappingNode, Node, str, str], plan.Action | None]] = {
            "send": self.send, "issue": self.issue, "points": self.points,
            "tag": self.tag, "untag": self.untag,
        }
        return build[kind](action, kinds[0].value, where, path)

    def send(self, action: MappingNode, value: Node, where: str,
             path: str) -> plan.Action | None:
        channel = self.choice(value, "channel", f"{path}.send", CHANNELS)
        template_node = self.require(action, "template", where, path)
        template = (self.pattern(template_node, "template", f"{path}.template", _TEMPLATE,
                                 "use letters, digits, _, -, . and /")
                    if template_node is not None else None)
        variables: list[tuple[str, plan.Expression]] = []
        vars_node = self.optional(action, "vars")
        if vars_node is not None:
            mapping = self.mapping(vars_node, "vars", f"{path}.vars")
            if mapping is not None:
                self.keys(mapping, [e.key.text for e in mapping.entries], "in vars",
                          f"{path}.vars", duplicate="variable")
                for entry in mapping.entries:
                    name, var_path = entry.key.text, f"{path}.vars.{entry.key.text}"
                    if not _VAR.match(name):
                        self.report(entry.key, f"variable name '{name}' is not valid: use "
                                               "letters, digits and _", var_path)
                    expression = self.expression(entry.value, var_path,
                                                 Scope(None, no_event=_IN_STEP))
                    if expression is not None:
                        variables.append((name, expression))
        if channel is None or template is None:
            return None
        return plan.SendAction(channel, template, tuple(variables))

    def issue(self, action: MappingNode, value: Node, where: str,
             path: str) -> plan.Action | None:
        offer_id = self.text(value, "issue", f"{path}.issue")
        if offer_id is None:
            return None
        if offer_id not in self.offer_ids:
            hint = (did_you_mean(offer_id, self.offer_ids) if self.offer_ids
                    else "; define it under 'offers:' first")
            self.report(value, f"unknown offer '{offer_id}'{hint}", f"{path}.issue")
            return None
        return plan.IssueAction(offer_id)

    def points(self, action: MappingNode, value: Node, where: str,
             path: str) -> plan.Action | None:
        points = value.value if isinstance(value, ScalarNode) else None
        if isinstance(points, bool) or not isinstance(points, int) or points < 1:
            shown = f"'{value.text}'" if isinstance(value, ScalarNode) else value.kind
            self.report(value, f"points must be a whole number above 0, such as 500, not "
                               f"{shown}", f"{path}.points")
            return None
        reason_node = self.optional(action, "reason")
        reason = (self.text(reason_node, "reason", f"{path}.reason")
                  if reason_node is not None else None)
        return plan.PointsAction(points, reason or "")

    def tag(self, action: MappingNode, value: Node, where: str,
            path: str) -> plan.Action | None:
        return self.tag_action(value, f"{path}.tag", remove=False)

    def untag(self, action: MappingNode, value: Node, where: str,
              path: str) -> plan.Action | None:
        return self.tag_action(value, f"{path}.untag", remove=True)

    def tag_action(self, value: Node, path: str, *, remove: bool) -> plan.Action | None:
        tag = self.pattern(value, "tag", path, _TAG,
                           "use lowercase letters, digits, _, -, . and :")
        return plan.TagAction(tag, remove) if tag is not None else None

    def branches(self, node: Node, where: str, path: str) -> tuple[BranchSpec, ...]:
        items = self.sequence(node, "branch", f"{path}.branch", "'- if: ...'")
        if items is None:
            return ()
        where = f"in a branch of {where.removeprefix('in ')}"
        arms: list[BranchSpec] = []
        last = len(items.items) - 1
        for index, item in enumerate(items.items):
            arm_path = f"{path}.branch[{index}]"
            arm = self.mapping(item, "a branch arm", arm_path)
            if arm is None:
                continue
            self.keys(arm, BRANCH_KEYS, where, arm_path)
            else_entry = arm.get("else")
            if else_entry is not None:
                for key in ("if", "goto"):
                    clash = arm.get(key)
                    if clash is not None:
                        self.report(clash.key, "a branch arm is either 'if' with 'goto', or "
                                               f"'else' alone; remove '{key}' or 'else'",
                                    f"{arm_path}.{key}")
                if index != last:
                    self.report(else_entry.key, "the 'else' arm must be the last branch; the "
                                                "arms after it would never run",
                                f"{arm_path}.else")
                target = self.step_ref(else_entry.value, "else", f"{arm_path}.else")
                if target is not None:
                    arms.append(BranchSpec(None, target))
                continue
            if_node = self.require(arm, "if", where, arm_path)
            goto_node = self.require(arm, "goto", where, arm_path)
            condition = (self.expression(if_node, f"{arm_path}.if",
                                         Scope(None, no_event=_IN_STEP))
                         if if_node is not None else None)
            target = (self.step_ref(goto_node, "goto", f"{arm_path}.goto")
                      if goto_node is not None else None)
            if target is not None:
                # an invalid condition was reported; the arm still counts for the step graph
                arms.append(BranchSpec(condition or _never(), target))
        return tuple(arms)


def _never() -> plan.Expression:
    """Stands in for a condition that was reported as invalid."""
    return parse_expression("false")
