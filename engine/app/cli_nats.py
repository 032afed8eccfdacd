"""The NATS JetStream options of `journeys run`: their group in the parser, and the checks
that turn them into `NatsOptions`."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import TYPE_CHECKING, NoReturn

from engine.run_defaults import DEFAULT_NATS_EVENTS_STREAM, DEFAULT_NATS_OUTPUTS_STREAM

if TYPE_CHECKING:
    from engine.flow.runner import NatsOptions

__all__ = ["add_nats_options", "nats_options"]

_SUBJECTS = (("--events-subject", "events_subject"), ("--commands-subject", "commands_subject"),
             ("--dead-letter-subject", "dead_letter_subject"))


def add_nats_options(parser: argparse.ArgumentParser) -> None:
    """The NATS option group of `journeys run`."""
    nats = parser.add_argument_group(
        "NATS JetStream (each subject instead of --events, --commands or --dead-letter; "
        "see docs/nats.md)")
    nats.add_argument("--nats", metavar="URL",
                      help="NATS server, e.g. nats://127.0.0.1:4222: read events from and "
                           "publish commands and dead letters to the subjects given")
    nats.add_argument("--events-subject", metavar="SUBJECT",
                      help="subject of events, read in stream order from where the state "
                           "left off")
    nats.add_argument("--commands-subject", metavar="SUBJECT",
                      help="subject for message commands (Nats-Msg-Id: the command_id)")
    nats.add_argument("--dead-letter-subject", metavar="SUBJECT",
                      help="subject for events that cannot be applied")
    nats.add_argument("--events-stream", metavar="STREAM", default=DEFAULT_NATS_EVENTS_STREAM,
                      help="stream the events subject is added to if no stream holds it, "
                           f"created if missing (default {DEFAULT_NATS_EVENTS_STREAM})")
    nats.add_argument("--outputs-stream", metavar="STREAM", default=DEFAULT_NATS_OUTPUTS_STREAM,
                      help="stream the commands and dead-letter subjects are added to if no "
                           f"stream holds them, created if missing (default "
                           f"{DEFAULT_NATS_OUTPUTS_STREAM})")
    nats.add_argument("--nats-until-end", action="store_true",
                      help="stop once the events subject's last message at start is read")


def nats_options(parser_error: Callable[[str], NoReturn],
                 args: argparse.Namespace) -> NatsOptions | None:
    """The NATS options given, checked; None without --nats."""
    from connectors.nats_client import NatsConnectorError, check_subject
    from engine.flow.runner import NatsOptions

    given = [flag for flag, name in _SUBJECTS if getattr(args, name)]
    if args.nats_until_end:
        given.append("--nats-until-end")
    if not args.nats:
        if given:
            parser_error(f"{given[0]} needs --nats URL")
        return None
    if args.kafka:
        parser_error("--kafka and --nats cannot be combined")
    subjects = [(flag, getattr(args, name)) for flag, name in _SUBJECTS
                if getattr(args, name)]
    if not subjects:
        parser_error("--nats needs --events-subject, --commands-subject or "
                     "--dead-letter-subject")
    if args.events and args.events_subject:
        parser_error("--events and --events-subject cannot be combined")
    if args.nats_until_end and not args.events_subject:
        parser_error("--nats-until-end needs --events-subject")
    for flag, subject in subjects:
        try:
            check_subject(subject, flag)
        except NatsConnectorError as exc:
            parser_error(str(exc))
    return NatsOptions(args.nats, args.events_subject, args.commands_subject,
                       args.dead_letter_subject, events_stream=args.events_stream,
                       outputs_stream=args.outputs_stream, until_end=args.nats_until_end)
