"""Sample-exact starts on an audio stream: the daemon's clock mapped onto the stream's frames.

Pure arithmetic, called from the audio callback (`jasco_bridge.audio`). A sound card's clock is
not the computer's: it drifts (JACK's dummy driver by several percent, and unevenly), and an
audio callback in Python may wait for the interpreter lock before it can look at the time. So
the offset between the two clocks is measured outside the callback, by reading the stream's
clock between two readings of the daemon's (`StreamClock.observe`, the tightest bracket of a few
wins), again and again while the stream runs; each buffer tells `FrameClock` when its first
frame sounds; a `StartPin` turns a start time into one frame number once the start is near.
From there on frames are counted, never timed, so a clip plays (or a take records) without a
gap or a doubled sample, and sounds pinned on one stream keep their distance exactly.

    clock = StreamClock()
    output = FrameClock(48000, clock)
    clock.observe(readings)                       # a thread, every few milliseconds
    output.observe_buffer(dac_time, first_frame)  # each callback
    index = StartPin(start_seconds).index(output, first_frame)
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

# Pin the start this long before it is due: the clocks drift apart less in that time than a
# millisecond, and the pinned frame must not have gone by already (one buffer at most).
LOCK_AHEAD_SECONDS = 0.05


class StreamClock:
    """Offset between the daemon's clock and a stream's clock (None until observed)."""

    def __init__(self) -> None:
        self.offset: float | None = None

    def observe(self, readings: Sequence[tuple[float, float, float]]) -> None:
        """Readings of (daemon clock before, stream clock, daemon clock after); the one with
        the smallest gap sets the offset (the stream was read at the middle of the gap)."""
        before, stream, after = min(readings, key=lambda r: r[2] - r[0])
        self.offset = (before + after) / 2 - stream


class FrameClock:
    """The frames of one direction of a stream (output or input) on the daemon's clock."""

    def __init__(self, sample_rate: int, clock: StreamClock) -> None:
        self.sample_rate = sample_rate
        self.clock = clock
        self._zero: float | None = None

    def observe_buffer(self, buffer_stream_time: float, first_frame: int) -> None:
        """A buffer's first frame sounds (or was heard) at `buffer_stream_time`."""
        # The stream clock counts the same frames, but each buffer's time is read when its
        # callback runs, a little late by a varying amount: the earliest is the truest.
        zero = buffer_stream_time - first_frame / self.sample_rate
        self._zero = zero if self._zero is None else min(self._zero, zero)

    def frame_at(self, seconds: float) -> int | None:
        """The frame sounding at daemon time `seconds`, or None before both clocks are read."""
        offset = self.clock.offset
        if offset is None or self._zero is None:
            return None
        return round((seconds - offset - self._zero) * self.sample_rate)


class StartPin:
    """A sound (or take) starting at `start_seconds`, pinned to a frame once that is near."""

    def __init__(self, start_seconds: float, lock_ahead_seconds: float = LOCK_AHEAD_SECONDS):
        self.start_seconds = start_seconds
        self._lock_ahead = lock_ahead_seconds
        self.frame: int | None = None

    def index(self, frames: FrameClock, first_frame: int) -> int | None:
        """Position in the sound of the buffer starting at `first_frame` (negative: the sound
        starts later), or None while the start is too far away to pin."""
        if self.frame is None:
            frame = frames.frame_at(self.start_seconds)
            if frame is None or frame - first_frame > self._lock_ahead * frames.sample_rate:
                return None
            self.frame = frame
        return first_frame - self.frame


def fill_from(
    out: np.ndarray, clip: np.ndarray, index: int | None, loop_frames: int | None = None
) -> bool:
    """Write the clip frames `index ..` into `out` (`[frames, channels]`, zeros elsewhere).

    `clip` is `[frames, channels]`. With `loop_frames` the clip repeats every that many frames
    (its bars), forever. Returns True when the clip has ended (never while looping).
    """
    out.fill(0.0)
    if index is None:
        return False
    frames = len(out)
    length = len(clip)
    positions = np.arange(index, index + frames)
    if loop_frames:
        playing = positions >= 0
        source = np.mod(positions, loop_frames)
        playing &= source < length
    else:
        playing = (positions >= 0) & (positions < length)
        source = positions
    out[playing] = clip[source[playing]]
    return loop_frames is None and index + frames >= length


def take_from(buffer: np.ndarray, index: int | None, take: np.ndarray) -> int:
    """Copy the part of an input `buffer` that falls inside `take` (index = the buffer's first
    frame in the take); returns how many take frames are filled after this buffer."""
    if index is None:
        return 0
    begin, end = max(index, 0), min(index + len(buffer), len(take))
    if begin < end:
        take[begin:end] = buffer[begin - index : end - index]
    return max(min(index + len(buffer), len(take)), 0)
