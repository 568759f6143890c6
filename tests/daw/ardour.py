"""Driving real Ardour 7 for the tests: a headless session (ardour7-lua), the GUI under Xvfb with a
startup hook that runs our shipped action script, and reading the saved session back.

Facts this relies on (Ardour 7.3): the GUI skips its first-run wizard when `ardour7/.a7` exists
and starts the Dummy backend from `ardour7/config`; `ardour7/ui_scripts` holds action hooks whose
Lua state is a base64 serialisation `s = {} s['n'] = ... s['f'] = <chunk> s['a'] = <params>`, the
chunk being called with the params and returning the callback; Ardour's OSC surface quits the GUI
cleanly on `/access_action s Common/Quit` once the session enables it.
"""

from __future__ import annotations

import base64
import os
import re
import shutil
import signal
import socket
import subprocess
import time
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path

from jasco_bridge.osc import encode_packet, message

HERE = Path(__file__).resolve().parent
SUPERCLOCK_PER_SECOND = 282_240_000  # Ardour 7's superclock rate
_TIMER_SIGNAL = 46  # LuaSignal::LuaTimerS, of 49 signals
_SIGNAL_COUNT = 49


def ardour_missing() -> str | None:
    """Why the real-Ardour tests cannot run here, or None when they can."""
    for tool in ("ardour7-lua", "ardour", "Xvfb"):
        if shutil.which(tool) is None:
            return f"{tool} is not installed (apt-get install ardour xvfb xauth; .ci/run does)"
    return None


def free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def make_session(folder: Path, name: str, xdg: Path) -> dict[int, int]:
    """Build the test session headless; returns Ardour's sample position of bars 1-5."""
    done = subprocess.run(
        ["stdbuf", "-oL", "ardour7-lua", str(HERE / "ardour_make_session.lua"), str(folder), name],
        env={**os.environ, "XDG_CONFIG_HOME": str(xdg)},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    bars = {int(b): int(s) for b, s in re.findall(r"^bar (\d+) (\d+)$", done.stdout, re.M)}
    if done.returncode != 0 or len(bars) != 5:
        raise RuntimeError(f"ardour7-lua failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")
    return bars


def enable_osc_surface(session_file: Path) -> None:
    """Switch on Ardour's OSC surface in the session, answering each sender's own port."""
    text = session_file.read_text()
    new = re.sub(
        r'<Protocol name="Open Sound Control \(OSC\)" active="0"',
        '<Protocol name="Open Sound Control (OSC)" active="1" address-only="0" feedback="0"',
        text,
    )
    if new == text:
        raise RuntimeError(f"no inactive OSC protocol entry in {session_file}")
    session_file.write_text(new)


def _lua_string(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace('"', '\\"')
    return '"' + escaped.replace("\n", "\\n").replace("\r", "\\r") + '"'


def write_gui_config(
    xdg: Path, osc_port: int, hook_name: str, hook_chunk: str, params: dict[str, str]
) -> None:
    """`.a7`, a Dummy-backend `config` and a `ui_scripts` with one once-a-second hook."""
    folder = xdg / "ardour7"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / ".a7").write_text("")
    (folder / "config").write_text(
        '<?xml version="1.0" encoding="UTF-8"?>\n<Ardour><Config>'
        '<Option name="hide-dummy-backend" value="0"/><Option name="try-autostart-engine" value="1"/>'
        f'<Option name="osc-port" value="{osc_port}"/></Config>'
        "<Extra><AudioMIDISetup><EngineStates>"
        '<State backend="None (Dummy)" driver="Normal Speed" device="Silence" input-device="" '
        'output-device="" sample-rate="48000" buffer-size="1024" n-periods="0" input-latency="0" '
        'output-latency="0" lm-input="" lm-output="" active="1" use-buffered-io="0" '
        f'midi-option="1 in, 1 out, Silence" lru="{int(time.time())}"><MIDIDevices/></State>'
        "</EngineStates></AudioMIDISetup></Extra></Ardour>\n"
    )
    state = f"s = {{}} s['n'] = {_lua_string(hook_name)} s['s'] = {_lua_string(hook_chunk)} "
    state += f"s['f'] = {_lua_string(hook_chunk)} s['a'] = {{}} "
    for key, value in params.items():
        state += f"s['a'][{_lua_string(key)}] = {_lua_string(value)} "
    signals = ["0"] * _SIGNAL_COUNT
    signals[_SIGNAL_COUNT - 1 - _TIMER_SIGNAL] = "1"  # bitset::to_string() puts bit 0 last
    encoded = base64.b64encode(state.encode()).decode()
    (folder / "ui_scripts").write_text(
        '<?xml version="1.0" encoding="UTF-8"?>\n<UIScripts><ActionHooks>'
        f'<LuaCallback lua="5.3" id="1" name="{hook_name}" signals="{"".join(signals)}">'
        f"{encoded}</LuaCallback></ActionHooks></UIScripts>\n"
    )


@dataclass
class Started:
    """A process this test started, stopped by its own pid."""

    process: subprocess.Popen

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 10.0) -> int | None:
        if self.process.poll() is None:
            self.process.send_signal(sig)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout)
        return self.process.returncode


def start_xvfb(log: Path) -> tuple[Started, str]:
    """Xvfb on a free display (it tells us which through -displayfd)."""
    read, write = os.pipe()
    process = subprocess.Popen(
        ["Xvfb", "-displayfd", str(write), "-screen", "0", "1600x1000x24", "-nolisten", "tcp"],
        pass_fds=(write,),
        stdout=log.open("w"),
        stderr=subprocess.STDOUT,
    )
    os.close(write)
    with os.fdopen(read) as pipe:
        display = pipe.readline().strip()
    if not display:
        process.kill()
        raise RuntimeError(f"Xvfb did not start: {log.read_text()}")
    return Started(process), f":{display}"


def quit_ardour(osc_port: int) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.sendto(
            encode_packet(message("/access_action", "Common/Quit")), ("127.0.0.1", osc_port)
        )


@dataclass(frozen=True)
class PlacedRegion:
    name: str
    position_samples: int
    length_samples: int


def _samples(value: str, sample_rate: int) -> int:
    """An Ardour 7 time value: `a<superclocks>` (audio time) or plain samples."""
    if value.startswith("a"):
        superclocks = int(value[1:])
        samples, rest = divmod(superclocks * sample_rate, SUPERCLOCK_PER_SECOND)
        if rest:
            raise ValueError(f"{value} is not a whole number of samples at {sample_rate} Hz")
        return samples
    raise ValueError(f"{value}: expected an audio-time value (a<superclocks>)")


def regions_on_track(
    session_file: Path, track: str, sample_rate: int = 48000
) -> list[PlacedRegion]:
    """The regions of `track`'s playlist in a saved session, in samples."""
    root = ET.parse(session_file).getroot()
    route = next((r for r in root.iter("Route") if r.get("name") == track), None)
    if route is None:
        return []
    playlist_name = route.get("audio-playlist") or route.get("midi-playlist")
    playlists = [
        p
        for p in root.iter("Playlist")
        if p.get("id") == playlist_name or p.get("orig-track-id") == route.get("id")
    ]
    placed = []
    for playlist in playlists:
        for region in playlist.iter("Region"):
            length, _, position = region.get("length", "").partition("@")
            placed.append(
                PlacedRegion(
                    region.get("name"),
                    _samples(position, sample_rate),
                    _samples(length, sample_rate),
                )
            )
    return placed
