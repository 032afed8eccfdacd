"""The `journeys` command and the demo: the command line, the venue-chain generator and the
response model.
"""
