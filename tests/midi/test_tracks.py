import dataclasses

import pytest

from midi.errors import TrackSelectionError
from midi.notes import Note, NoteTrack
from midi.smf import MidiSong, read_midi_file
from midi.tempo import TempoMap
from midi.tracks import choose_chord_track, profile_track

POP909 = ["128", "186", "245", "250", "255", "259", "285", "431", "552", "574", "794", "861"]
NOTTINGHAM = ["jigs126", "reelsa-c62", "waltzes23"]


def block_chords(index: int, name: str = "", channel: int = 0) -> NoteTrack:
    notes = [
        Note(pitch, bar * 4.0, bar * 4.0 + 4.0)
        for bar, root in enumerate([48, 53, 55, 48])
        for pitch in (root, root + 4, root + 7)
    ]
    return NoteTrack(name, notes, index, channel)


def melody(index: int, name: str = "", channel: int = 0) -> NoteTrack:
    notes = [Note(72 + (i % 5), i * 0.5, i * 0.5 + 0.5) for i in range(32)]
    return NoteTrack(name, notes, index, channel)


def drums(index: int) -> NoteTrack:
    notes = [
        Note(pitch, i * 0.5, i * 0.5 + 0.1, 100, 9) for i in range(32) for pitch in (36, 42, 49)
    ]
    return NoteTrack("Drums", notes, index, 9, True)


def song(*tracks: NoteTrack) -> MidiSong:
    return MidiSong(TempoMap.constant(120), tracks, 480, None)


@pytest.mark.parametrize("number", POP909)
def test_pop909_songs_choose_the_piano_track(chords_dev_dir, number):
    choice = choose_chord_track(read_midi_file(chords_dev_dir / f"pop909_{number}.mid"))
    assert choice.track.name == "PIANO"
    assert choice.reason.startswith("track 3 'PIANO'")


@pytest.mark.parametrize("tune", NOTTINGHAM)
def test_nottingham_tunes_choose_the_unnamed_block_chord_track(chords_dev_dir, tune):
    # The dev README counts tracks from 1 ("track 2"); file track index 1 is that block-chord
    # track, and index 0 is the melody on the same channel.
    choice = choose_chord_track(read_midi_file(chords_dev_dir / f"nottingham_{tune}.mid"))
    assert (choice.track.index, choice.track.name, choice.track.channel) == (1, "", 0)


@pytest.mark.parametrize("number", POP909[:4])
def test_pop909_piano_wins_by_content_alone_when_names_are_removed(chords_dev_dir, number):
    original = read_midi_file(chords_dev_dir / f"pop909_{number}.mid")
    unnamed = dataclasses.replace(
        original, tracks=tuple(dataclasses.replace(t, name="") for t in original.tracks)
    )
    assert choose_chord_track(unnamed).track.index == 3


def test_never_chooses_drums_and_explains_the_choice():
    choice = choose_chord_track(song(melody(1), drums(2), block_chords(3)))
    assert choice.track.index == 3
    assert "3 or more pitch classes 100%" in choice.reason
    assert "most polyphonic of 2 tracks" in choice.reason


def test_names_break_a_tie_between_similar_tracks():
    chosen = choose_chord_track(song(block_chords(1, "Lead Synth"), block_chords(2, "Pad")))
    assert chosen.track.name == "Pad"
    assert "its name suggests chords" in chosen.reason


def test_profile_measures_polyphony_over_sounding_time():
    track = NoteTrack("t", [Note(60, 0.0, 2.0), Note(64, 1.0, 2.0), Note(67, 1.0, 2.0)])
    profile = profile_track(track)
    assert profile.two_notes_fraction == 0.5
    assert profile.three_classes_fraction == 0.5
    assert profile.coverage == 1.0


@pytest.mark.parametrize("asked", ["piano", "PIANO", " Piano ", 3, "3"])
def test_user_can_name_or_number_the_track(asked):
    choice = choose_chord_track(song(melody(1), block_chords(3, "Piano")), asked)
    assert choice.track.index == 3
    assert "chosen by request" in choice.reason


def test_unknown_track_lists_the_available_ones():
    with pytest.raises(
        TrackSelectionError, match=r"no track 7; tracks with notes: 1 'Vox', 3 'Keys'"
    ):
        choose_chord_track(song(melody(1, "Vox"), block_chords(3, "Keys")), 7)
    with pytest.raises(TrackSelectionError, match=r"no track named 'organ'"):
        choose_chord_track(song(melody(1, "Vox")), "organ")


def test_drum_track_cannot_carry_chords():
    with pytest.raises(TrackSelectionError, match="drum track"):
        choose_chord_track(song(melody(1), drums(2)), 2)
    with pytest.raises(TrackSelectionError, match="only drum tracks"):
        choose_chord_track(song(drums(2)))


def test_song_without_notes_is_refused_naming_the_file(tmp_path):
    empty = dataclasses.replace(song(), path=tmp_path / "empty.mid")
    with pytest.raises(TrackSelectionError, match=r"empty\.mid: has no notes at all"):
        choose_chord_track(empty)


def test_ambiguous_index_of_a_type_0_file_asks_for_a_name():
    parts = song(block_chords(0, "Band ch 1", 0), melody(0, "Band ch 2", 1), drums(0))
    with pytest.raises(TrackSelectionError, match="matches 2 parts"):
        choose_chord_track(parts, 0)
    assert choose_chord_track(parts, "band ch 2").track.channel == 1


def left_hand(index: int, name: str = "Piano LH") -> NoteTrack:
    notes = [Note(root, bar * 4.0, bar * 4.0 + 4.0) for bar, root in enumerate([36, 41, 43, 36])]
    return NoteTrack(name, notes, index, 1)


def test_two_hands_are_combined_and_the_choice_says_why():
    choice = choose_chord_track(
        song(melody(1, "Melody"), block_chords(2, "Piano RH"), left_hand(3), drums(4))
    )
    assert [part.index for part in choice.parts] == [2, 3]
    assert len(choice.track.notes) == 12 + 4
    assert choice.label == "tracks 2 'Piano RH' + 3 'Piano LH'"
    assert choice.reason.startswith("tracks 2 'Piano RH' + 3 'Piano LH' as one harmony: ")
    assert "3 'Piano LH': the part below it" in choice.reason
    assert "bass from the lowest, 3 'Piano LH'" in choice.reason
    assert "left out: 1 'Melody' (a lead melody)" in choice.reason
    assert "drums" not in choice.reason


def test_a_pad_over_a_bass_track_is_one_harmony():
    choice = choose_chord_track(song(block_chords(1, "Pad"), left_hand(2, "Bass")))
    assert [part.name for part in choice.parts] == ["Pad", "Bass"]


def test_four_single_voices_are_combined_as_a_choir():
    voices = [
        NoteTrack(name, [Note(pitch + i % 3, i, i + 1.0) for i in range(16)], index, index)
        for index, (name, pitch) in enumerate(
            [("Soprano", 72), ("Alto", 64), ("Tenor", 57), ("Bass", 48)], start=1
        )
    ]
    choice = choose_chord_track(song(*voices))
    assert [part.name for part in choice.parts] == ["Soprano", "Alto", "Tenor", "Bass"]
    assert "no part plays chords alone" in choice.reason
    assert "bass from the lowest, 4 'Bass'" in choice.reason


def test_one_chord_part_with_a_melody_above_stays_alone():
    choice = choose_chord_track(song(melody(1), block_chords(2)))
    assert choice.parts == (choice.track,) and choice.track.index == 2


@pytest.mark.parametrize("asked", [["Piano RH", 3], ("2", "piano lh"), "2,3", "Piano RH, 3"])
def test_several_tracks_can_be_asked_for_and_are_read_together(asked):
    parts = song(melody(1, "Melody"), block_chords(2, "Piano RH"), left_hand(3))
    choice = choose_chord_track(parts, asked)
    assert [part.index for part in choice.parts] == [2, 3]
    assert len(choice.track.notes) == 16
    assert "chosen by request" in choice.reason and "as one harmony" in choice.reason


def test_a_bad_part_in_a_request_is_named():
    parts = song(block_chords(2, "Piano RH"), left_hand(3), drums(4))
    with pytest.raises(TrackSelectionError, match="no track 9"):
        choose_chord_track(parts, [2, 9])
    with pytest.raises(TrackSelectionError, match="track 4 is a drum track"):
        choose_chord_track(parts, "2,4")
    with pytest.raises(TrackSelectionError, match="at least one part"):
        choose_chord_track(parts, [])
