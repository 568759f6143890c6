"""Helpers shared by the bridge tests: the fake renderer, a job-event collector, a daemon on free
ports, an OSC peer, MIDI and WAV writers, and an independent RIFF reader. The fixtures built
from them (a started queue, an OSC peer) are in conftest.py.

Kept out of the test modules so that no test module imports another.
"""

from __future__ import annotations

import contextlib
import os
import socket
import struct
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path

import numpy as np
import soundfile

from engine.errors import EngineError, GenerationCancelled
from engine.request import GenerationRequest, GenerationResult
from jasco_bridge.config import DaemonConfig
from jasco_bridge.daemon import BackgroundDaemon
from jasco_bridge.engines import OpenedRenderer, open_preview
from jasco_bridge.jobs import JobEvent
from jasco_bridge.osc import OscMessage, encode_packet, message, parse_packet
from midi.notes import Note, NoteTrack
from midi.smf import MidiSong, write_midi_file
from midi.tempo import TempoMap

WAIT_SECONDS = 60.0  # generous: CI machines are slow; tests never assert on speed
REPO = Path(__file__).resolve().parents[2]


def run_cli(
    *args: str, env: Mapping[str, str] | None = None, cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    """`python -m jasco_bridge ARGS` as a real process, this checkout first on its path."""
    return subprocess.run(
        [sys.executable, "-m", "jasco_bridge", *args],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(REPO), **(env or {})},
        cwd=cwd,
        check=False,
        timeout=120,
    )


# ---------------------------------------------------------------------------- renderers and queues


class Events:
    """Collects events from the worker thread and lets a test wait for a condition on them."""

    def __init__(self) -> None:
        self.items: list[JobEvent] = []
        self._changed = threading.Condition()

    def __call__(self, event: JobEvent) -> None:
        with self._changed:
            self.items.append(event)
            self._changed.notify_all()

    def wait_for(self, condition: Callable[[list[JobEvent]], bool]) -> list[JobEvent]:
        with self._changed:
            if not self._changed.wait_for(lambda: condition(self.items), WAIT_SECONDS):
                raise AssertionError(f"events never matched; got {self.items}")
            return list(self.items)

    def terminal(self, job_id: int) -> JobEvent:
        final = ("done", "error", "cancelled")
        events = self.wait_for(
            lambda items: any(e.job_id == job_id and e.kind in final for e in items)
        )
        return next(e for e in events if e.job_id == job_id and e.kind in final)

    def of(self, job_id: int) -> list[JobEvent]:
        with self._changed:
            return [e for e in self.items if e.job_id == job_id]


class FakeRenderer:
    """The one fake engine of the tests: `request.steps` steps of `step_seconds` each, honouring
    the progress and cancel callbacks exactly as the Renderer protocol says; it keeps the
    requests it got. `fail_on` text in the prompt makes it fail ("bug": an unexpected crash)."""

    name = "stepper"
    is_preview = False
    sample_rate = 32000
    frame_rate_hz = 50.0
    segment_seconds = 10.0
    model_id = "fake/stepper"

    def __init__(
        self, step_seconds: float = 0.0, fail_on: str | None = None, accepts_melody: bool = True
    ) -> None:
        self.step_seconds = step_seconds
        self.fail_on = fail_on
        self.accepts_melody = accepts_melody
        self.steps_taken = 0
        self.requests: list[GenerationRequest] = []

    def generate(self, request, progress=None, should_cancel=None) -> GenerationResult:
        self.requests.append(request)
        if self.fail_on is not None and self.fail_on in request.text:
            if self.fail_on == "bug":
                raise ZeroDivisionError("division by zero")
            raise EngineError("the GPU ran out of memory: render fewer bars")
        for step in range(1, request.steps + 1):
            if should_cancel is not None and should_cancel():
                raise GenerationCancelled(f"cancelled before step {step}")
            time.sleep(self.step_seconds)
            self.steps_taken += 1
            if progress is not None:
                progress(step, request.steps)
        n = round(request.duration_seconds * self.sample_rate)
        return GenerationResult(
            audio=np.full(n, 0.1, dtype=np.float32),
            sample_rate=self.sample_rate,
            engine="stepper",
            model=self.model_id,
        )


# ---------------------------------------------------------------------------- a running daemon


class GatedRenderer:
    """A renderer behind a gate: `generate` waits (cancellably) until the gate opens.

    Keeps a job "running" for as long as a test needs, without timing assumptions. Everything
    else (name, sample rate, frame rate, ...) is the wrapped renderer's.
    """

    def __init__(self, inner) -> None:
        self.inner = inner
        self.gate = threading.Event()
        self.started = threading.Event()

    def __getattr__(self, name: str):
        return getattr(self.inner, name)

    def generate(
        self, request: GenerationRequest, progress=None, should_cancel=None
    ) -> GenerationResult:
        self.started.set()
        while not self.gate.wait(0.005):
            if should_cancel is not None and should_cancel():
                raise GenerationCancelled("cancelled while waiting at the test gate")
        return self.inner.generate(request, progress, should_cancel)


@contextlib.contextmanager
def running_daemon(
    tmp_path: Path, *, gated: bool = False, **overrides
) -> Iterator[BackgroundDaemon]:
    """A real Daemon (startup -> serve -> shutdown) on its own thread, bound to free ports.

    `gated=True` renders with a `GatedRenderer` (as `.renderer`) so a job stays running.
    """
    opened = open_preview()
    renderer = GatedRenderer(opened.renderer) if gated else opened.renderer
    tmp_path.mkdir(parents=True, exist_ok=True)
    settings = {
        "port": 0,
        "tcp_port": 0,
        "out_dir": tmp_path / "clips",
        "shutdown_timeout_seconds": 5.0,
        # The test's files live in its temporary folder, outside the home folder.
        "read_roots": (tmp_path,),
    }
    config = DaemonConfig(**{**settings, **overrides})
    running = BackgroundDaemon(
        config, open_engine=lambda _config: OpenedRenderer(renderer, opened.vocabulary, None)
    )
    running.renderer = renderer  # type: ignore[attr-defined]
    with running:
        try:
            yield running
        finally:
            if isinstance(renderer, GatedRenderer):
                renderer.gate.set()


class OscPeer:
    """A UDP OSC client on its own port: sends messages, collects replies by address."""

    def __init__(self, port: int | None = None) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 * 2**20)
        self.sock.bind(("127.0.0.1", port or 0))
        self.inbox: list[OscMessage] = []

    @property
    def port(self) -> int:
        return self.sock.getsockname()[1]

    def send(self, daemon_port: int, address: str, *args) -> None:
        self.send_packet(daemon_port, message(address, *args))

    def send_packet(self, daemon_port: int, packet) -> None:
        self.send_bytes(daemon_port, encode_packet(packet))

    def send_bytes(self, daemon_port: int, data: bytes) -> None:
        self.sock.sendto(data, ("127.0.0.1", daemon_port))

    def _read(self, timeout: float) -> OscMessage | None:
        self.sock.settimeout(timeout)
        try:
            data, _ = self.sock.recvfrom(65536)
        except TimeoutError:
            return None
        packet = parse_packet(data)
        assert isinstance(packet, OscMessage)
        return packet

    def expect(
        self, address: str, predicate=lambda m: True, timeout: float = WAIT_SECONDS
    ) -> OscMessage:
        """The first reply (already received or arriving) at `address` that satisfies `predicate`."""
        for index, seen in enumerate(self.inbox):
            if seen.address == address and predicate(seen):
                return self.inbox.pop(index)
        deadline = time.monotonic() + timeout
        while (left := deadline - time.monotonic()) > 0:
            reply = self._read(left)
            if reply is None:
                break
            if reply.address == address and predicate(reply):
                return reply
            self.inbox.append(reply)
        raise AssertionError(
            f"no {address} within {timeout} s; got {[m.address for m in self.inbox][-20:]}"
        )

    def quiet_for(self, seconds: float) -> list[OscMessage]:
        """Everything that arrives within `seconds` (used only to show that nothing does)."""
        out = []
        deadline = time.monotonic() + seconds
        while (left := deadline - time.monotonic()) > 0:
            reply = self._read(left)
            if reply is not None:
                out.append(reply)
        return out

    def close(self) -> None:
        self.sock.close()


def set_up_four_bars(peer: OscPeer, port: int, prefix: str = "/jasco") -> None:
    """120 bpm 4/4, a chord per bar as MIDI notes in one bulk message, a prompt and a seed."""
    peer.send(port, f"{prefix}/tempo", 120.0, 4, 4)
    peer.send(port, f"{prefix}/chords/clear")
    notes = []
    for bar, chord in enumerate(([60, 64, 67], [57, 60, 64], [53, 57, 60], [55, 59, 62])):
        for pitch in chord:
            notes += [float(bar * 4), 4.0, float(pitch), 100.0]
    peer.send(port, f"{prefix}/chords/notes", *notes)
    peer.send(port, f"{prefix}/prompt", "warm rhodes")
    peer.send(port, f"{prefix}/set", "seed", 1234)


def one_running_one_queued(peer: OscPeer, daemon: BackgroundDaemon) -> tuple[int, int]:
    """On a gated daemon: four bars set up, bar 1 rendering (held at the gate), bar 2 queued.
    Returns the two job ids."""
    port = daemon.server.udp_port
    set_up_four_bars(peer, port)
    peer.send(port, "/jasco/render", 1, 1)
    peer.send(port, "/jasco/render", 2, 1)
    running, queued = (peer.expect("/jasco/ack").args[0] for _ in range(2))
    assert daemon.renderer.started.wait(WAIT_SECONDS)  # type: ignore[attr-defined]
    return running, queued


# ---------------------------------------------------------------------------- MIDI and WAV files


def write_song(path: Path, tracks, tempo_map: TempoMap | None = None) -> Path:
    """A MIDI file of `tracks`, at 90 bpm unless a tempo map is given."""
    song = MidiSong(tempo_map or TempoMap.constant(90), tuple(tracks))
    write_midi_file(song, path)
    return path


def chord_track(name: str, roots_every_4_beats: list[int], channel: int = 0) -> NoteTrack:
    """Root-position major triads above C3, one every 4 beats, roots as pitch classes."""
    notes = []
    for i, root in enumerate(roots_every_4_beats):
        for interval in (0, 4, 7):
            notes.append(Note(48 + root + interval, 4.0 * i, 4.0 * i + 4.0, 90, channel))
    return NoteTrack(name, notes, channel=channel)


def write_wav(path: Path, seconds: float = 1.0, rate: int = 44100, channels: int = 2) -> Path:
    """A quiet 110 Hz sine, the same on every channel."""
    t = np.arange(int(seconds * rate)) / rate
    audio = np.stack([0.25 * np.sin(2 * np.pi * 110 * t)] * channels, axis=1)
    soundfile.write(path, audio, rate)
    return path


# ---------------------------------------------------------------------------- reading WAV bytes

# bext offsets: Description 256, Originator 32, OriginatorReference 32, Date 10, Time 8,
# then TimeReferenceLow and TimeReferenceHigh (uint32 each), then Version (uint16).
TIME_REFERENCE_OFFSET = 256 + 32 + 32 + 10 + 8


def read_riff_chunks(data: bytes) -> dict[str, bytes]:
    """chunk id -> payload, walking the RIFF/WAVE structure with its word-alignment padding.

    Written from EBU Tech 3285, sharing no code with `jasco_bridge.wav`.
    """
    tag, size, form = struct.unpack_from("<4sI4s", data, 0)
    assert (tag, form) == (b"RIFF", b"WAVE")
    assert size == len(data) - 8, "RIFF size must cover the whole file"
    chunks: dict[str, bytes] = {}
    offset = 12
    while offset < len(data):
        chunk_id, chunk_size = struct.unpack_from("<4sI", data, offset)
        chunks[chunk_id.decode("ascii")] = data[offset + 8 : offset + 8 + chunk_size]
        offset += 8 + chunk_size + (chunk_size & 1)
    assert offset == len(data)
    return chunks


def bext_time_reference(payload: bytes) -> int:
    """The TimeReference (samples since midnight) of a bext chunk's payload."""
    low, high = struct.unpack_from("<II", payload, TIME_REFERENCE_OFFSET)
    return (high << 32) | low
