"""Applying messaging policies to a customer: consent, quiet hours, send windows, caps."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Literal

from engine.core.commands import has_address
from engine.core.state import CustomerState
from engine.core.timeutil import DAY_MS, local_ms, wall_clock_ms
from journeys_dsl.channels import channel_spec
from journeys_dsl.plan import Action, IssueAction, SendAction
from journeys_dsl.policies import Minutes, Policies

SEARCH_DAYS = 3
MINUTE_MS = 60_000


def _inside(minute: int, window: Minutes) -> bool:
    start, end = window
    return start <= minute < end if start < end else minute >= start or minute < end


def _time_allowed(local: int, quiet: Minutes | None, windows: list[Minutes]) -> bool:
    """Whether a local time (see `local_ms`) is outside the quiet hours and inside every
    window."""
    minute = local // MINUTE_MS % 1440
    if quiet is not None and _inside(minute, quiet):
        return False
    return all(_inside(minute, window) for window in windows)


def _next_opening(local: int, quiet: Minutes | None, windows: list[Minutes]) -> int:
    """The next local time after `local` at which sending is allowed: the earliest window
    opening or end of the quiet hours that is allowed, over the next few days. Local
    times are wall-clock times (see `local_ms`), so this needs no time zone."""
    boundaries = [window[0] for window in windows]
    if quiet is not None:
        boundaries.append(quiet[1])
    midnight = local - local % DAY_MS
    best: int | None = None
    for day in range(SEARCH_DAYS):
        base = midnight + day * DAY_MS
        for minutes in boundaries:
            candidate = base + minutes * MINUTE_MS
            if candidate > local and _time_allowed(candidate, quiet, windows) and (
                    best is None or candidate < best):
                best = candidate
    if best is None:  # the windows never overlap: send at the first boundary
        best = midnight + DAY_MS + min(boundaries or [0]) * MINUTE_MS
    return best


class PolicyGate:
    """Decides when a step's messages may go out, and whether each one may."""

    def __init__(self, policies: Policies) -> None:
        self.policies = policies

    # ------------------------------------------------------------------ timing
    def send_time(self, due: int, channels: Iterable[str], state: CustomerState) -> int:
        """The earliest time at or after `due` when every channel may send (local time)."""
        channels = list(channels)
        policies = self.policies
        windows = [policies.window_for(c) for c in channels]
        windows_set = [w for w in windows if w is not None]
        quiet = policies.quiet_hours
        cap = policies.cap
        delay_for_cap = cap is not None and cap.when_capped == "delay"
        if not windows_set and quiet is None and not delay_for_cap:
            return due
        tz_name = state.profile.timezone
        candidate = due
        for _ in range(64):
            local = local_ms(candidate, tz_name)
            if _time_allowed(local, quiet, windows_set):
                if not delay_for_cap:
                    return candidate
                room = self._cap_room_at(state, channels, candidate)
                if room <= candidate:
                    return candidate
                candidate = room
                continue
            candidate = wall_clock_ms(_next_opening(local, quiet, windows_set), tz_name)
        return candidate

    # ------------------------------------------------------------------ per message
    def refusal(self, state: CustomerState, channel: str, at: int) -> str | None:
        """Why a message may not go out now ("no_consent", "unreachable", "capped"), or None.

        "unreachable": the profile has no address for the channel (see `has_address`)."""
        if not self._consents(state, channel):
            return "no_consent"
        if not has_address(state.profile, channel):
            return "unreachable"
        if self._cap_room_at(state, [channel], at) > at:
            return "capped"
        return None

    def unreached_vouchers(
            self, state: CustomerState,
            actions: Sequence[Action]) -> Literal["voucher_unreached", "voucher_withheld"] | None:
        """For a step that issues vouchers and sends messages, none of which can reach the
        customer (no consent or no address): "voucher_withheld" when the policy withholds
        its vouchers, "voucher_unreached" when it issues them anyway (both are also the
        names of their counters). None for any other step."""
        channels = [a.channel for a in actions if isinstance(a, SendAction)]
        if not channels or not any(isinstance(a, IssueAction) for a in actions):
            return None
        profile = state.profile
        if any(self._consents(state, c) and has_address(profile, c) for c in channels):
            return None
        if self.policies.vouchers_when_unreachable == "withhold":
            return "voucher_withheld"
        return "voucher_unreached"

    def _consents(self, state: CustomerState, channel: str) -> bool:
        spec = channel_spec(channel)
        if spec is not None and not spec.needs_consent:
            return True
        profile = state.profile
        if channel in profile.unsubscribed:
            return False
        consent = profile.consents.get(channel)
        return consent is not False and (self.policies.consent != "opt_in" or consent is True)

    def record(self, state: CustomerState, channel: str, at: int) -> None:
        """Remember a message sent, for the caps; forget what the window no longer covers."""
        cap = self.policies.cap
        if cap is None:
            return
        horizon = at - cap.per_s * 1000
        state.sent_log = [entry for entry in state.sent_log if entry[0] > horizon]
        state.sent_log.append([at, channel])

    def _cap_room_at(self, state: CustomerState, channels: list[str], at: int) -> int:
        """The earliest time at or after `at` when one more message fits every cap."""
        cap = self.policies.cap
        if cap is None:
            return at
        window = cap.per_s * 1000
        recent = sorted(entry for entry in state.sent_log if entry[0] > at - window)
        room = at
        limits: list[tuple[int, list[int]]] = []
        if cap.max_messages is not None:
            limits.append((cap.max_messages, [entry[0] for entry in recent]))
        for channel in channels:
            limit = cap.channels.get(channel)
            if limit is not None:
                limits.append((limit, [e[0] for e in recent if e[1] == channel]))
        for limit, times in limits:
            if len(times) >= limit:
                # the oldest message that must leave the window for one more to fit
                room = max(room, times[len(times) - limit] + window + 1)
        return room
