"""Per-customer state: profile, enrollments, vouchers, armed entries, and its stored form."""

from __future__ import annotations

import hashlib
from dataclasses import MISSING, dataclass, field, fields
from typing import Any

from engine.core.presence import loaded as loaded_presence
from engine.core.presence import stored as stored_presence
from engine.core.profile import Profile
from engine.core.state_codec import differences, pack, running_sums, unpack
from engine.core.timeutil import DAY_MS

SEEN_EVENTS_KEPT = 512
"""At most this many event ids are remembered per customer, whatever the window: a customer
with more events in the window has the oldest forgotten, and the window starts after them."""
VOUCHER_RETENTION_MS = 90 * DAY_MS


@dataclass(slots=True)
class Voucher:
    """A voucher issued to the customer by a journey."""

    offer_id: str
    journey: str
    issued_at: int
    expires_at: int
    redeemed_at: int | None = None


@dataclass(slots=True)
class Enrollment:
    """The customer's latest enrollment in one journey; kept after it ends, as history."""

    journey: str
    version: int
    seq: int
    entered_at: int
    holdout: bool
    step: int
    arrived_at: int
    due_at: int | None = None
    ended_at: int | None = None
    end_reason: str | None = None
    goal_deadline: int | None = None
    goal_reached: bool = False
    vouchers: dict[str, str] = field(default_factory=dict)
    segment: str | None = None
    """The customer's activity segment at entry, for conversion by segment."""
    variant: str | None = None
    """The variants drawn at the journey's split steps, comma-separated, in the order the
    splits were passed (see `engine.core.experiments`); None before any split."""
    dates: list[int | str | None] | None = None
    """The entry event's dates its steps are timed by, in the order of the plan's
    `event_dates` (see `engine.core.dates`); None when it has none."""

    @property
    def active(self) -> bool:
        return self.ended_at is None


@dataclass(slots=True)
class CustomerState:
    """Everything the engine keeps about one customer."""

    customer_id: str
    profile: Profile = field(default_factory=Profile)
    enrollments: dict[str, Enrollment] = field(default_factory=dict)
    vouchers: dict[str, Voucher] = field(default_factory=dict)
    armed: dict[str, int] = field(default_factory=dict)
    seen: dict[int, int] = field(default_factory=dict)
    """Hashes of the event ids applied inside the duplicate window -> their event time."""
    seen_floor: int = 0
    """Events older than this (epoch ms) are refused: whether they were applied can no
    longer be told."""
    seen_oldest: int | None = field(default=None, compare=False, repr=False)
    """The oldest time in `seen` (None: not known yet); never stored."""
    sent_log: list[list[Any]] = field(default_factory=list)
    """[send time, channel] of the messages inside the frequency-cap window."""
    scores: dict[str, float] | None = None
    """Scores as of the current batch; computed by the shard processor, never stored."""
    scores_basis: tuple[int, float, int] | None = None
    """(visit count, total spend, as of) the scores were computed from; a visit or a new
    day makes them stale."""
    due_floor: int = field(default=0, compare=False, repr=False)
    """No timer of the customer is due before this time (epoch ms): a lower bound, kept by
    the runtime, that spares the scan of every enrollment when nothing is due. Never
    stored."""
    memberships: dict[str, int] = field(default_factory=dict)
    """Segment id -> 1 (a member) or 0, as last checked, for the segments that journeys
    enter on (`engine.core.triggers`); a segment not listed was not checked yet."""

    def timer_set(self, due: int) -> None:
        """A timer of the customer was set to `due`: the lower bound follows it down."""
        if due < self.due_floor:
            self.due_floor = due

    def next_due(self) -> int | None:
        """The earliest pending timer: an enrollment's step or an armed time-based entry."""
        dues = [e.due_at for e in self.enrollments.values()
                if e.due_at is not None and e.ended_at is None]
        if self.armed:
            dues.extend(self.armed.values())
        return min(dues) if dues else None

    def refuse_event(self, event_id: str, ts: int, window_ms: int) -> str | None:
        """Why an event cannot be applied (a duplicate, or too old to tell); None when it
        is new, which remembers it.

        The window runs back from the customer's newest event: ids of events inside it are
        kept (as 48-bit hashes), so the same id is refused however it arrives (another file,
        a renamed copy, another topic). An event older than the window is refused as well,
        since it may have been applied and forgotten.
        """
        key = event_id_hash(event_id)
        if key in self.seen:
            return f"event_id {event_id!r} was already applied"
        if ts < self.seen_floor:
            days = (self.seen_floor - ts) / DAY_MS
            return (f"event_id {event_id!r} is {days:.1f} days older than the duplicate "
                    f"window of this customer's events (--dedup-window); it may have been "
                    f"applied already")
        self.seen[key] = ts
        if self.seen_oldest is None:
            self.seen_oldest = min(self.seen.values())
        elif ts < self.seen_oldest:
            self.seen_oldest = ts
        floor = ts - window_ms  # the floor only moves when a newer event arrives
        if len(self.seen) > SEEN_EVENTS_KEPT:
            floor = max(floor, sorted(self.seen.values())[-SEEN_EVENTS_KEPT] + 1)
        if floor > self.seen_floor:
            self.seen_floor = floor
            if self.seen_oldest < floor:
                self.seen = {k: t for k, t in self.seen.items() if t >= floor}
                self.seen_oldest = min(self.seen.values(), default=None)
        return None

    def prune_vouchers(self, now_ms: int) -> None:
        """Forget vouchers that expired long ago and belong to no enrollment's offers."""
        horizon = now_ms - VOUCHER_RETENTION_MS
        stale = [code for code, v in self.vouchers.items() if v.expires_at < horizon]
        if stale:
            referenced = {code for e in self.enrollments.values()
                          for code in e.vouchers.values()}
            for code in stale:
                if code not in referenced:
                    del self.vouchers[code]

    def to_bytes(self) -> bytes:
        """The stored form (see engine.core.state_codec): enrollments as rows, visit times as
        differences, compressed."""
        profile = self.profile.to_dict()
        if "recent_visits" in profile:
            profile["recent_visits"] = differences(profile["recent_visits"])
        if "presence" in profile:
            profile["presence"] = stored_presence(profile["presence"])
        doc: dict[str, Any] = {"p": profile}
        if self.enrollments:
            doc["e"] = {k: _enrollment_row(k, v) for k, v in self.enrollments.items()}
        if self.vouchers:
            doc["v"] = {k: _compact(v, _VOUCHER_FIELDS) for k, v in self.vouchers.items()}
        if self.armed:
            doc["a"] = self.armed
        if self.seen:
            floor = self.seen_floor
            doc["d"] = [floor, *[x for k, t in self.seen.items() for x in (t - floor, k)]]
        if self.sent_log:
            doc["s"] = self.sent_log
        if self.memberships:
            doc["g"] = self.memberships
        return pack(doc)

    @classmethod
    def from_bytes(cls, customer_id: str, raw: bytes | None) -> CustomerState:
        if not raw:
            return cls(customer_id)
        doc, compact = unpack(raw)
        profile = doc.get("p", {})
        enrollments = doc.get("e", {})
        if compact:
            if "recent_visits" in profile:
                profile["recent_visits"] = running_sums(profile["recent_visits"])
            if "presence" in profile:
                profile["presence"] = loaded_presence(profile["presence"])
            enrolled = {k: _enrollment_of(k, row) for k, row in enrollments.items()}
        else:
            enrolled = {k: Enrollment(**v) for k, v in enrollments.items()}
        state = cls(
            customer_id,
            Profile.from_dict(profile),
            enrolled,
            {k: Voucher(**v) for k, v in doc.get("v", {}).items()},
            dict(doc.get("a", {})),
            sent_log=list(doc.get("s", [])),
            memberships=dict(doc.get("g", {})),
        )
        seen = doc.get("d")
        if seen:
            state.seen_floor = floor = seen[0]
            state.seen = {seen[i + 1]: seen[i] + floor for i in range(1, len(seen), 2)}
        else:  # earlier releases kept the last 16 ids, without times
            last = state.profile.last_visit_at or 0
            state.seen = {event_id_hash(event_id): last for event_id in doc.get("r", [])}
        return state


def event_id_hash(event_id: str) -> int:
    """A 48-bit hash of an event id: exact in JSON, and a false match between two of a
    customer's 512 kept ids has odds under 1 in 500 million."""
    return int.from_bytes(hashlib.blake2b(event_id.encode(), digest_size=6).digest(), "big")


def _enrollment_row(journey_id: str, enrollment: Enrollment) -> list[Any]:
    """The enrollment's fields in declaration order, trailing defaults left out; the
    journey as null when it is the key."""
    e = enrollment  # the fields in declaration order, read by name (see Profile.to_dict)
    row: list[Any] = [None if e.journey == journey_id else e.journey, e.version, e.seq,
                      e.entered_at, e.holdout, e.step, e.arrived_at, e.due_at, e.ended_at,
                      e.end_reason, e.goal_deadline, e.goal_reached, e.vouchers, e.segment,
                      e.variant, e.dates]
    while len(row) > _ENROLLMENT_REQUIRED and row[-1] == _ENROLLMENT_DEFAULTS[len(row) - 1]:
        row.pop()
    return row


def _enrollment_of(journey_id: str, row: list[Any]) -> Enrollment:
    return Enrollment(journey_id if row[0] is None else row[0], *row[1:])


def _compact(record: Any, names: tuple[str, ...]) -> dict[str, Any]:
    """The record's fields as a dict, leaving out those that are None or empty."""
    out = {}
    for name in names:
        value = getattr(record, name)
        if value is not None and value != {}:
            out[name] = value
    return out


_ENROLLMENT_REQUIRED = sum(1 for f in fields(Enrollment) if f.default is MISSING
                           and f.default_factory is MISSING)
_ENROLLMENT_DEFAULTS = tuple(
    f.default if f.default is not MISSING
    else f.default_factory() if f.default_factory is not MISSING else None
    for f in fields(Enrollment))
_VOUCHER_FIELDS = tuple(f.name for f in fields(Voucher))
