"""Songs beyond midi.limits are refused at once, with errors naming the limit, in bounded memory."""

import tracemalloc

import mido
import pytest

from midi import limits
from midi.errors import (
    MidiLimitError,
    SongTooLongError,
    TooManyMeterChangesError,
    TooManyNotesError,
    TooManyTempoChangesError,
)
from midi.notes import Note, NoteTrack
from midi.recognize import recognize_chords
from midi.smf import read_midi_file
from midi.tempo import TempoMap

_MAX_DELTA = 0x0FFFFFFF  # the largest delta time a MIDI file can hold


def write(path, events, ticks_per_beat=1):
    midi = mido.MidiFile(type=1, ticks_per_beat=ticks_per_beat)
    midi.tracks.append(mido.MidiTrack(events))
    midi.save(path)
    return path


def huge_chord(path):
    """A C major chord held for about 2.7e9 beats: ten maximal delta times."""
    events = [mido.Message("note_on", note=p, velocity=90, time=0) for p in (60, 64, 67)]
    events += [mido.MetaMessage("marker", text="x", time=_MAX_DELTA) for _ in range(10)]
    events += [mido.Message("note_off", note=p, time=0) for p in (60, 64, 67)]
    return write(path, events)


def peak_bytes(action):
    tracemalloc.start()
    try:
        with pytest.raises(MidiLimitError) as caught:
            action()
        return tracemalloc.get_traced_memory()[1], caught.value
    finally:
        tracemalloc.stop()


def test_a_chord_lasting_billions_of_beats_is_refused_without_allocating_for_it(tmp_path):
    path = huge_chord(tmp_path / "huge.mid")
    assert path.stat().st_size < 200
    peak, error = peak_bytes(lambda: read_midi_file(path))
    assert isinstance(error, SongTooLongError)
    assert "MAX_SONG_BEATS" in str(error) and "huge.mid" in str(error)
    assert peak < 20 * 2**20


def test_a_note_left_sounding_to_a_far_track_end_is_refused(tmp_path):
    events = [mido.Message("note_on", note=60, velocity=90, time=0)]
    events += [mido.MetaMessage("marker", text="x", time=_MAX_DELTA)]
    with pytest.raises(SongTooLongError, match="a note left sounding"):
        read_midi_file(write(tmp_path / "stuck.mid", events))


def test_a_song_too_long_in_seconds_is_refused(tmp_path):
    # 40,000 beats (under the beat cap) at 3.75 bpm is 178 hours.
    events = [
        mido.MetaMessage("set_tempo", tempo=16_000_000, time=0),
        mido.Message("note_on", note=60, velocity=90, time=0),
        mido.Message("note_off", note=60, time=40_000),
    ]
    with pytest.raises(SongTooLongError, match="MAX_SONG_SECONDS"):
        read_midi_file(write(tmp_path / "slow.mid", events))


def test_tempo_and_meter_change_counts_are_capped(tmp_path, monkeypatch):
    monkeypatch.setattr(limits, "MAX_TEMPO_CHANGES", 5)
    monkeypatch.setattr(limits, "MAX_METER_CHANGES", 5)
    tempos = [mido.MetaMessage("set_tempo", tempo=500_000 + i, time=1) for i in range(6)]
    with pytest.raises(TooManyTempoChangesError, match="MAX_TEMPO_CHANGES"):
        read_midi_file(write(tmp_path / "tempos.mid", tempos))
    meters = [
        mido.MetaMessage("time_signature", numerator=3 + i % 2, denominator=4, time=4)
        for i in range(6)
    ]
    with pytest.raises(TooManyMeterChangesError, match="MAX_METER_CHANGES"):
        read_midi_file(write(tmp_path / "meters.mid", meters))


def test_total_notes_are_capped_while_reading(tmp_path, monkeypatch):
    monkeypatch.setattr(limits, "MAX_NOTES", 10)
    events = []
    for i in range(11):
        events += [
            mido.Message("note_on", note=60 + i, velocity=90, time=0),
            mido.Message("note_off", note=60 + i, time=1),
        ]
    with pytest.raises(TooManyNotesError, match="MAX_NOTES"):
        read_midi_file(write(tmp_path / "notes.mid", events))


def test_widely_spaced_meter_changes_cost_memory_by_length_not_by_claims(tmp_path):
    # Meter changes every 5,000 beats, one far beyond the music, and a short song: the grid
    # follows the notes.
    events = []
    for i in range(8):
        events.append(
            mido.MetaMessage("time_signature", numerator=3 + i % 3, denominator=4, time=5_000)
        )
    events.append(mido.MetaMessage("time_signature", numerator=7, denominator=8, time=_MAX_DELTA))
    song = read_midi_file(write(tmp_path / "meters.mid", events))
    track = NoteTrack("pad", [Note(p, 0.0, 16.0) for p in (48, 64, 67)])
    tracemalloc.start()
    try:
        chords = recognize_chords(track, song.tempo_map)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert [str(c.chord) for c in chords] == ["C"]
    assert peak < 20 * 2**20


def test_one_note_held_for_most_of_the_cap_takes_memory_for_its_sound_only():
    # 20,000 beats of one held chord: the grid is the song's length, the profile rows stop
    # where the decay makes the note inaudible.
    track = NoteTrack("pad", [Note(p, 0.0, 20_000.0) for p in (48, 52, 55)])
    tracemalloc.start()
    try:
        chords = recognize_chords(track, TempoMap.constant(240))
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert str(chords[0].chord) == "C"
    assert peak < 200 * 2**20


def test_recognition_refuses_tracks_beyond_the_limits():
    track = NoteTrack("pad", [Note(60, 0.0, limits.MAX_SONG_BEATS + 1.0)])
    with pytest.raises(SongTooLongError, match="MAX_SONG_BEATS"):
        recognize_chords(track, TempoMap.constant(120))
