"""Audition clips and record drum takes in time with the DAW: the daemon's audio desk.

`AudioDesk` owns the transports (one per session, plus Link when enabled), the one playback at
a time and the one recording at a time. Every device operation runs on a thread of its own, so
the event loop never waits for a sound card; results come back through the `Report` callbacks,
called from those threads (the server hands them to its loop).

    desk = AudioDesk(AudioSettings(output_device=None, input_device="system"))
    desk.transport("default").report_osc(playing=True, beat=6.0)
    desk.play("default", clip, tempo_map, loop=False, report=report)
    desk.record_drums("default", tempo_map, start_bar=5, bars=2, count_in_bars=1,
                      out_dir=Path("clips"), report=report)
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np

from jasco_bridge import audio
from jasco_bridge.clips import ClipInfo
from jasco_bridge.errors import AudioDeviceError, BridgeError, SessionError
from jasco_bridge.link import LinkSession
from jasco_bridge.transport import (
    Transport,
    TransportReading,
    bar_seconds,
    next_bar,
    take_start,
)
from midi.tempo import TempoMap

logger = logging.getLogger(__name__)

# Opening a PortAudio stream takes a moment; nothing is scheduled sooner than this.
LEAD_SECONDS = 0.25
CLICK_SECONDS = 0.02
MAX_TAKE_SECONDS = 600.0


@dataclass(frozen=True)
class AudioSettings:
    """Which devices the desk uses (None = the system's default) and the input latency the
    driver does not report, in milliseconds (measure it with `jasco-bridge latency`)."""

    output_device: str | None = None
    input_device: str | None = None
    input_latency_ms: float = 0.0


@dataclass(frozen=True)
class Take:
    """A recorded drum take on disk, and where it sits on the timeline."""

    path: Path
    start_beat: float
    length_beats: float
    sample_rate: int
    latency_ms: float


class Report(Protocol):
    """Where the desk's news goes (called from its threads)."""

    def playing(self, path: Path, starts_in_seconds: float, looping: bool) -> None: ...
    def stopped(self, path: Path) -> None: ...
    def recorded(self, take: Take) -> None: ...
    def link_tempo(self, link_bpm: float, session_bpm: float) -> None: ...
    def failed(self, message: str) -> None: ...


def click_track(beats_seconds: list[float], sample_rate: int, length_frames: int) -> np.ndarray:
    """Short decaying 1 kHz blips at `beats_seconds` from the start (the first one higher)."""
    out = np.zeros(length_frames, dtype=np.float32)
    blip = round(CLICK_SECONDS * sample_rate)
    t = np.arange(blip) / sample_rate
    for i, at in enumerate(beats_seconds):
        pitch = 1500.0 if i == 0 else 1000.0
        # A cosine starts at its peak: the onset is the first sample, whatever the pitch.
        tone = 0.5 * np.cos(2 * np.pi * pitch * t) * np.exp(-t * 200.0)
        first = round(at * sample_rate)
        end = min(first + blip, length_frames)
        if 0 <= first < end:
            out[first:end] += tone[: end - first]
    return out


def _read_clip(path: Path, sample_rate: int) -> np.ndarray:
    import soundfile
    import soxr

    try:
        data, rate = soundfile.read(str(path), dtype="float32", always_2d=True)
    except (OSError, RuntimeError) as exc:
        raise SessionError(f"clip {path} cannot be read for playback: {exc}") from None
    if rate != sample_rate:
        data = soxr.resample(data, rate, sample_rate).astype(np.float32)
    return data


def _free_take_path(folder: Path, start_bar: int, bars: int) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    stem = f"drums_bars{start_bar:03d}-{start_bar + bars - 1:03d}_{time.strftime('%Y%m%d-%H%M%S')}"
    for attempt in range(1000):
        path = folder / (f"{stem}.wav" if attempt == 0 else f"{stem}-{attempt}.wav")
        try:
            with open(path, "xb"):
                return path
        except FileExistsError:
            continue
    raise SessionError(f"no free file name for the drum take in {folder}")


class AudioDesk:
    """One playback and one recording at a time, each on its own thread, on one shared
    `audio.AudioEngine` (opened while something plays or records, closed when idle)."""

    def __init__(
        self,
        settings: AudioSettings,
        *,
        link: LinkSession | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.settings = settings
        self._link = link
        self._clock = clock
        self._transports: dict[str, Transport] = {}
        self._lock = threading.Lock()
        self._engine: audio.AudioEngine | None = None
        self._users = 0
        self._voice: audio.Voice | None = None
        self._play_generation = 0
        self._recording: audio.Capture | None = None
        self._record_pending = False
        self._threads: list[threading.Thread] = []

    def forget(self, session: str) -> None:
        """Drop what the desk keeps for a session the daemon forgot (its transport report)."""
        self._transports.pop(session, None)

    def transport(self, session: str) -> Transport:
        transport = self._transports.get(session)
        if transport is None:
            transport = self._transports[session] = Transport(self._clock, self._link)
        return transport

    def _reading(self, session: str, tempo_map: TempoMap, report: Report) -> TransportReading:
        reading = self.transport(session).reading(tempo_map)
        if reading.source == "link" and reading.bpm is not None:
            session_bpm = tempo_map.tempos[0].bpm
            if abs(reading.bpm - session_bpm) > 0.01:
                report.link_tempo(reading.bpm, session_bpm)
        return reading

    # ------------------------------------------------------------------ the engine

    def _acquire(self, need_input: bool) -> audio.AudioEngine:
        with self._lock:
            engine = self._engine
            if engine is not None and need_input and engine.input is None:
                raise AudioDeviceError(
                    "the output is open without an input (none was found when the audition "
                    "started); stop the audition and record again"
                )
            if engine is None:
                output = audio.find_device(self.settings.output_device, "output")
                try:
                    source = audio.find_device(self.settings.input_device, "input")
                except AudioDeviceError:
                    if need_input:
                        raise
                    source = None  # auditions work without an input
                engine = self._engine = audio.AudioEngine(output, source, clock=self._clock)
            self._users += 1
            return engine

    def _release(self) -> None:
        with self._lock:
            self._users -= 1
            engine = None
            if self._users == 0:
                engine, self._engine = self._engine, None
        if engine is not None:
            engine.close()  # idle: give the device back to the DAW

    # ------------------------------------------------------------------ audition

    def play(
        self, session: str, clip: ClipInfo, tempo_map: TempoMap, *, loop: bool, report: Report
    ) -> None:
        """Play `clip` from the next bar (at once without a transport), looping its bars on
        request; a playing clip is stopped first."""
        reading = self._reading(session, tempo_map, report)
        with self._lock:
            self._play_generation += 1
            generation = self._play_generation
        self._start(
            threading.Thread(
                target=self._play,
                args=(clip, tempo_map, reading, loop, report, generation),
                name="jasco-audition",
                daemon=True,
            )
        )

    def _play(
        self,
        clip: ClipInfo,
        tempo_map: TempoMap,
        reading: TransportReading,
        loop: bool,
        report: Report,
        generation: int,
    ) -> None:
        try:
            self._stop_voice()
            engine = self._acquire(need_input=False)
        except BridgeError as exc:
            report.failed(str(exc))
            return
        try:
            rate = engine.sample_rate
            data = _read_clip(clip.path, rate)
            start, _ = next_bar(reading, tempo_map, self._clock() + LEAD_SECONDS)
            loop_frames = round(clip.duration_seconds * rate) if loop else None
            with self._lock:
                if generation != self._play_generation:
                    return  # a later /jasco/play or /jasco/stop came first
                voice = self._voice = engine.play(data, start, loop_frames)
            report.playing(clip.path, max(start - self._clock(), 0.0), loop)
            voice.ended.wait()
            with self._lock:
                if self._voice is voice:
                    self._voice = None
            report.stopped(clip.path)
        except BridgeError as exc:
            report.failed(str(exc))
        except Exception as exc:  # a device thread must never take the daemon down
            logger.exception("audition failed")
            report.failed(f"audition failed ({type(exc).__name__}: {exc}); see the daemon log")
        finally:
            self._release()

    def stop(self) -> None:
        """Stop the clip that is playing (if any) and cancel one about to start."""
        with self._lock:
            self._play_generation += 1
        self._stop_voice()

    def _stop_voice(self) -> None:
        with self._lock:
            voice, self._voice = self._voice, None
        if voice is not None:
            voice.stop()

    # ------------------------------------------------------------------ drum takes

    def record_drums(
        self,
        session: str,
        tempo_map: TempoMap,
        *,
        start_bar: int,
        bars: int,
        count_in_bars: int,
        click_through: bool,
        out_dir: Path,
        report: Report,
    ) -> None:
        """Record `bars` bars from `start_bar` into a WAV under `out_dir`; `report.recorded`
        gets the take. The start is checked now, so a bar already gone fails at once."""
        with self._lock:
            if self._record_pending:
                raise SessionError("a drum take is already being recorded; wait for it")
            self._record_pending = True
        try:
            reading = self._reading(session, tempo_map, report)
            start = take_start(
                reading, tempo_map, start_bar, count_in_bars, self._clock(), LEAD_SECONDS
            )
            first, last = tempo_map.bar_window(start_bar, bars)
            seconds = tempo_map.seconds_at(last) - tempo_map.seconds_at(first)
            if seconds > MAX_TAKE_SECONDS:
                raise SessionError(
                    f"{bars} bars last {seconds:.0f} s; record at most {MAX_TAKE_SECONDS:.0f} s"
                )
        except BaseException:
            with self._lock:
                self._record_pending = False
            raise
        plan = _TakePlan(start_bar, bars, count_in_bars, click_through, start, seconds)
        self._start(
            threading.Thread(
                target=self._record,
                args=(tempo_map, plan, out_dir, report),
                name="jasco-record",
                daemon=True,
            )
        )

    def _start(self, thread: threading.Thread) -> None:
        with self._lock:
            self._threads = [t for t in self._threads if t.is_alive()] + [thread]
        thread.start()

    def _record(self, tempo_map: TempoMap, plan: _TakePlan, out_dir: Path, report: Report) -> None:
        try:
            engine = self._acquire(need_input=True)
        except BridgeError as exc:
            with self._lock:
                self._record_pending = False
            report.failed(str(exc))
            return
        clicks: list[audio.Voice] = []
        try:
            rate = engine.sample_rate
            latency = self.settings.input_latency_ms / 1000.0
            clicks = [engine.play(*part) for part in _metronome(tempo_map, plan, rate)]
            capture = engine.capture(plan.start + latency, round(plan.seconds * rate))
            with self._lock:
                self._recording = capture
            take = audio.wait_for_take(capture, engine, plan.start + latency, self._clock)
            path = _free_take_path(out_dir, plan.start_bar, plan.bars)
            _write_take(path, take, rate)
            first, last = tempo_map.bar_window(plan.start_bar, plan.bars)
            report.recorded(Take(path, first, last - first, rate, self.settings.input_latency_ms))
        except BridgeError as exc:
            report.failed(str(exc))
        except Exception as exc:  # a device thread must never take the daemon down
            logger.exception("drum recording failed")
            report.failed(f"drum recording failed ({type(exc).__name__}: {exc}); see the log")
        finally:
            for click in clicks:
                click.stop()
            with self._lock:
                self._recording = None
                self._record_pending = False
            self._release()

    def join_link(self) -> None:
        """Take tempo and bar phase from Ableton Link while it has peers (see transport.py)."""
        if self._link is None:
            self._link = LinkSession.join()
            for transport in self._transports.values():
                transport.use_link(self._link)

    def close(self, timeout_seconds: float = 5.0) -> None:
        """Stop what plays and records, and wait for the device threads to let go."""
        self.stop()
        with self._lock:
            recording, threads = self._recording, list(self._threads)
        if recording is not None:
            recording.stop()
        for thread in threads:
            thread.join(timeout_seconds)
        if self._link is not None:
            self._link.close()


@dataclass(frozen=True)
class _TakePlan:
    start_bar: int
    bars: int
    count_in_bars: int
    click_through: bool
    start: float  # daemon clock time of the take's first frame
    seconds: float


def _metronome(
    tempo_map: TempoMap, plan: _TakePlan, sample_rate: int
) -> list[tuple[np.ndarray, float]]:
    """The clicks as (sound, start) pairs: the count-in bars before the take, and the take's
    own beats when asked. Each starts on its own bar, so device clock drift during the
    count-in never moves the clicks inside the take."""
    bar = bar_seconds(tempo_map, plan.start_bar)
    beats = tempo_map.meter_at(tempo_map.bar_start_beat(plan.start_bar)).numerator
    parts = []
    if plan.count_in_bars > 0:
        count_in = plan.count_in_bars * bar
        clicks = [i * bar / beats for i in range(plan.count_in_bars * beats)]
        track = click_track(clicks, sample_rate, round((count_in + CLICK_SECONDS) * sample_rate))
        parts.append((track, plan.start - count_in))
    if plan.click_through:
        grid = tempo_map.beat_grid(*tempo_map.bar_window(plan.start_bar, plan.bars))
        origin = tempo_map.seconds_at(grid[0])
        clicks = [tempo_map.seconds_at(b) - origin for b in grid]
        track = click_track(
            clicks, sample_rate, round((plan.seconds + CLICK_SECONDS) * sample_rate)
        )
        parts.append((track, plan.start))
    return parts


def _write_take(path: Path, take: np.ndarray, sample_rate: int) -> None:
    import soundfile

    try:
        with open(path, "wb") as handle:
            soundfile.write(handle, take, sample_rate, subtype="PCM_24", format="WAV")
            handle.flush()
            os.fsync(handle.fileno())
    except OSError as exc:
        raise SessionError(f"the drum take cannot be written to {path}: {exc}") from None


def click_onset_seconds(recording: np.ndarray, sample_rate: int) -> float:
    """Where the first click starts in a recording: the first sample above half its peak."""
    peak = float(np.max(np.abs(recording))) if len(recording) else 0.0
    if peak < 0.01:
        raise AudioDeviceError(
            "no click came back: connect the output to the input (a cable, or with JACK "
            "jack_connect PortAudio:out_0 PortAudio:in_0) and try again"
        )
    return int(np.argmax(np.abs(recording) > peak / 2)) / sample_rate


def measure_input_latency(
    settings: AudioSettings,
    *,
    lead_seconds: float = 1.0,
    clock: Callable[[], float] = time.monotonic,
) -> float:
    """Play one click through the output and record it back; returns in milliseconds how much
    later it arrived than the driver's reported latencies say (the figure for
    `input_latency_ms`)."""
    output = audio.find_device(settings.output_device, "output")
    source = audio.find_device(settings.input_device, "input")
    engine = audio.AudioEngine(output, source, clock=clock)
    try:
        rate = engine.sample_rate
        # The take starts a little before the click: with an over-reporting driver the click
        # comes back "early".
        pre_roll = 0.05
        starts = clock() + max(lead_seconds, LEAD_SECONDS)
        engine.play(click_track([pre_roll], rate, round(0.5 * rate)), starts)
        capture = engine.capture(starts, round(0.6 * rate))
        recording = audio.wait_for_take(capture, engine, starts, clock)
    finally:
        engine.close()
    return (click_onset_seconds(recording, rate) - pre_roll) * 1000.0
