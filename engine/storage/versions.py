"""Journey versions kept in Redis, so customers in flight stay on the version they entered.

On start the engine records the source of every journey version it loads. A changed file
under an unchanged version is refused; versions no longer on disk are compiled back from
Redis, so their enrollments finish as they began.
"""

from __future__ import annotations

import orjson
import redis

from engine.core.catalog import Catalog, CatalogError
from journeys_dsl.loader import load_journey_text
from journeys_dsl.vocabulary import Vocabulary


def registry_key(prefix: str) -> str:
    return f"{prefix}:journeys"


def sync_versions(client: redis.Redis, prefix: str, catalog: Catalog,
                  vocabulary: Vocabulary | None = None) -> list[str]:
    """Record the catalog's versions and add the stored ones it lacks, compiled with
    `vocabulary` (the declared event types they may use); return those added."""
    key = registry_key(prefix)
    for plan in catalog.plans():
        record = orjson.dumps({"file": plan.source_file, "digest": plan.source_digest,
                               "text": plan.source_text})
        if client.hsetnx(key, plan.key, record):
            continue
        stored = orjson.loads(client.hget(key, plan.key) or b"{}")
        if stored.get("digest") != plan.source_digest:
            raise CatalogError(
                f"{plan.source_file}: journey {plan.journey_id!r} version {plan.version} "
                f"differs from the version {plan.version} the engine already ran (from "
                f"{stored.get('file')}); customers in flight stay on the version they entered, "
                f"so give the changed journey a new version number"
            )
    added = []
    records: dict[bytes, bytes] = client.hgetall(key)  # type: ignore[assignment]
    for raw_name, raw in sorted(records.items()):
        name = raw_name.decode()
        journey_id, _, version = name.partition("@")
        if catalog.plan(journey_id, int(version)) is not None:
            continue
        stored = orjson.loads(raw)
        catalog.add(load_journey_text(stored["text"], stored["file"], vocabulary))
        added.append(name)
    return added
