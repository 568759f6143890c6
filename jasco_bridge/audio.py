"""The sound card edge: list devices, play a clip from a given moment, record a take.

The only module that talks to PortAudio (through `sounddevice`, the optional extra `audio`).
Everything here blocks or runs in PortAudio's callback thread; the daemon calls it from worker
threads, never from its event loop. Timing arithmetic lives in `jasco_bridge.scheduling`.

    devices = list_devices()
    with Playback(audio, 48000, device="system", start_seconds=t, loop_frames=None) as playback:
        playback.wait()
    take = record(device="system", start_seconds=t, frames=96000, sample_rate=48000,
                  latency_seconds=0.004)
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Literal

import numpy as np

from jasco_bridge.errors import BridgeError
from jasco_bridge.scheduling import FrameSchedule, fill_from, take_from

Direction = Literal["input", "output"]
BLOCK_FRAMES = 256


class AudioDeviceError(BridgeError):
    """A sound device is missing, busy or refused the stream; the message lists the devices."""


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


def _open(
    direction: Direction,
    device: DeviceInfo,
    sample_rate: int,
    channels: int,
    callback: Callable[..., None],
    finished: Callable[[], None],
) -> Any:
    sd = _sounddevice()
    kind = sd.OutputStream if direction == "output" else sd.InputStream
    try:
        stream = kind(
            device=device.index,
            samplerate=sample_rate,
            channels=channels,
            dtype="float32",
            blocksize=BLOCK_FRAMES,
            callback=callback,
            finished_callback=finished,
        )
        stream.start()
    except (sd.PortAudioError, ValueError) as exc:
        raise AudioDeviceError(
            f"audio {direction} device {device.name!r} cannot be opened at {sample_rate} Hz "
            f"({exc}); is another program holding it? {_listing(direction)}"
        ) from None
    return stream


def _follow_clock(
    stream: Any, schedule: FrameSchedule, clock: Callable[[], float], ended: threading.Event
) -> None:
    """Measure the stream's clock against `clock` until the callback has pinned the start."""
    while not schedule.locked and not ended.is_set():
        readings = []
        for _ in range(5):
            before = clock()
            now = stream.time
            readings.append((before, now, clock()))
        schedule.clock.observe(readings)
        ended.wait(0.005)


class Playback:
    """A clip (`[frames]` or `[frames, channels]`) playing from `start_seconds` on the daemon's
    clock, once or looping every `loop_frames`; `stop()` ends it early."""

    def __init__(
        self,
        audio: np.ndarray,
        sample_rate: int,
        *,
        device: DeviceInfo,
        start_seconds: float,
        loop_frames: int | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        clip = audio.reshape(len(audio), -1).astype(np.float32)
        channels = min(max(device.output_channels, 1), 2)
        if clip.shape[1] != channels:
            clip = np.repeat(clip[:, :1], channels, axis=1)
        self._clip = clip
        self._loop_frames = loop_frames
        self._clock = clock
        self._schedule = FrameSchedule(start_seconds, sample_rate)
        self._ended = threading.Event()
        self._stopping = False
        self._sd = _sounddevice()
        self._stream = _open(
            "output", device, sample_rate, channels, self._callback, self._ended.set
        )
        threading.Thread(
            target=_follow_clock,
            args=(self._stream, self._schedule, clock, self._ended),
            name="jasco-playback-clock",
            daemon=True,
        ).start()

    def _callback(self, outdata: np.ndarray, frames: int, times: Any, status: Any) -> None:
        if self._stopping:
            outdata.fill(0.0)
            raise self._sd.CallbackStop
        index = self._schedule.locate(times.outputBufferDacTime, frames)
        if fill_from(outdata, self._clip, index, self._loop_frames):
            raise self._sd.CallbackStop

    def wait(self, timeout_seconds: float | None = None) -> bool:
        """Block until the clip ended or was stopped; False on timeout."""
        return self._ended.wait(timeout_seconds)

    def stop(self) -> None:
        self._stopping = True
        self._ended.wait(1.0)
        self._stream.close()

    def __enter__(self) -> Playback:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()


def record(
    *,
    device: DeviceInfo,
    start_seconds: float,
    frames: int,
    sample_rate: int,
    latency_seconds: float = 0.0,
    clock: Callable[[], float] = time.monotonic,
    should_stop: Callable[[], bool] = lambda: False,
) -> np.ndarray:
    """Mono `[frames]` of what sounded from `start_seconds` on, at the input of `device`.

    `latency_seconds` is the part of the input latency the driver does not report (measured
    with `jasco-bridge latency`): the sound of time t is taken from the frames stamped
    t + latency_seconds, so the take sits on the grid.
    """
    take = np.zeros(frames, dtype=np.float32)
    schedule = FrameSchedule(start_seconds + latency_seconds, sample_rate)
    full = threading.Event()
    sd = _sounddevice()

    def callback(indata: np.ndarray, count: int, times: Any, status: Any) -> None:
        if should_stop():
            raise sd.CallbackAbort
        index = schedule.locate(times.inputBufferAdcTime, count)
        if take_from(indata[:, 0], index, take) >= frames:
            raise sd.CallbackStop

    stream = _open("input", device, sample_rate, 1, callback, full.set)
    try:
        _follow_clock(stream, schedule, clock, full)
        duration = frames / sample_rate
        deadline = max(start_seconds + latency_seconds - clock(), 0.0) + duration + 5.0
        if not full.wait(deadline):
            raise AudioDeviceError(
                f"audio input device {device.name!r} stopped delivering audio; "
                "check that it is running (and not taken by another program)"
            )
    finally:
        stream.close()
    if should_stop():
        raise AudioDeviceError("the recording was stopped before it was complete")
    return take
