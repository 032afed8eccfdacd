"""The `journeys` command: validate, schema, run, fit, backtest, report, console, explain,
ingest, deliver, forget, demo, generate."""

from __future__ import annotations

import argparse
import logging
import os
import sys
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

from connectors.delivery.cli import DESCRIPTION as DELIVER_DESCRIPTION
from connectors.delivery.cli import add_deliver_arguments, run_deliver
from connectors.ingest.command import add_ingest_parser
from engine.app.cli_nats import add_nats_options, nats_options
from engine.app.cli_parser import (
    CommandParser,
    add_version_option,
    defer_defaults,
    given_options,
)
from engine.app.generator_cli import DESCRIPTION as GENERATE_DESCRIPTION
from engine.app.generator_cli import add_generator_options, generate_command
from engine.app.responses import ResponseModel, ResponseModelError
from engine.errors import (
    JourneysError,
    cause_of,
    interrupts_kept,
    one_line,
    rust_panics_hidden,
)
from engine.run_defaults import (
    DEFAULT_BATCH_LINES,
    DEFAULT_CACHE_CUSTOMERS,
    DEFAULT_DEDUP_WINDOW_MS,
    DEFAULT_MAX_AMOUNT,
    SUGGESTED_TIMELINE,
    TIMELINE_KEPT,
)
from journeys_dsl.durations import DurationError, parse_duration
from journeys_dsl.errors import JourneyValidationError

if TYPE_CHECKING:
    from engine.flow.runner import KafkaOptions, RunSummary

# Commands import what they run when they run, so `journeys --help` and `journeys validate`
# start without loading the dataflow, Redis, the scoring kernels or SciPy.

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "journeys"


def _user_errors() -> tuple[type[BaseException], ...]:
    """Errors that are the user's to fix: one line on stderr, exit status 2. Every error
    the product raises derives from `JourneysError`; Redis and file errors come from below
    it."""
    import redis

    return JourneysError, redis.RedisError, OSError
USER_MISTAKE = 2
RUN_SETTINGS = frozenset({
    "journeys", "events", "commands", "segments", "scores", "policies", "dead_letter", "redis",
    "state_dir", "shards", "prefix", "clock", "tail", "until", "batch_lines", "max_skew",
    "max_amount", "dedup_window", "timeline", "cache_customers", "tick", "idle_exit",
    "source_id", "workers", "outage_limit", "process_id", "addresses", "kafka",
    "events_topic", "commands_topic", "dead_letter_topic", "nats", "events_subject",
    "commands_subject", "dead_letter_subject", "events_stream", "outputs_stream",
    "nats_until_end", "telemetry", "event_types"})
"""The options of `journeys run` that the settings model also reads from JOURNEYS_*
variables and the settings file (`engine.flow.settings.RunSettings`)."""
INTERRUPTED = 130


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `journeys` command."""
    arguments = list(sys.argv[1:] if argv is None else argv)
    parser = _parser()
    args = parser.parse_args(arguments)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    try:
        with rust_panics_hidden(), interrupts_kept():
            return int(args.handler(args))
    except JourneyValidationError as exc:
        for problem in exc.problems:
            print(problem, file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return _interrupted(args)
    except Exception as exc:
        if cause_of(exc, (KeyboardInterrupt,)) is not None:  # raised in a dataflow step
            return _interrupted(args)
        mistake = cause_of(exc, _user_errors())
        if mistake is None:
            raise
        print(f"journeys: {_describe(mistake)}", file=sys.stderr)
        return USER_MISTAKE


def _describe(mistake: BaseException) -> str:
    """A user error as one line; a file error names the file first."""
    if isinstance(mistake, OSError) and mistake.filename is not None and mistake.strerror:
        return f"{mistake.filename}: {mistake.strerror}"
    return one_line(mistake)


def _interrupted(args: argparse.Namespace) -> int:
    """Say on one line what Ctrl-C left behind."""
    if args.command != "run":
        said = "interrupted"
    elif args.redis or args.state_dir:
        said = "interrupted; the run stopped: run the same command again to resume it"
    else:
        said = ("interrupted; the run stopped, and its state went with the embedded Redis: "
                "give --state-dir (or --redis) so that the same command resumes a run")
    print(f"journeys: {said}", file=sys.stderr)
    return INTERRUPTED


def _parser() -> argparse.ArgumentParser:
    parser = CommandParser(prog="journeys", description=__doc__)
    add_version_option(parser)
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND",
                                     title="commands")

    validate = commands.add_parser("validate", help="check journey files; FILE:LINE:COL errors")
    validate.add_argument("paths", nargs="+", metavar="PATH", help="journey files or folders")
    validate.add_argument("--templates", metavar="DIR",
                          help="also check every send action's template in this folder "
                               "(parts, syntax, variables)")
    validate.add_argument("--languages", default="en", metavar="LANG[,LANG...]",
                          help="languages the templates must exist in (default en)")
    validate.add_argument("--segments", metavar="FILE",
                          help="the segments file the journeys run with: text compared with "
                               "customer.segment, check_tier, loyalty_tier or segments must "
                               "name one of its ids (default: the shipped segments file)")
    validate.add_argument("--event-types", metavar="FILE",
                          help="declared event types the journeys may use beside the "
                               "built-in ones, with their fields (default: none)")
    validate.set_defaults(handler=_validate)

    schema = commands.add_parser("schema", help="print the JSON Schema of journey files")
    schema.add_argument("--event-types", metavar="FILE",
                        help="declared event types journeys may use (default: built-in only)")
    schema.set_defaults(handler=_schema)

    run = commands.add_parser("run", help="run journeys over an events file")
    run.add_argument("--journeys", nargs="+", metavar="PATH",
                     help="journey files or folders (required, here, in the settings file "
                          "or in JOURNEYS_JOURNEYS)")
    run.add_argument("--settings", metavar="FILE",
                     help="run options in a YAML or TOML file, keys as these flags without "
                          "dashes (batch_lines: 2000); flags and JOURNEYS_* variables "
                          "(JOURNEYS_BATCH_LINES) win over it (default $JOURNEYS_SETTINGS)")
    run.add_argument("--events", metavar="FILE",
                     help="events, one JSON object per line; - or a pipe reads a stream "
                          "(piped again after a stop, what was applied is read past) (or "
                          "use --kafka, or --nats with --events-subject)")
    run.add_argument("--commands", default="-", metavar="FILE",
                     help="where message commands go (default -: stdout)")
    run.add_argument("--segments", metavar="FILE",
                     help="segments and loyalty tiers (default: the shipped "
                          "journeys_dsl/defaults/segments.yaml)")
    run.add_argument("--event-types", metavar="FILE",
                     help="declared event types beside the built-in ones: events of those "
                          "types are checked against their fields (default: none)")
    run.add_argument("--scores", metavar="FILE",
                     help="score model parameters written by `journeys fit` "
                          "(default: restaurant defaults in days)")
    run.add_argument("--policies", metavar="FILE",
                     help="frequency caps, quiet hours, send windows and consent "
                          "(see examples/policies.yaml; default: none)")
    run.add_argument("--dead-letter", default="dead-letter.jsonl", metavar="FILE",
                     help="where events that cannot be applied go, with the reason and the "
                          "input line (default dead-letter.jsonl)")
    _add_state_options(run)
    run.add_argument("--clock", choices=("event", "wall"), default="event",
                     help="event: timers fire as event time passes (replay, backtest); "
                          "wall: timers fire on the wall clock (live)")
    run.add_argument("--tail", action="store_true",
                     help="keep reading the events file as it grows (live runs)")
    run.add_argument("--until", metavar="TIME",
                     help="at the end of the file, move the event clock to this time "
                          "(ISO-8601) so timers due by then fire")
    run.add_argument("--batch-lines", type=int, default=DEFAULT_BATCH_LINES, metavar="N",
                     help="events a source hands on at most per batch (default "
                          f"{DEFAULT_BATCH_LINES}); larger batches: more throughput, "
                          "more latency under load")
    run.add_argument("--max-skew", type=_duration_text, metavar="DURATION",
                     help="refuse events further ahead of the stream's clock (default 7d on "
                          "the event clock, 1d on the wall clock)")
    run.add_argument("--max-amount", type=float, default=DEFAULT_MAX_AMOUNT, metavar="AMOUNT",
                     help=f"refuse visits above this amount (default {DEFAULT_MAX_AMOUNT:,.0f})")
    run.add_argument("--dedup-window", type=_duration_text, default=DEFAULT_DEDUP_WINDOW_MS,
                     metavar="DURATION",
                     help="refuse an event id already applied within this much of the "
                          "customer's event time, from any file or topic (default 30d)")
    run.add_argument("--timeline", type=_non_negative_int, default=TIMELINE_KEPT, metavar="N",
                     help="latest events and messages kept per customer for `journeys "
                          f"console` (default {TIMELINE_KEPT}: none; {SUGGESTED_TIMELINE} "
                          "serves the console)")
    run.add_argument("--cache-customers", type=_non_negative_int,
                     default=DEFAULT_CACHE_CUSTOMERS, metavar="N",
                     help="customer states a process keeps decoded in memory between "
                          f"batches (default {DEFAULT_CACHE_CUSTOMERS:,}; 0: read every "
                          "state from Redis each batch)")
    run.add_argument("--tick", type=float, default=1.0, metavar="SECONDS",
                     help="with --tail: seconds between clock ticks (default 1)")
    run.add_argument("--idle-exit", type=float, metavar="SECONDS",
                     help="with --tail: stop after this many seconds without a new event")
    run.add_argument("--source-id", metavar="NAME",
                     help="name of the input for resuming (default: its path)")
    run.add_argument("--workers", type=int, default=1, metavar="N",
                     help="worker threads per process (default 1; prefer processes)")
    run.add_argument("--outage-limit", type=float, default=300.0, metavar="SECONDS",
                     help="how long to wait for Redis after losing it before giving up "
                          "(seconds, default 300)")
    run.add_argument("-i", "--process-id", type=int, metavar="N",
                     help="this process's index in a cluster started with --addresses")
    run.add_argument("-a", "--addresses", metavar="HOST:PORT[,HOST:PORT...]",
                     help="host:port of every process of the cluster, comma-separated, in "
                          "process order; start one `journeys run` per address")
    _add_kafka_options(run)
    add_nats_options(run)
    run.set_defaults(handler=_run, parser_error=run.error)
    defer_defaults(run, RUN_SETTINGS)

    fit = commands.add_parser("fit", help="fit BG/NBD and Gamma-Gamma to a transaction log")
    fit.add_argument("path", metavar="FILE",
                     help="CSV with customer_id,date,amount, or events JSONL")
    fit.add_argument("--unit", choices=("day", "week"), default="week",
                     help="the time unit of the parameters (default week)")
    fit.add_argument("--calibration-end", metavar="DATE",
                     help="last day of the calibration period, YYYY-MM-DD (default: the last "
                          "transaction's day)")
    fit.add_argument("--out", metavar="FILE",
                     help="write the parameters here, for `journeys run --scores` (default: "
                          "print them)")
    fit.set_defaults(handler=_fit)

    backtest = commands.add_parser("backtest", help="replay history through journeys and "
                                                    "write an HTML report")
    backtest.add_argument("--journeys", nargs="+", required=True, metavar="PATH",
                          help="journey files or folders")
    backtest.add_argument("--events", required=True, metavar="FILE",
                          help="the history, one event per line")
    backtest.add_argument("--out", default="backtest.html", metavar="FILE",
                          help="the HTML report to write (default backtest.html)")
    backtest.add_argument("--segments", metavar="FILE",
                          help="segments and loyalty tiers (default: the shipped ones)")
    backtest.add_argument("--event-types", metavar="FILE",
                          help="declared event types beside the built-in ones (default: none)")
    backtest.add_argument("--scores", metavar="FILE",
                          help="score model parameters written by `journeys fit` "
                               "(default: restaurant defaults in days)")
    backtest.add_argument("--policies", metavar="FILE",
                          help="frequency caps, quiet hours, send windows and consent "
                               "(default: none)")
    backtest.add_argument("--until", metavar="TIME",
                          help="move the event clock to this time (ISO-8601) at the end")
    backtest.add_argument("--shards", type=int, default=8, metavar="N",
                          help="state shards (default 8)")
    backtest.set_defaults(handler=_backtest)

    report = commands.add_parser("report", help="journey statistics of a live engine")
    report.add_argument("--journeys", nargs="+", required=True, metavar="PATH",
                        help="journey files, to show their steps in order")
    report.add_argument("--json", action="store_true", help="JSON instead of a table")
    _add_state_options(report)
    report.set_defaults(handler=_report)

    _add_console_commands(commands)

    add_ingest_parser(commands)

    deliver = commands.add_parser("deliver", description=DELIVER_DESCRIPTION,
                                  help="send message commands through the channels, each "
                                       "when due (see docs/delivery.md)")
    add_deliver_arguments(deliver)
    deliver.set_defaults(handler=run_deliver, parser_error=deliver.error)

    forget = commands.add_parser("forget", help="erase a customer's profile, enrollments, "
                                                "vouchers, timers and timeline")
    forget.add_argument("customers", nargs="+", metavar="CUSTOMER_ID", help="customer ids")
    _add_state_options(forget)
    forget.set_defaults(handler=_forget)

    demo = commands.add_parser("demo", help="generate a venue chain's year and run the "
                                            "ten reference journeys on it")
    demo.add_argument("--customers", type=int, default=3000, metavar="N",
                      help="customers in the generated chain (default 3000)")
    demo.add_argument("--days", type=int, default=450, metavar="N",
                      help="days of history (default 450: first-visit anniversaries fall in it)")
    demo.add_argument("--seed", type=int, default=7, metavar="N",
                      help="random seed of the generated chain (default 7)")
    demo.add_argument("--policies", default=str(EXAMPLES.parent / "policies.yaml"),
                      metavar="FILE", help="messaging policies (default: examples/policies.yaml)")
    demo.add_argument("--respond", type=float, default=ResponseModel.visit_share,
                      metavar="SHARE",
                      help="probability that a message brings its customer back (default "
                           "%(default)s; see docs/demo.md)")
    demo.add_argument("--respond-voucher", type=float,
                      default=ResponseModel.voucher_visit_share, metavar="SHARE",
                      help="the same for a message that carries a voucher, redeemed at that "
                           "visit (default %(default)s)")
    demo.add_argument("--response-days", type=float, default=ResponseModel.mean_delay_days,
                      metavar="DAYS",
                      help="mean days from a message to the visit it causes "
                           "(default %(default)s)")
    demo.add_argument("--out", metavar="DIR",
                      help="folder for events, commands and dead letters "
                           "(default: a temporary folder)")
    _add_state_options(demo)
    demo.set_defaults(handler=_demo)

    generate = commands.add_parser("generate", help="write a seeded venue chain's events "
                                                    "as JSON lines",
                                   description=GENERATE_DESCRIPTION)
    add_generator_options(generate)
    generate.set_defaults(handler=lambda a: generate_command(a, sys.stderr))
    return parser


def _add_kafka_options(parser: argparse.ArgumentParser) -> None:
    kafka = parser.add_argument_group("Kafka (instead of --events; see docs/kafka.md)")
    kafka.add_argument("--kafka", metavar="BOOTSTRAP",
                       help="Kafka bootstrap servers: read events from and write commands and "
                            "dead letters to topics; shards = the events topic's partitions")
    kafka.add_argument("--events-topic", metavar="TOPIC",
                       help="topic of events, keyed by customer_id")
    kafka.add_argument("--commands-topic", metavar="TOPIC", help="topic for message commands")
    kafka.add_argument("--dead-letter-topic", metavar="TOPIC",
                       help="topic for events that cannot be applied")
    kafka.add_argument("--kafka-until-end", action="store_true",
                       help="stop when every partition reaches the end it had at start")
    kafka.add_argument("--kafka-config", metavar="FILE",
                       help="librdkafka settings as key=value lines (SASL, TLS...); "
                            "JOURNEYS_KAFKA_* variables override them")


def _schema(args: argparse.Namespace) -> int:
    from journeys_dsl.commands import schema_command
    from journeys_dsl.event_types import date_sources, load_event_types

    event_types = load_event_types(args.event_types)
    return schema_command(sys.stdout, tuple(event_types.types), date_sources(event_types))


def _fit(args: argparse.Namespace) -> int:
    from engine.scoring.fit_command import fit_command

    return fit_command(args.path, unit=args.unit, calibration_end=args.calibration_end,
                       out=args.out, stdout=sys.stdout, stderr=sys.stderr)


def _kafka_options(parser_error: Callable[[str], NoReturn],
                   args: argparse.Namespace) -> KafkaOptions | None:
    from engine.flow.runner import KafkaOptions

    if not args.kafka:
        if not args.events and not args.events_subject:
            parser_error("one of --events, --kafka or --events-subject (with --nats) is "
                         "required")
        return None
    if args.events:
        parser_error("--events and --kafka cannot be combined")
    missing = [name for name, value in (("--events-topic", args.events_topic),
                                        ("--commands-topic", args.commands_topic),
                                        ("--dead-letter-topic", args.dead_letter_topic))
               if not value]
    if missing:
        parser_error(f"--kafka needs {', '.join(missing)}")
    return KafkaOptions(args.kafka, args.events_topic, args.commands_topic,
                        args.dead_letter_topic, until_end=args.kafka_until_end,
                        config_file=args.kafka_config)


def _add_state_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--redis", metavar="URL",
                        help="Redis URL (default: an embedded server the engine starts and "
                             "stops itself)")
    parser.add_argument("--state-dir", metavar="DIR",
                        help="with the embedded server: keep its data here so a later run "
                             "resumes")
    parser.add_argument("--shards", type=int, default=8, metavar="N",
                        help="state shards (default 8)")
    parser.add_argument("--prefix", default="je", metavar="PREFIX",
                        help="Redis key prefix (default je)")


def _apply_settings(args: argparse.Namespace) -> None:
    """Fill the options left out from JOURNEYS_* variables and the settings file."""
    from engine.flow.settings import load_run_settings

    settings = load_run_settings(given_options(args, RUN_SETTINGS), args.settings)
    for name in RUN_SETTINGS:  # every deferred default is replaced here
        setattr(args, name, getattr(settings, name))


def _run(args: argparse.Namespace) -> int:
    from engine.core.events import parse_timestamp
    from engine.flow.runner import RunOptions, redis_endpoint, run_through_outages
    from journeys_dsl.event_types import journey_vocabulary
    from journeys_dsl.loader import load_journeys

    _apply_settings(args)
    until = parse_timestamp(args.until)[0] if args.until else None
    kafka = _kafka_options(args.parser_error, args)
    nats = nats_options(args.parser_error, args)
    _check_run_paths(args)
    options = RunOptions(
        journeys=args.journeys, events=args.events or "", kafka=kafka, nats=nats,
        segments=args.segments,
        scores=args.scores, policies=args.policies,
        commands=args.commands,
        dead_letter=args.dead_letter, redis_url=args.redis, state_dir=args.state_dir,
        clock=args.clock, shards=args.shards, prefix=args.prefix, source_id=args.source_id,
        until_ms=until, workers=args.workers, tail=args.tail, tick_s=args.tick,
        batch_lines=args.batch_lines, max_skew_ms=args.max_skew,
        max_amount=args.max_amount, dedup_window_ms=args.dedup_window,
        cache_customers=args.cache_customers, timeline_kept=args.timeline,
        idle_exit_s=args.idle_exit, process_id=args.process_id,
        addresses=tuple(args.addresses),  # the settings model split the comma list
        telemetry=args.telemetry, event_types=args.event_types,
    )
    plans = load_journeys(options.journeys,
                          journey_vocabulary(options.segments, options.event_types))
    with redis_endpoint(options.redis_url, options.state_dir) as url:
        summary = run_through_outages(
            url, options, plans, outage_limit_s=args.outage_limit,
            say=lambda line: print(f"journeys: {line}", file=sys.stderr, flush=True))
    _print_summary(summary)
    return 0


def _duration_text(text: str) -> str:
    """A duration flag (e.g. 7d, 12h), checked; the settings model reads it as ms."""
    try:
        seconds = parse_duration(text)
    except DurationError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    if seconds <= 0:
        raise argparse.ArgumentTypeError(f"give a duration above zero, not {text!r}")
    return text


def _non_negative_int(text: str) -> int:
    """A count flag: a whole number, zero or more."""
    try:
        value = int(text.replace("_", "").replace(",", ""))
    except ValueError:
        raise argparse.ArgumentTypeError(f"give a whole number, not {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"give zero or more, not {text!r}")
    return value


def _check_run_paths(args: argparse.Namespace) -> None:
    """Refuse a missing input, an output that cannot be written or a state folder that is a
    file, before anything starts."""
    inputs = [("--segments", args.segments), ("--scores", args.scores),
              ("--policies", args.policies), ("--event-types", args.event_types)]
    outputs = []
    if not args.kafka:
        if args.events:
            inputs.insert(0, ("--events", args.events))
        if not args.commands_subject:
            outputs.append(("--commands", args.commands))
        if not args.dead_letter_subject:
            outputs.append(("--dead-letter", args.dead_letter))
    for flag, path in inputs:
        if path and not (flag == "--events" and path == "-"):
            _check_input(flag, path)
    for flag, path in outputs:
        if path != "-":
            _check_output(flag, path)
    if args.state_dir and os.path.exists(args.state_dir) and not os.path.isdir(args.state_dir):
        raise JourneysError("is a file (--state-dir): give a folder, which is created if "
                            "missing", file=args.state_dir)


def _check_input(flag: str, path: str) -> None:
    """Refuse an input file that does not exist, is a folder or cannot be read."""
    if not os.path.exists(path):
        raise JourneysError(f"no such file ({flag}): check the path", file=path)
    if os.path.isdir(path):
        raise JourneysError(f"is a folder ({flag}): give a file", file=path)
    if not os.access(path, os.R_OK):
        raise JourneysError(f"cannot be read ({flag}): check its permissions", file=path)


def _check_output(flag: str, path: str) -> None:
    """Refuse an output file that is a folder, is in no existing folder or cannot be written."""
    target = Path(path)
    if target.is_dir():
        raise JourneysError(f"is a folder ({flag}): give a file to write", file=path)
    if not target.parent.is_dir():
        raise JourneysError(f"{target.parent} is not an existing folder ({flag}): create it "
                            "first", file=path)
    if not os.access(target if target.exists() else target.parent, os.W_OK):
        raise JourneysError(f"cannot be written ({flag}): check its permissions", file=path)


def _backtest(args: argparse.Namespace) -> int:
    from engine.reporting.backtest import backtest
    from engine.reporting.terminal import format_experiments

    _check_input("--events", args.events)
    _check_output("--out", args.out)
    result = backtest(args.journeys, args.events, Path(args.out), segments=args.segments,
                      event_types=args.event_types, scores=args.scores,
                      policies=args.policies, until=args.until, shards=args.shards,
                      progress=sys.stderr)
    _print_summary(result.summary)
    print(f"report: {result.html}\ncommands: {result.commands}", file=sys.stderr)
    experiments = format_experiments(result.report)
    if experiments:
        print(experiments, end="")
    return 0


def _report(args: argparse.Namespace) -> int:
    from engine.flow.runner import check_redis, redis_endpoint
    from engine.reporting.backtest import report_command

    if not args.redis and not args.state_dir:
        print("journeys report: give --redis URL (or --state-dir for an embedded state)",
              file=sys.stderr)
        return 2
    with redis_endpoint(args.redis, args.state_dir) as url:
        check_redis(url)
        return report_command(url, args.prefix, args.shards, args.journeys, args.json,
                              sys.stdout)


def _add_console_commands(commands: argparse._SubParsersAction[Any]) -> None:
    from engine.console.command import add_console_parsers

    add_console_parsers(commands, _add_state_options)


def _validate(args: argparse.Namespace) -> int:
    from journeys_dsl.commands import validate_command
    from journeys_dsl.event_types import journey_vocabulary

    status = validate_command(args.paths, sys.stdout, sys.stderr,
                              journey_vocabulary(args.segments, args.event_types))
    if args.templates is None or status != 0:
        return status
    from connectors.delivery.template_check import check_templates

    languages = tuple(part.strip() for part in args.languages.split(",") if part.strip())
    problems = check_templates(args.paths, Path(args.templates), languages)
    for problem in problems:
        print(problem, file=sys.stderr)
    if not problems:
        print(f"ok: templates in {args.templates} for {', '.join(languages)}")
    return 1 if problems or status else 0


def _forget(args: argparse.Namespace) -> int:
    from engine.flow.runner import check_redis, redis_endpoint
    from engine.storage.forget import forget_customer
    from engine.storage.redis_client import connect

    if not args.redis and not args.state_dir:
        print("journeys forget: give --redis URL (or --state-dir for an embedded state)",
              file=sys.stderr)
        return 2
    with redis_endpoint(args.redis, args.state_dir) as url:
        check_redis(url)
        client = connect(url)
        for customer_id in args.customers:
            erased = forget_customer(client, args.prefix, customer_id, args.shards)
            what = "erased" if erased.had_state else "no state for"
            print(f"{what} {customer_id} (shard {erased.shard}"
                  f"{', timer removed' if erased.had_timer else ''})")
    return 0


def _print_summary(summary: RunSummary) -> None:
    blank = f"{summary.blank_lines} blank lines skipped, " if summary.blank_lines else ""
    print(
        f"{summary.events_read} events, {blank}{summary.dead_letters} dead letters, "
        f"{summary.commands} commands, {summary.journeys} journeys in "
        f"{summary.seconds:.2f}s ({summary.events_per_s:,.0f} events/s)",
        file=sys.stderr,
    )


def _demo(args: argparse.Namespace) -> int:
    from engine.app.demo import describe, describe_outcome, run_demo
    from engine.app.generator import ChainConfig
    from engine.reporting.model import RunFacts
    from engine.reporting.stats import build_report
    from engine.reporting.terminal import format_summary

    chain = ChainConfig(seed=args.seed, customers=args.customers, days=args.days)
    try:
        model = ResponseModel(args.respond, args.respond_voucher, args.response_days)
    except ResponseModelError as exc:
        flags = {"visit_share": "--respond", "voucher_visit_share": "--respond-voucher",
                 "mean_delay_days": "--response-days"}
        raise ResponseModelError(flags[exc.field],
                                 str(exc).removeprefix(exc.field + " ")) from None
    print(f"demo: {describe(chain, model)}", file=sys.stderr)
    with tempfile.TemporaryDirectory(prefix="journeys-demo-") as scratch:
        out = Path(args.out or scratch)
        out.mkdir(parents=True, exist_ok=True)
        result = run_demo(chain, EXAMPLES, out, model=model,
                          redis_url=args.redis, state_dir=args.state_dir, shards=args.shards,
                          prefix=args.prefix, policies=args.policies)
        _print_summary(result.summary)
        if model.active:
            print(describe_outcome(result), file=sys.stderr)
        facts = RunFacts(generated_at="", source="demo", events=result.summary.events_read)
        print(format_summary(build_report(result.stats, result.plans, facts)))
        if args.out:
            print(f"\nevents: {out / 'events.jsonl'}\ncommands: {out / 'commands.jsonl'}",
                  file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
