"""OpenTelemetry: a span and metrics per shard batch, in memory and over OTLP/HTTP."""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import redis
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from engine.core.catalog import Catalog
from engine.core.events import validate_event
from engine.core.records import ShardBatch
from engine.flow.processor import ShardProcessor
from engine.flow.telemetry import TelemetryError, telemetry_from_environment, telemetry_with
from journeys_dsl.loader import load_journey_text

pytestmark = pytest.mark.integration

T0 = 1_741_000_000_000
JOURNEY = ("journey: hi\nversion: 1\nentry:\n  event: visit\nsteps:\n  - id: hi\n"
           "    actions: [{send: push, template: hi}]\n")


def batch() -> ShardBatch:
    events = [validate_event({"event_id": f"e{i}", "customer_id": f"c{i}", "type": "visit",
                              "ts": T0 + i, "venue_id": "v", "amount": 5}, position=i)
              for i in range(4)]
    return ShardBatch(0, events, T0 + 10, 3)


def test_a_batch_records_a_span_and_metrics(redis_client: redis.Redis, key_prefix: str) -> None:
    reader, spans = InMemoryMetricReader(), InMemorySpanExporter()
    telemetry = telemetry_with(reader, spans)
    processor = ShardProcessor(redis_client, Catalog([load_journey_text(JOURNEY, "hi.yaml")]),
                               prefix=key_prefix, source_id="s", shards=1, telemetry=telemetry)
    processor.process(batch())
    metrics = {metric.name: metric
               for resource in reader.get_metrics_data().resource_metrics
               for scope in resource.scope_metrics for metric in scope.metrics}
    assert metrics["journeys.events"].data.data_points[0].value == 4
    assert metrics["journeys.commands"].data.data_points[0].value == 4
    assert metrics["journeys.batch.duration"].data.data_points[0].count == 1
    telemetry.shutdown()
    (span,) = spans.get_finished_spans()
    assert span.name == "shard batch"
    assert span.attributes is not None and span.attributes["journeys.commands"] == 4


def test_otlp_export_reaches_a_collector(monkeypatch: pytest.MonkeyPatch,
                                        redis_client: redis.Redis, key_prefix: str) -> None:
    received: list[str] = []

    class Collector(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            self.rfile.read(int(self.headers.get("Content-Length", 0)))
            received.append(self.path)
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            return

    server = ThreadingHTTPServer(("127.0.0.1", 0), Collector)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        monkeypatch.setenv("JOURNEYS_TELEMETRY", "otlp")
        monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT",
                           f"http://127.0.0.1:{server.server_address[1]}")
        telemetry = telemetry_from_environment()
        processor = ShardProcessor(
            redis_client, Catalog([load_journey_text(JOURNEY, "hi.yaml")]), prefix=key_prefix,
            source_id="s", shards=1, telemetry=telemetry)
        processor.process(batch())
        telemetry.shutdown()
    finally:
        server.shutdown()
    assert "/v1/traces" in received and "/v1/metrics" in received


def test_unknown_telemetry_mode_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("JOURNEYS_TELEMETRY", "carrier-pigeon")
    with pytest.raises(TelemetryError, match="use console, otlp or none"):
        telemetry_from_environment()


def test_consumer_lag_is_a_gauge_per_partition() -> None:
    reader, spans = InMemoryMetricReader(), InMemorySpanExporter()
    telemetry = telemetry_with(reader, spans)
    telemetry.record_lag(2, 40)
    telemetry.record_lag(2, 17)
    telemetry.record_lag(3, 0)
    (lag,) = [metric for resource in reader.get_metrics_data().resource_metrics
              for scope in resource.scope_metrics for metric in scope.metrics
              if metric.name == "journeys.consumer.lag"]
    values = {point.attributes["partition"]: point.value for point in lag.data.data_points}
    assert values == {2: 17, 3: 0}
    telemetry.shutdown()
