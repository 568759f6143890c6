"""The quality table and `Chord`: canonical form, Harte and musician names, round trips."""

import itertools

import mir_eval.chord
import pytest

from midi.chords import (
    HARTE_SHORTHANDS,
    QUALITIES,
    QUALITY_BY_NAME,
    Chord,
    TimedChord,
    degree_semitones,
)
from midi.errors import ChordSymbolError
from midi.symbols import parse_chord_symbol


def assert_valid_harte(label):
    """mir_eval raises InvalidChordException for a label outside its grammar or quality table."""
    mir_eval.chord.validate([label], [label])
    mir_eval.chord.encode(label)


@pytest.mark.parametrize(
    ("text", "harte", "symbol"),
    [
        ("Cmaj7", "C:maj7", "Cmaj7"),
        ("Am7/C", "A:min7/b3", "Am7/C"),
        ("Dbmaj9/F", "C#:maj9/3", "C#maj9/F"),
        ("C+7", "C:(3,#5,b7)", "Caug7"),
        ("C7b9#11", "C:(3,5,b7,b9,#11)", "C7b9(#11)"),
        ("C7(no5)", "C:7(*5)", "C7(no5)"),
        ("Cmaj7#11", "C:maj7(#11)", "Cmaj7(#11)"),
        ("Cdim7/A", "C:dim7/bb7", "Cdim7/A"),
        ("Caug/G#", "C:aug/#5", "Caug/Ab"),
        ("A/B", "A:maj/2", "A/B"),
        ("Gbm", "F#:min", "F#m"),
    ],
)
def test_harte_and_musician_names(text, harte, symbol):
    chord = parse_chord_symbol(text)
    assert chord.harte == harte
    assert chord.symbol == symbol
    assert str(chord) == symbol


def test_pitch_classes_include_the_bass():
    assert parse_chord_symbol("A/B").pitch_classes == frozenset({9, 1, 4, 11})
    assert parse_chord_symbol("Am7/G").pitch_classes == frozenset({9, 0, 4, 7})
    assert parse_chord_symbol("Dbmaj9/F").intervals == (0, 4, 7, 11, 14)


@pytest.mark.parametrize("quality", QUALITIES, ids=lambda q: q.name)
def test_every_row_round_trips_through_harte_symbol_and_repr(quality):
    on_second_tone = quality.intervals[1] if len(quality.intervals) > 1 else 0
    for root, bass_interval in itertools.product(range(12), (0, on_second_tone, 2)):
        chord = Chord(root, quality.name, (root + bass_interval) % 12)
        assert chord.quality == quality.name
        assert_valid_harte(chord.harte)
        assert parse_chord_symbol(chord.harte) == chord
        assert parse_chord_symbol(chord.symbol) == chord
        assert eval(repr(chord)) == chord  # noqa: S307 - repr must evaluate back


@pytest.mark.parametrize(
    ("chord", "symbol"),
    [
        (Chord(11, "dim", added=(4, 5)), "Bdim(add3,11)"),
        (Chord(0, "11", added=(6,)), "C11(add#11)"),
        (Chord(0, "7b9", added=(3,)), "C7b9(add#9)"),
        (Chord(0, "9", added=(1,)), "C9(addb9)"),
    ],
)
def test_a_tone_beside_a_row_degree_of_its_number_is_written_as_an_addition(chord, symbol):
    assert chord.symbol == symbol
    assert parse_chord_symbol(symbol) == chord


def test_harte_pitch_content_agrees_with_mir_eval():
    for quality in QUALITIES:
        chord = Chord(2, quality.name, bass=7)
        root, bitmap, bass = mir_eval.chord.encode(chord.harte, reduce_extended_chords=True)
        expected = {(root + i) % 12 for i in range(12) if bitmap[i]}
        assert chord.pitch_classes == frozenset(expected), chord.harte
        assert (root + bass) % 12 == 7


def test_quality_table_is_consistent():
    pitch_sets = [q.pitch_class_set for q in QUALITIES]
    assert len(set(pitch_sets)) == len(pitch_sets), "two rows sound the same"
    spellings = [s for q in QUALITIES for s in q.spellings]
    assert len(set(spellings)) == len(spellings), "one spelling names two rows"
    assert {q.name for q in QUALITIES} >= HARTE_SHORTHANDS
    chordino = {q.chordino for q in QUALITIES if q.chordino is not None}
    assert chordino == {"", "m", "7", "maj7", "m7", "6", "m6", "dim", "aug", "m7b5"}
    assert QUALITY_BY_NAME["aug7"].harte == "(3,#5,b7)"


def test_chord_is_canonical_and_validated():
    assert Chord(0, "maj", added=(2,)) == Chord(0, "add9")
    assert Chord(0, "maj7", omitted=(11,)) == Chord(0, "maj")
    assert Chord(4, "min", bass=4).bass is None
    assert Chord.from_intervals(9, [0, 3, 7, 10], bass=0) == parse_chord_symbol("Am7/C")
    assert Chord.from_intervals(0, [16, 19]) == Chord(0, "maj")
    with pytest.raises(
        ChordSymbolError, match=r"chord root, a pitch class .* must be an integer 0-11, got 12"
    ):
        Chord(12, "maj")
    with pytest.raises(ChordSymbolError, match="got 2.0"):
        Chord(2.0, "maj")
    with pytest.raises(ChordSymbolError, match="sequences of intervals"):
        Chord(0, "maj", added=2)
    numpy = pytest.importorskip("numpy")
    from_numpy = Chord(numpy.int64(9), "min7", bass=numpy.int64(0), added=[numpy.int64(2)])
    assert from_numpy == Chord(9, "min9", bass=0)
    assert type(from_numpy.root) is int and type(from_numpy.bass) is int
    with pytest.raises(ChordSymbolError, match="chord bass"):
        Chord(0, "maj", bass=-1)
    with pytest.raises(ChordSymbolError, match="unknown chord quality 'major'"):
        Chord(0, "major")
    with pytest.raises(ChordSymbolError, match="1-11"):
        Chord(0, "maj", added=(14,))
    with pytest.raises(ChordSymbolError):
        Chord(True, "maj")


def test_only_both_altered_fifths_make_a_dominant_without_its_fifth():
    altered = Chord.from_intervals(0, [4, 6, 8, 10])
    assert (altered.quality, altered.added, altered.omitted) == ("7", (6, 8), (7,))
    assert Chord.from_intervals(0, [4, 8, 10]).quality == "aug7"
    assert Chord.from_intervals(0, [4, 6, 10]).quality == "7b5"
    # With its natural 5th present the altered fifths are plain tensions on the usual row.
    assert Chord.from_intervals(0, [4, 6, 7, 8, 10]) == Chord(0, "7#11", added=(8,))


def test_chordino_names():
    assert parse_chord_symbol("Bbm7b5/Ab").chordino == "Bbm7b5/Ab"
    assert parse_chord_symbol("Db").chordino == "C#"
    assert parse_chord_symbol("Csus4").chordino is None
    assert parse_chord_symbol("Cmaj7#11").chordino is None


def test_degree_semitones():
    assert [degree_semitones(d) for d in ("1", "b3", "3", "#5", "bb7", "b9", "#11", "13")] == [
        0,
        3,
        4,
        8,
        9,
        13,
        18,
        21,
    ]
    with pytest.raises(ChordSymbolError, match="'14' is not a chord degree"):
        degree_semitones("14")


def test_timed_chord():
    timed = TimedChord(4.0, 8.0, parse_chord_symbol("Am7"))
    assert timed.length_beats == 4.0
    assert str(timed) == "Am7 from beat 4 to 8"
    assert str(TimedChord(0, 1.5, None)) == "N.C. from beat 0 to 1.5"
    with pytest.raises(ChordSymbolError, match="not after its start"):
        TimedChord(4.0, 4.0, None)
    with pytest.raises(ChordSymbolError, match="start_beat must be >= 0"):
        TimedChord(-1.0, 4.0, None)
    with pytest.raises(ChordSymbolError, match="finite"):
        TimedChord(0.0, float("inf"), None)
    with pytest.raises(ChordSymbolError, match="Chord or None"):
        TimedChord(0.0, 1.0, "Am7")
