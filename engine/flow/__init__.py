"""The dataflow: routing events to shards, the shard processor, the Bytewax flow, the runner,
telemetry and the run settings.
"""
