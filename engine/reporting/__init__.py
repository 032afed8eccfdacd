"""Marketer-facing reports: journey statistics from the engine's counters, as HTML and text.

`backtest` replays a history file and writes an HTML report; `report_command` reads a live
engine's counters and prints a table or JSON.
"""
