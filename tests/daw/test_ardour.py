"""The Ardour companion in real Ardour 7: GUI under Xvfb, a real daemon, the saved session read back.

The session is built headless (tempo change at bar 3, a MIDI region of chords on bars 2-3). GUI
Ardour opens it; a startup hook selects that region as a click would and runs the shipped action
script `jasco_bridge/daw/ardour/jasco_render_region.lua` unchanged, which talks to the daemon
through `jasco-bridge request` and imports the clip. The hook saves the session; we quit Ardour
through its OSC surface and check the saved session.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import pytest
import soundfile as sf

from tests.bridge.support import REPO
from tests.daw import ardour

SCRIPT = REPO / "jasco_bridge" / "daw" / "ardour" / "jasco_render_region.lua"

pytestmark = pytest.mark.skipif(
    ardour.ardour_missing() is not None, reason=f"real Ardour: {ardour.ardour_missing()}"
)

# The hook: once, select the Chords region, run the action script as Ardour would, save.
HOOK = """
local params = ...
local fired = false
return function (signal, ref, ...)
	if fired then return end
	fired = true
	local ok, err = pcall (function ()
		local region
		for r in Session:route_by_name ("Chords"):to_track ():playlist ():region_list ():iter () do region = r end
		local selection = ArdourUI.SelectionList ()
		selection:push_back (Editor:regionview_from_region (region))
		Editor:set_selection (selection, ArdourUI.SelectionOp.Set)
		local file = assert (io.open (params["script"], "r"))
		local text = file:read ("a")
		file:close ()
		local env = setmetatable ({ ardour = function () end }, { __index = _G })
		assert (load (text, "=jasco_render_region.lua", "t", env)) ()
		env.factory (params) ()
		Session:save_state ("", false, false, false, false, false)
	end)
	local out = io.open (params["marker"] .. ".part", "w")
	out:write (ok and "ok" or ("error " .. tostring (err)))
	out:close ()
	os.rename (params["marker"] .. ".part", params["marker"])
end
"""


def test_the_action_places_the_clip_on_a_jasco_track_exactly_on_the_regions_bars(tmp_path):
    began = time.monotonic()
    xdg, ready, marker = tmp_path / "xdg", tmp_path / "ready.json", tmp_path / "hook-result"
    bars = ardour.make_session(tmp_path / "song", "song", xdg)
    session_file = tmp_path / "song" / "song.ardour"
    ardour.enable_osc_surface(session_file)
    osc_port = ardour.free_udp_port()
    env = {**os.environ, "PYTHONPATH": str(REPO), "XDG_CONFIG_HOME": str(xdg)}
    daemon = ardour.Started(
        subprocess.Popen(
            [sys.executable, "-m", "jasco_bridge", "serve", "--port", "0", "--tcp-port", "0"]
            + ["--engine", "preview", "--out-dir", str(tmp_path / "clips")]
            + ["--ready-file", str(ready)],
            env=env,
            stdout=(tmp_path / "daemon.log").open("w"),
            stderr=subprocess.STDOUT,
        )
    )
    xvfb = gui = None
    try:
        while not ready.exists():
            assert daemon.process.poll() is None, (tmp_path / "daemon.log").read_text()
            time.sleep(0.05)
        tcp_port = json.loads(ready.read_text())["tcp_port"]
        params = {
            "script": str(SCRIPT),
            "marker": str(marker),
            "prompt": "warm rhodes",
            "seed": "7",
            "port": str(tcp_port),
            "command": f"{sys.executable} -m jasco_bridge",
            "session": "ardour-test",
        }
        ardour.write_gui_config(xdg, osc_port, "jasco-test", HOOK, params)
        xvfb, display = ardour.start_xvfb(tmp_path / "xvfb.log")
        gui = ardour.Started(
            subprocess.Popen(
                ["ardour", "--no-announcements", "--no-splash", str(session_file)],
                env={**env, "DISPLAY": display},
                stdout=(tmp_path / "ardour.log").open("w"),
                stderr=subprocess.STDOUT,
            )
        )
        deadline = time.monotonic() + 60
        while not marker.exists() and time.monotonic() < deadline and gui.process.poll() is None:
            time.sleep(0.2)
        result = marker.read_text() if marker.exists() else "no result (see ardour.log)"
        assert result == "ok", result + "\n" + (tmp_path / "ardour.log").read_text()[-3000:]
        ardour.quit_ardour(osc_port)
        gui.process.wait(30)
    finally:
        for started in (gui, xvfb, daemon):
            if started is not None:
                started.stop()

    placed = ardour.regions_on_track(session_file, "JASCO")
    assert len(placed) == 1, placed
    clip = placed[0]
    assert clip.position_samples == bars[2]  # exactly on bar 2, in samples
    assert clip.length_samples == bars[4] - bars[2]  # exactly bars 2-3 (tempo change inside)

    history = (tmp_path / "song" / "song.history").read_text()
    assert 'name="JASCO render bars 2-3"' in history  # one undoable step

    [sidecar] = (tmp_path / "clips" / "ardour-test").glob("*.json")
    meta = json.loads(sidecar.read_text())
    assert [c["given"] for c in meta["chords"]][:2] == ["C:maj", "F:maj"]  # the region's chords
    audio, rate = sf.read(sidecar.with_suffix(".wav"))
    assert rate == 48000 and len(audio) == bars[4] - bars[2]
    assert time.monotonic() - began < 120
