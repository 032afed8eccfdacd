"""The journey runtime and what it reads and writes: events, customer state and its stored
form, profiles, scopes, aggregates, commands, policies. Pure: no Redis, no dataflow.
"""
