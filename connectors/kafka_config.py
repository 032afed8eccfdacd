"""Kafka client settings and topic checks, shared by the Kafka source and sinks."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from confluent_kafka import KafkaException
from confluent_kafka.admin import AdminClient

from engine.errors import JourneysError

ENV_PREFIX = "JOURNEYS_KAFKA_"
SECRET_WORDS = ("password", "secret", "key", "token", "jaas", "credential")


class KafkaConnectorError(JourneysError, RuntimeError):
    """A Kafka topic, setting or client operation the engine cannot work with."""

    code = "kafka"


def load_settings(bootstrap: str, config_file: str | None = None,
                  environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """librdkafka settings: `config_file` (key=value lines), then `JOURNEYS_KAFKA_*`
    variables (`JOURNEYS_KAFKA_SASL_PASSWORD` -> `sasl.password`), then `bootstrap`."""
    settings: dict[str, str] = {}
    if config_file:
        path = Path(config_file)
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise KafkaConnectorError(
                f"cannot read Kafka settings {path}: {exc.strerror}") from None
        for number, raw in enumerate(text.splitlines(), 1):
            line = raw.strip()
            if not line or line.startswith(("#", "!")):
                continue
            name, sep, value = line.partition("=")
            if not sep or not name.strip():
                raise KafkaConnectorError(f"{path}:{number}: expected key=value")
            settings[name.strip()] = value.strip()
    env = os.environ if environ is None else environ
    for name, value in env.items():
        if name.startswith(ENV_PREFIX) and len(name) > len(ENV_PREFIX):
            settings[name[len(ENV_PREFIX):].lower().replace("_", ".")] = value
    if bootstrap:
        settings["bootstrap.servers"] = bootstrap
    if not settings.get("bootstrap.servers"):
        raise KafkaConnectorError("no Kafka bootstrap servers given")
    return settings


def redacted(settings: Mapping[str, str]) -> dict[str, str]:
    """`settings` safe to log: values of secret-looking keys replaced."""
    return {name: "***" if any(word in name.lower() for word in SECRET_WORDS) else value
            for name, value in settings.items()}


def topic_partitions(settings: Mapping[str, str], topics: list[str],
                     timeout_s: float = 10.0) -> dict[str, int]:
    """The partition count of each of `topics`; a clear error for a missing one.

    Lists all topics rather than asking for each by name, which some brokers take as a
    request to create it.
    """
    try:
        admin = AdminClient(dict(settings))
        metadata = admin.list_topics(timeout=timeout_s)
    except KafkaException as exc:
        raise KafkaConnectorError(
            f"cannot read topic metadata from {settings.get('bootstrap.servers')}: {exc}"
        ) from None
    counts: dict[str, int] = {}
    for topic in topics:
        found = metadata.topics.get(topic)
        if found is None or found.error is not None or not found.partitions:
            raise KafkaConnectorError(
                f"Kafka topic {topic!r} does not exist on {settings.get('bootstrap.servers')}; "
                "create it first (see docs/kafka.md)")
        counts[topic] = len(found.partitions)
    return counts
