"""Reading chord symbols and Harte labels: the spellings people use, no-chord marks, errors."""

import pytest

from midi.chords import Chord
from midi.errors import ChordSymbolError
from midi.symbols import parse_chord_symbol

from .test_chords import assert_valid_harte

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
        ("Cm(j7)", Chord(0, "minmaj7")),  # every maj7 spelling of QUALITIES works as a modifier
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
        ("C7b9#9", "C7(b9,#9)"),  # the 7b9 row, then a second ninth beside its b9
        ("C7#9b9", "C7(b9,#9)"),
        ("C7b5#5", "C:(3,b5,#5,b7)"),
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
        ("Cxyz", r"'Cxyz': cannot read 'xyz' after the root 'C'$"),
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


def test_an_altered_dominant_is_a_dominant_seventh_with_alterations():
    chord = parse_chord_symbol("C7alt")
    # The 5th is altered both ways, so the chord is C7 without its 5th, not an augmented seventh.
    assert (chord.root, chord.quality, chord.added, chord.omitted) == (0, "7", (1, 3, 6, 8), (7,))
    assert chord.harte == "C:7(b9,#9,#11,b13,*5)"
    assert chord.symbol == "C7(b9,#9,#11,b13,no5)"
    assert parse_chord_symbol("C:(3,b5,#5,b7,b9,#9)") == chord
    assert parse_chord_symbol("G7alt/B") == Chord(7, "7", bass=11, added=(1, 3, 6, 8), omitted=(7,))


def test_chord_symbol_error_is_a_value_error():
    with pytest.raises(ValueError):
        parse_chord_symbol("H")
