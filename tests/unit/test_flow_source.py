"""The source seam's pacing, with a partition reading from a list: the opening batch, source
ids, the end of a replay with its clock hint, and a partition waiting for its end."""

from __future__ import annotations

from connectors.flow_source import Pacing, SourcePartition
from engine.core.records import RawBatch


class ListPartition(SourcePartition):
    """Hands out `lines` (position, bytes) `limit` at a time; at its end once `ended`."""

    def __init__(self, lines: list[tuple[int, bytes]], pacing: Pacing, *,
                 reports_idle: bool = True) -> None:
        super().__init__("list:0", pacing, last=-1)
        self.lines = list(lines)
        self.ended = True
        self.reports_idle = reports_idle

    def read(self, limit: int) -> RawBatch | None:
        taken, self.lines = self.lines[:limit], self.lines[limit:]
        return RawBatch(taken, taken[-1][0]) if taken else None

    def at_end(self) -> bool:
        return self.ended


def read_all(partition: SourcePartition, calls: int = 100) -> list[RawBatch]:
    out: list[RawBatch] = []
    try:
        for _ in range(calls):
            out.extend(partition.next_batch())
    except StopIteration:
        pass
    return out


LINES = [(position, b"{}") for position in (3, 5, 9)]


def test_a_replay_opens_empty_reads_in_batches_and_ends_with_its_clock_hint() -> None:
    partition = ListPartition(LINES, Pacing(batch_size=2, until_ms=1234))
    batches = read_all(partition)
    assert [b.lines for b in batches] == [[], LINES[:2], LINES[2:], []]
    assert all(b.source_id == "list:0" for b in batches)
    assert [b.position for b in batches] == [-1, 5, 9, 9]
    end = batches[-1]
    assert end.clock_hint == 1234 and end.idle
    assert partition.snapshot() == 10


def test_a_source_that_does_not_report_idle_ends_without_a_batch_when_no_hint() -> None:
    batches = read_all(ListPartition(LINES, Pacing(batch_size=10), reports_idle=False))
    assert [b.lines for b in batches] == [[], LINES]


def test_a_replay_waits_for_its_end() -> None:
    partition = ListPartition([], Pacing())
    partition.ended = False
    assert partition.next_batch()[0].lines == []  # the opening batch
    assert partition.next_batch() == []
    assert partition.next_awake() is not None  # asked again soon
    partition.lines = LINES
    assert partition.next_batch()[0].lines == LINES
    assert partition.next_awake() is None


def test_a_followed_input_ticks_while_quiet() -> None:
    partition = ListPartition([], Pacing(stop_at_end=False, tick_s=0.0))
    partition.next_batch()
    tick = partition.next_batch()
    assert len(tick) == 1 and tick[0].lines == [] and tick[0].idle
