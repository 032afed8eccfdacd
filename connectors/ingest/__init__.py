"""`journeys ingest`: an HTTP service that takes events from venues' point-of-sale and
booking systems and hands them durably to the engine's input (a Kafka topic or a JSON Lines
file), checked with the engine's own decoder and stored once per event id. See
docs/ingest.md."""

from connectors.ingest.auth import Authenticator, sign
from connectors.ingest.config import IngestConfig, SourceConfig, load_ingest_config
from connectors.ingest.errors import IngestConfigError, IngestError

__all__ = [
    "Authenticator",
    "IngestConfig",
    "IngestConfigError",
    "IngestError",
    "SourceConfig",
    "load_ingest_config",
    "sign",
]
