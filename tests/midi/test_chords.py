"""Chord symbols and Harte labels: parsing, canonical form, naming and round trips."""

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
    parse_chord_symbol,
)
from midi.errors import ChordSymbolError


def assert_valid_harte(label):
    """mir_eval raises InvalidChordException for a label outside its grammar or quality table."""
    mir_eval.chord.validate([label], [label])
    mir_eval.chord.encode(label)


# Odd and ordinary spellings from lead sheets, DAWs, Chordino and mir_eval; every one must parse.
SPELLINGS = (
    """
C Cm Cmi Cmin C- CM Cmaj Cmajor Cminor C7 Cdom7 Cmaj7 CM7 CMaj7 Cma7 CΔ7 CΔ C△7 C^7 Cj7 Cm7 Cmin7 Cmi7
C-7 C6 Cmaj6 CM6 Cm6 Cmin6 C-6 Cdim C° Co Cº Caug C+ Cm7b5 Cø Cø7 CØ7 C-7b5 Cmin7b5 Cm7(b5) Chdim7 Cdim7
C°7 Co7 CmM7 Cmmaj7 Cminmaj7 Cm(maj7) C-maj7 CmΔ7 Csus Csus4 Csus2 C5 C1 C7sus4 C7sus Csus7 Cadd9
Cadd2 C2 Cmadd9 Cm(add9) C-add9 C6/9 C69 C6add9 C6(9) C9 Cmaj9 CM9 CΔ9 Cm9 Cmin9 C-9 C11 Cm11 C13
Cmaj13 CM13 Cm13 Caug7 C+7 C7#5 C7+5 C7+ C7(#5) C7b5 C7(b5) C7b9 C7(b9) C7#9 C7(#9) C7#11 C7(#11)
C7b9#11 C7(b9,#11) C7b13 C7alt C9sus4 C13b9 C13#11 C9b5 C9#5 Cmaj7#11 Cmaj7(#11) Cmaj9#11
Cm7b9 Cm(b6) Cadd11 Cadd#11 C(add9) C(9) C(no3) C7(no5) C7(omit5) Cm7(no5) C/E C/G C/Bb C/D C/F#
Cmaj7/E Cm7/Bb Cm/Eb C7/E C/3 C/5 C/b7 Dbmaj9/F Bb13 F#m7b5 E7#9 E7(#9) B♭m7 F♯ F♯m7♭5 E♭maj7 Cb E#
Fb B# C## Dbb Bbb Ab7 G#m C#aug Gm6 A7/C# Bm7b5 Gm7b5/F C#/E# F#/A# Ab/Gb Eb/Db A/B C#7/E#
Bbm7b5/Ab C:maj C:min C:maj7 C:min7 C:7 C:dim C:aug C:dim7 C:hdim7 C:minmaj7 C:maj6 C:min6 C:9
C:maj9 C:min9 C:11 C:min11 C:13 C:maj13 C:min13 C:sus2 C:sus4 C:1 C:5 A:min7/b3 F#:sus4 E:hdim7
C:(3,5,b7) C:(3,#5,b7) C:(5,b7) C:maj(9) C:min7(*b3) Eb:(2,b5) B:(2,6) Eb:hdim7/b5 A:7/b7 C:maj/5
C:(*1,3,5) C:maj(*5) F:min/b3 Bb:maj7/3 C:dim7/bb7 C:aug7 C:7sus4 N N.C. NC n.c. nc X
""".split()
    + [" C ", "  Am7/G  ", "C7 (b9)", "N.C", "C7(b9, #11)", "C m7", "C7+9", "Am7-5", "C7-9"]
)


@pytest.mark.parametrize("text", SPELLINGS)
def test_every_spelling_parses_and_names_itself_in_valid_harte(text):
    chord = parse_chord_symbol(text)
    if chord is None:
        return
    assert_valid_harte(chord.harte)
    assert parse_chord_symbol(chord.harte) == chord
    assert chord.root in range(12)
    assert chord.pitch_classes


def test_the_test_list_is_long():
    assert len(SPELLINGS) > 200


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Dbmaj9/F", Chord(1, "maj9", bass=5)),
        ("C-7", Chord(0, "min7")),
        ("Cø7", Chord(0, "hdim7")),
        ("Cø", Chord(0, "hdim7")),
        ("C°7", Chord(0, "dim7")),
        ("C°", Chord(0, "dim")),
        ("Bb13", Chord(10, "13")),
        ("F#m7b5", Chord(6, "hdim7")),
        ("E7#9", Chord(4, "7#9")),
        ("Csus", Chord(0, "sus4")),
        ("C6/9", Chord(0, "6/9")),
        ("C/E", Chord(0, "maj", bass=4)),
        ("Cm(maj7)", Chord(0, "minmaj7")),
        ("C+7", Chord(0, "aug7")),
        ("C5", Chord(0, "5")),
        ("Cb", Chord(11, "maj")),
        ("E#", Chord(5, "maj")),
        ("C##", Chord(2, "maj")),
        ("B♭m7", Chord(10, "min7")),
        ("A:min7/b3", Chord(9, "min7", bass=0)),
        ("C:(3,#5,b7)", Chord(0, "aug7")),
        ("C:maj(9)", Chord(0, "add9")),
        ("C:(5,b7)", Chord(0, "5", added=(10,))),
        ("C:1", Chord(0, "1")),
        ("C#/E#", Chord(1, "maj", bass=5)),
        ("A/B", Chord(9, "maj", bass=11)),
        ("Cmaj7#11", Chord(0, "maj7", added=(6,))),
        ("C7(no5)", Chord(0, "7", omitted=(7,))),
        ("C13b9", Chord(0, "7b9", added=(5, 9))),
        ("C/C", Chord(0, "maj")),
        ("C7+9", Chord(0, "7#9")),
        ("C7+", Chord(0, "aug7")),
        ("Am7-5", Chord(9, "hdim7")),
        ("C m7", Chord(0, "min7")),
        ("Cm6/9", Chord(0, "min6/9")),
        ("Cmaj11", Chord(0, "maj11")),
        ("CmΔ", Chord(0, "minmaj7")),
    ],
)
def test_specific_parses(text, expected):
    assert parse_chord_symbol(text) == expected


@pytest.mark.parametrize(
    ("one", "other"),
    [
        ("C-7", "Cm7"),
        ("Cø7", "Cm7b5"),
        ("C°7", "Cdim7"),
        ("CΔ7", "Cmaj7"),
        ("C69", "C6/9"),
        ("E7(#9)", "E7#9"),
        ("Db", "C#"),
        ("C:(3,5,b7)", "C7"),
        ("C:maj(9)", "Cadd9"),
        ("CmM7", "Cm(maj7)"),
        ("C+", "Caug"),
        ("Cmaj7/E", "C:maj7/3"),
        ("Gm7b5/F", "G:hdim7/b7"),
    ],
)
def test_different_spellings_of_one_chord_are_equal(one, other):
    assert parse_chord_symbol(one) == parse_chord_symbol(other)


@pytest.mark.parametrize("text", ["N", "N.C.", "NC", "n.c.", "X", " N "])
def test_no_chord_is_none(text):
    assert parse_chord_symbol(text) is None


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("H7", r"'H7': unknown root 'H' — roots are A-G"),
        ("Cmaj13b", r"'Cmaj13b': cannot read 'b' after 'maj13'"),
        ("cm7", r"'cm7'.*lower case"),
        ("", r"empty chord symbol"),
        ("C:foo", r"'C:foo': unknown Harte shorthand 'foo'"),
        ("C:(3,x)", r"'C:\(3,x\)'.*not a chord degree"),
        ("C/H", r"'C/H': unknown bass note 'H'"),
        ("C/E7", r"'C/E7': cannot read '7' after the bass note 'E'"),
        ("Cxyz", r"'Cxyz': cannot read 'xyz'"),
        ("C:", r"'C:': nothing after the colon"),
        ("C/", r"'C/': nothing after '/'"),
        ("C:maj7(9", r"'C:maj7\(9': not a Harte label"),
        ("-", r"'-': unknown root '-'"),
        ("Cno#3", r"'Cno#3'.*without an accidental"),
        ("7", r"'7': unknown root '7'"),
    ],
)
def test_bad_symbols_raise_with_the_symbol_in_the_message(text, message):
    with pytest.raises(ChordSymbolError, match=message):
        parse_chord_symbol(text)


def test_chord_symbol_error_is_a_value_error():
    with pytest.raises(ValueError):
        parse_chord_symbol("H")


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
