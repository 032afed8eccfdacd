"""Run settings: flags over JOURNEYS_* variables over the settings file over the defaults."""

from __future__ import annotations

from pathlib import Path

import pytest

from engine.flow.settings import SettingsError, load_run_settings

JOURNEYS = {"journeys": ["examples/journeys"]}


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("JOURNEYS_SETTINGS", "JOURNEYS_SHARDS", "JOURNEYS_BATCH_LINES",
                 "JOURNEYS_DEDUP_WINDOW", "JOURNEYS_JOURNEYS", "JOURNEYS_TELEMETRY",
                 "JOURNEYS_ADDRESSES"):
        monkeypatch.delenv(name, raising=False)


def test_defaults_when_nothing_is_given() -> None:
    settings = load_run_settings(JOURNEYS)
    assert settings.shards == 8 and settings.prefix == "je" and settings.clock == "event"
    assert settings.dedup_window == 30 * 86_400_000
    assert settings.telemetry == "none"


def test_a_flag_wins_over_the_environment_which_wins_over_the_file(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    file = tmp_path / "run.yaml"
    file.write_text("shards: 2\nbatch_lines: 500\nprefix: from-file\n")
    monkeypatch.setenv("JOURNEYS_SHARDS", "4")
    monkeypatch.setenv("JOURNEYS_BATCH_LINES", "700")
    settings = load_run_settings({**JOURNEYS, "batch_lines": 900}, str(file))
    assert settings.batch_lines == 900  # flag
    assert settings.shards == 4  # environment
    assert settings.prefix == "from-file"  # file


def test_the_file_may_be_named_by_the_environment_and_be_toml(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    file = tmp_path / "run.toml"
    file.write_text('journeys = ["a.yaml", "b.yaml"]\ndedup_window = "7d"\nclock = "wall"\n')
    monkeypatch.setenv("JOURNEYS_SETTINGS", str(file))
    settings = load_run_settings({})
    assert settings.journeys == ["a.yaml", "b.yaml"]
    assert settings.dedup_window == 7 * 86_400_000
    assert settings.clock == "wall"


def test_lists_and_durations_read_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("JOURNEYS_JOURNEYS", "a.yaml, b.yaml")
    monkeypatch.setenv("JOURNEYS_DEDUP_WINDOW", "12h")
    monkeypatch.setenv("JOURNEYS_ADDRESSES", "10.0.0.1:2101,10.0.0.2:2101")
    monkeypatch.setenv("JOURNEYS_TELEMETRY", " OTLP ")
    settings = load_run_settings({})
    assert settings.journeys == ["a.yaml", "b.yaml"]
    assert settings.dedup_window == 12 * 3_600_000
    assert settings.addresses == ["10.0.0.1:2101", "10.0.0.2:2101"]
    assert settings.telemetry == "otlp"


def test_a_bad_value_names_the_variable_it_came_from(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("JOURNEYS_SHARDS", "0")
    with pytest.raises(SettingsError) as caught:
        load_run_settings(JOURNEYS)
    assert str(caught.value).startswith("JOURNEYS_SHARDS: shards: ")
    assert "greater than or equal to 1" in str(caught.value)


def test_a_bad_flag_value_names_the_flag() -> None:
    with pytest.raises(SettingsError, match=r"^--batch-lines: batch_lines: "):
        load_run_settings({**JOURNEYS, "batch_lines": 0})


def test_an_unknown_key_in_the_file_is_refused_with_the_file(tmp_path: Path) -> None:
    file = tmp_path / "run.yaml"
    file.write_text("shard: 2\n")
    with pytest.raises(SettingsError) as caught:
        load_run_settings(JOURNEYS, str(file))
    assert str(caught.value) == f"{file}: shard: not a run option (see journeys run --help)"


def test_a_bad_duration_in_the_file_says_what_to_write(tmp_path: Path) -> None:
    file = tmp_path / "run.yaml"
    file.write_text("dedup_window: 1 month\n")
    with pytest.raises(SettingsError, match="dedup_window"):
        load_run_settings(JOURNEYS, str(file))


def test_a_missing_settings_file_is_one_clear_error(tmp_path: Path) -> None:
    with pytest.raises(SettingsError, match="no such settings file"):
        load_run_settings(JOURNEYS, str(tmp_path / "missing.yaml"))


def test_a_file_that_is_not_yaml_is_refused(tmp_path: Path) -> None:
    file = tmp_path / "run.yaml"
    file.write_text("shards: [1,\n")
    with pytest.raises(SettingsError, match="cannot be read as settings"):
        load_run_settings(JOURNEYS, str(file))


def test_journeys_are_required_from_somewhere() -> None:
    with pytest.raises(SettingsError, match="journeys"):
        load_run_settings({})


def test_the_run_command_defers_exactly_the_model_s_options() -> None:
    from engine.app.cli import RUN_SETTINGS, _parser
    from engine.flow.settings import RunSettings

    assert set(RunSettings.model_fields) == RUN_SETTINGS
    run = _parser()._subparsers._group_actions[0].choices["run"]  # type: ignore[union-attr]
    dests = {action.dest for action in run._actions}
    assert RUN_SETTINGS - dests == {"telemetry"}  # telemetry: the variable or the file only


def test_a_bare_number_is_no_duration_in_the_file_either(tmp_path: Path) -> None:
    """86400 would otherwise read as 86,400 ms: the flags and variables refuse it too."""
    file = tmp_path / "run.yaml"
    file.write_text("dedup_window: 86400\n")
    with pytest.raises(SettingsError, match=r"dedup_window: add a unit, e\.g\. '86400d'"):
        load_run_settings(JOURNEYS, str(file))


def test_a_duration_flag_arrives_as_text_and_reads_as_ms() -> None:
    assert load_run_settings({**JOURNEYS, "max_skew": "1d"}).max_skew == 86_400_000


def test_the_event_types_file_comes_from_the_environment_or_the_file(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    file = tmp_path / "run.yaml"
    file.write_text("event_types: from-file.yaml\n")
    assert load_run_settings(JOURNEYS, str(file)).event_types == "from-file.yaml"
    monkeypatch.setenv("JOURNEYS_EVENT_TYPES", "examples/event_types.yaml")
    assert load_run_settings(JOURNEYS, str(file)).event_types == "examples/event_types.yaml"
    assert load_run_settings(JOURNEYS).event_types == "examples/event_types.yaml"
