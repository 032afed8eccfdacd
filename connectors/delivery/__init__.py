"""`journeys deliver`: the delivery tool (config, ledger, worker, sources, rates, templates and
channels), apart from the dataflow's sources and sinks.
"""
