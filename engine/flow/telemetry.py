"""OpenTelemetry metrics and traces of the shard processor.

Configured from the environment, like every OpenTelemetry program:

    JOURNEYS_TELEMETRY=console   metrics and spans printed to stderr
    JOURNEYS_TELEMETRY=otlp      exported over OTLP/HTTP to OTEL_EXPORTER_OTLP_ENDPOINT
    (unset or none)              nothing is recorded

Metrics: events applied, message commands, dead letters, timers due, batch latency (a
histogram in milliseconds), each with the shard as an attribute. Traces: one span per
shard batch with the shard, the counts and the input position.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.metrics import Meter
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import (
    ConsoleMetricExporter,
    MetricReader,
    PeriodicExportingMetricReader,
)
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import (
    BatchSpanProcessor,
    ConsoleSpanExporter,
    SpanExporter,
)
from opentelemetry.trace import Span, Tracer

from engine.errors import JourneysError

SERVICE = "journey-engine"
EXPORT_INTERVAL_MS = 10_000


class TelemetryError(JourneysError, ValueError):
    """The telemetry settings cannot be used."""

    code = "telemetry"


@dataclass
class BatchFigures:
    """What one shard batch did, recorded when the batch is committed."""

    shard: int
    events: int = 0
    commands: int = 0
    dead_letters: int = 0
    timers_due: int = 0


class Telemetry:
    """Instruments for the shard processor; a disabled instance records nothing."""

    def __init__(self, meter: Meter | None, tracer: Tracer | None,
                 providers: tuple[MeterProvider, TracerProvider] | None = None) -> None:
        self._tracer = tracer
        self._providers = providers
        self.enabled = meter is not None
        if meter is not None:
            self._events = meter.create_counter("journeys.events", unit="{event}",
                                                description="events applied")
            self._commands = meter.create_counter("journeys.commands", unit="{command}",
                                                  description="message commands emitted")
            self._dead = meter.create_counter("journeys.dead_letters", unit="{event}",
                                              description="events sent to the dead letters")
            self._timers = meter.create_counter("journeys.timers_due", unit="{customer}",
                                                description="customers with timers due")
            self._latency = meter.create_histogram("journeys.batch.duration", unit="ms",
                                                   description="time to apply a shard batch")
            self._lag = meter.create_gauge("journeys.consumer.lag", unit="{message}",
                                           description="messages behind the end of a "
                                                       "Kafka partition")

    def record_lag(self, partition: int, lag: int) -> None:
        """How far the reader of a Kafka partition is behind its end."""
        if self.enabled:
            self._lag.set(lag, {"partition": partition})

    @contextmanager
    def batch(self, figures: BatchFigures, position: int) -> Iterator[Span | None]:
        """A span around one shard batch; the figures are recorded when it ends."""
        if not self.enabled or self._tracer is None:
            yield None
            return
        began = time.perf_counter()
        with self._tracer.start_as_current_span("shard batch") as span:
            yield span
            attributes = {"shard": figures.shard}
            span.set_attributes({"journeys.shard": figures.shard,
                                 "journeys.events": figures.events,
                                 "journeys.commands": figures.commands,
                                 "journeys.dead_letters": figures.dead_letters,
                                 "journeys.timers_due": figures.timers_due,
                                 "journeys.position": position})
            self._events.add(figures.events, attributes)
            self._commands.add(figures.commands, attributes)
            self._dead.add(figures.dead_letters, attributes)
            self._timers.add(figures.timers_due, attributes)
            self._latency.record((time.perf_counter() - began) * 1000, attributes)

    def shutdown(self) -> None:
        """Export what is buffered and stop the exporters."""
        if self._providers is not None:
            meters, tracers = self._providers
            meters.shutdown()
            tracers.shutdown()


DISABLED = Telemetry(None, None)


def telemetry_with(reader: MetricReader, spans: SpanExporter) -> Telemetry:
    """Telemetry exporting to the given reader and span exporter (tests use in-memory ones)."""
    resource = Resource.create({"service.name": SERVICE})
    meters = MeterProvider(resource=resource, metric_readers=[reader])
    tracers = TracerProvider(resource=resource)
    tracers.add_span_processor(BatchSpanProcessor(spans))
    return Telemetry(meters.get_meter(SERVICE), tracers.get_tracer(SERVICE), (meters, tracers))


def telemetry_from_environment() -> Telemetry:
    """Telemetry as JOURNEYS_TELEMETRY asks: console, otlp, or none."""
    return telemetry_for(os.environ.get("JOURNEYS_TELEMETRY", "none"))


def telemetry_for(mode: str) -> Telemetry:
    """Telemetry of a mode: `console`, `otlp`, or `none` (also `off` or empty)."""
    mode = mode.strip().lower()
    if mode in ("", "none", "off"):
        return DISABLED
    if mode == "console":
        return telemetry_with(
            PeriodicExportingMetricReader(ConsoleMetricExporter(out=sys.stderr),
                                          EXPORT_INTERVAL_MS),
            ConsoleSpanExporter(out=sys.stderr))
    if mode == "otlp":
        return telemetry_with(
            PeriodicExportingMetricReader(OTLPMetricExporter(), EXPORT_INTERVAL_MS),
            OTLPSpanExporter())
    raise TelemetryError(f"telemetry {mode!r} is not a mode (JOURNEYS_TELEMETRY, or telemetry "
                         "in the settings file): use console, otlp or none")
