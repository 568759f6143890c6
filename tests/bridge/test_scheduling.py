"""Sample-exact starts: pinning a start time to a frame, and filling buffers from it."""

import numpy as np
import pytest

from jasco_bridge.scheduling import FrameSchedule, StreamClock, fill_from, take_from

RATE = 1000  # one frame per millisecond keeps the arithmetic readable


def test_stream_clock_takes_the_tightest_bracket():
    clock = StreamClock()
    assert clock.offset is None
    clock.observe([(10.0, 2.0, 10.2), (10.3, 2.31, 10.302), (10.5, 2.0, 11.0)])
    assert clock.offset == pytest.approx(10.301 - 2.31)


def drive(schedule, offset, buffer_times, frames, jitter=()):
    schedule.clock.offset = offset
    jitter = list(jitter) + [0.0] * len(buffer_times)
    return [schedule.locate(t + j, frames) for t, j in zip(buffer_times, jitter, strict=False)]


def test_start_is_pinned_to_the_frame_it_falls_on():
    # stream time t is daemon time t + 100; buffers of 10 frames (10 ms)
    schedule = FrameSchedule(start_seconds=100.5, sample_rate=RATE, lock_ahead_seconds=0.05)
    times = [0.4 + i * 0.01 for i in range(20)]
    indices = drive(schedule, 100.0, times, 10)
    assert indices[:5] == [None] * 5  # 0.4 .. 0.44: more than 50 ms ahead
    assert schedule.locked
    # the buffer at stream time 0.5 starts exactly on the clip's first frame
    assert indices[10] == 0
    assert indices[11] == 10


def test_late_callbacks_do_not_move_the_start():
    steady = FrameSchedule(100.5, RATE, lock_ahead_seconds=0.05)
    late = FrameSchedule(100.5, RATE, lock_ahead_seconds=0.05)
    times = [0.4 + i * 0.01 for i in range(20)]
    a = drive(steady, 100.0, times, 10)
    b = drive(late, 100.0, times, 10, jitter=[0.0, 0.004, 0.002, 0.007, 0.003, 0.006])
    assert a[10:] == b[10:]


def test_nothing_is_pinned_before_the_clock_is_read():
    schedule = FrameSchedule(0.0, RATE)
    assert schedule.locate(5.0, 10) is None
    assert not schedule.locked


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
