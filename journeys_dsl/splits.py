"""The `split:` of a step: an experiment's variants, their weights and where each goes.

```yaml
  - id: pick_offer
    split:
      - variant: dessert
        weight: 50%
        goto: dessert_offer
      - variant: discount
        weight: 50%
        goto: discount_offer
```

Weights are relative (`1` and `3`, or `25%` and `75%`); written as percentages they must add
up to 100%. Variant names are unique in a journey: statistics and `journey.variant` name
them without their step. Step names in `goto` are checked by the compiler, with the other
step references.
"""

from __future__ import annotations

import math
import re
from dataclasses import replace

from journeys_dsl.model import StepRef, VariantSpec
from journeys_dsl.node_reader import NodeReader
from journeys_dsl.vocabulary import Domain, Vocabulary
from journeys_dsl.yaml_nodes import MappingNode, Node, ScalarNode, SequenceNode

__all__ = ["SPLIT_CLASHES", "VARIANT_KEYS", "SplitReader"]

VARIANT_KEYS = ("variant", "weight", "goto")
SPLIT_CLASHES = ("branch", "next", "wait_for")
"""Step keys that cannot go with `split`: the split alone says where the step goes."""
MIN_VARIANTS = 2
_PERCENT = re.compile(r"^\s*(\d+(\.\d+)?)\s*%\s*$")
NO_VARIANTS = Domain("variant of this journey: it has no split step, so it draws no variant",
                     (), plural="variants")
"""What `journey.variant` may equal in a journey without splits: nothing."""


class SplitReader:
    """Reads the splits of one journey, remembering variant names across its steps."""

    def __init__(self, reader: NodeReader) -> None:
        self.reader = reader
        self.seen: dict[str, str] = {}
        """Variant name -> where it is first defined ("step 'pick' at line 12")."""

    @staticmethod
    def with_variants(steps: Node, vocabulary: Vocabulary | None) -> Vocabulary | None:
        """`vocabulary` plus the variant names written in the steps' splits, so that text
        compared with `journey.variant` must be one of them (none without splits)."""
        names: list[str] = []
        for step in steps.items if isinstance(steps, SequenceNode) else ():
            entry = step.get("split") if isinstance(step, MappingNode) else None
            arms = entry.value if entry is not None else None
            for arm in arms.items if isinstance(arms, SequenceNode) else ():
                name = arm.get("variant") if isinstance(arm, MappingNode) else None
                if name is not None and isinstance(name.value, ScalarNode):
                    names.append(name.value.text)
        domain = (Domain("variant of this journey", tuple(dict.fromkeys(names)),
                         plural="variants of this journey") if names else NO_VARIANTS)
        base = vocabulary if vocabulary is not None else Vocabulary()
        return replace(base, domains={**base.domains, "journey.variant": domain,
                                      "journey.variants": domain})

    def split(self, step: MappingNode, node: Node, step_id: str, path: str
              ) -> tuple[VariantSpec, ...]:
        """The variants of the step's `split:` node (reported problems leave arms out)."""
        reader = self.reader
        split_path = f"{path}.split"
        for key in SPLIT_CLASHES:
            clash = step.get(key)
            if clash is not None:
                reader.report(clash.key, f"step '{step_id}' has both 'split' and '{key}': a "
                                         "split sends each customer to its variant's 'goto', "
                                         f"so remove '{key}' (give each variant its own step "
                                         "for what comes next)", f"{path}.{key}")
        items = reader.sequence(node, "split", split_path, "'- variant: a'")
        if items is None:
            return ()
        variants: list[VariantSpec] = []
        percents: list[bool] = []
        for index, item in enumerate(items.items):
            found = self.variant(item, step_id, f"{split_path}[{index}]")
            if found is not None:
                variants.append(found[0])
                percents.append(found[1])
        if len(items.items) < MIN_VARIANTS:
            reader.report(node, f"a split needs at least {MIN_VARIANTS} variants, this one has "
                                f"{len(items.items)}; to send everyone the same way use "
                                "'next:'", split_path)
        elif any(percents) and not all(percents) and len(variants) == len(items.items):
            reader.report(node, "write every weight of a split the same way: all as "
                                "percentages (50%, 50%) or all as numbers (1, 1)", split_path)
        elif variants and len(variants) == len(items.items) and all(percents):
            total = sum(v.weight for v in variants) * 100
            if abs(total - 100) > 1e-6:
                reader.report(node, f"the variants' weights add up to {total:g}%, not 100%; "
                                    "make them add up to 100%, or write plain numbers "
                                    "(1, 1) to weigh them against each other", split_path)
        return tuple(variants)

    def variant(self, node: Node, step_id: str, path: str) -> tuple[VariantSpec, bool] | None:
        """One arm, and whether its weight was written as a percentage."""
        reader = self.reader
        arm = reader.mapping(node, "a variant", path)
        if arm is None:
            return None
        where = f"in a variant of step '{step_id}'" if step_id else "in a variant"
        reader.keys(arm, VARIANT_KEYS, where, path)
        name_node = reader.require(arm, "variant", where, path)
        weight_node = reader.require(arm, "weight", where, path)
        goto_node = reader.require(arm, "goto", where, path)
        name = (reader.ident(name_node, "the variant name", f"{path}.variant")
                if name_node is not None else None)
        if name is not None and name_node is not None:
            if name in self.seen:
                reader.report(name_node, f"duplicate variant '{name}' (also in "
                                         f"{self.seen[name]}); variant names are unique in a "
                                         "journey", f"{path}.variant")
            else:
                self.seen[name] = f"step '{step_id}' at line {name_node.line}"
        weight = (self.weight(weight_node, f"{path}.weight")
                  if weight_node is not None else None)
        target = None
        if goto_node is not None:
            goto = reader.text(goto_node, "goto", f"{path}.goto")
            if goto is not None:
                target = StepRef(goto, goto_node.line, goto_node.col, f"{path}.goto")
        if name is None or weight is None or target is None:
            return None
        return VariantSpec(name, weight[0], target), weight[1]

    def weight(self, node: Node, path: str) -> tuple[float, bool] | None:
        """A weight above 0: a number, or a percentage (as a share); and whether it was a
        percentage."""
        value = node.value if isinstance(node, ScalarNode) else None
        if isinstance(value, str):
            match = _PERCENT.match(value)
            if match is not None and float(match.group(1)) > 0:
                return float(match.group(1)) / 100, True
        elif (not isinstance(value, bool) and isinstance(value, int | float)
              and math.isfinite(value) and value > 0):
            return float(value), False
        shown = f"'{node.text}'" if isinstance(node, ScalarNode) else node.kind
        self.reader.report(node, f"weight must be a number above 0, such as 1 or 50%, not "
                                 f"{shown}", path)
        return None
