"""Backtest reports end to end: a generated chain through the eleven example journeys, the HTML
rendered by headless Chromium, and `journeys report` on a live engine's counters."""

from __future__ import annotations

import html
import io
import json
import re
import shutil
import struct
import subprocess
import zlib
from pathlib import Path

import pytest

from engine.app.generator import ChainConfig, write_jsonl
from engine.flow.runner import RunOptions, run_on
from engine.reporting.backtest import BacktestResult, backtest, report_command
from journeys_dsl.loader import load_journeys

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
JOURNEYS = str(ROOT / "examples" / "journeys")
BROWSER_TIMEOUT_S = 120
BROWSER_FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                 "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--hide-scrollbars")


@pytest.fixture(scope="module")
def chain_events(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("chain") / "events.jsonl"
    write_jsonl(ChainConfig(seed=3, customers=600, days=240), path)
    return path


@pytest.fixture(scope="module")
def backtested(chain_events: Path, tmp_path_factory: pytest.TempPathFactory) -> BacktestResult:
    out = tmp_path_factory.mktemp("report") / "report.html"
    progress = io.StringIO()
    result = backtest([JOURNEYS], str(chain_events), out, shards=4, progress=progress)
    assert "100.0%" in progress.getvalue() and "events/s" in progress.getvalue()
    return result


def _chromium() -> str:
    for name in ("chromium", "chromium-browser"):
        found = shutil.which(name)
        if found:
            return found
    # CI installs it (.ci/run); on a machine without it this one test cannot run
    pytest.skip("headless Chromium is needed to render the report: install Debian's "
                "`chromium` package (apt-get install -y chromium)")


def _browser(args: list[str], profile: Path) -> subprocess.CompletedProcess[bytes]:
    command = [_chromium(), *BROWSER_FLAGS, f"--user-data-dir={profile}", *args]
    try:
        return subprocess.run(command, capture_output=True, timeout=BROWSER_TIMEOUT_S,
                              check=True)
    except subprocess.TimeoutExpired:
        pytest.fail(f"chromium did not finish within {BROWSER_TIMEOUT_S}s: {command}")
    except subprocess.CalledProcessError as exc:
        pytest.fail(f"chromium failed ({exc.returncode}): {exc.stderr.decode()[-2000:]}")


def _png_rows(data: bytes) -> tuple[int, int, bytes]:
    """Width, height and the decompressed (still filtered) scanlines of a PNG."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG file"
    width, height = struct.unpack(">II", data[16:24])
    chunks, offset = [], 8
    while offset < len(data):
        length, kind = struct.unpack(">I4s", data[offset:offset + 8])
        if kind == b"IDAT":
            chunks.append(data[offset + 8:offset + 8 + length])
        offset += length + 12
    return width, height, zlib.decompress(b"".join(chunks))


def test_backtest_writes_a_complete_report(backtested: BacktestResult) -> None:
    page = backtested.html.read_text(encoding="utf-8")
    journeys = backtested.report.journeys
    assert len(journeys) == 11
    assert page.count('<svg class="flow"') == len(journeys)
    assert page.count('<svg class="weeks"') == len(journeys)
    assert 'class="lift stack"' in page and "95% CI of lift" in page
    with_goal = [j for j in journeys if j.has_goal]
    assert page.count('class="segments stack"') == len(with_goal)
    assert "no significant lift" in page
    assert "http://" not in page.replace('xmlns="http://www.w3.org/2000/svg"', "")
    assert "<script" not in page
    assert backtested.commands.exists()
    commands = [json.loads(line) for line in backtested.commands.read_text().splitlines()]
    assert len(commands) == backtested.summary.commands > 0
    assert {command["origin"] for command in commands} == {"backtest"}
    assert not backtested.commands.with_name(backtested.commands.name + ".partial").exists()
    assert backtested.summary.events_read == backtested.report.facts.events
    newcomer = next(j for j in journeys if j.journey_id == "impressed_newcomer")
    assert newcomer.entered > 0 and newcomer.entered_holdout > 0
    assert newcomer.conversion is not None and newcomer.conversion.ci is not None
    assert [s.step_id for s in newcomer.steps][:2] == ["thanks", "reminder"]


def test_report_renders_in_headless_chromium(backtested: BacktestResult,
                                             tmp_path: Path) -> None:
    url = backtested.html.resolve().as_uri()
    dom = _browser(["--dump-dom", url], tmp_path / "profile-dom").stdout.decode()
    assert dom.count('<svg class="flow"') == 11
    assert "<rect" in dom and "<path" in dom and "<text" in dom
    shot = tmp_path / "report.png"
    _browser([f"--screenshot={shot}", "--window-size=1280,2400", url], tmp_path / "profile")
    data = shot.read_bytes()
    width, height, rows = _png_rows(data)
    assert (width, height) == (1280, 2400)
    assert len(data) > 30_000, "the screenshot is suspiciously small: a blank page?"
    assert len(set(rows)) > 40, "the screenshot has almost no distinct pixel values: blank?"


LAYOUT_CHECK = """<script>
(() => {
  const inside = (b, v) => b.x >= v.x - 0.5 && b.y >= v.y - 0.5
      && b.x + b.width <= v.x + v.width + 0.5 && b.y + b.height <= v.y + v.height + 0.5;
  const apart = (a, b) => a.x + a.width <= b.x || b.x + b.width <= a.x
      || a.y + a.height <= b.y || b.y + b.height <= a.y;
  const cut = [], overlaps = [], wide = [], notes = [];
  for (const svg of document.querySelectorAll("svg")) {
    const view = svg.viewBox.baseVal;
    for (const text of svg.querySelectorAll("text")) {
      if (!inside(text.getBBox(), view)) cut.push(text.textContent);
    }
    for (const node of svg.querySelectorAll("g.node")) {
      const name = node.querySelector("text.name"), timing = node.querySelector("text.timing");
      if (name && timing && !apart(name.getBBox(), timing.getBBox()))
        overlaps.push(name.textContent);
    }
  }
  for (const note of document.querySelectorAll("svg.messages text.value"))
    notes.push(note.textContent);
  const limit = document.documentElement.clientWidth;
  for (const cell of document.querySelectorAll("td")) {
    const box = cell.getBoundingClientRect();
    const card = cell.closest("section").getBoundingClientRect();
    if (box.width > 0 && box.right > Math.min(limit, card.right) + 0.5)
      wide.push(cell.textContent);
  }
  const out = document.createElement("pre");
  out.id = "layout-check";
  out.textContent = JSON.stringify({cut, overlaps, wide, notes, width: limit});
  document.body.appendChild(out);
})();
</script>"""


@pytest.mark.parametrize("width", [1280, 800])
def test_report_text_is_never_cut_and_tables_fit(backtested: BacktestResult, tmp_path: Path,
                                                 width: int) -> None:
    page = backtested.html.read_text(encoding="utf-8")
    checked = tmp_path / "checked.html"
    checked.write_text(page.replace("</body>", LAYOUT_CHECK + "</body>"), encoding="utf-8")
    dom = _browser([f"--window-size={width},2000", "--dump-dom", checked.as_uri()],
                   tmp_path / "profile").stdout.decode()
    found = re.search(r'<pre id="layout-check">(.*?)</pre>', dom, re.S)
    assert found, "the layout check did not run"
    result = json.loads(html.unescape(found.group(1)))
    assert result["width"] <= width
    assert result["cut"] == [], "text outside its drawing"
    assert result["overlaps"] == [], "a box title runs into its timing"
    assert result["wide"] == [], f"table cells past their card's right edge at {width} px"
    # the notes after the message bars used to be cut off ("2,825 no"): now whole
    assert any("sent ·" in note and note.endswith("no consent") for note in result["notes"])


def test_report_command_on_a_live_engine(chain_events: Path, redis_url: str, key_prefix: str,
                                         tmp_path: Path,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    plans = load_journeys([JOURNEYS])
    options = RunOptions(journeys=[JOURNEYS], events=str(chain_events),
                         commands=str(tmp_path / "commands.jsonl"),
                         dead_letter=str(tmp_path / "dead.jsonl"), redis_url=redis_url,
                         shards=4, prefix=key_prefix)
    run_on(redis_url, options, plans)
    table = io.StringIO()
    assert report_command(redis_url, key_prefix, 4, [JOURNEYS], False, table) == 0
    text = table.getvalue()
    assert "Impressed newcomer (impressed_newcomer@1)" in text
    assert "95% CI" in text and "thanks" in text and "day 7" in text
    as_json = io.StringIO()
    assert report_command(redis_url, key_prefix, 4, [], True, as_json) == 0
    data = json.loads(as_json.getvalue())
    by_key = {j["key"]: j for j in data["journeys"]}
    newcomer = by_key["impressed_newcomer@1"]
    assert not newcomer["in_plan"]
    assert newcomer["entered"] > 0 and newcomer["conversion"]["ci"] is not None
    assert {s["step_id"] for s in newcomer["steps"]} >= {"thanks", "reminder"}
    assert report_command("redis://127.0.0.1:1/0", key_prefix, 4, [], False, io.StringIO()) == 1
    assert "cannot read counters" in capsys.readouterr().err
