"""Chord recognition on real MIDI files: synthetic ones written here, and two dev-set songs."""

from __future__ import annotations

from pathlib import Path

import mido
import mir_eval
import numpy as np
import pytest

from midi.errors import RecognitionSettingsError
from midi.notes import NoteTrack
from midi.pcp import Level, NoteArrays, estimate_bar_offset, metric_grid, unit_profiles
from midi.recognize import RecognitionSettings, recognize_chords
from midi.smf import read_midi_file
from midi.symbols import parse_chord_symbol
from midi.tempo import TempoMap
from midi.timeline import to_lab_lines, to_segments
from midi.tracks import choose_chord_track

PPQ = 480
# (pitch, start_beat, length_beats)
NoteSpec = tuple[int, float, float]


def write_song(
    path: Path,
    parts: dict[str, list[NoteSpec]],
    tempos: tuple[tuple[float, float], ...] = ((0.0, 120.0),),
    meter: tuple[int, int] = (4, 4),
    meter_changes: tuple[tuple[float, int, int], ...] = (),
) -> Path:
    """A type-1 MIDI file: a conductor track (tempo `(beat, bpm)` changes, meter and
    `(beat, numerator, denominator)` meter changes), then one track per part."""
    midi = mido.MidiFile(type=1, ticks_per_beat=PPQ)
    conductor = mido.MidiTrack()
    meters = ((0.0, *meter), *meter_changes)
    events = [
        (round(beat * PPQ), mido.MetaMessage("time_signature", numerator=num, denominator=den))
        for beat, num, den in meters
    ]
    events += [
        (round(beat * PPQ), mido.MetaMessage("set_tempo", tempo=mido.bpm2tempo(bpm)))
        for beat, bpm in tempos
    ]
    _append_events(conductor, events)
    midi.tracks.append(conductor)
    for channel, (name, notes) in enumerate(parts.items()):
        track = mido.MidiTrack([mido.MetaMessage("track_name", name=name)])
        events = []
        for pitch, start, length in notes:
            events.append(
                (
                    round(start * PPQ),
                    mido.Message("note_on", note=pitch, velocity=90, channel=channel),
                )
            )
            events.append(
                (
                    round((start + length) * PPQ),
                    mido.Message("note_off", note=pitch, channel=channel),
                )
            )
        _append_events(track, events)
        midi.tracks.append(track)
    midi.save(path)
    return path


def _append_events(track: mido.MidiTrack, events: list[tuple[int, object]]) -> None:
    # note_off before note_on at the same tick, so repeated pitches restart cleanly.
    events.sort(key=lambda e: (e[0], getattr(e[1], "type", "") == "note_on"))
    now = 0
    for tick, message in events:
        track.append(message.copy(time=tick - now))
        now = tick


def block(pitches: tuple[int, ...], start: float, length: float = 4.0) -> list[NoteSpec]:
    return [(p, start, length) for p in pitches]


def recognise_file(path: Path, track: str | None = None):
    song = read_midi_file(path)
    choice = choose_chord_track(song, track)
    return recognize_chords(choice.track, song.tempo_map), song.tempo_map


def summary(timed) -> list[tuple[float, float, str]]:
    return [(t.start_beat, t.end_beat, "N" if t.chord is None else t.chord.harte) for t in timed]


# C2=36. Voicings a keyboard player would use: bass note, then close position above.
BLOCK_CHORDS = [
    ((36, 60, 64, 67), "C:maj"),
    ((45, 60, 64, 69), "A:min"),
    ((43, 59, 62, 65, 67), "G:7"),
    ((41, 60, 64, 65, 69), "F:maj7"),
    ((38, 60, 62, 65, 69), "D:min7"),
    ((47, 62, 65, 71), "B:dim"),
    ((43, 60, 62, 67), "G:sus4"),
]


def test_block_chords_get_their_labels_and_bar_boundaries_in_beats_and_seconds(tmp_path):
    notes = [n for i, (pitches, _) in enumerate(BLOCK_CHORDS) for n in block(pitches, 4.0 * i)]
    timed, tempo_map = recognise_file(write_song(tmp_path / "blocks.mid", {"piano": notes}))
    expected = [(4.0 * i, 4.0 * i + 4.0, label) for i, (_, label) in enumerate(BLOCK_CHORDS)]
    assert summary(timed) == expected
    segments = to_segments(timed, tempo_map)
    # 120 bpm: a 4/4 bar lasts 2 seconds.
    assert [(s.start_seconds, s.end_seconds) for s in segments] == [
        (2.0 * i, 2.0 * i + 2.0) for i in range(len(BLOCK_CHORDS))
    ]


def test_arpeggios_are_heard_as_the_chord_they_spell(tmp_path):
    # Broken chords in eighths, one note at a time: root, fifth, octave, tenth, twelfth, down again.
    progression = [(48, "C:maj"), (45, "A:min"), (41, "F:maj"), (43, "G:maj")]
    notes = []
    for bar, (root, label) in enumerate(progression):
        third = 4 if label.endswith("maj") else 3
        shape = [0, 7, 12, 12 + third, 19, 12 + third, 12, 7]
        notes += [(root + interval, 4.0 * bar + 0.5 * i, 0.5) for i, interval in enumerate(shape)]
    timed, _ = recognise_file(write_song(tmp_path / "arp.mid", {"piano": notes}))
    assert summary(timed) == [
        (4.0 * i, 4.0 * i + 4.0, label) for i, (_, label) in enumerate(progression)
    ]


@pytest.mark.parametrize(
    ("pitches", "label"),
    [
        ((40, 55, 60, 64), "C:maj/3"),  # E in the bass
        ((43, 52, 60, 64), "C:maj/5"),  # G in the bass
        ((48, 57, 64, 69), "A:min/b3"),  # C in the bass
        ((41, 55, 59, 62), "G:7/b7"),  # F in the bass
    ],
)
def test_a_chord_tone_in_the_bass_gives_a_slash_label(tmp_path, pitches, label):
    notes = block(pitches, 0.0) + block((36, 60, 64, 67), 4.0)
    timed, _ = recognise_file(write_song(tmp_path / "inversion.mid", {"piano": notes}))
    assert summary(timed) == [(0.0, 4.0, label), (4.0, 8.0, "C:maj")]


def test_melody_and_passing_notes_on_top_do_not_change_the_chord(tmp_path):
    chords = block((36, 55, 60, 64), 0.0) + block((41, 57, 60, 65), 4.0)
    # A busy eighth-note line over both chords, full of non-chord tones (D, F, A, B over C).
    line = [74, 76, 77, 79, 81, 79, 77, 76, 74, 72, 71, 72, 74, 76, 79, 77]
    melody = [(p, 0.5 * i, 0.5) for i, p in enumerate(line)]
    path = write_song(tmp_path / "melody.mid", {"piano": chords + melody})
    timed, _ = recognise_file(path)
    assert summary(timed) == [(0.0, 4.0, "C:maj"), (4.0, 8.0, "F:maj")]


def test_a_walking_bass_between_chords_does_not_cut_the_bar(tmp_path):
    # C major held above a bass that walks C, D, E up to the F of the next bar.
    bass = [(36, 0.0, 3.0), (38, 3.0, 0.5), (40, 3.5, 0.5), (41, 4.0, 4.0)]
    upper = block((60, 64, 67), 0.0) + block((60, 65, 69), 4.0)
    timed, _ = recognise_file(write_song(tmp_path / "walk.mid", {"piano": bass + upper}))
    assert summary(timed) == [(0.0, 4.0, "C:maj"), (4.0, 8.0, "F:maj")]


def test_a_chord_struck_an_eighth_before_the_bar_belongs_to_the_next_bar(tmp_path):
    notes = (
        block((36, 60, 64, 67), 0.0, 3.5)
        + block((41, 60, 65, 69), 3.5, 4.5)
        + block((43, 59, 62, 67), 8.0)
    )
    timed, _ = recognise_file(write_song(tmp_path / "anticipation.mid", {"piano": notes}))
    assert summary(timed) == [(0.0, 4.0, "C:maj"), (4.0, 8.0, "F:maj"), (8.0, 12.0, "G:maj")]


def test_human_timing_early_and_late_notes_keep_the_bar_boundaries(tmp_path):
    # Played, not quantised: each chord's notes start up to 1/16 beat early or late and the
    # bass is released a little after the next chord has started.
    offsets = (-0.06, 0.03, -0.02, 0.05)
    notes = []
    for bar, pitches in enumerate([(36, 60, 64, 67), (41, 60, 65, 69), (43, 59, 62, 67)], 1):
        start = 4.0 * bar
        notes.append((pitches[0], start + offsets[0], 4.1 - offsets[0]))
        notes += [(p, start + o, 3.8) for p, o in zip(pitches[1:], offsets[1:], strict=True)]
    timed, _ = recognise_file(write_song(tmp_path / "played.mid", {"piano": notes}))
    assert summary(timed)[:3] == [(0.0, 4.0, "N"), (4.0, 8.0, "C:maj"), (8.0, 12.0, "F:maj")]
    assert (timed[3].start_beat, timed[3].chord.harte) == (12.0, "G:maj")


def test_silence_is_no_chord(tmp_path):
    notes = block((36, 60, 64, 67), 0.0) + block((43, 59, 62, 67), 12.0)
    timed, _ = recognise_file(write_song(tmp_path / "rest.mid", {"piano": notes}))
    assert summary(timed) == [(0.0, 4.0, "C:maj"), (4.0, 12.0, "N"), (12.0, 16.0, "G:maj")]


def test_before_the_first_note_is_no_chord(tmp_path):
    timed, _ = recognise_file(
        write_song(tmp_path / "late.mid", {"piano": block((45, 60, 64, 69), 8.0)})
    )
    assert summary(timed) == [(0.0, 8.0, "N"), (8.0, 12.0, "A:min")]


def test_a_tempo_change_moves_seconds_but_not_beats(tmp_path):
    notes = (
        block((36, 60, 64, 67), 0.0) + block((41, 60, 65, 69), 4.0) + block((43, 59, 62, 67), 8.0)
    )
    steady, steady_map = recognise_file(write_song(tmp_path / "steady.mid", {"piano": notes}))
    slowing, slowing_map = recognise_file(
        write_song(tmp_path / "slowing.mid", {"piano": notes}, tempos=((0.0, 120.0), (4.0, 60.0)))
    )
    assert summary(slowing) == summary(steady)
    assert [s.end_seconds for s in to_segments(steady, steady_map)] == [2.0, 4.0, 6.0]
    assert [s.end_seconds for s in to_segments(slowing, slowing_map)] == [2.0, 6.0, 10.0]


def test_waltz_chords_change_on_its_bar_lines(tmp_path):
    notes = []
    for bar, pitches in enumerate(
        [(43, 59, 62, 67), (36, 60, 64, 67), (38, 62, 66, 69), (43, 59, 62, 67)]
    ):
        notes.append((pitches[0], 3.0 * bar, 1.0))  # oom-pah-pah: bass on 1, chord on 2 and 3
        notes += [(p, 3.0 * bar + beat, 1.0) for p in pitches[1:] for beat in (1.0, 2.0)]
    timed, _ = recognise_file(write_song(tmp_path / "waltz.mid", {"piano": notes}, meter=(3, 4)))
    assert [label for *_, label in summary(timed)] == ["G:maj", "C:maj", "D:maj", "G:maj"]
    assert [t.start_beat for t in timed] == [0.0, 3.0, 6.0, 9.0]


def test_chords_follow_the_bar_lines_through_a_meter_change(tmp_path):
    # Two bars of 4/4, then 3/4 from beat 8: each chord fills one bar, then half bars of 6/8.
    bars = [(0.0, 4.0), (4.0, 4.0), (8.0, 3.0), (11.0, 3.0), (14.0, 1.5), (15.5, 1.5)]
    voicings = [
        (36, 60, 64, 67),
        (43, 59, 62, 67),
        (45, 60, 64, 69),
        (41, 60, 65, 69),
        (43, 59, 62, 67),
        (36, 60, 64, 67),
    ]
    notes = [
        n
        for (start, length), v in zip(bars, voicings, strict=True)
        for n in block(v, start, length)
    ]
    path = write_song(
        tmp_path / "meters.mid",
        {"piano": notes},
        meter_changes=((8.0, 3, 4), (14.0, 6, 8)),
    )
    timed, _ = recognise_file(path)
    assert summary(timed) == [
        (0.0, 4.0, "C:maj"),
        (4.0, 8.0, "G:maj"),
        (8.0, 11.0, "A:min"),
        (11.0, 14.0, "F:maj"),
        (14.0, 15.5, "G:maj"),
        (15.5, 17.0, "C:maj"),
    ]


def test_the_bar_lines_are_found_when_the_music_is_a_beat_late():
    # Chords change on beat 2 of every bar of the file: the music's bars start one beat late.
    progression = [(36, 60, 64, 67), (45, 60, 64, 69), (41, 60, 65, 69), (43, 59, 62, 67)] * 4
    notes = NoteTrack(
        "piano",
        [
            note
            for i, pitches in enumerate(progression)
            for note in _notes_of(pitches, 1.0 + 4.0 * i, 1.0 + 4.0 * i + 4.0)
        ],
    )
    arrays = NoteArrays.from_track(notes)
    file_grid = metric_grid(TempoMap.constant(100), float(arrays.end_beat.max()))
    profiles = unit_profiles(arrays, file_grid, 4.0, 1.0)
    assert estimate_bar_offset(profiles, file_grid, TempoMap.constant(100)) == 1.0
    timed = recognize_chords(notes, TempoMap.constant(100))
    assert [t.start_beat for t in timed][:4] == [0.0, 1.0, 5.0, 9.0]


def _notes_of(pitches, start, end):
    from midi.notes import Note

    return [Note(p, start, end) for p in pitches]


def test_an_empty_track_has_no_chords():
    assert recognize_chords(NoteTrack("empty"), TempoMap.constant(120)) == []


def test_settings_are_checked_with_messages_that_name_the_field():
    with pytest.raises(RecognitionSettingsError, match="sustain_beats must be > 0"):
        RecognitionSettings(sustain_beats=0.0)
    with pytest.raises(RecognitionSettingsError, match="change_costs needs 4 costs"):
        RecognitionSettings(change_costs=(1.0, 2.0))
    with pytest.raises(RecognitionSettingsError, match="unknown quality 'maj13th'"):
        RecognitionSettings(quality_costs=(("maj", 0.0), ("maj13th", 0.1)))
    with pytest.raises(RecognitionSettingsError, match=r"change_costs\[BEAT\] must be >= 0"):
        RecognitionSettings(change_costs=(0.2, 0.7, float("nan"), 1.8))
    with pytest.raises(RecognitionSettingsError, match=r"quality_costs\['min'\] must be >= 0"):
        RecognitionSettings(quality_costs=(("maj", 0.0), ("min", -1.0)))
    with pytest.raises(RecognitionSettingsError, match="extra_tone_weight must be >= 0, got '1'"):
        RecognitionSettings(extra_tone_weight="1")


def test_labels_round_trip_through_the_chord_parser(tmp_path):
    notes = [n for i, (pitches, _) in enumerate(BLOCK_CHORDS) for n in block(pitches, 4.0 * i)]
    timed, _ = recognise_file(write_song(tmp_path / "blocks.mid", {"piano": notes}))
    for t in timed:
        assert parse_chord_symbol(t.chord.harte) == t.chord


@pytest.mark.parametrize("name", ["pop909_552", "nottingham_reelsa-c62"])
def test_dev_set_songs_stay_above_a_floor(chords_dev_dir, name):
    path = chords_dev_dir / f"{name}.mid"
    timed, tempo_map = recognise_file(path)
    rows = [line.split("\t") for line in to_lab_lines(to_segments(timed, tempo_map))]
    intervals = np.array([[float(a), float(b)] for a, b, _ in rows])
    labels = [label for *_, label in rows]
    ref_intervals, ref_labels = mir_eval.io.load_labeled_intervals(str(path.with_suffix(".lab")))
    scores = mir_eval.chord.evaluate(ref_intervals, ref_labels, intervals, labels)
    assert scores["majmin"] > 0.9, scores
    assert scores["sevenths"] > 0.85, scores


@pytest.mark.parametrize(
    ("meter", "levels"),
    [
        ((4, 4), [Level.BAR, Level.OFFBEAT, Level.BEAT, Level.OFFBEAT, Level.HALF_BAR]),
        ((3, 4), [Level.BAR, Level.OFFBEAT, Level.BEAT, Level.OFFBEAT, Level.BEAT]),
        ((6, 8), [Level.BAR, Level.OFFBEAT, Level.OFFBEAT, Level.HALF_BAR, Level.OFFBEAT]),
    ],
)
def test_grid_lines_carry_their_metric_level(meter, levels):
    grid = metric_grid(TempoMap.constant(120, *meter), 8.0)
    assert grid.edges_beat[:5].tolist() == [0.0, 0.5, 1.0, 1.5, 2.0]
    assert grid.levels[:5].tolist() == [int(level) for level in levels]
