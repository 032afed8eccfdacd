"""Customer state in Redis: the shard store, shard keys, clients, the embedded server,
line marks, erasure and journey versions.
"""
