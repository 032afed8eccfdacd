"""The options of `journeys deliver` and what runs them."""

from __future__ import annotations

import argparse
import os
import signal
import sqlite3
import sys
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Any

from engine.errors import JourneysError

if TYPE_CHECKING:
    from connectors.delivery.sources import CommandSource
    from connectors.delivery.worker import DeliveryWorker

# what runs a delivery is imported when it runs, so the `journeys` command starts light

__all__ = ["add_deliver_arguments", "deliver_main", "run_deliver"]

DESCRIPTION = (
    "Send message commands through the configured channels. Commands whose send_at is in "
    "the future are held in the ledger and sent when due, also across restarts; commands "
    "a backtest wrote are refused. See docs/delivery.md.")
USER_MISTAKE = 2


def add_deliver_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of `journeys deliver` on `parser`."""
    source = parser.add_argument_group("input (one of)")
    source.add_argument("--commands", metavar="FILE",
                        help="message commands, JSON Lines, as `journeys run` writes them")
    source.add_argument("--kafka", metavar="BOOTSTRAP",
                        help="read commands from Kafka (host:port,...) instead of a file")
    source.add_argument("--commands-topic", metavar="TOPIC",
                        help="with --kafka: the topic `journeys run --kafka` writes commands to")
    source.add_argument("--kafka-group", metavar="GROUP", default="journeys-deliver",
                        help="with --kafka: consumer group whose offsets record what was "
                             "handled (default journeys-deliver)")
    source.add_argument("--kafka-config", metavar="FILE",
                        help="with --kafka: librdkafka settings as key=value lines (SASL, "
                             "TLS...); JOURNEYS_KAFKA_* variables override them")
    parser.add_argument("--config", required=True, metavar="FILE",
                        help="delivery config, YAML or JSON: channels, retries, rates")
    parser.add_argument("--templates", required=True, metavar="DIR",
                        help="the message templates folder")
    parser.add_argument("--events-out", metavar="FILE",
                        help="where `message` events are appended (feed to journeys run); "
                             "required unless --dry-run")
    parser.add_argument("--dead-letter", metavar="FILE",
                        help="where undeliverable commands are appended, with the reason; "
                             "required unless --dry-run")
    parser.add_argument("--ledger", metavar="PATH_OR_URL",
                        help="the ledger of deliveries and held commands: a SQLite file for "
                             "one worker, or redis://host:port/db shared by several workers; "
                             "required unless --dry-run")
    parser.add_argument("--ledger-prefix", default="journeys-delivery", metavar="PREFIX",
                        help="with a Redis ledger: its key prefix (default journeys-delivery)")
    parser.add_argument("--serve", action="store_true",
                        help="keep running: send held commands when due and, with --kafka, "
                             "new commands as they arrive; stop with SIGTERM or Ctrl-C "
                             "(default: stop once the input is read and nothing held is due)")
    parser.add_argument("--dry-run", action="store_true",
                        help="render every command and report what would be sent; send "
                             "nothing and touch neither the ledger nor the output files")
    parser.add_argument("--allow-backtest", action="store_true",
                        help="send commands a backtest wrote (\"origin\": \"backtest\"); "
                             "refused otherwise")
    parser.add_argument("--concurrency", type=_positive_int, default=64, metavar="N",
                        help="sends in flight at once (default 64)")
    parser.add_argument("--batch", type=_positive_int, default=500, metavar="N",
                        help="commands claimed between two commits of the input (default 500)")
    parser.add_argument("--worker-id", metavar="ID",
                        help="this worker's name in the ledger's claims; a worker restarted "
                             "under the same id takes back its unfinished claims at once "
                             "(default: host, process id and a random part)")
    parser.add_argument("--lease", type=float, default=300.0, metavar="SECONDS",
                        help="how long a claim keeps other workers off a command whose "
                             "worker stopped answering (default 300)")


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, not {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, not {value}")
    return value


def _check(parser_error: Any, args: argparse.Namespace) -> None:
    if bool(args.commands) == bool(args.kafka):
        parser_error("give one of --commands FILE or --kafka BOOTSTRAP")
    if args.kafka and not args.commands_topic:
        parser_error("--kafka needs --commands-topic")
    if not args.dry_run:
        missing = [flag for flag, value in (("--events-out", args.events_out),
                                            ("--dead-letter", args.dead_letter),
                                            ("--ledger", args.ledger)) if not value]
        if missing:
            parser_error(f"{', '.join(missing)} required unless --dry-run")
    if args.lease <= 0:
        parser_error(f"--lease must be above 0, not {args.lease}")


def _source(args: argparse.Namespace) -> CommandSource:
    from connectors.delivery.sources import FileSource, KafkaCommandSource

    if args.commands:
        path = Path(args.commands)
        if not path.is_file():
            raise JourneysError("no such file (--commands): check the path", file=path)
        return FileSource(path)
    from connectors.kafka_config import load_settings

    settings = load_settings(args.kafka, args.kafka_config)
    return KafkaCommandSource(settings, args.commands_topic, args.kafka_group,
                              until_end=not args.serve or args.dry_run,
                              commit=not args.dry_run)


def run_deliver(args: argparse.Namespace) -> int:
    """Run `journeys deliver`: 0 when nothing was dead-lettered, 1 when some was, 2 when
    the input, the config, the ledger or a backtest's command stops it."""
    import redis

    _check(args.parser_error, args)
    try:
        return _run(args)
    except (JourneysError, OSError, sqlite3.Error,
            redis.RedisError) as exc:
        text = " ".join(str(exc).split())
        if isinstance(exc, JourneysError) and exc.context():
            text = f"{exc.context()}: {exc.message}"
        print(f"journeys deliver: {text}", file=sys.stderr)
        return USER_MISTAKE


def _run(args: argparse.Namespace) -> int:
    from connectors.delivery.config import load_delivery_config
    from connectors.delivery.dry_run import dry_run
    from connectors.delivery.ledger import open_ledger
    from connectors.delivery.service import deliver_source, sender_for
    from connectors.delivery.templates import TemplateStore
    from connectors.delivery.worker import WorkerOptions

    if not Path(args.templates).is_dir():
        raise JourneysError("is not a folder (--templates): give the message templates "
                            "folder", file=args.templates)
    config = load_delivery_config(args.config)
    sender = sender_for(config, TemplateStore(Path(args.templates)))
    source = _source(args)
    try:
        if args.dry_run:
            found = dry_run(source, sender, sys.stdout, allow_backtest=args.allow_backtest)
            print(found.line())
            return 0
        owner = args.worker_id or f"{os.uname().nodename}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        options = WorkerOptions(owner=owner, concurrency=args.concurrency,
                                batch_size=args.batch, lease_s=args.lease, serve=args.serve,
                                allow_backtest=args.allow_backtest)
        ledger = open_ledger(args.ledger, args.ledger_prefix)
        previous = signal.getsignal(signal.SIGTERM)
        try:
            summary = deliver_source(source, sender, ledger, args.events_out,
                                     args.dead_letter, options, on_worker=_stop_on_sigterm)
        finally:
            signal.signal(signal.SIGTERM, previous)
            ledger.close()
    finally:
        source.close()
    print(summary.line())
    return 1 if summary.dead_lettered else 0


def _stop_on_sigterm(worker: DeliveryWorker) -> None:
    """SIGTERM: finish the batch in hand, record it, and stop."""
    signal.signal(signal.SIGTERM, lambda _signum, _frame: worker.stop())


def deliver_main(argv: list[str]) -> int:
    """`journeys deliver` on its own (`python -m connectors.delivery.service`)."""
    parser = argparse.ArgumentParser(prog="journeys deliver", description=DESCRIPTION)
    add_deliver_arguments(parser)
    args = parser.parse_args(argv)
    args.parser_error = parser.error
    return run_deliver(args)
