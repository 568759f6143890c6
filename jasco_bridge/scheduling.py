"""Sample-exact starts on an audio stream: the daemon's clock mapped onto the stream's frames.

Pure arithmetic, called from the audio callback (`jasco_bridge.audio`). A sound card's clock is
not the computer's: it drifts (JACK's dummy driver by several percent, and unevenly), and an
audio callback in Python may wait for the interpreter lock before it can look at the time. So
the offset between the two clocks is measured outside the callback, by reading the stream's
clock between two readings of the daemon's (`StreamClock.observe`, the tightest bracket of a few
wins), again and again until the start is near; the callback then pins the start to one frame
number of the stream (`FrameSchedule.locate`). From there on frames are counted, never timed,
so a clip plays (or a take records) without a gap or a doubled sample.

    schedule = FrameSchedule(start_seconds=t, sample_rate=48000)
    schedule.clock.observe(before, stream.time, after)     # a thread, every few milliseconds
    # in each callback, for a buffer of `frames` frames whose first frame sounds at
    # stream time `buffer_time`:
    index = schedule.locate(buffer_time, frames)
    # index: position in the clip of the buffer's first frame (negative = not yet), or None
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


class FrameSchedule:
    """Where in a clip each buffer of a stream falls, for a clip starting at `start_seconds`."""

    def __init__(
        self,
        start_seconds: float,
        sample_rate: int,
        lock_ahead_seconds: float = LOCK_AHEAD_SECONDS,
    ) -> None:
        self.start_seconds = start_seconds
        self.sample_rate = sample_rate
        self._lock_ahead = lock_ahead_seconds
        self.clock = StreamClock()
        self._frames_seen = 0
        self._start_frame: int | None = None
        self._zero: float | None = None

    @property
    def locked(self) -> bool:
        return self._start_frame is not None

    def locate(self, buffer_stream_time: float, frames: int) -> int | None:
        """Clip index of this buffer's first frame (negative: the clip starts later in it or
        after it), or None while the start is too far away to pin (or the clock not read)."""
        first = self._frames_seen
        self._frames_seen += frames
        if self._start_frame is None:
            # The stream clock counts the same frames, but each buffer's time is read when its
            # callback runs, a little late by a varying amount: the earliest is the truest.
            zero = buffer_stream_time - first / self.sample_rate
            self._zero = zero if self._zero is None else min(self._zero, zero)
            offset = self.clock.offset
            if offset is None:
                return None
            start_stream = self.start_seconds - offset
            if start_stream - (self._zero + first / self.sample_rate) > self._lock_ahead:
                return None
            self._start_frame = round((start_stream - self._zero) * self.sample_rate)
        return first - self._start_frame


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
