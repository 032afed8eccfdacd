"""Connecting to Redis from a URL: one server, or a Redis Cluster.

    redis://[user:password@]host:port/db          one server (rediss:// for TLS)
    redis+cluster://[user:password@]host:port     a Redis Cluster, found from one node
                                                  (rediss+cluster:// for TLS)

Every key of a shard shares one hash tag, so a shard's batch is one transaction on one
node of a cluster. TLS settings beyond the URL (certificates) follow redis-py's URL
query parameters, e.g. `?ssl_ca_certs=/etc/ssl/ca.pem`.
"""

from __future__ import annotations

from typing import Any

import redis
from redis.cluster import RedisCluster

CLUSTER_SCHEMES = {"redis+cluster": "redis", "rediss+cluster": "rediss"}


def connect(url: str, **options: Any) -> redis.Redis:
    """A client for `url`; a `RedisCluster` for the +cluster schemes."""
    scheme, separator, rest = url.partition("://")
    if separator and scheme in CLUSTER_SCHEMES:
        cluster: Any = RedisCluster.from_url(f"{CLUSTER_SCHEMES[scheme]}://{rest}", **options)
        return cluster  # the same commands as a Redis client, routed by hash slot
    return redis.Redis.from_url(url, **options)
