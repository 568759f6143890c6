"""Chords as pitch content: one quality table, the `Chord` value and its names.

One table, `QUALITIES`, drives everything: each row gives a quality's canonical name, its chord
tones as Harte degrees, the symbol spellings producers and lead sheets use, and its Chordino suffix.
Parsing (`midi.symbols`), Harte and musician naming, recognition templates and the vocabulary's
nearest-label search all read it; adding a quality means adding one row.

    >>> chord = Chord(1, "maj9", bass=5)
    >>> chord.harte, chord.symbol, chord.chordino
    ('C#:maj9/3', 'C#maj9/F', None)
    >>> Chord.from_intervals(9, [0, 3, 7, 10], bass=0).symbol
    'Am7/C'

A `Chord` is canonical: whatever made it, the same pitch content relative to the root gives the
same row of the table (plus `added` / `omitted` intervals when no row matches exactly), so
`Chord(0, "maj", added=(2,)) == Chord(0, "add9")`.

Text (lead-sheet symbols, Harte and Chordino labels) is read by `midi.symbols.parse_chord_symbol`.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from midi.checks import is_finite_number, is_whole_number
from midi.errors import ChordSymbolError
from midi.notes import PITCH_CLASS_NAMES

if TYPE_CHECKING:
    from midi.vocabulary import VocabularyMatch

# mir_eval's QUALITIES: only these may follow a colon in a label mir_eval validates.
HARTE_SHORTHANDS = frozenset(
    "maj min aug dim sus4 sus2 7 maj7 min7 minmaj7 maj6 min6 dim7 hdim7 "
    "maj9 min9 9 min11 11 maj13 min13 13 1 5".split()
)

# Semitones above the root of each natural degree, indexed by the degree's number (1-13).
_NATURAL_SEMITONES = (0, 0, 2, 4, 5, 7, 9, 11, 12, 14, 16, 17, 19, 21)
_DEGREE = re.compile(r"(b{0,2}|#{0,2})(1[0-3]|[1-9])")


def degree_semitones(degree: str) -> int:
    """Semitones above the root of a Harte degree: `'b3'` -> 3, `'#11'` -> 18, `'bb7'` -> 9."""
    match = _DEGREE.fullmatch(degree)
    if match is None:
        raise ChordSymbolError(
            f"{degree!r} is not a chord degree — write a number 1-13 with optional b or # before it, such as b3, 5, #11"
        )
    accidentals, number = match.groups()
    return _NATURAL_SEMITONES[int(number)] + accidentals.count("#") - accidentals.count("b")


def degree_number(degree: str) -> int:
    """The number of a Harte degree without its accidentals: `'b13'` -> 13."""
    return int(degree.lstrip("b#"))


@dataclass(frozen=True)
class Quality:
    """One row of the chord table.

    `name` is the canonical shorthand (mir_eval's where mir_eval has one); `degrees` are the chord
    tones as Harte degrees, root first; `spellings` are the suffixes read after a root in symbols,
    the first being the one we write; `chordino` is the suffix in Chordino's (and JASCO's)
    vocabulary, or None where Chordino has no such chord.
    """

    name: str
    degrees: tuple[str, ...]
    spellings: tuple[str, ...]
    chordino: str | None = None
    intervals: tuple[int, ...] = field(init=False, repr=False, compare=False)
    """Semitones above the root, extensions above the octave (a ninth is 14)."""
    pitch_class_set: frozenset[int] = field(init=False, repr=False, compare=False)
    """The intervals folded into one octave."""

    def __post_init__(self) -> None:
        if not self.degrees or self.degrees[0] != "1":
            raise ChordSymbolError(
                f"quality {self.name!r}: degrees must start with the root '1', got {self.degrees}"
            )
        intervals = tuple(degree_semitones(d) for d in self.degrees)
        pitch_class_set = frozenset(i % 12 for i in intervals)
        if len(pitch_class_set) != len(intervals):
            raise ChordSymbolError(
                f"quality {self.name!r}: two degrees of {self.degrees} are the same pitch class"
            )
        if not self.spellings:
            raise ChordSymbolError(f"quality {self.name!r} needs at least one symbol spelling")
        # Derived once here: parsing and matching read them for every chord.
        object.__setattr__(self, "intervals", intervals)
        object.__setattr__(self, "pitch_class_set", pitch_class_set)

    @property
    def harte(self) -> str:
        """What follows the colon in a Harte label: the shorthand, or an interval list if mir_eval has none."""
        if self.name in HARTE_SHORTHANDS:
            return self.name
        return "(" + ",".join(self.degrees[1:]) + ")"


# Row order is the preference order where two rows fit equally well (simplest and most common first).
QUALITIES: tuple[Quality, ...] = (
    Quality("maj", ("1", "3", "5"), ("", "maj", "M", "Maj", "major"), ""),
    Quality("min", ("1", "b3", "5"), ("m", "min", "mi", "-", "minor"), "m"),
    Quality("7", ("1", "3", "5", "b7"), ("7", "dom7"), "7"),
    Quality("maj7", ("1", "3", "5", "7"), ("maj7", "M7", "Maj7", "ma7", "Δ7", "Δ", "j7"), "maj7"),
    Quality("min7", ("1", "b3", "5", "b7"), ("m7", "min7", "mi7", "-7"), "m7"),
    Quality("maj6", ("1", "3", "5", "6"), ("6", "maj6", "M6"), "6"),
    Quality("min6", ("1", "b3", "5", "6"), ("m6", "min6", "mi6", "-6"), "m6"),
    Quality("dim", ("1", "b3", "b5"), ("dim", "°", "o"), "dim"),
    Quality("aug", ("1", "3", "#5"), ("aug", "+"), "aug"),
    Quality(
        "hdim7",
        ("1", "b3", "b5", "b7"),
        ("m7b5", "ø", "ø7", "-7b5", "min7b5", "mi7b5", "hdim7"),
        "m7b5",
    ),
    Quality("dim7", ("1", "b3", "b5", "bb7"), ("dim7", "°7", "o7"), None),
    Quality(
        "minmaj7", ("1", "b3", "5", "7"), ("mM7", "mmaj7", "minmaj7", "-maj7", "mΔ7", "-Δ7"), None
    ),
    Quality("sus4", ("1", "4", "5"), ("sus4", "sus"), None),
    Quality("sus2", ("1", "2", "5"), ("sus2",), None),
    Quality("5", ("1", "5"), ("5",), None),
    Quality("1", ("1",), ("1",), None),
    Quality("7sus4", ("1", "4", "5", "b7"), ("7sus4", "7sus", "sus7"), None),
    Quality("add9", ("1", "3", "5", "9"), ("add9", "add2", "2"), None),
    Quality("madd9", ("1", "b3", "5", "9"), ("madd9", "madd2", "-add9", "minadd9"), None),
    Quality("6/9", ("1", "3", "5", "6", "9"), ("6/9", "69", "6add9"), None),
    Quality("9", ("1", "3", "5", "b7", "9"), ("9",), None),
    Quality("maj9", ("1", "3", "5", "7", "9"), ("maj9", "M9", "Maj9", "ma9", "Δ9"), None),
    Quality("min9", ("1", "b3", "5", "b7", "9"), ("m9", "min9", "mi9", "-9"), None),
    Quality("min6/9", ("1", "b3", "5", "6", "9"), ("m6/9", "m69", "-6/9", "-69", "m6add9"), None),
    Quality("11", ("1", "3", "5", "b7", "9", "11"), ("11",), None),
    Quality("maj11", ("1", "3", "5", "7", "9", "11"), ("maj11", "M11", "Maj11", "Δ11"), None),
    Quality("min11", ("1", "b3", "5", "b7", "9", "11"), ("m11", "min11", "mi11", "-11"), None),
    Quality("13", ("1", "3", "5", "b7", "9", "11", "13"), ("13",), None),
    Quality(
        "maj13",
        ("1", "3", "5", "7", "9", "11", "13"),
        ("maj13", "M13", "Maj13", "ma13", "Δ13"),
        None,
    ),
    Quality(
        "min13", ("1", "b3", "5", "b7", "9", "11", "13"), ("m13", "min13", "mi13", "-13"), None
    ),
    Quality("aug7", ("1", "3", "#5", "b7"), ("aug7", "+7", "7#5", "7+5", "7+"), None),
    Quality("7b5", ("1", "3", "b5", "b7"), ("7b5",), None),
    Quality("7b9", ("1", "3", "5", "b7", "b9"), ("7b9",), None),
    Quality("7#9", ("1", "3", "5", "b7", "#9"), ("7#9",), None),
    Quality("7#11", ("1", "3", "5", "b7", "#11"), ("7#11",), None),
)
QUALITY_BY_NAME: dict[str, Quality] = {q.name: q for q in QUALITIES}
_QUALITY_BY_PITCH_SET = {q.pitch_class_set: q for q in QUALITIES}
_PERFECT_FIFTH = 7
_ALTERED_DOMINANT_CORE = frozenset({0, 4, 6, 8, 10})  # root, 3, b5, #5, b7


def pitch_class_name(pitch_class: int) -> str:
    """`0` -> `'C'`, `10` -> `'Bb'` (the vocabulary's spelling)."""
    return PITCH_CLASS_NAMES[pitch_class % 12]


def _simple_degree(interval: int) -> str:
    return ("1", "b2", "2", "b3", "3", "4", "b5", "5", "b6", "6", "b7", "7")[interval % 12]


def _added_degree(interval: int, base: frozenset[int]) -> str:
    """Harte name of a pitch class added to a quality: a tension where one fits, else a chord degree."""
    if interval == 3 and 4 not in base:
        return "b3"
    if interval == 9 and not base & {10, 11}:
        return "6"
    return ("1", "b9", "9", "#9", "3", "11", "#11", "5", "b13", "13", "b7", "7")[interval]


def _best_quality(interval_set: frozenset[int]) -> tuple[Quality, frozenset[int], frozenset[int]]:
    """The row that explains a set of intervals (root included) with the fewest changes.

    An omitted row tone or an added chord tone (3rd, 5th, 6th, 7th) costs 2, an added tension (9th,
    11th, 13th) costs 1, because a row should name the chord's skeleton and leave only colour on top
    (`C7b9#11` is a 7b9 with a #11, `C7(no5)` a 7 without its 5th). Ties go to the earlier row.

    One exception: an altered dominant (3rd and b7 with both b5 and #5, no natural 5th, as in
    `C7alt`) is the dominant seventh without its 5th and with the alterations on top. The costs
    would make it an aug7 or 7b5, but neither altered fifth is more the chord's 5th than the other,
    and calling it augmented hides the dominant function that a chart's "alt" names.
    """

    exact = _QUALITY_BY_PITCH_SET.get(interval_set)
    if exact is not None:
        return exact, frozenset(), frozenset()
    if interval_set >= _ALTERED_DOMINANT_CORE and _PERFECT_FIFTH not in interval_set:
        dominant = QUALITY_BY_NAME["7"]
        return dominant, interval_set - dominant.pitch_class_set, frozenset({_PERFECT_FIFTH})

    def cost(q: Quality) -> int:
        added = interval_set - q.pitch_class_set
        tensions = sum(degree_number(_added_degree(i, q.pitch_class_set)) > 7 for i in added)
        return 2 * len(q.pitch_class_set - interval_set) + 2 * (len(added) - tensions) + tensions

    best = min(QUALITIES, key=cost)
    return best, interval_set - best.pitch_class_set, best.pitch_class_set - interval_set


def _as_small_int(value: object, low: int, high: int, what: str) -> int:
    """`value` as a plain int in low..high; numpy integers (from an argmax, say) are welcome too."""
    if not is_whole_number(value) or not low <= value <= high:
        raise ChordSymbolError(f"{what} must be an integer {low}-{high}, got {value!r}")
    return int(value)


@dataclass(frozen=True)
class Chord:
    """A chord as pitch content: root and bass are pitch classes 0-11 (C=0), `bass=None` is root position.

    `added` and `omitted` hold intervals (1-11 semitones above the root) that the quality's row does
    not cover. The constructor makes the chord canonical: `Chord(0, 'maj', added=(2,))` becomes
    `Chord(0, 'add9')`, and a bass equal to the root becomes None.
    """

    root: int
    quality: str
    bass: int | None = None
    added: tuple[int, ...] = ()
    omitted: tuple[int, ...] = ()

    def __post_init__(self) -> None:
        pitch_class = "a pitch class (C=0, C#=1, ... B=11)"
        object.__setattr__(
            self, "root", _as_small_int(self.root, 0, 11, f"chord root, {pitch_class},")
        )
        if self.bass is not None:
            bass = _as_small_int(self.bass, 0, 11, f"chord bass, {pitch_class},")
            object.__setattr__(self, "bass", bass)
        row = QUALITY_BY_NAME.get(self.quality)
        if row is None:
            names = ", ".join(q.name for q in QUALITIES)
            raise ChordSymbolError(f"unknown chord quality {self.quality!r} — use one of: {names}")
        what = "added/omitted intervals, in semitones above the root,"
        try:
            added = {_as_small_int(i, 1, 11, what) for i in self.added}
            omitted = {_as_small_int(i, 1, 11, what) for i in self.omitted}
        except TypeError:
            raise ChordSymbolError(
                f"added/omitted must be sequences of intervals, got {self.added!r} / {self.omitted!r}"
            ) from None
        best, extra, missing = _best_quality(
            frozenset((row.pitch_class_set | added) - omitted | {0})
        )
        object.__setattr__(self, "quality", best.name)
        object.__setattr__(self, "added", tuple(sorted(extra)))
        object.__setattr__(self, "omitted", tuple(sorted(missing)))
        if self.bass == self.root:
            object.__setattr__(self, "bass", None)

    @classmethod
    def from_intervals(cls, root: int, intervals: Iterable[int], bass: int | None = None) -> Chord:
        """The chord on `root` whose tones lie the given semitones above it (any octave; root implied)."""
        interval_set = frozenset(i % 12 for i in intervals) | {0}
        quality, added, omitted = _best_quality(interval_set)
        return cls(root, quality.name, bass, tuple(sorted(added)), tuple(sorted(omitted)))

    @property
    def quality_row(self) -> Quality:
        return QUALITY_BY_NAME[self.quality]

    @property
    def degrees(self) -> tuple[str, ...]:
        """The sounding chord tones as Harte degrees, root first (the bass is not included)."""
        row = self.quality_row
        kept = tuple(d for d in row.degrees if degree_semitones(d) % 12 not in self.omitted)
        return kept + tuple(_added_degree(i, row.pitch_class_set) for i in self.added)

    @property
    def intervals(self) -> tuple[int, ...]:
        """Semitones above the root of the chord tones, ascending (extensions above the octave)."""
        return tuple(sorted(degree_semitones(d) for d in self.degrees))

    @property
    def pitch_classes(self) -> frozenset[int]:
        """Every pitch class that sounds, the bass included."""
        tones = {(self.root + i) % 12 for i in self.intervals}
        return frozenset(tones if self.bass is None else tones | {self.bass})

    @property
    def voicing(self) -> tuple[int, ...]:
        """Each sounding pitch class once: the lowest note first, then upwards from the root."""
        lowest = self.root if self.bass is None else self.bass
        upwards = ((self.root + i) % 12 for i in self.intervals)
        return (lowest, *(pc for pc in dict.fromkeys(upwards) if pc != lowest))

    @property
    def bass_degree(self) -> str | None:
        """The bass as a Harte degree (`'b3'` for Am7/C), or None in root position."""
        if self.bass is None:
            return None
        interval = (self.bass - self.root) % 12
        for degree in self.degrees:
            if degree_semitones(degree) % 12 == interval and degree_number(degree) <= 7:
                return degree
        return _simple_degree(interval)

    @property
    def harte(self) -> str:
        """The Harte label mir_eval reads: `C:maj7`, `A:min7/b3`, `C:(3,#5,b7)`, `C:7(b9,#11)`."""
        row = self.quality_row
        if not self.added and not self.omitted:
            body = row.harte
        elif row.name == "1":
            # A bare root with extra tones is written as annotators do: C:(2,b5), not C:1(9,#11).
            body = "(" + ",".join(_simple_degree(i) for i in self.added) + ")"
        elif row.name in HARTE_SHORTHANDS:
            extras = [_added_degree(i, row.pitch_class_set) for i in self.added]
            extras += ["*" + _simple_degree_of(row, i) for i in self.omitted]
            body = f"{row.name}({','.join(extras)})"
        else:
            body = "(" + ",".join(self.degrees[1:]) + ")"
        label = f"{pitch_class_name(self.root)}:{body}"
        return label if self.bass is None else f"{label}/{self.bass_degree}"

    @property
    def symbol(self) -> str:
        """How a musician writes it: `Cmaj7`, `Am7/C`, `C7(b9,#11)`, `Csus4(no5)`."""
        row = self.quality_row
        extras = [_symbol_addition(_added_degree(i, row.pitch_class_set), row) for i in self.added]
        extras += [f"no{degree_number(_simple_degree_of(row, i))}" for i in self.omitted]
        text = pitch_class_name(self.root) + row.spellings[0]
        if extras:
            text += "(" + ",".join(extras) + ")"
        return text if self.bass is None else f"{text}/{pitch_class_name(self.bass)}"

    @property
    def chordino(self) -> str | None:
        """The label in Chordino's spelling (`Bbm7b5/Ab`), or None if Chordino cannot name this chord."""
        suffix = self.quality_row.chordino
        if suffix is None or self.added or self.omitted:
            return None
        text = pitch_class_name(self.root) + suffix
        return text if self.bass is None else f"{text}/{pitch_class_name(self.bass)}"

    def __str__(self) -> str:
        return self.symbol

    def __repr__(self) -> str:
        parts = [str(self.root), repr(self.quality)]
        if self.bass is not None:
            parts.append(f"bass={self.bass}")
        if self.added:
            parts.append(f"added={self.added}")
        if self.omitted:
            parts.append(f"omitted={self.omitted}")
        return f"Chord({', '.join(parts)})"


def _simple_degree_of(row: Quality, interval: int) -> str:
    """The row's own name for one of its intervals (`b3` in min7), for omissions."""
    return next(d for d in row.degrees if degree_semitones(d) % 12 == interval)


def _symbol_addition(degree: str, row: Quality) -> str:
    # A bare 7 reads as a dominant seventh on a chart, so the major seventh is written out.
    if degree == "7":
        return "maj7"
    # A bare degree replaces the row's degree of that number (C7b9 has no 9th besides the b9),
    # so one that sounds beside it is written as an addition: Cdim(add5), C11(add#11).
    if any(degree_number(d) == degree_number(degree) for d in row.degrees):
        return f"add{degree}"
    return degree


@dataclass(frozen=True)
class TimedChord:
    """A chord held from `start_beat` to `end_beat` (quarter notes from the song start); None = no chord.

    `written` is the chord symbol as the user wrote it (``Dbmaj9/F``), kept so that reports can
    spell the chord their way; None for a recognised chord. `match` is where the chord lands in
    a checkpoint's vocabulary, once `ChordVocabulary.map_timed` has placed it: the same record
    goes from recognition (or the symbols sent) to the clip's sidecar.
    """

    start_beat: float
    end_beat: float
    chord: Chord | None
    written: str | None = None
    match: VocabularyMatch | None = None

    def __post_init__(self) -> None:
        for name in ("start_beat", "end_beat"):
            value = getattr(self, name)
            if not is_finite_number(value):
                raise ChordSymbolError(
                    f"TimedChord.{name} must be a finite number of beats, got {value!r}"
                )
        if self.start_beat < 0:
            raise ChordSymbolError(f"TimedChord.start_beat must be >= 0, got {self.start_beat}")
        if self.end_beat <= self.start_beat:
            raise ChordSymbolError(
                f"TimedChord ends at beat {self.end_beat}, not after its start {self.start_beat} — swap or drop it"
            )
        if self.chord is not None and not isinstance(self.chord, Chord):
            raise ChordSymbolError(f"TimedChord.chord must be a Chord or None, got {self.chord!r}")
        if self.written is not None and not isinstance(self.written, str):
            raise ChordSymbolError(f"TimedChord.written must be text or None, got {self.written!r}")
        if self.match is not None:
            # Imported here: the vocabulary module builds on this one.
            from midi.vocabulary import VocabularyMatch

            if not isinstance(self.match, VocabularyMatch):
                raise ChordSymbolError(
                    f"TimedChord.match must be a VocabularyMatch or None, got {self.match!r}"
                )

    @property
    def length_beats(self) -> float:
        return self.end_beat - self.start_beat

    @property
    def harte(self) -> str:
        """The chord's Harte label (`C#:maj9/3`), `N` for no chord."""
        return "N" if self.chord is None else self.chord.harte

    def __str__(self) -> str:
        name = "N.C." if self.chord is None else self.chord.symbol
        where = f"from beat {self.start_beat:g} to {self.end_beat:g}"
        if self.match is None:
            return f"{name} {where}"
        arrow = "=" if self.match.exact else "->"
        return f"{self.written or name} {where} {arrow} {self.match.shown}"
