"""JASCO's chord vocabulary: the checkpoint's label -> index table, and the nearest label for any chord.

The table ships with each checkpoint as `chord_to_index_mapping.pkl`, a plain dict of 194 Chordino
labels (`'N'`, `'C'`, `'Am7'`, `'Gm7b5/F'`, ... `'UNK'`); index 194, one past the last label, is the
model's "no chord information" row. It is read at run time, never typed into code:

    >>> vocabulary = ChordVocabulary.from_pickle("chord_to_index_mapping.pkl")  # doctest: +SKIP
    >>> vocabulary.map_chord(parse_chord_symbol("Dbmaj9"))                       # doctest: +SKIP
    VocabularyMatch(given='C#maj9', label='C#maj7', index=158, exact=False, reason='...')

`map_chord` never raises for a valid chord. It tries, in order: the same chord in any enharmonic
spelling (`Db` is `C#`); for a chord that only adds tensions (9ths, 11ths, 13ths) to its row of
`midi.chords.QUALITIES` (and perhaps leaves some of the row's tones out), that row on the same root
where the table has it (`C7alt` -> `C7`); otherwise the label that sounds most alike by the weights in
`MatchWeights` (shared chord tones weighted by their role, a same root, a same lowest note, minus
each tone the label adds). Ties go to the label with fewer tones, then to the earlier row of
`QUALITIES` (major before minor), then to the lower index. A slash chord is matched by the chord
above the bass, kept over its bass only where the table has that slash label (`G9/B` -> `G7/B`,
`Dbmaj9/F` -> `C#maj7`).
"""

from __future__ import annotations

import functools
import io
import logging
import os
import pickle
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from types import MappingProxyType
from typing import Any

from midi.checks import is_finite_number, is_whole_number
from midi.chords import (
    QUALITIES,
    Chord,
    TimedChord,
    degree_number,
    degree_semitones,
    pitch_class_name,
)
from midi.errors import ChordSymbolError, VocabularyError, VocabularyLookupError
from midi.symbols import parse_chord_symbol

logger = logging.getLogger(__name__)

NO_CHORD_LABEL = "N"
UNKNOWN_LABEL = "UNK"
_MAX_PICKLE_BYTES = 1 << 20  # the released table is 2 kB; anything this large is not a chord table
_QUALITY_ORDER = {q.name: order for order, q in enumerate(QUALITIES)}


# Root and 3rd (or the 2nd/4th that replaces it) say most; then the 7th or 6th, the 5th, tensions.
_TONE_WEIGHTS = {1: 2.0, 2: 2.0, 3: 2.0, 4: 2.0, 5: 1.0, 6: 1.5, 7: 1.5, 9: 0.5, 11: 0.5, 13: 0.5}
_SCALAR_WEIGHTS = ("bass_outside_chord", "same_root", "same_lowest_note", "per_added_tone")


@dataclass(frozen=True)
class MatchWeights:
    """How much each kind of agreement counts when no label names a chord exactly.

    A chord tone the label shares counts by its role: root, 3rd (or the 2nd/4th of a sus chord),
    5th, 6th/7th, tension (9th, 11th, 13th), or a bass note outside the chord. The same root
    counts more than the same lowest note, so Am7/C maps to Am7, not C6.
    """

    tone_by_degree_number: Mapping[int, float] = field(
        default_factory=lambda: dict(_TONE_WEIGHTS), hash=False
    )
    bass_outside_chord: float = 1.0
    same_root: float = 3.0
    same_lowest_note: float = 2.5
    per_added_tone: float = 1.0

    def __post_init__(self) -> None:
        numbers = dict(self.tone_by_degree_number)
        named = {f"tone_by_degree_number[{n}]": w for n, w in numbers.items()}
        named.update((name, getattr(self, name)) for name in _SCALAR_WEIGHTS)
        for name, value in named.items():
            if not is_finite_number(value) or value < 0:
                raise VocabularyError(
                    f"MatchWeights.{name} must be a finite number >= 0, got {value!r}"
                )
        # Read-only, so that a vocabulary's weights cannot change under its cache.
        object.__setattr__(self, "tone_by_degree_number", MappingProxyType(numbers))


@dataclass(frozen=True)
class VocabularyMatch:
    """Where one chord landed in the vocabulary, and why (`reason` is shown to the user)."""

    given: str
    label: str
    index: int
    exact: bool
    reason: str
    # The label with its root and bass named as the user wrote them (Dbmaj7 for C#maj7 when
    # Dbmaj9/F was given); the label itself when nobody wrote the chord.
    spelled: str = ""

    def __post_init__(self) -> None:
        if not self.spelled:
            object.__setattr__(self, "spelled", self.label)

    @property
    def shown(self) -> str:
        """The label as shown to the user: with their spelling beside it where it differs
        (`C#maj7 (Dbmaj7)`)."""
        return self.label if self.spelled == self.label else f"{self.label} ({self.spelled})"

    def __str__(self) -> str:
        mark = "" if self.exact else " (nearest)"
        return f"{self.given} -> {self.shown} [{self.index}]{mark}: {self.reason}"


@dataclass(frozen=True)
class _Entry:
    index: int
    label: str
    chord: Chord
    pitch_classes: frozenset[int]
    lowest: int
    tie_break: tuple[int, int, int]


class _PlainDataUnpickler(pickle.Unpickler):
    """Unpickles only built-in containers and scalars: a crafted file cannot import or call anything."""

    def find_class(self, module: str, name: str) -> Any:
        raise pickle.UnpicklingError(
            f"it refers to {module}.{name}, which a plain label table never does"
        )


class ChordVocabulary:
    """A checkpoint's chord labels and indices, with nearest-label mapping for any `Chord`."""

    def __init__(
        self,
        label_to_index: Mapping[str, int],
        source: str = "<in memory>",
        weights: MatchWeights | None = None,
    ) -> None:
        self.source = source
        self.weights = weights or MatchWeights()
        self._index_by_label = _checked_table(label_to_index, source)
        self._labels = tuple(sorted(self._index_by_label, key=self._index_by_label.__getitem__))
        self._entries = self._parse_labels()
        self._entry_by_index = {entry.index: entry for entry in self._entries}
        self._index_by_chord: dict[Chord, int] = {}
        for entry in self._entries:
            self._index_by_chord.setdefault(entry.chord, entry.index)
        # Per-instance memo: a song repeats a handful of chords thousands of frames over.
        self._cached_match = functools.lru_cache(maxsize=4096)(self._match)

    @classmethod
    def from_pickle(
        cls, path: str | os.PathLike[str], weights: MatchWeights | None = None
    ) -> ChordVocabulary:
        """Read a checkpoint's `chord_to_index_mapping.pkl` (a dict of label -> index)."""
        path = Path(path)
        try:
            size = path.stat().st_size
            if size > _MAX_PICKLE_BYTES:
                raise VocabularyError(
                    f"{path}: {size} bytes is far too large for a chord table — is it the right file?"
                )
            data = path.read_bytes()
        except FileNotFoundError:
            raise VocabularyError(
                f"{path}: chord table not found — it ships with the checkpoint as chord_to_index_mapping.pkl"
            ) from None
        except OSError as error:
            raise VocabularyError(
                f"{path}: cannot read the chord table ({error.strerror or error})"
            ) from None
        try:
            table = _PlainDataUnpickler(io.BytesIO(data)).load()
        # A corrupt pickle can raise almost anything; every one of them means "not a table".
        except Exception as error:
            raise VocabularyError(f"{path}: not a readable chord table: {error}") from None
        return cls(table, source=str(path), weights=weights)

    def _parse_labels(self) -> tuple[_Entry, ...]:
        entries = []
        for label in self._labels:
            if label in (NO_CHORD_LABEL, UNKNOWN_LABEL):
                continue
            try:
                chord = parse_chord_symbol(label)
            except ChordSymbolError as error:
                logger.warning(
                    "%s: label %r is not a chord I can read, so nothing maps to it (%s)",
                    self.source,
                    label,
                    error,
                )
                continue
            if chord is None:
                continue
            tones = len(chord.pitch_classes)
            index = self._index_by_label[label]
            tie_break = (tones, _QUALITY_ORDER[chord.quality], index)
            entries.append(
                _Entry(index, label, chord, chord.pitch_classes, chord.voicing[0], tie_break)
            )
        if not entries:
            raise VocabularyError(
                f"{self.source}: no label of the table is a chord — is it a chord table?"
            )
        return tuple(entries)

    @property
    def labels(self) -> tuple[str, ...]:
        """Every label, in index order."""
        return self._labels

    def __len__(self) -> int:
        return len(self._labels)

    @property
    def null_index(self) -> int:
        """The model's "no chord information" row: one past the last label (194 for JASCO)."""
        return len(self._labels)

    @property
    def no_chord_index(self) -> int:
        """The index of `N`, silence or no harmony."""
        return self._index_by_label[NO_CHORD_LABEL]

    @property
    def unknown_index(self) -> int | None:
        """The index of `UNK`, or None if this table has no such label."""
        return self._index_by_label.get(UNKNOWN_LABEL)

    def index_of(self, label: str) -> int:
        """The index of an exact label of the table (`'Am7'` -> 26); `map_chord` finds the nearest one."""
        index = self._index_by_label.get(label)
        if index is None:
            raise VocabularyLookupError(
                f"{label!r} is not a label of {self.source} — labels are spelled like 'C#m7', 'Bbmaj7', "
                "'Gm7b5/F'; map_chord(parse_chord_symbol(...)) finds the nearest label for any chord"
            )
        return index

    def label_of(self, index: int) -> str:
        """The label at an index (`26` -> `'Am7'`)."""
        if not is_whole_number(index):
            raise VocabularyLookupError(f"a vocabulary index is an int, got {index!r}")
        if index == self.null_index:
            raise VocabularyLookupError(
                f"index {index} is the null chord (no chord information); it has no label"
            )
        if not 0 <= index < len(self._labels):
            raise VocabularyLookupError(
                f"index {index} is outside {self.source}, which holds 0..{len(self._labels) - 1}"
            )
        return self._labels[index]

    def pitch_classes_of(self, index: int) -> tuple[int, ...]:
        """The pitch classes a label sounds, bass first, then upwards from the root; () for N, UNK, null."""
        if index == self.null_index:
            return ()
        self.label_of(index)  # raises for an index outside the table
        entry = self._entry_by_index.get(index)
        return () if entry is None else entry.chord.voicing

    def map_chord(self, chord: Chord | None) -> VocabularyMatch:
        """The label JASCO should see for `chord` (None = no chord -> `N`). Never raises for a Chord."""
        if chord is not None and not isinstance(chord, Chord):
            raise ChordSymbolError(
                f"map_chord takes a Chord or None, got {chord!r} — parse text with parse_chord_symbol"
            )
        return self._cached_match(chord)

    def map_symbol(self, text: str) -> VocabularyMatch:
        """`map_chord` of a chord symbol as the user wrote it, keeping their spelling beside the
        label: ``Dbmaj9/F`` lands on ``C#maj7``, spelled ``Dbmaj7``. Raises ChordSymbolError."""
        chord = parse_chord_symbol(text)
        match = self.map_chord(chord)
        if chord is None:
            return replace(match, given=text)
        reading = spelled_as(chord.symbol, text)
        spelled = spelled_as(match.label, text)
        reason = match.reason.replace(chord.symbol, reading)
        if spelled != match.label:
            reason = reason.replace(f"is {match.label}", f"is {match.label} ({spelled})")
        return replace(match, given=text, spelled=spelled, reason=reason)

    def map_timed(self, timed: TimedChord) -> TimedChord:
        """`timed` with its `match`: the written symbol's (keeping the user's spelling) where
        there is one, else the chord's."""
        if timed.written is None:
            return replace(timed, match=self.map_chord(timed.chord))
        return replace(timed, match=self.map_symbol(timed.written))

    def _match(self, chord: Chord | None) -> VocabularyMatch:
        if chord is None:
            return VocabularyMatch("N.C.", NO_CHORD_LABEL, self.no_chord_index, True, "no chord")
        given = chord.symbol
        index = self._index_by_chord.get(chord)
        if index is not None:
            label = self._labels[index]
            reason = (
                "in the vocabulary" if label == given else f"in the vocabulary, spelled {label}"
            )
            return VocabularyMatch(given, label, index, True, reason)
        if chord.bass is None:
            entry = self._closest(chord)
        else:
            # Slash chords: find the chord above the bass, then keep the bass only where the
            # table has that chord over it (G9/B -> G7/B, Dbmaj9/F -> C#maj7).
            entry = self._closest(replace(chord, bass=None))
            over_bass = self._index_by_chord.get(replace(entry.chord, bass=chord.bass))
            if over_bass is not None:
                entry = self._entry_by_index[over_bass]
        return VocabularyMatch(
            given, entry.label, entry.index, False, _nearest_reason(given, chord, entry)
        )

    def _closest(self, chord: Chord) -> _Entry:
        """The entry for a chord in root position: itself, its row under the tensions, or the nearest."""
        for candidate in (chord, _row_under_tensions(chord)):
            index = self._index_by_chord.get(candidate)
            if index is not None:
                return self._entry_by_index[index]
        return self._nearest(chord)

    def _nearest(self, chord: Chord) -> _Entry:
        """The entry with the best score; ties to fewer tones, earlier quality row, lower index."""
        weights = self.weights
        tones = _tone_weights(chord, weights)
        lowest = chord.voicing[0]

        def rank(entry: _Entry) -> tuple[float, tuple[int, int, int]]:
            score = sum(w for pc, w in tones.items() if pc in entry.pitch_classes)
            score -= weights.per_added_tone * len(entry.pitch_classes - tones.keys())
            score += weights.same_root * (entry.chord.root == chord.root)
            score += weights.same_lowest_note * (entry.lowest == lowest)
            return -score, entry.tie_break

        return min(self._entries, key=rank)

    def __repr__(self) -> str:
        return f"<ChordVocabulary {len(self)} labels from {self.source}>"


_NOTE_NAME = r"([A-G](?:#|b|\u266f|\u266d)*)"
_LEADING_NAME = re.compile(r"^\s*" + _NOTE_NAME)
_BASS_NAME = re.compile(r"/\s*" + _NOTE_NAME + r"\s*$")
_LETTER_PITCH_CLASS = {"C": 0, "D": 2, "E": 4, "F": 5, "G": 7, "A": 9, "B": 11}


def spelled_as(symbol: str, written: str) -> str:
    """`symbol` (canonically spelled, such as C#maj7/F) with its root and bass named as in
    `written` where those name the same pitch classes: ``spelled_as("C#maj7", "Dbmaj9/F")`` is
    ``Dbmaj7``. Names that differ in pitch class (the vocabulary moved the bass) stay as they are.
    """
    result = symbol
    for pattern in (_LEADING_NAME, _BASS_NAME):
        ours, theirs = pattern.search(result), pattern.search(written)
        if ours and theirs and _pitch_class(ours.group(1)) == _pitch_class(theirs.group(1)):
            result = result[: ours.start(1)] + theirs.group(1) + result[ours.end(1) :]
    return result


def _pitch_class(name: str) -> int:
    sharps = name.count("#") + name.count("\u266f")
    flats = name.count("b") + name.count("\u266d")
    return (_LETTER_PITCH_CLASS[name[0]] + sharps - flats) % 12


def _row_under_tensions(chord: Chord) -> Chord | None:
    """The chord's bare row on its root (`C7` for `C7(b9,#9,#11,b13,no5)`) if all it adds are tensions.

    The tone-by-tone score would send an altered dominant to `Caug`, all three of whose tones it holds,
    but the row is the chord's function and the tensions its colour; None when the chord adds a
    chord tone (2nd to 7th), which changes what the chord is.
    """
    row_degrees = set(chord.quality_row.degrees)
    if any(degree_number(d) <= 7 for d in chord.degrees if d not in row_degrees):
        return None
    return Chord(chord.root, chord.quality)


def _tone_weights(chord: Chord, weights: MatchWeights) -> dict[int, float]:
    """Each sounding pitch class of `chord` with the weight of its most important role."""
    tones: dict[int, float] = {}
    for degree in chord.degrees:
        pc = (chord.root + degree_semitones(degree)) % 12
        tones[pc] = max(
            tones.get(pc, 0.0), weights.tone_by_degree_number.get(degree_number(degree), 0.5)
        )
    if chord.bass is not None and chord.bass not in tones:
        tones[chord.bass] = weights.bass_outside_chord
    return tones


def _nearest_reason(given: str, chord: Chord, entry: _Entry) -> str:
    kept = chord.pitch_classes & entry.chord.pitch_classes
    dropped = chord.pitch_classes - entry.chord.pitch_classes
    added = entry.chord.pitch_classes - chord.pitch_classes

    def names(pcs: frozenset[int]) -> str:
        return " ".join(pitch_class_name(pc) for pc in sorted(pcs))

    parts = [f"the vocabulary has no {given}; nearest is {entry.label}, keeping {names(kept)}"]
    if dropped:
        parts.append(f"dropping {names(dropped)}")
    if added:
        parts.append(f"adding {names(added)}")
    if chord.bass is not None and entry.lowest != chord.bass:
        parts.append(f"without the bass {pitch_class_name(chord.bass)}")
    return ", ".join(parts)


def _checked_table(table: object, source: str) -> dict[str, int]:
    """The table as a plain dict, after checking it is labels -> indices 0..n-1 with `N` among them."""
    if not isinstance(table, Mapping):
        raise VocabularyError(
            f"{source}: expected a dict of chord label -> index, got {type(table).__name__}"
        )
    checked: dict[str, int] = {}
    for label, index in table.items():
        if not isinstance(label, str) or isinstance(index, bool) or not isinstance(index, int):
            raise VocabularyError(
                f"{source}: entry {label!r}: {index!r} is not a text label -> int index"
            )
        checked[label] = index
    if sorted(checked.values()) != list(range(len(checked))):
        raise VocabularyError(f"{source}: indices must be 0..{len(checked) - 1}, each used once")
    if NO_CHORD_LABEL not in checked:
        raise VocabularyError(f"{source}: the table has no {NO_CHORD_LABEL!r} (no chord) label")
    return checked


def describe_symbol(text: str, vocabulary: ChordVocabulary) -> dict[str, object]:
    """Everything `jasco-bridge chords --symbol` shows for one symbol: how it was read and where it lands.

    Raises ChordSymbolError (naming the symbol) when the text is not a chord.
    """
    chord = parse_chord_symbol(text)
    match = vocabulary.map_symbol(text)
    index = match.index
    return {
        "input": text,
        "harte": "N" if chord is None else chord.harte,
        "symbol": "N.C." if chord is None else spelled_as(chord.symbol, text),
        "pitch_names": [] if chord is None else [pitch_class_name(pc) for pc in chord.voicing],
        "label": match.label,
        "label_spelled": match.spelled,
        "index": index,
        "label_pitch_names": [pitch_class_name(pc) for pc in vocabulary.pitch_classes_of(index)],
        "exact": match.exact,
        "reason": match.reason,
    }
