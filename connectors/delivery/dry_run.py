"""`journeys deliver --dry-run`: render every command and say what would be sent.

Nothing is sent, and neither the ledger nor the events or dead-letter files are opened;
a Kafka source reads to the end the topic has at start and commits no offset. Whether a
command was delivered already is therefore not known: the report is about the input.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TextIO

from connectors.delivery.send import CommandSender, command_problem, due_ms, from_backtest
from connectors.delivery.sources import CommandSource

__all__ = ["DryRunSummary", "dry_run"]


@dataclass
class DryRunSummary:
    """What a dry run found."""

    now: int = 0
    later: int = 0
    unrenderable: int = 0
    invalid: int = 0
    from_backtest: int = 0

    def line(self) -> str:
        return (f"dry run: {self.now} would be sent now, {self.later} held until send_at, "
                f"{self.unrenderable} cannot be rendered, {self.invalid} invalid, "
                f"{self.from_backtest} from a backtest; nothing was sent")


def dry_run(source: CommandSource, sender: CommandSender, out: TextIO, *,
            allow_backtest: bool, now: datetime | None = None,
            batch_size: int = 500) -> DryRunSummary:
    """Render each command of `source` and write one line per command to `out`."""
    moment = now or datetime.now(UTC)
    now_ms = int(moment.timestamp() * 1000)
    summary = DryRunSummary()
    while not source.exhausted:
        for item in source.next_batch(batch_size, 0.2):
            problem = item.problem or command_problem(item.command)
            if problem is not None:
                summary.invalid += 1
                out.write(f"{item.where}: invalid: {problem}\n")
                continue
            command = item.command
            what = f"{item.where}: {command['command_id']} via {command['channel']}"
            if from_backtest(command):
                summary.from_backtest += 1
                if not allow_backtest:
                    out.write(f"{what}: refused, written by a backtest\n")
                    continue
            message, failure = sender.render(command)
            if failure is not None or message is None:
                summary.unrenderable += 1
                out.write(f"{what}: {failure.detail if failure else 'cannot render'}\n")
                continue
            due = due_ms(command)
            if due is not None and due > now_ms:
                summary.later += 1
                when = f"at {command['send_at']}"
            else:
                summary.now += 1
                when = "now"
            subject = f" subject {message.subject!r}" if message.subject else ""
            out.write(f"{what} {when}: template {command.get('template')!r}{subject}, "
                      f"{len(message.text)} characters of text\n")
    return summary
