"""Per-customer state: profile, enrollments, vouchers, armed entries, and its stored form."""

from __future__ import annotations

from dataclasses import MISSING, dataclass, field, fields
from typing import Any

from engine.profile import Profile
from engine.state_codec import differences, pack, running_sums, unpack
from engine.timeutil import DAY_MS

RECENT_EVENT_IDS_KEPT = 16
"""Event ids remembered per customer to refuse duplicates (producers resend recent ones)."""
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
    recent_event_ids: list[str] = field(default_factory=list)
    sent_log: list[list[Any]] = field(default_factory=list)
    """[send time, channel] of the messages inside the frequency-cap window."""
    scores: dict[str, float] | None = None
    """Scores as of the current batch; computed by the shard processor, never stored."""
    scores_basis: tuple[int, float] | None = None
    """(visit count, total spend) the scores were computed from; a visit makes them stale."""

    def next_due(self) -> int | None:
        """The earliest pending timer: an enrollment's step or an armed time-based entry."""
        dues = [e.due_at for e in self.enrollments.values() if e.active and e.due_at is not None]
        dues.extend(self.armed.values())
        return min(dues) if dues else None

    def seen_event(self, event_id: str) -> bool:
        """True when `event_id` was applied recently; otherwise remember it."""
        if event_id in self.recent_event_ids:
            return True
        self.recent_event_ids.append(event_id)
        if len(self.recent_event_ids) > RECENT_EVENT_IDS_KEPT:
            del self.recent_event_ids[0]
        return False

    def prune_vouchers(self, now_ms: int) -> None:
        """Forget vouchers that expired long ago and belong to no enrollment's offers."""
        referenced = {code for e in self.enrollments.values() for code in e.vouchers.values()}
        stale = [code for code, v in self.vouchers.items()
                 if v.expires_at + VOUCHER_RETENTION_MS < now_ms and code not in referenced]
        for code in stale:
            del self.vouchers[code]

    def to_bytes(self) -> bytes:
        """The stored form (see engine.state_codec): enrollments as rows, visit times as
        differences, compressed."""
        profile = self.profile.to_dict()
        if "recent_visits" in profile:
            profile["recent_visits"] = differences(profile["recent_visits"])
        doc: dict[str, Any] = {"p": profile}
        if self.enrollments:
            doc["e"] = {k: _enrollment_row(k, v) for k, v in self.enrollments.items()}
        if self.vouchers:
            doc["v"] = {k: _compact(v, _VOUCHER_FIELDS) for k, v in self.vouchers.items()}
        if self.armed:
            doc["a"] = self.armed
        if self.recent_event_ids:
            doc["r"] = self.recent_event_ids
        if self.sent_log:
            doc["s"] = self.sent_log
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
            enrolled = {k: _enrollment_of(k, row) for k, row in enrollments.items()}
        else:
            enrolled = {k: Enrollment(**v) for k, v in enrollments.items()}
        return cls(
            customer_id,
            Profile.from_dict(profile),
            enrolled,
            {k: Voucher(**v) for k, v in doc.get("v", {}).items()},
            dict(doc.get("a", {})),
            list(doc.get("r", [])),
            list(doc.get("s", [])),
        )


def _enrollment_row(journey_id: str, enrollment: Enrollment) -> list[Any]:
    """The enrollment's fields in declaration order, trailing defaults left out; the
    journey as null when it is the key."""
    row = [getattr(enrollment, name) for name in _ENROLLMENT_FIELDS]
    if row[0] == journey_id:
        row[0] = None
    while len(row) > _ENROLLMENT_REQUIRED and row[-1] == _ENROLLMENT_DEFAULTS[len(row) - 1]:
        row.pop()
    return row


def _enrollment_of(journey_id: str, row: list[Any]) -> Enrollment:
    enrollment = Enrollment(*row)
    if enrollment.journey is None:
        enrollment.journey = journey_id
    return enrollment


def _compact(record: Any, names: tuple[str, ...]) -> dict[str, Any]:
    """The record's fields as a dict, leaving out those that are None or empty."""
    out = {}
    for name in names:
        value = getattr(record, name)
        if value is not None and value != {}:
            out[name] = value
    return out


_ENROLLMENT_FIELDS = tuple(f.name for f in fields(Enrollment))
_ENROLLMENT_REQUIRED = sum(1 for f in fields(Enrollment) if f.default is MISSING
                           and f.default_factory is MISSING)
_ENROLLMENT_DEFAULTS = tuple(
    f.default if f.default is not MISSING
    else f.default_factory() if f.default_factory is not MISSING else None
    for f in fields(Enrollment))
_VOUCHER_FIELDS = tuple(f.name for f in fields(Voucher))
