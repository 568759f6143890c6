import math
import random

import pytest

from midi.errors import NoteError, TempoMapError
from midi.notes import Note, NoteTrack, pitch_name, pitch_number
from midi.tempo import BarBeat, TempoChange, TempoMap, TimeSignature


def changing_map() -> TempoMap:
    """4/4 at 120, 96 bpm and 3/4 from bar 5, 6/8 at 140 bpm from bar 9, 70 bpm mid-bar 10."""
    return (
        TempoMap.constant(120)
        .with_tempo_change(16.0, 96)
        .with_time_signature(16.0, 3, 4)
        .with_time_signature(28.0, 6, 8)
        .with_tempo_change(28.0, 140)
        .with_tempo_change(32.5, 70)
    )


def test_seconds_follow_each_tempo_segment():
    tempo_map = changing_map()
    assert tempo_map.seconds_at(0.0) == 0.0
    assert tempo_map.seconds_at(16.0) == pytest.approx(8.0)
    assert tempo_map.seconds_at(28.0) == pytest.approx(8.0 + 12 * 60 / 96)
    expected = 8.0 + 12 * 60 / 96 + 4.5 * 60 / 140 + 2.0 * 60 / 70
    assert tempo_map.seconds_at(34.5) == pytest.approx(expected, abs=1e-12)


def test_beats_to_seconds_to_beats_round_trip_across_changes():
    tempo_map = changing_map()
    rng = random.Random(7)
    for _ in range(2000):
        beat = rng.uniform(0.0, 200.0)
        assert tempo_map.beat_at(tempo_map.seconds_at(beat)) == pytest.approx(beat, abs=1e-9)
        seconds = rng.uniform(0.0, 100.0)
        assert tempo_map.seconds_at(tempo_map.beat_at(seconds)) == pytest.approx(seconds, abs=1e-9)


def test_change_points_map_exactly_both_ways():
    tempo_map = changing_map()
    for change in tempo_map.tempos:
        seconds = tempo_map.seconds_at(change.beat)
        assert tempo_map.beat_at(seconds) == pytest.approx(change.beat, abs=1e-12)


def test_bar_positions_across_4_4_then_3_4_then_6_8():
    tempo_map = changing_map()
    assert tempo_map.position_at(0.0) == BarBeat(1, 1.0)
    assert tempo_map.position_at(15.0) == BarBeat(4, 4.0)
    assert tempo_map.position_at(16.0) == BarBeat(5, 1.0)
    assert tempo_map.position_at(19.5) == BarBeat(6, 1.5)
    assert tempo_map.position_at(28.0) == BarBeat(9, 1.0)
    # 6/8 counts eighths: half a quarter note per beat, six per bar of 3.0 quarter notes.
    assert tempo_map.position_at(29.0) == BarBeat(9, 3.0)
    assert tempo_map.position_at(31.5) == BarBeat(10, 2.0)
    assert [tempo_map.bar_start_beat(bar) for bar in (1, 4, 5, 8, 9, 10, 11)] == [
        0.0,
        12.0,
        16.0,
        25.0,
        28.0,
        31.0,
        34.0,
    ]
    assert tempo_map.beats_per_bar_at(30.0) == 3.0
    assert tempo_map.beats_per_bar_at(17.0) == 3.0
    assert tempo_map.beats_per_bar_at(3.0) == 4.0


def test_bar_window_spans_a_meter_change():
    tempo_map = changing_map()
    assert tempo_map.bar_window(3, 4) == (8.0, 22.0)
    assert tempo_map.bar_window(8, 2) == (25.0, 31.0)


def test_position_and_beat_of_are_inverse():
    tempo_map = changing_map()
    for beat in (0.0, 3.25, 16.0, 27.5, 28.0, 33.0, 50.5):
        position = tempo_map.position_at(beat)
        assert tempo_map.beat_of(position.bar, position.beat) == pytest.approx(beat)


def test_downbeats_and_beat_grid_restart_at_meter_changes():
    tempo_map = changing_map()
    assert tempo_map.downbeats(10.0, 35.0) == (12.0, 16.0, 19.0, 22.0, 25.0, 28.0, 31.0, 34.0)
    assert tempo_map.beat_grid(14.0, 18.0) == (14.0, 15.0, 16.0, 17.0)
    assert tempo_map.beat_grid(27.0, 29.6) == (27.0, 28.0, 28.5, 29.0, 29.5)
    assert tempo_map.beat_grid(1.5, 1.6) == ()


def test_meter_off_a_bar_line_starts_a_new_bar():
    tempo_map = TempoMap((), (TimeSignature(0.0, 4, 4), TimeSignature(6.0, 3, 4)))
    assert tempo_map.bar_start_beat(2) == 4.0
    assert tempo_map.bar_start_beat(3) == 6.0
    assert tempo_map.position_at(5.0) == BarBeat(2, 2.0)
    assert tempo_map.downbeats(0.0, 12.0) == (0.0, 4.0, 6.0, 9.0)


def test_with_time_signature_refuses_a_beat_inside_a_bar():
    with pytest.raises(TempoMapError, match=r"inside bar 2.*beat 4 or 8"):
        TempoMap.constant(120).with_time_signature(6.0, 3, 4)


def test_defaults_are_120_bpm_in_4_4():
    tempo_map = TempoMap()
    assert tempo_map.seconds_at(4.0) == 2.0
    assert tempo_map.meter_at(0.0) == TimeSignature(0.0, 4, 4)
    late_first_tempo = TempoMap((TempoChange(8.0, 60),))
    assert late_first_tempo.seconds_at(10.0) == 4.0 + 2.0


def test_with_tempo_change_replaces_a_change_on_the_same_beat_and_keeps_the_original():
    original = TempoMap.constant(100)
    changed = original.with_tempo_change(0.0, 50).with_tempo_change(4.0, 200)
    assert changed.tempos == (TempoChange(0.0, 50.0), TempoChange(4.0, 200.0))
    assert original.bpm_at(10.0) == 100.0
    assert changed.bpm_at(10.0) == 200.0


@pytest.mark.parametrize("bpm", [0, -5, 1001, math.nan, math.inf])
def test_tempo_out_of_range_names_the_value(bpm):
    with pytest.raises(TempoMapError, match=r"tempo"):
        TempoMap.constant(bpm)


@pytest.mark.parametrize("denominator", [0, 3, 6, 12])
def test_time_signature_denominator_must_be_a_power_of_two(denominator):
    with pytest.raises(TempoMapError, match=rf"power of two.*got {denominator}"):
        TimeSignature(0.0, 4, denominator)


def test_duplicate_changes_on_one_beat_are_refused():
    with pytest.raises(TempoMapError, match="two tempo changes at beat 4"):
        TempoMap((TempoChange(4.0, 90), TempoChange(4.0, 100)))


@pytest.mark.parametrize("bar", [0, -1, 1.5, "3"])
def test_bars_are_whole_and_one_based(bar):
    with pytest.raises(TempoMapError, match="1-based"):
        TempoMap.constant(120).bar_start_beat(bar)


def test_repr_evaluates_back_and_str_speaks_musician():
    tempo_map = changing_map()
    assert eval(repr(tempo_map)) == tempo_map  # noqa: S307 - the contract under test
    assert (
        str(TempoMap.constant(120).with_tempo_change(64.0, 96)) == "120 bpm 4/4; 96 bpm from bar 17"
    )
    assert str(tempo_map) == (
        "120 bpm 4/4; 96 bpm 3/4 from bar 5; 140 bpm 6/8 from bar 9; 70 bpm from bar 10 beat 4"
    )


def test_note_names_round_trip_over_the_whole_range():
    for pitch in range(128):
        assert pitch_number(pitch_name(pitch)) == pitch
    assert pitch_name(60) == "C4"
    assert pitch_number("Db4") == 61
    assert pitch_number("B#3") == 60


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"pitch": 128, "start_beat": 0.0, "end_beat": 1.0}, "0..127"),
        ({"pitch": -1, "start_beat": 0.0, "end_beat": 1.0}, "0..127"),
        ({"pitch": 60, "start_beat": 1.0, "end_beat": 1.0}, "not after its start"),
        ({"pitch": 60, "start_beat": 2.0, "end_beat": 1.0}, "not after its start"),
        ({"pitch": 60, "start_beat": 0.0, "end_beat": 1.0, "channel": 16}, "channel"),
    ],
)
def test_note_rejects_impossible_values(kwargs, message):
    with pytest.raises(NoteError, match=message):
        Note(**kwargs)


def test_note_track_sorts_its_notes_and_reports_its_content():
    track = NoteTrack("keys", [Note(67, 2.0, 3.0), Note(60, 0.0, 4.0), Note(64, 0.0, 2.0)])
    assert [note.pitch for note in track.notes] == [60, 64, 67]
    assert track.duration_beats == 4.0
    assert track.pitch_classes() == frozenset({0, 4, 7})
    assert track.pitch_range() == (60, 67)
    assert [note.pitch for note in track.notes_between(2.0, 2.5)] == [60, 67]


def test_numpy_numbers_are_accepted_and_stored_as_python_numbers():
    import numpy as np

    note = Note(np.int64(60), np.float32(0.5), np.float64(1.0), np.int16(90), np.uint8(3))
    assert repr(note) == "Note(pitch=60, start_beat=0.5, end_beat=1.0, velocity=90, channel=3)"
    tempo_map = TempoMap.constant(np.float64(90.0), np.int64(3), np.int32(4))
    assert repr(tempo_map.meters) == "(TimeSignature(beat=0.0, numerator=3, denominator=4),)"
    assert tempo_map.seconds_at(np.float32(3.0)) == 2.0


def test_tempo_map_refuses_other_values_in_its_lists():
    with pytest.raises(TempoMapError, match="expected TempoChange values, got 120"):
        TempoMap((120,))


@pytest.mark.parametrize(
    "module", ["notes", "tempo", "smf", "tracks", "timeline", "frames", "drums", "live"]
)
def test_docstring_examples_run(module):
    import doctest
    import importlib

    result = doctest.testmod(importlib.import_module(f"midi.{module}"))
    assert result.failed == 0
