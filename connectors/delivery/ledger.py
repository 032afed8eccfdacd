"""The delivery ledger: each command's latest outcome, its claim, and the commands held
until their `send_at`.

    ledger = open_ledger("delivery.sqlite")          # one worker: a SQLite file
    ledger = open_ledger("redis://127.0.0.1:6379/0")   # several workers: one Redis

A command id moves through `held` (waiting for its `send_at`, the command kept in the
ledger) → `sending` (claimed by one worker, with a lease) → `delivered`, `failed` or
`bounced`, or `unknown` (a send that a crash interrupted and that is not made again).
What the ledger guarantees, for both stores:

- **One claim.** `claim` and `claim_due` are atomic: of several workers reading the same
  command, exactly one gets it while its lease runs. A lease that ran out (its worker
  died) lets another worker, or the same one restarted, claim the command again.
- **Held commands are durable.** `hold` writes the whole command before the caller moves
  on (commits a Kafka offset, reads the next line); a kill -9 loses none, and the command
  is claimed once when due.
- **Delivered is final**, and so is `unknown`: such a command is never claimed again;
  `failed` and `bounced` ones are, when a commands file is replayed.
- **Attempted before the send.** `attempt` marks a claimed command in one write that has
  reached the store when it returns; the worker calls it just before the network call.
  After a crash, `interrupted` tells a command that may have reached the provider from
  one that was claimed but never sent. The mark lasts until an outcome is recorded.

SQLite runs in WAL mode with `synchronous=NORMAL`: a commit survives the death of the
process, but the last commits before a power loss may be lost (those commands are sent
again). Redis is as durable as its persistence settings (AOF `everysec` by default).
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Protocol

import redis

from connectors.delivery.channels import STATUSES, Status
from engine.errors import JourneysError

__all__ = [
    "UNKNOWN",
    "DeliveryLedger",
    "Ledger",
    "LedgerEntry",
    "LedgerError",
    "RedisLedger",
    "iso_ms",
    "open_ledger",
]

UNKNOWN = "unknown"
"""The status of a command whose send a crash interrupted and that is not sent again."""


class LedgerError(JourneysError, RuntimeError):
    """A ledger that cannot be opened or used; names the ledger."""

    code = "ledger"

    def __init__(self, where: str, reason: str) -> None:
        super().__init__(f"ledger {where}: {reason}")
        self.where = where
        self.reason = reason


def iso_ms(moment: datetime) -> str:
    """`2025-03-03T10:00:00.000Z`."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + \
        f"{moment.microsecond // 1000:03d}Z"


def _now_ms() -> int:
    return int(time.time() * 1000)


@dataclass(frozen=True)
class LedgerEntry:
    """What the ledger knows about one command."""

    command_id: str
    status: str
    attempts: int
    provider_id: str | None
    detail: str
    updated_at: str


class Ledger(Protocol):
    """What a delivery worker needs from its ledger; `DeliveryLedger` and `RedisLedger`."""

    where: str

    def get(self, command_id: str) -> LedgerEntry | None: ...

    def is_delivered(self, command_id: str) -> bool: ...

    def claim(self, command_ids: Sequence[str], owner: str, lease_s: float) -> set[str]:
        """Take each command for `owner` unless it is delivered, held or claimed by a live
        lease; the ids taken."""
        ...

    def hold(self, command_id: str, due_ms: int, command: bytes) -> bool:
        """Keep `command` until `due_ms`; False when the ledger knows it already (held,
        being sent or delivered)."""
        ...

    def claim_due(self, owner: str, lease_s: float, limit: int,
                  now_ms: int | None = None) -> list[bytes]:
        """Claim up to `limit` held commands that are due, and held commands whose claim
        expired; their JSON."""
        ...

    def next_due_ms(self) -> int | None:
        """When the earliest held command is due; None when none is held."""
        ...

    def held_count(self) -> int: ...

    def release(self, owner: str) -> int:
        """End the leases of `owner` (a worker restarted under the same id) at once."""
        ...

    def record(self, command_id: str, status: Status, attempts: int,
               provider_id: str | None = None, detail: str = "",
               at: datetime | None = None) -> None:
        """Record an outcome and end the claim, atomically; `attempts` adds to those
        recorded before."""
        ...

    def attempt(self, command_id: str) -> None:
        """Mark a claimed command as possibly sent: one write, durable before it returns."""
        ...

    def interrupted(self, command_ids: Sequence[str]) -> set[str]:
        """The ids among `command_ids` marked by `attempt` with no outcome recorded since."""
        ...

    def record_unknown(self, command_id: str, detail: str,
                       at: datetime | None = None) -> None:
        """Record that the command's outcome is not known and end the claim; final."""
        ...

    def mark(self, command_id: str, status: Status, attempts: int,
             provider_id: str | None = None, detail: str = "",
             at: datetime | None = None) -> LedgerEntry:
        """`record`, then the entry as it now stands."""
        ...

    def close(self) -> None: ...


def _check_mark(status: str, attempts: int) -> None:
    if status not in STATUSES:
        raise ValueError(f"status must be one of {', '.join(STATUSES)}, not {status!r}")
    if attempts < 0:
        raise ValueError(f"attempts cannot be negative: {attempts}")


class _Marking:
    """`mark` for a ledger that has `record` and `get`."""

    def record(self, command_id: str, status: Status, attempts: int,
               provider_id: str | None = None, detail: str = "",
               at: datetime | None = None) -> None:
        raise NotImplementedError

    def get(self, command_id: str) -> LedgerEntry | None:
        raise NotImplementedError

    def mark(self, command_id: str, status: Status, attempts: int,
             provider_id: str | None = None, detail: str = "",
             at: datetime | None = None) -> LedgerEntry:
        """Record an outcome; the entry as it now stands."""
        self.record(command_id, status, attempts, provider_id, detail, at)
        entry = self.get(command_id)
        if entry is None:
            raise LedgerError(command_id, "the outcome just recorded cannot be read back")
        return entry


class DeliveryLedger(_Marking):
    """The ledger in one SQLite file: for a single worker (or workers on one host)."""

    _SCHEMA = """
        CREATE TABLE IF NOT EXISTS deliveries (
            command_id  TEXT PRIMARY KEY,
            status      TEXT NOT NULL,
            attempts    INTEGER NOT NULL,
            provider_id TEXT,
            detail      TEXT NOT NULL,
            updated_at  TEXT NOT NULL
        )"""
    _ADDED = (("owner", "TEXT"), ("lease_until", "INTEGER"), ("due_ms", "INTEGER"),
              ("command", "BLOB"), ("attempted_ms", "INTEGER"))
    """Columns added for holding and claiming; a ledger from an earlier version gains them."""
    _CLAIMABLE = ("deliveries.status IN ('failed', 'bounced') OR (deliveries.status = "
                  "'sending' AND deliveries.lease_until < :now)")

    def __init__(self, path: Path | str) -> None:
        self.path = str(path)
        self.where = self.path
        self._lock = threading.RLock()
        self._db = sqlite3.connect(self.path, timeout=30.0, check_same_thread=False,
                                   isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        with self._transaction():
            self._db.execute(self._SCHEMA)
            present = {row[1] for row in self._db.execute("PRAGMA table_info(deliveries)")}
            for name, kind in self._ADDED:
                if name not in present:
                    self._db.execute(f"ALTER TABLE deliveries ADD COLUMN {name} {kind}")
            self._db.execute("CREATE INDEX IF NOT EXISTS deliveries_due "
                             "ON deliveries (status, due_ms)")

    def _transaction(self) -> _Transaction:
        return _Transaction(self._db, self._lock)

    def get(self, command_id: str) -> LedgerEntry | None:
        with self._lock:
            row = self._db.execute(
                "SELECT command_id, status, attempts, provider_id, detail, updated_at "
                "FROM deliveries WHERE command_id = ?", (command_id,)).fetchone()
        return LedgerEntry(*row) if row else None

    def is_delivered(self, command_id: str) -> bool:
        entry = self.get(command_id)
        return entry is not None and entry.status == "delivered"

    def claim(self, command_ids: Sequence[str], owner: str, lease_s: float) -> set[str]:
        now = _now_ms()
        taken: set[str] = set()
        values = {"at": _iso(now), "owner": owner, "until": now + int(lease_s * 1000),
                  "now": now}
        with self._transaction():
            for command_id in command_ids:
                cursor = self._db.execute(
                    "INSERT INTO deliveries (command_id, status, attempts, detail, updated_at, "
                    "owner, lease_until) VALUES (:id, 'sending', 0, '', :at, :owner, :until) "
                    "ON CONFLICT (command_id) DO UPDATE SET status = 'sending', "
                    "owner = excluded.owner, lease_until = excluded.lease_until, "
                    f"updated_at = excluded.updated_at WHERE {self._CLAIMABLE}",
                    {"id": command_id, **values})
                if cursor.rowcount == 1:
                    taken.add(command_id)
        return taken

    def hold(self, command_id: str, due_ms: int, command: bytes) -> bool:
        now = _now_ms()
        with self._transaction():
            cursor = self._db.execute(
                "INSERT INTO deliveries (command_id, status, attempts, detail, updated_at, "
                "due_ms, command) VALUES (:id, 'held', 0, 'held until send_at', :at, :due, "
                ":command) ON CONFLICT (command_id) DO UPDATE SET status = 'held', "
                "due_ms = excluded.due_ms, command = excluded.command, owner = NULL, "
                "lease_until = NULL, detail = excluded.detail, updated_at = excluded.updated_at "
                f"WHERE {self._CLAIMABLE}",
                {"id": command_id, "at": _iso(now), "due": due_ms, "command": command,
                 "now": now})
            return cursor.rowcount == 1

    def claim_due(self, owner: str, lease_s: float, limit: int,
                  now_ms: int | None = None) -> list[bytes]:
        now = _now_ms() if now_ms is None else now_ms
        with self._transaction():
            rows = self._db.execute(
                "SELECT command_id, command FROM deliveries WHERE command IS NOT NULL AND "
                "((status = 'held' AND due_ms <= :now) OR "
                "(status = 'sending' AND lease_until < :now)) ORDER BY due_ms LIMIT :limit",
                {"now": now, "limit": limit}).fetchall()
            self._db.executemany(
                "UPDATE deliveries SET status = 'sending', owner = ?, lease_until = ?, "
                "updated_at = ? WHERE command_id = ?",
                [(owner, now + int(lease_s * 1000), _iso(now), row[0]) for row in rows])
        return [bytes(row[1]) for row in rows]

    def next_due_ms(self) -> int | None:
        with self._lock:
            row = self._db.execute(
                "SELECT MIN(due_ms) FROM deliveries WHERE status = 'held'").fetchone()
        return int(row[0]) if row and row[0] is not None else None

    def held_count(self) -> int:
        with self._lock:
            row = self._db.execute(
                "SELECT COUNT(*) FROM deliveries WHERE status = 'held'").fetchone()
        return int(row[0])

    def release(self, owner: str) -> int:
        with self._transaction():
            cursor = self._db.execute(
                "UPDATE deliveries SET lease_until = 0 WHERE status = 'sending' AND owner = ?",
                (owner,))
            return cursor.rowcount

    def record(self, command_id: str, status: Status, attempts: int,
               provider_id: str | None = None, detail: str = "",
               at: datetime | None = None) -> None:
        """Record an outcome in one statement (a transaction of its own)."""
        _check_mark(status, attempts)
        updated_at = iso_ms(at or datetime.now(UTC))
        with self._lock:
            self._db.execute(
                "INSERT INTO deliveries (command_id, status, attempts, provider_id, detail, "
                "updated_at) VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (command_id) DO UPDATE SET "
                "status = excluded.status, attempts = deliveries.attempts + excluded.attempts, "
                "provider_id = COALESCE(excluded.provider_id, deliveries.provider_id), "
                "detail = excluded.detail, updated_at = excluded.updated_at, owner = NULL, "
                "lease_until = NULL, due_ms = NULL, command = NULL, attempted_ms = NULL",
                (command_id, status, attempts, provider_id, detail, updated_at))

    def attempt(self, command_id: str) -> None:
        """One autocommitted `UPDATE`: in the WAL, so it outlives the process, before the
        send."""
        with self._lock:
            self._db.execute("UPDATE deliveries SET attempted_ms = ? WHERE command_id = ?",
                             (_now_ms(), command_id))

    def interrupted(self, command_ids: Sequence[str]) -> set[str]:
        found: set[str] = set()
        ids = list(command_ids)
        with self._lock:
            for start in range(0, len(ids), 500):
                chunk = ids[start:start + 500]
                marks = ", ".join("?" * len(chunk))
                found.update(row[0] for row in self._db.execute(
                    "SELECT command_id FROM deliveries WHERE attempted_ms IS NOT NULL AND "
                    f"command_id IN ({marks})", chunk))
        return found

    def record_unknown(self, command_id: str, detail: str,
                       at: datetime | None = None) -> None:
        updated_at = iso_ms(at or datetime.now(UTC))
        with self._lock:
            self._db.execute(
                "UPDATE deliveries SET status = ?, detail = ?, updated_at = ?, owner = NULL, "
                "lease_until = NULL, due_ms = NULL, command = NULL, attempted_ms = NULL "
                "WHERE command_id = ?", (UNKNOWN, detail, updated_at, command_id))

    def counts(self) -> dict[str, int]:
        """How many commands have each status."""
        with self._lock:
            rows = self._db.execute("SELECT status, COUNT(*) FROM deliveries GROUP BY status")
            return {status: count for status, count in rows}

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def __enter__(self) -> DeliveryLedger:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class _Transaction:
    """`BEGIN IMMEDIATE` … `COMMIT` under the ledger's lock; rolled back on an error."""

    def __init__(self, db: sqlite3.Connection, lock: threading.RLock) -> None:
        self._db = db
        self._lock = lock

    def __enter__(self) -> None:
        self._lock.acquire()
        try:
            self._db.execute("BEGIN IMMEDIATE")
        except BaseException:
            self._lock.release()
            raise

    def __exit__(self, kind: object, *rest: object) -> None:
        try:
            self._db.execute("ROLLBACK" if kind is not None else "COMMIT")
        finally:
            self._lock.release()


def _iso(ms: int) -> str:
    return iso_ms(datetime.fromtimestamp(ms / 1000, UTC))


# -- Redis ---------------------------------------------------------------------------------

_CLAIMABLE_LUA = """
local function claimable(entry, now)
  local status = redis.call('HGET', entry, 'status')
  if not status or status == 'failed' or status == 'bounced' then return true end
  if status == 'sending' then
    return tonumber(redis.call('HGET', entry, 'lease_until') or '0') < now
  end
  return false
end
"""

_CLAIM = _CLAIMABLE_LUA + """
local now = tonumber(ARGV[2])
if not claimable(KEYS[1], now) then return 0 end
redis.call('HSET', KEYS[1], 'status', 'sending', 'owner', ARGV[1],
           'lease_until', now + tonumber(ARGV[3]), 'updated_at', ARGV[4])
redis.call('HSETNX', KEYS[1], 'attempts', 0)
redis.call('ZADD', KEYS[2], now + tonumber(ARGV[3]), ARGV[5])
return 1
"""

_HOLD = _CLAIMABLE_LUA + """
local now = tonumber(ARGV[2])
if not claimable(KEYS[1], now) then return 0 end
redis.call('HSET', KEYS[1], 'status', 'held', 'detail', 'held until send_at',
           'updated_at', ARGV[3])
redis.call('HSETNX', KEYS[1], 'attempts', 0)
redis.call('HDEL', KEYS[1], 'owner', 'lease_until')
redis.call('ZREM', KEYS[3], ARGV[4])
redis.call('ZADD', KEYS[2], tonumber(ARGV[1]), ARGV[4])
redis.call('HSET', KEYS[4], ARGV[4], ARGV[5])
return 1
"""

_CLAIM_DUE = """
local prefix, now, lease, limit = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
local ids = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now, 'LIMIT', 0, limit)
for _, id in ipairs(redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', '(' .. now)) do
  if #ids >= limit then break end
  if redis.call('HEXISTS', KEYS[3], id) == 1 then table.insert(ids, id) end
end
local commands = {}
for _, id in ipairs(ids) do
  redis.call('ZREM', KEYS[1], id)
  redis.call('ZADD', KEYS[2], now + lease, id)
  redis.call('HSET', prefix .. id, 'status', 'sending', 'owner', ARGV[5],
             'lease_until', now + lease, 'updated_at', ARGV[6])
  table.insert(commands, redis.call('HGET', KEYS[3], id))
end
return commands
"""

_MARK = """
redis.call('HINCRBY', KEYS[1], 'attempts', tonumber(ARGV[2]))
redis.call('HSET', KEYS[1], 'status', ARGV[1], 'detail', ARGV[3], 'updated_at', ARGV[4])
if ARGV[5] ~= '' then redis.call('HSET', KEYS[1], 'provider_id', ARGV[5]) end
redis.call('HDEL', KEYS[1], 'owner', 'lease_until', 'attempted_ms')
redis.call('ZREM', KEYS[2], ARGV[6])
redis.call('ZREM', KEYS[3], ARGV[6])
redis.call('HDEL', KEYS[4], ARGV[6])
return 1
"""

_RELEASE = """
local released = 0
for _, id in ipairs(redis.call('ZRANGE', KEYS[1], 0, -1)) do
  local entry = ARGV[1] .. id
  if redis.call('HGET', entry, 'owner') == ARGV[2] then
    redis.call('HSET', entry, 'lease_until', 0)
    redis.call('ZADD', KEYS[1], 0, id)
    released = released + 1
  end
end
return released
"""


class RedisLedger(_Marking):
    """The ledger in Redis, shared by every delivery worker that names the same prefix.

    Keys (one hash slot, `{prefix}`): `{prefix}:e:<command_id>` a hash per command,
    `{prefix}:held` a sorted set of held ids by due time, `{prefix}:commands` a hash of
    held commands, `{prefix}:leases` a sorted set of claimed ids by lease end.
    """

    def __init__(self, url: str, prefix: str = "journeys-delivery") -> None:
        self.where = f"{url} (prefix {prefix})"
        try:
            self._client = redis.Redis.from_url(url, socket_timeout=30,
                                                socket_connect_timeout=5)
        except ValueError as exc:
            raise LedgerError(self.where, f"not a usable Redis URL: {exc}") from None
        tag = "{" + prefix + "}"
        self._entry = f"{tag}:e:"
        self._held = f"{tag}:held"
        self._commands = f"{tag}:commands"
        self._leases = f"{tag}:leases"
        try:
            self._client.ping()
        except (redis.RedisError, OSError) as exc:
            raise LedgerError(self.where, f"cannot reach Redis: {exc}") from None
        self._claim = self._client.register_script(_CLAIM)
        self._hold = self._client.register_script(_HOLD)
        self._claim_due = self._client.register_script(_CLAIM_DUE)
        self._mark = self._client.register_script(_MARK)
        self._release = self._client.register_script(_RELEASE)

    def get(self, command_id: str) -> LedgerEntry | None:
        raw: dict[bytes, bytes] = self._client.hgetall(self._entry + command_id)  # type: ignore[assignment]
        fields = {k.decode(): v.decode() for k, v in raw.items()}
        if not fields:
            return None
        return LedgerEntry(command_id, fields["status"], int(fields.get("attempts", 0)),
                           fields.get("provider_id"), fields.get("detail", ""),
                           fields.get("updated_at", ""))

    def is_delivered(self, command_id: str) -> bool:
        status = self._client.hget(self._entry + command_id, "status")
        return status == b"delivered"

    def claim(self, command_ids: Sequence[str], owner: str, lease_s: float) -> set[str]:
        now = _now_ms()
        pipe = self._client.pipeline(transaction=False)
        for command_id in command_ids:
            self._claim(keys=[self._entry + command_id, self._leases],
                        args=[owner, now, int(lease_s * 1000), _iso(now), command_id],
                        client=pipe)
        return {command_id for command_id, taken in zip(command_ids, pipe.execute(),
                                                        strict=True) if taken}

    def hold(self, command_id: str, due_ms: int, command: bytes) -> bool:
        now = _now_ms()
        return bool(self._hold(
            keys=[self._entry + command_id, self._held, self._leases, self._commands],
            args=[due_ms, now, _iso(now), command_id, command]))

    def claim_due(self, owner: str, lease_s: float, limit: int,
                  now_ms: int | None = None) -> list[bytes]:
        now = _now_ms() if now_ms is None else now_ms
        found = self._claim_due(keys=[self._held, self._leases, self._commands],
                                args=[self._entry, now, int(lease_s * 1000), limit, owner,
                                      _iso(now)])
        return [bytes(command) for command in found]

    def next_due_ms(self) -> int | None:
        first = self._client.zrange(self._held, 0, 0, withscores=True)
        return int(first[0][1]) if first else None

    def held_count(self) -> int:
        return int(self._client.zcard(self._held))

    def release(self, owner: str) -> int:
        return int(self._release(keys=[self._leases], args=[self._entry, owner]))

    def record(self, command_id: str, status: Status, attempts: int,
               provider_id: str | None = None, detail: str = "",
               at: datetime | None = None) -> None:
        _check_mark(status, attempts)
        self._record(command_id, status, attempts, provider_id, detail, at)

    def _record(self, command_id: str, status: str, attempts: int, provider_id: str | None,
                detail: str, at: datetime | None) -> None:
        updated_at = iso_ms(at or datetime.now(UTC))
        self._mark(keys=[self._entry + command_id, self._held, self._leases, self._commands],
                   args=[status, attempts, detail, updated_at, provider_id or "", command_id])

    def attempt(self, command_id: str) -> None:
        """One `HSET`: applied by the server before it answers, so before the send."""
        self._client.hset(self._entry + command_id, "attempted_ms", _now_ms())

    def interrupted(self, command_ids: Sequence[str]) -> set[str]:
        if not command_ids:
            return set()
        pipe = self._client.pipeline(transaction=False)
        for command_id in command_ids:
            pipe.hexists(self._entry + command_id, "attempted_ms")
        return {command_id for command_id, marked in zip(command_ids, pipe.execute(),
                                                         strict=True) if marked}

    def record_unknown(self, command_id: str, detail: str,
                       at: datetime | None = None) -> None:
        self._record(command_id, UNKNOWN, 0, None, detail, at)

    def close(self) -> None:
        self._client.close()


def open_ledger(spec: str, prefix: str = "journeys-delivery") -> Ledger:
    """A `RedisLedger` for a `redis://` or `rediss://` URL, else a SQLite `DeliveryLedger`."""
    if spec.startswith(("redis://", "rediss://", "unix://")):
        return RedisLedger(spec, prefix)
    try:
        return DeliveryLedger(spec)
    except sqlite3.Error as exc:
        raise LedgerError(spec, f"cannot open the SQLite ledger: {exc}") from None
