"""JASCO's chord vocabulary: reading the checkpoint's table safely, exact and nearest labels."""

import pickle
from pathlib import Path

import numpy as np
import pytest

from midi.chords import Chord, TimedChord
from midi.errors import ChordSymbolError, VocabularyError, VocabularyLookupError
from midi.symbols import parse_chord_symbol
from midi.vocabulary import (
    ChordVocabulary,
    MatchWeights,
    VocabularyMatch,
    describe_symbol,
    spelled_as,
)

from .test_symbols import SPELLINGS


@pytest.fixture(scope="module")
def vocabulary(chord_pkl) -> ChordVocabulary:
    return ChordVocabulary.from_pickle(chord_pkl)


def test_the_released_table(vocabulary):
    assert len(vocabulary) == 194
    assert vocabulary.null_index == 194
    assert vocabulary.no_chord_index == 0
    assert vocabulary.unknown_index == 193
    assert vocabulary.labels[:3] == ("N", "F", "C")
    assert vocabulary.index_of("Am7") == 26
    assert vocabulary.label_of(137) == "C#/E#"


def test_every_label_maps_to_itself(vocabulary):
    real = [label for label in vocabulary.labels if label not in ("N", "UNK")]
    assert len(real) == 192
    for index in range(len(vocabulary)):
        assert vocabulary.index_of(vocabulary.label_of(index)) == index
    for label in real:
        match = vocabulary.map_chord(parse_chord_symbol(label))
        assert (match.label, match.exact) == (label, True), match


@pytest.mark.parametrize("text", SPELLINGS)
def test_every_spelling_maps_to_a_label(vocabulary, text):
    match = vocabulary.map_chord(parse_chord_symbol(text))
    assert vocabulary.label_of(match.index) == match.label
    assert match.label != "UNK"
    assert match.reason


@pytest.mark.parametrize(
    ("text", "label", "exact"),
    [
        ("Db", "C#", True),
        ("Gbm7b5", "F#m7b5", True),
        ("E:hdim7", "Em7b5", True),
        ("A:7/3", "A7/C#", True),
        ("C:maj/2", "C/D", True),
        ("Cmaj9", "Cmaj7", False),
        ("C9", "C7", False),
        ("C13", "C7", False),
        ("Cm11", "Cm7", False),
        ("C7#9", "C7", False),
        ("C7b9", "C7", False),
        ("Cdim7", "Cdim", False),
        ("Cm(maj7)", "Cm", False),
        ("C5", "C", False),
        ("C1", "C", False),
        ("Csus4", "C", False),
        ("Csus2", "C", False),
        ("C7sus4", "C7", False),
        ("Cadd9", "C", False),
        ("C6/9", "C6", False),
        ("Cmaj7#11", "Cmaj7", False),
        ("Am7/C", "Am7", False),
        ("C/F#", "C", False),
        ("G9/B", "G7/B", False),
        ("Dbmaj9/F", "C#maj7", False),
        ("Cm7b5/Eb", "Cm7b5", False),
        ("C7alt", "C7", False),
        ("Bb7alt", "Bb7", False),
        ("G7alt/B", "G7/B", False),
        ("C:(3,b5,#5,b7)", "C7", False),
    ],
)
def test_exact_and_nearest_labels(vocabulary, text, label, exact):
    match = vocabulary.map_chord(parse_chord_symbol(text))
    assert (match.label, match.exact) == (label, exact), match
    assert match.index == vocabulary.index_of(label)


def test_no_chord_maps_to_n(vocabulary):
    assert vocabulary.map_chord(None) == VocabularyMatch("N.C.", "N", 0, True, "no chord")
    assert vocabulary.map_chord(parse_chord_symbol("N.C.")).index == 0


def test_reasons_say_what_changed(vocabulary):
    match = vocabulary.map_chord(parse_chord_symbol("Cmaj9"))
    assert match.given == "Cmaj9"
    assert (
        match.reason == "the vocabulary has no Cmaj9; nearest is Cmaj7, keeping C E G B, dropping D"
    )
    assert vocabulary.map_chord(parse_chord_symbol("Db")).reason == "in the vocabulary"
    assert (
        vocabulary.map_chord(parse_chord_symbol("Db/F")).reason
        == "in the vocabulary, spelled C#/E#"
    )
    assert "without the bass C" in vocabulary.map_chord(parse_chord_symbol("Am7/C")).reason
    assert str(vocabulary.map_chord(parse_chord_symbol("C9"))).startswith("C9 -> C7 [43] (nearest)")


def test_map_chord_refuses_text(vocabulary):
    with pytest.raises(ChordSymbolError, match="parse_chord_symbol"):
        vocabulary.map_chord("Am7")


def test_every_chord_of_every_root_and_quality_maps(vocabulary):
    for text in ("maj", "min7", "dim7", "sus2", "13", "aug7", "1", "5", "7#11"):
        for root in range(12):
            chord = Chord(root, text)
            match = vocabulary.map_chord(chord)
            # Transposing the chord transposes the label: the vocabulary covers all twelve roots.
            assert parse_chord_symbol(match.label).root == root, (chord, match)


def test_pitch_classes_of_puts_the_bass_first(vocabulary):
    assert vocabulary.pitch_classes_of(vocabulary.index_of("A7/C#")) == (1, 9, 4, 7)
    assert vocabulary.pitch_classes_of(vocabulary.index_of("Am")) == (9, 0, 4)
    assert vocabulary.pitch_classes_of(vocabulary.index_of("A/B")) == (11, 9, 1, 4)
    assert vocabulary.pitch_classes_of(0) == ()
    assert vocabulary.pitch_classes_of(193) == ()
    assert vocabulary.pitch_classes_of(194) == ()
    with pytest.raises(VocabularyLookupError, match="index 195 is outside"):
        vocabulary.pitch_classes_of(195)


def test_an_index_from_numpy_reads_like_an_int(vocabulary):
    index = np.int64(137)  # as from an argmax over the model's chord logits
    assert vocabulary.label_of(index) == "C#/E#"
    assert vocabulary.pitch_classes_of(index) == vocabulary.pitch_classes_of(137)


def test_lookups_raise_clear_errors(vocabulary):
    with pytest.raises(VocabularyLookupError, match="'Cmaj9' is not a label of .*map_chord"):
        vocabulary.index_of("Cmaj9")
    with pytest.raises(VocabularyLookupError, match="index 194 is the null chord"):
        vocabulary.label_of(194)
    with pytest.raises(VocabularyLookupError, match="index -1 is outside"):
        vocabulary.label_of(-1)
    with pytest.raises(VocabularyLookupError, match="is an int"):
        vocabulary.label_of("3")
    with pytest.raises(VocabularyLookupError, match="is an int"):
        vocabulary.label_of(True)
    with pytest.raises(LookupError):
        vocabulary.index_of("H")


def test_dev_set_labels_parse_and_map(vocabulary, chords_dev_dir):
    labels = set()
    for lab in sorted(chords_dev_dir.glob("*.lab")):
        for line in lab.read_text(encoding="utf-8").splitlines():
            if line.strip():
                labels.add(line.split("\t")[2].strip())
    assert len(labels) > 50
    for label in labels:
        chord = parse_chord_symbol(label)
        if label == "N":
            assert chord is None
            continue
        assert chord.harte == label
        match = vocabulary.map_chord(chord)
        assert match.label not in ("N", "UNK"), label


def test_describe_symbol(vocabulary):
    described = describe_symbol("Dbmaj9/F", vocabulary)
    assert described == {
        "input": "Dbmaj9/F",
        "harte": "C#:maj9/3",
        "symbol": "Dbmaj9/F",  # read back in the user's spelling
        "pitch_names": ["F", "C#", "Ab", "C", "Eb"],
        "label": "C#maj7",
        "label_spelled": "Dbmaj7",
        "index": 158,
        "label_pitch_names": ["C#", "F", "Ab", "C"],
        "exact": False,
        "reason": described["reason"],
    }
    assert "without the bass F" in described["reason"]
    assert describe_symbol("N.C.", vocabulary)["label"] == "N"
    with pytest.raises(ChordSymbolError, match="'H7'"):
        describe_symbol("H7", vocabulary)


def test_map_symbol_keeps_the_users_spelling_beside_the_label(vocabulary):
    match = vocabulary.map_symbol("Dbmaj9/F")
    assert (match.given, match.label, match.spelled) == ("Dbmaj9/F", "C#maj7", "Dbmaj7")
    assert "no Dbmaj9/F" in match.reason and "C#maj7 (Dbmaj7)" in match.reason
    assert "C#maj7 (Dbmaj7)" in str(match)
    flat_bass = vocabulary.map_symbol("Ab/C")
    assert flat_bass.spelled in ("Ab/C", flat_bass.label)
    assert vocabulary.map_symbol("Gb7").spelled == "Gb7"
    assert vocabulary.map_symbol("C#m").spelled == vocabulary.map_symbol("C#m").label
    assert vocabulary.map_symbol("N.C.").spelled == "N"


def test_a_timed_chord_keeps_its_times_and_spelling_when_placed(vocabulary):
    written = TimedChord(4.0, 6.0, parse_chord_symbol("Dbmaj9/F"), written="Dbmaj9/F")
    placed = vocabulary.map_timed(written)
    assert (placed.start_beat, placed.end_beat, placed.written) == (4.0, 6.0, "Dbmaj9/F")
    assert placed.match == vocabulary.map_symbol("Dbmaj9/F")
    assert str(placed) == "Dbmaj9/F from beat 4 to 6 -> C#maj7 (Dbmaj7)"
    recognised = vocabulary.map_timed(TimedChord(0.0, 2.0, None))
    assert recognised.match == vocabulary.map_chord(None) and recognised.harte == "N"
    with pytest.raises(ChordSymbolError, match="VocabularyMatch"):
        TimedChord(0.0, 2.0, None, match="C")


def test_spelled_as_renames_root_and_bass_only_when_they_are_the_same_pitch_class():
    assert spelled_as("C#maj7/F", "Dbmaj9/F") == "Dbmaj7/F"
    assert spelled_as("F#7/A#", "Gb7/Bb") == "Gb7/Bb"
    assert spelled_as("C#maj7", "Ebmaj9/F") == "C#maj7"


# --- reading the table -------------------------------------------------------------------


def write_pickle(path: Path, value) -> Path:
    path.write_bytes(pickle.dumps(value))
    return path


class RunsCode:
    """Unpickling this calls Path.touch: what a malicious table would do with os.system."""

    def __init__(self, target: Path):
        self.target = target

    def __reduce__(self):
        return (Path.touch, (self.target,))


def test_malicious_pickle_is_refused_without_running_anything(tmp_path):
    target = tmp_path / "pwned"
    path = write_pickle(tmp_path / "evil.pkl", {"N": 0, "C": RunsCode(target)})
    with pytest.raises(VocabularyError, match=r"evil\.pkl: not a readable chord table.*pathlib"):
        ChordVocabulary.from_pickle(path)
    assert not target.exists()


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (["N", "C"], "expected a dict of chord label -> index, got list"),
        ({"N": 0, "C": "1"}, "entry 'C': '1' is not a text label -> int index"),
        ({"N": 0, "C": True}, "entry 'C'"),
        ({"N": 0, "C": 2}, r"indices must be 0\.\.1, each used once"),
        ({"N": 0, "C": 0}, "each used once"),
        ({"C": 0, "F": 1}, "has no 'N'"),
        ({"N": 0, "UNK": 1}, "no label of the table is a chord"),
    ],
)
def test_malformed_tables_are_refused(tmp_path, value, message):
    path = write_pickle(tmp_path / "table.pkl", value)
    with pytest.raises(VocabularyError, match=message):
        ChordVocabulary.from_pickle(path)


def test_unreadable_files_name_the_file(tmp_path):
    with pytest.raises(VocabularyError, match=r"missing\.pkl: chord table not found"):
        ChordVocabulary.from_pickle(tmp_path / "missing.pkl")
    truncated = tmp_path / "truncated.pkl"
    truncated.write_bytes(pickle.dumps({"N": 0, "C": 1})[:-5])
    with pytest.raises(VocabularyError, match=r"truncated\.pkl: not a readable chord table"):
        ChordVocabulary.from_pickle(truncated)
    with pytest.raises(VocabularyError, match="cannot read"):
        ChordVocabulary.from_pickle(tmp_path)
    huge = tmp_path / "huge.pkl"
    huge.write_bytes(b"\0" * (2 << 20))
    with pytest.raises(VocabularyError, match="far too large"):
        ChordVocabulary.from_pickle(huge)


def test_a_small_table_still_maps_everything(caplog):
    vocabulary = ChordVocabulary({"N": 0, "C": 1, "Am": 2, "G7/B": 3, "weird": 4})
    assert "weird" in caplog.text
    assert vocabulary.unknown_index is None
    assert vocabulary.map_chord(parse_chord_symbol("Cmaj7")).label == "C"
    assert vocabulary.map_chord(parse_chord_symbol("G7")).label == "G7/B"
    assert vocabulary.pitch_classes_of(4) == ()


def test_a_label_with_tensions_beats_its_bare_row():
    # Rows under tensions are a fallback: a table that names the tensions keeps them.
    vocabulary = ChordVocabulary({"N": 0, "C7": 1, "C7(b9,#11)": 2})
    assert vocabulary.map_chord(parse_chord_symbol("C7b9#11/E")).label == "C7(b9,#11)"
    assert vocabulary.map_chord(parse_chord_symbol("C7alt")).label == "C7"


def test_weights_change_the_choice():
    table = {"N": 0, "C": 1, "C/D": 2}
    default = ChordVocabulary(table)
    assert default.map_chord(parse_chord_symbol("Csus2")).label == "C"
    bass_blind = ChordVocabulary(table, weights=MatchWeights(same_lowest_note=0.0))
    assert bass_blind.map_chord(parse_chord_symbol("Csus2")).label == "C/D"


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"same_root": -1.0}, r"MatchWeights\.same_root must be a finite number >= 0, got -1\.0"),
        ({"per_added_tone": float("nan")}, "per_added_tone"),
        ({"tone_by_degree_number": {3: "2"}}, r"tone_by_degree_number\[3\]"),
    ],
)
def test_weights_are_validated(overrides, message):
    with pytest.raises(VocabularyError, match=message):
        MatchWeights(**overrides)


def test_weights_are_read_only():
    weights = MatchWeights()
    with pytest.raises(TypeError):
        weights.tone_by_degree_number[3] = 0.0
