"""Every value object of `midi` takes the same numbers: finite reals, numpy scalars included, no bools."""

import numpy as np
import pytest

from midi.checks import is_finite_number, is_whole_number
from midi.chords import Chord, TimedChord
from midi.errors import NoteError, TempoMapError
from midi.frames import beat_seconds_in_window, chord_frames
from midi.notes import Note, NoteTrack
from midi.tempo import TempoMap


@pytest.mark.parametrize("value", [0, 1.5, -2, np.float32(2.5), np.int64(3)])
def test_finite_reals_are_numbers(value):
    assert is_finite_number(value)


@pytest.mark.parametrize("value", [True, False, "1", None, float("nan"), float("inf"), 1j])
def test_bools_text_nan_and_infinity_are_not(value):
    assert not is_finite_number(value)


@pytest.mark.parametrize("value", [0, 127, np.int64(60), np.uint8(9)])
def test_integers_are_whole_numbers(value):
    assert is_whole_number(value)


@pytest.mark.parametrize("value", [True, 60.0, "60", None, np.float64(60)])
def test_bools_floats_and_text_are_not_whole_numbers(value):
    assert not is_whole_number(value)


def test_a_bool_is_not_a_track_index_nor_a_channel():
    with pytest.raises(NoteError, match="track index must be a 0-based integer or None, got True"):
        NoteTrack("keys", (), index=True)
    with pytest.raises(NoteError, match="track channel must be 0..15 or None, got False"):
        NoteTrack("keys", (), channel=False)


def test_a_bool_is_not_a_beat():
    with pytest.raises(NoteError, match="start_beat must be a finite number of beats, got True"):
        Note(60, True, 2.0)


def test_a_numpy_beat_makes_a_timed_chord():
    timed = TimedChord(np.float32(0.0), np.float32(4.0), Chord(0, "maj"))
    assert timed.length_beats == 4.0


def test_window_numbers_that_are_not_numbers_raise_tempo_map_errors():
    with pytest.raises(TempoMapError, match="duration_seconds must be positive, got '10'"):
        beat_seconds_in_window(TempoMap.constant(120), 0.0, "10")
    with pytest.raises(TempoMapError, match="window_start_seconds"):
        chord_frames([], False, n_frames=3, fill_index=0)
