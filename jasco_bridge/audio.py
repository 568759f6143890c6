"""The sound card edge: list devices, play a clip from a given moment, record a take.

The only module that talks to PortAudio (through `sounddevice`, the optional extra `audio`).
Everything here blocks or runs in PortAudio's callback thread; the daemon calls it from worker
threads, never from its event loop. Timing arithmetic lives in `jasco_bridge.scheduling`.

    devices = list_devices()
    engine = AudioEngine(find_device(None, "output"), find_device("system", "input"))
    voice = engine.play(clip, start_seconds=t)          # at the engine's sample rate
    capture = engine.capture(start_seconds=t, frames=96000)
    take = wait_for_take(capture, engine, t, time.monotonic)
    engine.close()
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from jasco_bridge.errors import AudioDeviceError
from jasco_bridge.scheduling import FrameClock, StartPin, StreamClock, fill_from, take_from

logger = logging.getLogger(__name__)

Direction = Literal["input", "output"]
BLOCK_FRAMES = 256


@dataclass(frozen=True)
class DeviceInfo:
    index: int
    name: str
    host_api: str
    input_channels: int
    output_channels: int
    default_sample_rate: float
    is_default_input: bool = False
    is_default_output: bool = False

    def describe(self) -> str:
        marks = [
            m
            for m, on in (
                ("default in", self.is_default_input),
                ("default out", self.is_default_output),
            )
            if on
        ]
        extra = f", {', '.join(marks)}" if marks else ""
        return (
            f"{self.index}: {self.name} ({self.host_api}; {self.input_channels} in, "
            f"{self.output_channels} out, {self.default_sample_rate:g} Hz{extra})"
        )


def _sounddevice() -> Any:
    try:
        import sounddevice
    except (ImportError, OSError) as exc:
        raise AudioDeviceError(
            f"audio needs PortAudio and the sounddevice package ({exc}); install them with "
            "`pip install 'jasco-bridge[audio]'` and your system's libportaudio2"
        ) from None
    return sounddevice


def list_devices() -> list[DeviceInfo]:
    """Every device PortAudio sees, in its order."""
    sd = _sounddevice()
    apis = sd.query_hostapis()
    try:
        default_in, default_out = sd.default.device
    except (TypeError, ValueError):
        default_in = default_out = -1
    return [
        DeviceInfo(
            index=i,
            name=d["name"],
            host_api=apis[d["hostapi"]]["name"],
            input_channels=d["max_input_channels"],
            output_channels=d["max_output_channels"],
            default_sample_rate=d["default_samplerate"],
            is_default_input=i == default_in,
            is_default_output=i == default_out,
        )
        for i, d in enumerate(sd.query_devices())
    ]


def _listing(direction: Direction) -> str:
    channels = "input_channels" if direction == "input" else "output_channels"
    found = [d.describe() for d in list_devices() if getattr(d, channels) > 0]
    if not found:
        return f"no {direction} devices are available (jasco-bridge devices lists them)"
    return f"available {direction} devices: " + "; ".join(found)


def find_device(name: str | None, direction: Direction) -> DeviceInfo:
    """The device called `name` (exact name, a unique part of it, or its index), or the
    system's default for `direction` when `name` is None."""
    devices = list_devices()
    channels = "input_channels" if direction == "input" else "output_channels"
    usable = [d for d in devices if getattr(d, channels) > 0]
    if name is None:
        default = "is_default_input" if direction == "input" else "is_default_output"
        chosen = [d for d in usable if getattr(d, default)] or usable[:1]
        if not chosen:
            raise AudioDeviceError(
                f"there is no default audio {direction} device; {_listing(direction)}"
            )
        return chosen[0]
    text = name.strip()
    if text.isdigit():
        matches = [d for d in usable if d.index == int(text)]
    else:
        matches = [d for d in usable if d.name == text] or [
            d for d in usable if text.lower() in d.name.lower()
        ]
    if len(matches) != 1:
        problem = "matches several" if matches else "is not among the"
        raise AudioDeviceError(
            f"audio {direction} device {name!r} {problem} {direction} devices; "
            f"{_listing(direction)}"
        )
    return matches[0]


class Voice:
    """A sound scheduled on an `AudioEngine`: `[frames, channels]`, once or looping."""

    def __init__(self, sound: np.ndarray, start_seconds: float, loop_frames: int | None) -> None:
        self.sound = sound
        self.loop_frames = loop_frames
        self.pin = StartPin(start_seconds)
        self.ended = threading.Event()
        self.cancelled = False

    def stop(self) -> None:
        self.cancelled = True
        self.ended.set()


class Capture:
    """A take being recorded on an `AudioEngine`: mono, `frames` long."""

    def __init__(self, start_seconds: float, frames: int) -> None:
        self.take = np.zeros(frames, dtype=np.float32)
        self.pin = StartPin(start_seconds)
        self.filled = 0
        self.ended = threading.Event()
        self.cancelled = False

    def stop(self) -> None:
        self.cancelled = True
        self.ended.set()


class AudioEngine:
    """One stream (duplex when an input device is given) that plays scheduled voices and
    fills takes. Sounds on one stream share one clock mapping, so a take and a clip pinned to
    the same moment line up to the frame, whatever the device clock does.

        engine = AudioEngine(output, input_device, clock=time.monotonic)
        voice = engine.play(clip, start_seconds=t)
        capture = engine.capture(start_seconds=t + latency, frames=96000)
        capture.ended.wait(); engine.close()
    """

    def __init__(
        self,
        output: DeviceInfo,
        input_device: DeviceInfo | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._sd = _sounddevice()
        self.output = output
        self.input = input_device
        self.sample_rate = round(output.default_sample_rate)
        self.channels = min(max(output.output_channels, 1), 2)
        self._clock = clock
        self._stream_clock = StreamClock()
        self._out_frames = FrameClock(self.sample_rate, self._stream_clock)
        self._in_frames = FrameClock(self.sample_rate, self._stream_clock)
        self._frames_done = 0
        self._lock = threading.Lock()
        self._voices: list[Voice] = []
        self._captures: list[Capture] = []
        self._closed = threading.Event()
        self._mix = np.zeros((BLOCK_FRAMES, self.channels), dtype=np.float32)
        self._stream = self._open()
        self._follower = threading.Thread(
            target=self._follow_clock, name="jasco-audio-clock", daemon=True
        )
        self._follower.start()

    def _open(self) -> Any:
        sd = self._sd
        duplex = self.input is not None
        try:
            if duplex:
                stream = sd.Stream(
                    device=(self.input.index, self.output.index),  # type: ignore[union-attr]
                    samplerate=self.sample_rate,
                    channels=(1, self.channels),
                    dtype="float32",
                    blocksize=BLOCK_FRAMES,
                    callback=self._callback,
                )
            else:
                stream = sd.OutputStream(
                    device=self.output.index,
                    samplerate=self.sample_rate,
                    channels=self.channels,
                    dtype="float32",
                    blocksize=BLOCK_FRAMES,
                    callback=lambda out, frames, times, status: self._callback(
                        None, out, frames, times, status
                    ),
                )
            stream.start()
        except (sd.PortAudioError, ValueError) as exc:
            names = repr(self.output.name)
            if duplex:
                names = f"{self.input.name!r} (in) and {names} (out)"  # type: ignore[union-attr]
            raise AudioDeviceError(
                f"audio device {names} cannot be opened at {self.sample_rate} Hz ({exc}); "
                f"is another program holding it? {_listing('output')}"
            ) from None
        return stream

    def _follow_clock(self) -> None:
        while not self._closed.wait(0.005):
            readings = []
            for _ in range(5):
                before = self._clock()
                try:
                    now = self._stream.time
                except self._sd.PortAudioError:
                    return
                readings.append((before, now, self._clock()))
            self._stream_clock.observe(readings)

    def _callback(
        self, indata: np.ndarray | None, outdata: np.ndarray, frames: int, times: Any, status: Any
    ) -> None:
        first = self._frames_done
        self._frames_done += frames
        self._out_frames.observe_buffer(times.outputBufferDacTime, first)
        outdata.fill(0.0)
        mix = self._mix[:frames] if frames <= len(self._mix) else np.zeros_like(outdata)
        with self._lock:
            voices, captures = list(self._voices), list(self._captures)
        for voice in voices:
            if voice.cancelled:
                continue
            if fill_from(
                mix, voice.sound, voice.pin.index(self._out_frames, first), voice.loop_frames
            ):
                voice.ended.set()
            outdata += mix
        if indata is not None and captures:
            self._in_frames.observe_buffer(times.inputBufferAdcTime, first)
            for capture in captures:
                if capture.cancelled:
                    continue
                index = capture.pin.index(self._in_frames, first)
                capture.filled = take_from(indata[:, 0], index, capture.take)
                if capture.filled >= len(capture.take):
                    capture.ended.set()
        elif indata is not None:
            self._in_frames.observe_buffer(times.inputBufferAdcTime, first)
        with self._lock:
            self._voices = [v for v in self._voices if not v.ended.is_set()]
            self._captures = [c for c in self._captures if not c.ended.is_set()]

    def play(
        self, sound: np.ndarray, start_seconds: float, loop_frames: int | None = None
    ) -> Voice:
        """Schedule `sound` (`[frames]` or `[frames, channels]` at the engine's rate)."""
        clip = sound.reshape(len(sound), -1).astype(np.float32)
        if clip.shape[1] != self.channels:
            clip = np.repeat(clip[:, :1], self.channels, axis=1)
        voice = Voice(clip, start_seconds, loop_frames)
        with self._lock:
            self._voices.append(voice)
        return voice

    def capture(self, start_seconds: float, frames: int) -> Capture:
        """Record `frames` mono frames of what the input hears from `start_seconds` on."""
        if self.input is None:
            raise AudioDeviceError(f"no audio input device is open; {_listing('input')}")
        capture = Capture(start_seconds, frames)
        with self._lock:
            self._captures.append(capture)
        return capture

    @property
    def busy(self) -> bool:
        with self._lock:
            return bool(self._voices or self._captures)

    def close(self) -> None:
        self._closed.set()
        with self._lock:
            pending = self._voices + self._captures
            self._voices, self._captures = [], []
        for item in pending:
            item.stop()
        try:
            self._stream.close()
        except self._sd.PortAudioError as exc:
            logger.info("closing the audio stream: %s", exc)


def wait_for_take(capture: Capture, engine: AudioEngine, start_seconds: float, clock) -> np.ndarray:
    """Block until `capture` is full; a device that stops delivering is an error."""
    duration = len(capture.take) / engine.sample_rate
    deadline = max(start_seconds - clock(), 0.0) + duration + 5.0
    if not capture.ended.wait(deadline):
        raise AudioDeviceError(
            f"audio input device {engine.input.name!r} stopped delivering audio; "  # type: ignore[union-attr]
            "check that it is running (and not taken by another program)"
        )
    if capture.cancelled:
        raise AudioDeviceError("the recording was stopped before it was complete")
    return capture.take
