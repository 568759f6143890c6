"""Auditions and drum takes through a real audio path: JACK's dummy driver, no sound card.

The JACK tier starts its own `jackd -d dummy` (stopped by pid), points PortAudio at it, and
patches every PortAudio output into every PortAudio input with `jack_connect`, so what the
daemon plays comes back at its input sample for sample. It is skipped, with the reason, only
where jackd, jack_connect or sounddevice/PortAudio-with-JACK are missing. Timings are
measured against the daemon's own clock; the dummy driver is not realtime, so tolerances are
a few milliseconds, not samples.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import soundfile
import soxr

from jasco_bridge.audition import (
    AudioSettings,
    click_onset_seconds,
    click_track,
    measure_input_latency,
)
from jasco_bridge.errors import AudioDeviceError
from jasco_bridge.sources import AudioDrums
from midi.tempo import TempoMap

from .support import OscPeer, run_cli, running_daemon

RATE = 48000
TOLERANCE_SECONDS = 0.005


@pytest.fixture
def peer() -> Iterator[OscPeer]:
    client = OscPeer()
    yield client
    client.close()


def render_a_clip(peer: OscPeer, port: int, bars: int = 1) -> str:
    peer.send(port, "/jasco/tempo", 120.0)
    peer.send(port, "/jasco/chords/symbols", 0.0, "Am7", 2.0, "D9")
    peer.send(port, "/jasco/prompt", "dry drums and keys")
    peer.send(port, "/jasco/render", 1, bars)
    return peer.expect("/jasco/done").args[1]


# ---------------------------------------------------------------------------- no device needed


def test_click_track_and_its_onset():
    track = click_track([0.25, 0.75], RATE, RATE)
    assert click_onset_seconds(track, RATE) == pytest.approx(0.25, abs=2 / RATE)
    assert np.abs(track[: RATE // 4]).max() == 0.0


def test_silence_is_no_click_and_says_how_to_connect():
    with pytest.raises(AudioDeviceError, match="connect the output to the input"):
        click_onset_seconds(np.zeros(RATE, dtype=np.float32), RATE)


def test_play_without_a_clip_is_a_clear_error(tmp_path, peer):
    with running_daemon(tmp_path) as daemon:
        peer.send(daemon.server.udp_port, "/jasco/play")
        error = peer.expect("/jasco/error")
        assert "has no clip yet; render one first" in error.args[1]
        peer.send(daemon.server.udp_port, "/jasco/play", 99)
        assert "job 99 has no clip" in peer.expect("/jasco/error").args[1]


def test_a_bar_already_passing_is_refused_at_once(tmp_path, peer):
    with running_daemon(tmp_path) as daemon:
        port = daemon.server.udp_port
        peer.send(port, "/jasco/transport", 1, 9.0)  # bar 3, beat 2 now
        peer.send(port, "/jasco/drums/record", 3, 1)
        error = peer.expect("/jasco/error")
        assert "bar 3 is already passing" in error.args[1]
        peer.send(port, "/jasco/ping", 1)
        peer.expect("/jasco/pong")


def test_a_missing_device_is_a_clear_error_listing_the_devices(tmp_path, peer):
    pytest.importorskip("sounddevice", reason="sounddevice (the audio extra) is not installed")
    with running_daemon(tmp_path, audio_out="no-such-device") as daemon:
        render_a_clip(peer, daemon.server.udp_port)
        peer.send(daemon.server.udp_port, "/jasco/play")
        text = peer.expect("/jasco/error").args[1]
        assert "audio output device 'no-such-device' is not among the output devices" in text
        assert "output devices" in text.split(";", 1)[1]  # what is there instead
        peer.send(daemon.server.udp_port, "/jasco/ping", 2)
        peer.expect("/jasco/pong")


def test_link_peers_in_one_process_agree_and_report_their_tempo():
    aalink = pytest.importorskip("aalink", reason="aalink (the link extra) is not installed")
    from jasco_bridge.link import LinkSession
    from jasco_bridge.transport import Transport, next_bar

    async def scenario():
        daw = aalink.Link(100.0)
        daw.enabled = True
        ours = LinkSession.join(120.0)
        try:
            for _ in range(100):
                if ours.peers and daw.num_peers:
                    break
                await asyncio.sleep(0.05)
            else:
                pytest.skip("two Link peers in this process never saw each other (no multicast?)")
            daw.tempo = 100.0
            await asyncio.sleep(0.3)
            tempo_map = TempoMap.constant(120.0)
            reading = Transport(time.monotonic, ours).reading(tempo_map)
            now = time.monotonic()
            ours_next, _ = next_bar(reading, tempo_map, now)
            daw.quantum = 4.0
            daw_beat, daw_at = daw.beat, time.monotonic()
            daw_next = daw_at + (4.0 - daw_beat % 4.0) * 60.0 / 100.0
            return reading, ours_next, daw_next
        finally:
            ours.close()
            daw.enabled = False

    reading, ours_next, daw_next = asyncio.run(scenario())
    assert reading.source == "link"
    assert reading.bpm == pytest.approx(100.0)
    assert ours_next == pytest.approx(daw_next, abs=0.002)


# ---------------------------------------------------------------------------- JACK tier


def _jack_env(name: str) -> dict[str, str]:
    return {**os.environ, "JACK_DEFAULT_SERVER": name, "JACK_NO_START_SERVER": "1"}


@pytest.fixture(scope="module")
def jack() -> Iterator[str]:
    """A private JACK server with the dummy driver; PortAudio re-initialised to see it."""
    for tool in ("jackd", "jack_connect", "jack_lsp"):
        if shutil.which(tool) is None:
            pytest.skip(f"{tool} is not installed (Debian: apt-get install jackd2)")
    sd = pytest.importorskip("sounddevice", reason="sounddevice (the audio extra) is missing")
    name = f"jasco-test-{os.getpid()}"
    server = subprocess.Popen(
        ["jackd", "--no-realtime", "-n", name, "-d", "dummy", "-r", str(RATE), "-p", "256"],
        env=_jack_env(name),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    saved = {key: os.environ.get(key) for key in ("JACK_DEFAULT_SERVER", "JACK_NO_START_SERVER")}
    try:
        for _ in range(100):
            if (
                subprocess.run(["jack_lsp"], env=_jack_env(name), capture_output=True).returncode
                == 0
            ):
                break
            if server.poll() is not None:
                pytest.skip(f"jackd could not start here: {server.stderr.read().decode()[-300:]}")
            time.sleep(0.1)
        os.environ.update(_jack_env(name))
        sd._terminate()  # PortAudio lists host APIs once: let it find this server
        sd._initialize()
        if not any("JACK" in api["name"] for api in sd.query_hostapis()):
            pytest.skip("this PortAudio was built without JACK support")
        yield name
    finally:
        sd._terminate()  # close PortAudio's JACK client before its server goes away
        server.terminate()
        try:
            server.wait(10)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
        os.environ.pop("JACK_DEFAULT_SERVER", None)
        sd._initialize()  # with JACK_NO_START_SERVER still set: never spawn a default server
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


@pytest.fixture
def loopback(jack) -> Iterator[None]:
    """Patch every PortAudio output into every PortAudio input as soon as they appear."""
    stop = threading.Event()
    env = _jack_env(jack)

    def jack(*command: str) -> str:
        # A JACK client that hangs while a stream closes would hold the server up (and the
        # stream with it): give each call a deadline.
        try:
            done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=2)
        except subprocess.TimeoutExpired:
            return ""
        return done.stdout

    def patch() -> None:
        seen: frozenset[str] = frozenset()  # ports come and go as streams open and close
        while not stop.wait(0.05):
            names = jack("jack_lsp").split()
            outs = [p for p in names if p.startswith("PortAudio") and ":out_" in p]
            ins = [p for p in names if p.startswith("PortAudio") and ":in_" in p]
            ports = frozenset(outs + ins)
            if ports == seen:
                continue
            for pair in ((o, i) for o in outs for i in ins):
                jack("jack_connect", *pair)
            seen = ports

    thread = threading.Thread(target=patch, daemon=True)
    thread.start()
    yield
    stop.set()
    thread.join()


@pytest.fixture
def input_latency_ms(loopback) -> float:
    """What this JACK graph's loopback really takes, against what PortAudio reports."""
    latency = measure_input_latency(AudioSettings(), lead_seconds=0.5)
    assert -100.0 < latency < 100.0
    return latency


def _lag_seconds(take: np.ndarray, clip: np.ndarray, search_seconds: float = 0.05) -> float:
    """Where `clip` sits in `take` (seconds, positive = late), by cross-correlation."""
    span = min(len(take), len(clip)) - round(2 * search_seconds * RATE)
    reach = round(search_seconds * RATE)
    reference = clip[reach : reach + span]
    scores = [
        float(np.dot(take[reach + lag : reach + lag + span], reference))
        for lag in range(-reach, reach + 1)
    ]
    return (int(np.argmax(scores)) - reach) / RATE


def test_a_clip_auditioned_on_the_next_bar_records_back_on_that_bar(
    tmp_path, peer, input_latency_ms
):
    with running_daemon(tmp_path, input_latency_ms=input_latency_ms) as daemon:
        port = daemon.server.udp_port
        clip_path = render_a_clip(peer, port)
        peer.send(port, "/jasco/transport", 1, 0.0)  # bar 1 starts now; bar 2 in 2 s
        peer.send(port, "/jasco/drums/record", 2, 1, 0)
        peer.send(port, "/jasco/play")
        playing = peer.expect("/jasco/playing")
        assert playing.args[0] == clip_path
        assert 1.0 < playing.args[1] < 2.1  # waits for bar 2
        recorded = peer.expect("/jasco/drums/recorded")
        peer.expect("/jasco/stopped")
        take_path, start_beat, length_beats, latency = recorded.args
        assert (start_beat, length_beats) == (4.0, 4.0)
        assert latency == pytest.approx(input_latency_ms, abs=1e-3)

        take, take_rate = soundfile.read(take_path, dtype="float32")
        assert take_rate == RATE and len(take) == 2 * RATE  # exactly one bar at 120 bpm
        clip, clip_rate = soundfile.read(clip_path, dtype="float32")
        clip = soxr.resample(clip, clip_rate, RATE).astype(np.float32)
        assert np.abs(take).max() > 0.05  # the clip came back
        assert abs(_lag_seconds(take, clip)) <= TOLERANCE_SECONDS

        # The take is the session's drum stem now, and the next render follows it.
        drums = daemon.call_in_loop(lambda: daemon.server.sessions.get().snapshot().drums)
        assert isinstance(drums, AudioDrums)
        assert (str(drums.path), drums.start_beat) == (take_path, 4.0)
        assert Path(take_path).parent == Path(clip_path).parent
        peer.send(port, "/jasco/render", 2, 1)
        done = peer.expect("/jasco/done")
        sidecar = json.loads(Path(done.args[6]).read_text())
        assert sidecar["drums"] == {"kind": "audio", "path": take_path, "start_beat": 4.0}


def test_a_drum_take_against_the_click_lands_on_the_grid(tmp_path, peer, input_latency_ms):
    with running_daemon(tmp_path, input_latency_ms=input_latency_ms) as daemon:
        port = daemon.server.udp_port
        peer.send(port, "/jasco/tempo", 120.0)
        peer.send(port, "/jasco/transport", 1, 0.0)
        # Count-in over bar 2, the click on through bar 3: looped back, the click is the drummer.
        peer.send(port, "/jasco/drums/record", 3, 1, 1, 1)
        recorded = peer.expect("/jasco/drums/recorded")
        take, _ = soundfile.read(recorded.args[0], dtype="float32")
        assert len(take) == 2 * RATE
        for beat in range(4):
            begin = max(round((beat * 0.5 - 0.1) * RATE), 0)
            window = take[begin : round((beat * 0.5 + 0.2) * RATE)]
            onset = begin / RATE + click_onset_seconds(window, RATE) - beat * 0.5
            assert abs(onset) <= TOLERANCE_SECONDS, f"beat {beat + 1} is {onset * 1000:.1f} ms off"


def test_a_second_take_while_one_records_is_refused(tmp_path, peer, jack):
    with running_daemon(tmp_path, audio_in="system") as daemon:
        port = daemon.server.udp_port
        peer.send(port, "/jasco/drums/record", 1, 1, 0)
        peer.send(port, "/jasco/drums/record", 2, 1, 0)  # while the first is pending
        assert "already being recorded" in peer.expect("/jasco/error").args[1]
        peer.expect("/jasco/drums/recorded")


def test_devices_lists_the_jack_device(jack):
    listed = run_cli("devices", env={"JACK_DEFAULT_SERVER": jack, "JACK_NO_START_SERVER": "1"})
    assert listed.returncode == 0, listed.stderr
    assert "system (JACK Audio Connection Kit; 2 in, 2 out, 48000 Hz" in listed.stdout
