"""The REAPER companion script, run by a real Lua interpreter against a stand-in of the REAPER API
calls it makes (tests/daw/reaper_stand_in.lua) and a real daemon, through `jasco-bridge request`."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
import soundfile as sf

from jasco_bridge.config import DaemonConfig
from jasco_bridge.daemon import BackgroundDaemon
from jasco_bridge.engines import OpenedRenderer, open_preview
from tests.bridge.support import REPO, running_daemon

LUA = shutil.which("lua5.4") or shutil.which("lua")
SCRIPT = REPO / "jasco_bridge" / "daw" / "reaper_jasco_render.lua"
STAND_IN = Path(__file__).with_name("reaper_stand_in.lua")

pytestmark = pytest.mark.skipif(LUA is None, reason="no Lua interpreter (apt-get install lua5.4)")

# 120 bpm 4/4, 90 bpm from bar 3 (4 s): bar 2 starts at 2.0 s, bar 4 at 4 + 8/3 s.
MARKERS = [
    {"time": 0.0, "bpm": 120.0, "num": 4, "den": 4},
    {"time": 4.0, "bpm": 90.0, "num": 0, "den": 0},
]


def triads_ppq(roots: list[int]) -> list[dict]:
    """One major triad per 4/4 bar, in take ticks (960 per quarter note)."""
    return [
        {
            "start_ppq": 3840 * i,
            "end_ppq": 3840 * (i + 1),
            "pitch": 48 + root + step,
            "velocity": 90,
        }
        for i, root in enumerate(roots)
        for step in (0, 4, 7)
    ]


def lua_value(value) -> str:
    if isinstance(value, dict):
        return "{" + ", ".join(f"[{lua_value(k)}] = {lua_value(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list):
        return "{" + ", ".join(lua_value(v) for v in value) + "}"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return json.dumps(value)  # a JSON string literal is a Lua string literal here
    return repr(value)


def run_reaper(tmp_path: Path, tcp_port: int, *, notes, position=2.0, length=None, **extra) -> dict:
    """Run the companion script once in the stand-in; returns what it did."""
    length = (4.0 + 8.0 / 3.0 - position) if length is None else length
    command = f"{sys.executable} -m jasco_bridge"
    project = {
        "markers": MARKERS,
        "tracks": ["Chords"],
        "item_track": 1,
        "item": {"position": position, "length": length, "notes": notes},
        "answers": f"warm rhodes|{extra.pop('seed', '')}|{tcp_port}|{command}",
        "resource_path": str(tmp_path / "reaper"),
        **extra,
    }
    config = tmp_path / "project.lua"
    config.write_text("return " + lua_value(project) + "\n")
    results = tmp_path / "results.json"
    done = subprocess.run(
        [LUA, str(STAND_IN), str(config), str(SCRIPT), str(results)],
        env={**os.environ, "PYTHONPATH": str(REPO)},
        capture_output=True,
        text=True,
        timeout=90,
        check=False,
    )
    assert done.returncode == 0, done.stderr + done.stdout
    return json.loads(results.read_text())


def jasco_items(result: dict) -> list[dict]:
    return [item for t in result["tracks"] if t["name"] == "JASCO" for item in t["items"]]


def test_the_clip_lands_on_a_new_jasco_track_at_the_items_bar(tmp_path):
    with running_daemon(tmp_path) as daemon:
        result = run_reaper(tmp_path, daemon.server.tcp_port, notes=triads_ppq([0, 5]))
        again = run_reaper(tmp_path, daemon.server.tcp_port, notes=triads_ppq([0, 5]))
    assert result["message_boxes"] == []
    assert [t["name"] for t in result["tracks"]] == ["Chords", "JASCO"]  # not on the MIDI track
    assert result["tracks"][0]["items"] == []
    [item] = jasco_items(result)
    assert item["position"] == pytest.approx(2.0, abs=1e-9)  # bar 2
    assert result["undo"] == ["JASCO render bars 2-3"] and result["undo_depth"] == 0
    assert [p["timeout"] for p in result["processes"]] == [-1]  # REAPER is never blocked
    audio, rate = sf.read(item["path"])
    assert len(audio) == round((4.0 + 8.0 / 3.0 - 2.0) * rate)  # exactly bars 2-3
    sidecar = json.loads(Path(item["path"]).with_suffix(".json").read_text())
    assert [c["given"] for c in sidecar["chords"]][:2] == ["C:maj", "F:maj"]
    second = json.loads(Path(jasco_items(again)[0]["path"]).with_suffix(".json").read_text())
    assert second["seed"] != sidecar["seed"]  # a new seed per run


class _HeldAfterTheFirstStep:
    """The preview, held for a while after its first sampler step, so the script's loop gets
    to draw a progress frame before the clip is done (a plain preview can finish in one tick)."""

    def __init__(self, inner, hold_seconds: float) -> None:
        self.inner = inner
        self.hold_seconds = hold_seconds

    def __getattr__(self, name: str):
        return getattr(self.inner, name)

    def generate(self, request, progress=None, should_cancel=None):
        def step(done: int, total: int) -> None:
            if progress is not None:
                progress(done, total)
            if done == 1:
                deadline = time.monotonic() + self.hold_seconds
                while time.monotonic() < deadline and not (should_cancel and should_cancel()):
                    time.sleep(0.01)

        return self.inner.generate(request, step, should_cancel)


def test_progress_is_drawn_while_the_render_runs(tmp_path):
    opened = open_preview()
    renderer = _HeldAfterTheFirstStep(opened.renderer, hold_seconds=2.0)
    config = DaemonConfig(port=0, tcp_port=0, out_dir=tmp_path / "clips")
    daemon = BackgroundDaemon(
        config, open_engine=lambda _config: OpenedRenderer(renderer, opened.vocabulary, None)
    )
    with daemon:
        result = run_reaper(tmp_path, daemon.server.tcp_port, notes=triads_ppq([0, 5]))
    assert result["message_boxes"] == []
    assert any("rendering" in text for text in result["drawn"])
    assert len(jasco_items(result)) == 1


def test_a_fixed_seed_and_a_dense_item_go_in_one_request(tmp_path):
    # 4000 sixteenth notes over bars 2-3 (far more than one datagram holds).
    notes = [
        {
            "start_ppq": 240 * (i % 32),
            "end_ppq": 240 * (i % 32) + 240,
            "pitch": 40 + i % 48,
            "velocity": 80,
        }
        for i in range(4000)
    ]
    with running_daemon(tmp_path) as daemon:
        result = run_reaper(tmp_path, daemon.server.tcp_port, notes=notes, seed="1234")
    assert result["message_boxes"] == []
    [item] = jasco_items(result)
    assert json.loads(Path(item["path"]).with_suffix(".json").read_text())["seed"] == 1234


def test_closing_the_progress_window_cancels_the_render(tmp_path):
    with running_daemon(tmp_path, gated=True) as daemon:  # the job runs until cancelled
        result = run_reaper(
            tmp_path, daemon.server.tcp_port, notes=triads_ppq([0, 5]), close_when="queued"
        )
        deadline = time.monotonic() + 30
        while (status := daemon.call_in_loop(daemon.server._queue.status)).running is not None:
            assert time.monotonic() < deadline, "the cancelled job kept running"
            time.sleep(0.05)
    assert jasco_items(result) == [] and result["undo"] == []
    assert status.running is None and status.queued == 0  # the job did not keep running
    [events] = (tmp_path / "reaper" / "jasco-bridge").glob("*.jsonl")
    assert "cancelled" in events.read_text()


def test_an_item_without_notes_is_explained_and_nothing_runs(tmp_path):
    result = run_reaper(tmp_path, 1, notes=[])
    assert result["processes"] == [] and result["tracks"][0]["name"] == "Chords"
    assert "no (unmuted) notes" in result["message_boxes"][0]
