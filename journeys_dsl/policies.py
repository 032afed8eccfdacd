"""Messaging policies: frequency caps, quiet hours, send windows and consent.

```yaml
frequency_cap:
  max: 2              # messages per customer in the window, across all journeys
  per: 7d
  channels: {sms: 1}  # optional per-channel limits in the same window
  when_capped: skip   # skip: the message is not sent; delay: the step waits for room
quiet_hours: {from: "21:00", to: "09:00"}    # in the customer's time zone
send_windows:
  sms: {from: "10:00", to: "20:00"}
consent: opt_out      # opt_out: send unless the customer said no; opt_in: only after a yes
vouchers_when_unreachable: issue   # or withhold: no voucher when no message of the step
                                   # can reach the customer (no address or no consent)
```
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Literal

from journeys_dsl.channels import CHANNELS
from journeys_dsl.config_files import compile_file
from journeys_dsl.durations import DurationError, parse_local_time
from journeys_dsl.node_reader import NodeReader
from journeys_dsl.yaml_nodes import Node

Minutes = tuple[int, int]
"""A daily window [start, end) in minutes after local midnight; end < start wraps midnight."""


@dataclass(frozen=True)
class FrequencyCap:
    max_messages: int | None
    per_s: int
    channels: MappingProxyType[str, int]
    when_capped: Literal["skip", "delay"]


@dataclass(frozen=True)
class Policies:
    source_file: str
    cap: FrequencyCap | None
    quiet_hours: Minutes | None
    send_windows: MappingProxyType[str, Minutes]
    consent: Literal["opt_out", "opt_in"]
    vouchers_when_unreachable: Literal["issue", "withhold"] = "issue"
    """What a step that issues a voucher does when none of its messages can reach the
    customer: issue it anyway (the default: the offer exists at the venue), or withhold it."""

    def window_for(self, channel: str) -> Minutes | None:
        return self.send_windows.get(channel)


NO_POLICIES = Policies("", None, None, MappingProxyType({}), "opt_out")


class _PolicyParser(NodeReader):
    def policies(self, root: Node) -> Policies | None:
        top = self.mapping(root, "a policies file", "")
        if top is None:
            return None
        self.keys(top, ("frequency_cap", "quiet_hours", "send_windows", "consent",
                        "vouchers_when_unreachable"), "in a policies file", "")
        cap_node = self.optional(top, "frequency_cap")
        cap = self.cap(cap_node) if cap_node is not None else None
        quiet_node = self.optional(top, "quiet_hours")
        quiet = self.window(quiet_node, "quiet_hours") if quiet_node is not None else None
        windows: dict[str, Minutes] = {}
        windows_node = self.optional(top, "send_windows")
        if windows_node is not None:
            mapping = self.mapping(windows_node, "'send_windows'", "send_windows")
            for entry in mapping.entries if mapping is not None else ():
                channel = entry.key.text
                path = f"send_windows.{channel}"
                if self.choice(entry.key, "channel", path, CHANNELS) is None:
                    continue
                window = self.window(entry.value, path)
                if window is not None:
                    windows[channel] = window
        consent = "opt_out"
        consent_node = self.optional(top, "consent")
        if consent_node is not None:
            consent = self.choice(consent_node, "consent mode", "consent",
                                  ("opt_out", "opt_in")) or "opt_out"
        unreachable = "issue"
        unreachable_node = self.optional(top, "vouchers_when_unreachable")
        if unreachable_node is not None:
            unreachable = self.choice(unreachable_node, "vouchers_when_unreachable rule",
                                      "vouchers_when_unreachable",
                                      ("issue", "withhold")) or "issue"
        return Policies(self.filename, cap, quiet, MappingProxyType(windows),
                        "opt_in" if consent == "opt_in" else "opt_out",
                        "withhold" if unreachable == "withhold" else "issue")

    def cap(self, node: Node) -> FrequencyCap | None:
        cap = self.mapping(node, "'frequency_cap'", "frequency_cap")
        if cap is None:
            return None
        self.keys(cap, ("max", "per", "channels", "when_capped"), "in 'frequency_cap'",
                  "frequency_cap")
        per_node = self.require(cap, "per", "in 'frequency_cap'", "frequency_cap")
        per = self.duration(per_node, "'per'", "frequency_cap.per") if per_node else None
        max_node = self.optional(cap, "max")
        max_messages = self.count(max_node, "frequency_cap.max") if max_node else None
        channels: dict[str, int] = {}
        channels_node = self.optional(cap, "channels")
        if channels_node is not None:
            mapping = self.mapping(channels_node, "'channels'", "frequency_cap.channels")
            for entry in mapping.entries if mapping is not None else ():
                path = f"frequency_cap.channels.{entry.key.text}"
                if self.choice(entry.key, "channel", path, CHANNELS) is None:
                    continue
                limit = self.count(entry.value, path)
                if limit is not None:
                    channels[entry.key.text] = limit
        mode = "skip"
        mode_node = self.optional(cap, "when_capped")
        if mode_node is not None:
            mode = self.choice(mode_node, "when_capped rule", "frequency_cap.when_capped",
                               ("skip", "delay")) or "skip"
        if per is None:
            return None
        return FrequencyCap(max_messages, per, MappingProxyType(channels),
                            "delay" if mode == "delay" else "skip")

    def count(self, node: Node, path: str) -> int | None:
        text = self.text(node, "a number of messages", path)
        if text is None:
            return None
        if not text.isdigit() or int(text) < 1:
            self.report(node, f"a number of messages must be a whole number of 1 or more, "
                              f"not '{text}'", path)
            return None
        return int(text)

    def window(self, node: Node, path: str) -> Minutes | None:
        window = self.mapping(node, f"'{path}'", path)
        if window is None:
            return None
        self.keys(window, ("from", "to"), f"in '{path}'", path)
        bounds = []
        for key in ("from", "to"):
            value = self.require(window, key, f"in '{path}'", path)
            text = self.text(value, f"'{key}'", f"{path}.{key}") if value else None
            if value is None or text is None:
                return None
            try:
                hour, minute = parse_local_time(text)
            except DurationError as exc:
                self.report(value, exc.message, f"{path}.{key}")
                return None
            bounds.append(hour * 60 + minute)
        if bounds[0] == bounds[1]:
            self.report(window, "'from' and 'to' are the same time; remove the window "
                                "instead", path)
            return None
        return bounds[0], bounds[1]


def load_policies_text(text: str, filename: str) -> Policies:
    """Compile a policies file; raises `JourneyValidationError` with FILE:LINE:COL problems."""
    return compile_file(text, filename, _PolicyParser(filename), _PolicyParser.policies,
                        "policies")


def load_policies(path: str | Path | None) -> Policies:
    """The policies file at `path`; no restrictions but consent when `path` is None."""
    if path is None:
        return NO_POLICIES
    source = Path(path)
    return load_policies_text(source.read_text(encoding="utf-8"), str(source))
