"""The live console of a running engine (`journeys console`) and the explanations it shares
with `journeys explain`: read-only views of the engine's Redis."""
