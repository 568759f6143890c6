import numpy as np
import pytest

from midi.errors import TempoMapError
from midi.frames import beat_seconds_in_window, chord_frames, melody_salience
from midi.tempo import TempoMap


def test_chord_change_exactly_on_a_frame_boundary_lands_on_that_frame():
    # 0.3 s is frame 15 at 50 Hz; 0.1 + 0.2 is 0.30000000000000004 in floats and must count too.
    segments = [(0.0, 0.1 + 0.2, 1), (0.1 + 0.2, 0.6, 2)]
    frames = chord_frames(segments, 0.0, n_frames=40, fill_index=0)
    assert frames[14] == 1
    assert frames[15] == 2
    assert frames[29] == 2
    assert frames[30] == 0


def test_window_edges_are_exact():
    # Window from 2.0 s: frame 0 is 2.0 s, frame 499 is 11.98 s; the chord ending at 12.0 s
    # covers the last frame, and one starting at 12.0 s is outside the window.
    segments = [(0.0, 2.0, 5), (2.0, 12.0, 6), (12.0, 20.0, 7)]
    frames = chord_frames(segments, 2.0, fill_index=0)
    assert len(frames) == 500
    assert set(frames) == {6}


def test_fill_where_no_chord_sounds():
    frames = chord_frames([(0.1, 0.2, 3)], 0.0, n_frames=15, fill_index=194)
    assert frames == [194] * 5 + [3] * 5 + [194] * 5
    assert chord_frames([], 0.0, n_frames=3, fill_index=0) == [0, 0, 0]


def test_chords_follow_a_tempo_change_without_drift():
    tempo_map = TempoMap.constant(120).with_tempo_change(8.0, 90)
    # One chord per bar for 16 bars; each change must land on the frame nearest its time.
    bar_beats = [tempo_map.bar_start_beat(bar) for bar in range(1, 18)]
    segments = [
        (tempo_map.seconds_at(start), tempo_map.seconds_at(end), i)
        for i, (start, end) in enumerate(zip(bar_beats, bar_beats[1:], strict=False))
    ]
    window_start = tempo_map.seconds_at(4.0)  # bar 2
    frames = chord_frames(segments, window_start, n_frames=2000, fill_index=-1)
    for i, (start, _, _) in enumerate(segments[1:], start=1):
        k = (start - window_start) * 50.0
        first = int(np.ceil(k - 1e-6))
        if 0 < first < 2000:
            assert frames[first] == i
            assert frames[first - 1] == i - 1
    # Bar 4 starts at beat 12 = 4 s + 4 beats at 90 bpm = 6.666.. s; 4.666.. s into the window.
    assert frames[233] == 2 and frames[234] == 3


def test_a_later_chord_replaces_an_overlapping_one():
    frames = chord_frames([(0.0, 1.0, 1), (0.1, 0.2, 2)], 0.0, n_frames=12, fill_index=0)
    assert frames[4:11] == [1] + [2] * 5 + [0]


def test_long_inputs_are_vectorised():
    starts = np.arange(0.0, 3600.0, 0.5)
    segments = [(s, s + 0.5, i % 194) for i, s in enumerate(starts)]
    frames = chord_frames(segments, 1000.0, n_frames=100_000, fill_index=0)
    assert frames[0] == 2000 % 194
    assert frames[25] == 2001 % 194


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"n_frames": -1}, "n_frames"),
        ({"frame_rate_hz": 0.0}, "frame_rate_hz"),
    ],
)
def test_bad_frame_clock_is_refused(kwargs, message):
    with pytest.raises(TempoMapError, match=message):
        chord_frames([], 0.0, fill_index=0, **kwargs)


def test_backwards_segment_is_refused():
    with pytest.raises(TempoMapError, match=r"\(2.0, 1.0, 3\)"):
        chord_frames([(2.0, 1.0, 3)], 0.0, fill_index=0)


def test_melody_salience_marks_the_highest_note_per_frame():
    notes = [(0.0, 0.2, 60), (0.1, 0.3, 67), (0.4, 0.5, 100), (0.5, 0.6, 30)]
    salience = melody_salience(notes, 0.0, n_frames=35)
    assert salience.shape == (53, 35)
    assert salience.dtype == np.float32
    assert (salience.sum(axis=0) <= 1.0).all()
    top_bins = [int(np.argmax(column)) if column.any() else None for column in salience.T]
    assert top_bins[:5] == [60 - 43] * 5
    assert top_bins[5:15] == [67 - 43] * 10
    assert top_bins[15:20] == [None] * 5
    assert top_bins[20:25] == [88 - 43] * 5  # 100 (E7) folded down an octave to E6
    assert top_bins[25:30] == [54 - 43] * 5  # 30 (F#1) folded up two octaves to F#3
    assert top_bins[30:] == [None] * 5


def test_melody_salience_window_offset_and_notes_outside():
    notes = [(9.0, 10.05, 72), (10.05, 10.1, 74), (30.0, 31.0, 76)]
    salience = melody_salience(notes, 10.0, n_frames=10, frame_rate_hz=50.0)
    voiced = salience.any(axis=0)
    assert voiced.tolist() == [True] * 5 + [False] * 5
    assert salience[72 - 43, :3].all() and salience[74 - 43, 3:5].all()


def test_beat_seconds_in_window_are_relative_to_the_window():
    tempo_map = TempoMap.constant(120, 3, 4)
    beats, downbeats = beat_seconds_in_window(tempo_map, 1.25, 2.0)
    assert beats == pytest.approx((0.25, 0.75, 1.25, 1.75))
    assert downbeats == pytest.approx((0.25, 1.75))
