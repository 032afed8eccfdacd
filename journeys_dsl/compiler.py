"""The validated model -> the frozen `plan.JourneyPlan` the engine runs.

Compiling resolves step references to indices. `check_steps` reports what would stop
that (unknown step names) and what would make the journey misbehave (steps no path
reaches, loops that never wait); `compile_journey` expects a model that passed it.
"""

from __future__ import annotations

import hashlib
from types import MappingProxyType

from journeys_dsl import plan
from journeys_dsl.errors import Problem
from journeys_dsl.model import END_NAME, JourneySpec, StepRef, StepSpec, WaitForSpec
from journeys_dsl.node_reader import did_you_mean

__all__ = ["check_steps", "compile_journey"]


def _step_index(spec: JourneySpec) -> dict[str, int]:
    index: dict[str, int] = {}
    for position, step in enumerate(spec.steps):
        if step.step_id and step.step_id not in index:
            index[step.step_id] = position
    return index


def _refs(step: StepSpec) -> list[StepRef]:
    refs = [branch.target for branch in step.branches]
    refs.extend(variant.target for variant in step.split)
    if step.next is not None:
        refs.append(step.next)
    if isinstance(step.timing, WaitForSpec) and step.timing.on_timeout is not None:
        refs.append(step.timing.on_timeout)
    return refs


def _successors(spec: JourneySpec, position: int, index: dict[str, int]) -> set[int]:
    """Steps reachable in one move from `position` (END excluded)."""
    step = spec.steps[position]
    targets = {index.get(branch.target.name, plan.END) for branch in step.branches}
    targets.update(index.get(variant.target.name, plan.END) for variant in step.split)
    if not step.has_else and not step.split:
        targets.add(_next_index(spec, position, index))
    if isinstance(step.timing, WaitForSpec) and step.timing.on_timeout is not None:
        targets.add(index.get(step.timing.on_timeout.name, plan.END))
    targets.discard(plan.END)
    return targets


def _next_index(spec: JourneySpec, position: int, index: dict[str, int]) -> int:
    step = spec.steps[position]
    if step.next is not None:
        return _resolve(step.next, index)
    return position + 1 if position + 1 < len(spec.steps) else plan.END


def _resolve(ref: StepRef | None, index: dict[str, int]) -> int:
    if ref is None or ref.name == END_NAME:
        return plan.END
    return index[ref.name]


def check_steps(spec: JourneySpec, filename: str) -> list[Problem]:
    """Problems with the step graph: unknown step references, unreachable steps, loops."""
    index = _step_index(spec)
    problems: list[Problem] = []
    for step in spec.steps:
        for ref in _refs(step):
            if ref.name != END_NAME and ref.name not in index:
                label = ref.path.rsplit(".", 1)[-1]
                hint = (did_you_mean(ref.name, index)
                        or did_you_mean(ref.name.lower(), [END_NAME], cutoff=0.8)
                        or f"; use a step id of this journey or '{END_NAME}'")
                problems.append(Problem(filename, ref.line, ref.col,
                                        f"unknown step '{ref.name}' in {label}{hint}",
                                        ref.path))
    if problems or not spec.steps:
        return problems
    problems.extend(_unreachable(spec, index, filename))
    problems.extend(_loops(spec, index, filename))
    return problems


def _unreachable(spec: JourneySpec, index: dict[str, int], filename: str) -> list[Problem]:
    seen = {0}
    todo = [0]
    while todo:
        for target in _successors(spec, todo.pop(), index):
            if target not in seen:
                seen.add(target)
                todo.append(target)
    problems = []
    for position, step in enumerate(spec.steps):
        if position not in seen and step.step_id:
            problems.append(Problem(
                filename, step.line, step.col,
                f"step '{step.step_id}' can never be reached: no step leads to it; add "
                f"'goto: {step.step_id}' or 'next: {step.step_id}' where it should follow, "
                "or remove it", step.path))
    return problems


def _waits(step: StepSpec) -> bool:
    """Whether arriving at the step always waits before moving on."""
    timing = step.timing
    return isinstance(timing, WaitForSpec) or (isinstance(timing, plan.After)
                                               and timing.delay_s > 0)


def _loops(spec: JourneySpec, index: dict[str, int], filename: str) -> list[Problem]:
    """Cycles made only of steps that do not wait: the enrollment would spin forever."""
    eager = {p for p, step in enumerate(spec.steps) if not _waits(step)}
    graph = {p: _successors(spec, p, index) & eager for p in eager}
    problems = []
    for component in _strongly_connected(graph):
        first = min(component)
        if len(component) == 1 and first not in graph[first]:
            continue
        step = spec.steps[first]
        names = ", ".join(f"'{spec.steps[p].step_id}'" for p in sorted(component))
        what = (f"step {names} goes back to itself" if len(component) == 1
                else f"steps {names} go round in a loop")
        problems.append(Problem(
            filename, step.line, step.col,
            f"{what} without waiting; add 'after:' or 'wait_for:' to a step of the loop",
            step.path))
    return problems


def _strongly_connected(graph: dict[int, set[int]]) -> list[set[int]]:
    """Tarjan's algorithm, iterative."""
    order: dict[int, int] = {}
    low: dict[int, int] = {}
    stack: list[int] = []
    on_stack: set[int] = set()
    components: list[set[int]] = []
    for root in sorted(graph):
        if root in order:
            continue
        work = [(root, iter(sorted(graph[root])))]
        order[root] = low[root] = len(order)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in order:
                    order[child] = low[child] = len(order)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph[child]))))
                elif child in on_stack:
                    low[node] = min(low[node], order[child])
                continue
            work.pop()
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
            if low[node] == order[node]:
                component = set()
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.add(member)
                    if member == node:
                        break
                components.append(component)
    return components


def _timing(step: StepSpec, index: dict[str, int]) -> plan.Timing:
    timing = step.timing
    if isinstance(timing, WaitForSpec):
        return plan.WaitFor(timing.event_type, timing.condition, timing.timeout_s,
                            _resolve(timing.on_timeout, index))
    return timing


def _actions(step: StepSpec, journey_id: str) -> tuple[plan.Action, ...]:
    return tuple(
        plan.PointsAction(action.points, action.reason or journey_id)
        if isinstance(action, plan.PointsAction) else action
        for action in step.actions
    )


def _split(step: StepSpec, index: dict[str, int]) -> tuple[plan.Variant, ...]:
    """The variants with their weights as shares of the whole."""
    total = sum(variant.weight for variant in step.split)
    return tuple(plan.Variant(variant.name, variant.weight / total,
                              _resolve(variant.target, index))
                 for variant in step.split)


def compile_journey(spec: JourneySpec, source_file: str, source_text: str) -> plan.JourneyPlan:
    """The frozen plan of a valid journey (one for which `check_steps` found nothing)."""
    index = _step_index(spec)
    steps = tuple(
        plan.StepPlan(
            step_id=step.step_id,
            index=position,
            timing=_timing(step, index),
            guard=step.guard,
            actions=_actions(step, spec.journey_id),
            branches=tuple(plan.Branch(branch.condition, _resolve(branch.target, index))
                           for branch in step.branches),
            next_index=_next_index(spec, position, index),
            split=_split(step, index),
        )
        for position, step in enumerate(spec.steps)
    )
    return plan.JourneyPlan(
        journey_id=spec.journey_id,
        version=spec.version,
        name=spec.name,
        description=spec.description,
        source_file=source_file,
        source_text=source_text,
        source_digest=hashlib.sha256(source_text.encode("utf-8")).hexdigest(),
        entry=spec.entry,
        re_entry=spec.re_entry,
        holdout=spec.holdout,
        goal=spec.goal,
        exits=spec.exits,
        offers=MappingProxyType({offer.offer_id: offer for offer in spec.offers}),
        steps=steps,
        step_index=MappingProxyType(index),
        condition_exits=spec.condition_exits,
    )
