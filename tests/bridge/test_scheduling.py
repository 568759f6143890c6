"""Sample-exact starts: pinning a start time to a frame, and filling buffers from it."""

import numpy as np
import pytest

from jasco_bridge.scheduling import FrameClock, StartPin, StreamClock, fill_from, take_from

RATE = 1000  # one frame per millisecond keeps the arithmetic readable


def test_stream_clock_takes_the_tightest_bracket():
    clock = StreamClock()
    assert clock.offset is None
    clock.observe([(10.0, 2.0, 10.2), (10.3, 2.31, 10.302), (10.5, 2.0, 11.0)])
    assert clock.offset == pytest.approx(10.301 - 2.31)


def frames_at(offset: float) -> FrameClock:
    clock = StreamClock()
    clock.offset = offset
    return FrameClock(RATE, clock)


def test_a_start_is_pinned_to_the_frame_it_falls_on_once_near():
    # stream time t is daemon time t + 100; buffers of 10 frames, frame 0 sounds at 0.4
    frames = frames_at(100.0)
    pin = StartPin(start_seconds=100.5, lock_ahead_seconds=0.05)
    indices = []
    for buffer in range(20):
        first = buffer * 10
        frames.observe_buffer(0.4 + first / RATE, first)
        indices.append(pin.index(frames, first))
    assert indices[:5] == [None] * 5  # more than 50 ms ahead
    assert pin.frame == 100
    assert indices[10] == 0 and indices[11] == 10


def test_late_callbacks_do_not_move_the_start():
    steady, late = frames_at(100.0), frames_at(100.0)
    for buffer, lateness in enumerate([0.0, 0.004, 0.002, 0.007, 0.003, 0.006]):
        first = buffer * 10
        steady.observe_buffer(0.4 + first / RATE, first)
        late.observe_buffer(0.4 + first / RATE + lateness, first)
    assert steady.frame_at(100.5) == late.frame_at(100.5) == 100


def test_nothing_is_pinned_before_the_clocks_are_read():
    frames = FrameClock(RATE, StreamClock())
    frames.observe_buffer(5.0, 0)
    assert StartPin(0.0).index(frames, 0) is None


def test_fill_from_plays_the_clip_then_silence():
    clip = np.arange(1, 6, dtype=np.float32).reshape(-1, 1)
    out = np.ones((4, 1), dtype=np.float32)
    assert not fill_from(out, clip, -2)
    assert out[:, 0].tolist() == [0, 0, 1, 2]
    assert fill_from(out, clip, 2)
    assert out[:, 0].tolist() == [3, 4, 5, 0]


def test_fill_from_loops_every_loop_frames():
    clip = np.array([[1.0], [2.0], [3.0]], dtype=np.float32)
    out = np.zeros((8, 1), dtype=np.float32)
    assert not fill_from(out, clip, 0, loop_frames=4)
    assert out[:, 0].tolist() == [1, 2, 3, 0, 1, 2, 3, 0]


def test_take_from_copies_only_the_take_window():
    take = np.zeros(5, dtype=np.float32)
    assert take_from(np.array([9, 9, 1, 2], dtype=np.float32), -2, take) == 2
    assert take_from(np.array([3, 4, 5, 6], dtype=np.float32), 2, take) == 5
    assert take.tolist() == [1, 2, 3, 4, 5]
