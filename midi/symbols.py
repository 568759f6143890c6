"""Chord symbols and Harte labels as people write them, read into `Chord` values.

    >>> chord = parse_chord_symbol("Dbmaj9/F")
    >>> chord
    Chord(1, 'maj9', bass=5)
    >>> chord.harte, chord.symbol
    ('C#:maj9/3', 'C#maj9/F')
    >>> parse_chord_symbol("A:min7/b3").symbol
    'Am7/C'
    >>> parse_chord_symbol("N.C.") is None
    True

Two grammars are read:

* Harte / mir_eval labels (anything with a colon, or a root with a degree bass such as `C/3`):
  `C:maj7`, `A:min7/b3`, `C:(3,#5,b7)`, `C:maj(9)`, `C:min7(*b3)`. As in mir_eval the root always
  sounds, so `*1` is accepted and ignored.
* Chord symbols: a root (`A`-`G`, then `#`, `b`, `##`, `bb`, `♯` or `♭`), a quality spelling from
  `midi.chords.QUALITIES` (longest match: `m7b5` before `m7` before `m`), then modifiers such as
  `b9`, `#11`, `(b5)`, `add9`, `no3`, `sus4`, `alt`, `(maj7)`, then `/bass` as a note name or a
  degree. A modifier degree replaces the quality's degree of the same number (`C13b9` has a flat
  ninth, not two ninths), except that two alterations stay side by side (`C7b9#9` has both
  ninths, as `C7(b9,#9)` does); `add` adds without replacing; a bare `7` is the dominant seventh, and
  `+`/`-` before a number sharpen/flatten it (`C7+9`, `Am7-5`). Roots must be capitals: some charts
  write minor chords in lower case, so `am` is refused rather than guessed.

No chord: `N`, `N.C.`, `NC`, `X` (mir_eval's "unknown"), in any case, give None.

Whatever the spelling, the result is the canonical `Chord` for its pitch content, so
`parse_chord_symbol("C-7") == parse_chord_symbol("C:min7")`.
"""

from __future__ import annotations

import contextlib
import re

from midi.chords import (
    HARTE_SHORTHANDS,
    QUALITIES,
    QUALITY_BY_NAME,
    Chord,
    degree_number,
    degree_semitones,
)
from midi.errors import ChordSymbolError
from midi.notes import LETTER_PITCH_CLASS

_NO_CHORD = frozenset({"N", "NC", "N.C.", "N.C", "X"})
_UNICODE = str.maketrans(
    {"♭": "b", "♯": "#", "𝄫": "bb", "𝄪": "##", "−": "-", "–": "-", "º": "°", "˚": "°", "Ø": "ø", "∅": "ø",
     "△": "Δ", "∆": "Δ", "^": "Δ"}
)  # fmt: skip
_NOTE = re.compile(r"([A-G])(##|bb|#|b)?")
_QUALITY_BY_SPELLING = {spelling: q for q in QUALITIES for spelling in q.spellings if spelling}
_LONGEST_SPELLING = max(map(len, _QUALITY_BY_SPELLING))
# After a quality, a major-seventh spelling adds the 7th (`Cm(maj7)`, `C6Δ`): the maj7 row says how.
_MAJOR_SEVENTH = sorted(QUALITY_BY_NAME["maj7"].spellings, key=len, reverse=True)
_MODIFIER = re.compile(
    rf"(?P<word>sus2|sus4|sus|alt|{'|'.join(map(re.escape, _MAJOR_SEVENTH))})"
    r"|(?P<kind>add|no|omit)?(?P<accidental>bb|##|b|#|\+|-)?(?P<number>1[0-3]|[2-9])"
)
_HARTE = re.compile(r":(?P<shorthand>[^(/]*)(?:\((?P<degrees>[^)]*)\))?(?:/(?P<bass>.*))?")
_ALTERED_TENSIONS = ("b9", "#9", "#11", "b13")
_ALTERABLE = frozenset({5, 9, 11, 13})


def parse_chord_symbol(text: str) -> Chord | None:
    """Read a chord symbol or Harte label; None for no chord. Raises ChordSymbolError naming the symbol."""
    if not isinstance(text, str):
        raise ChordSymbolError(f"a chord symbol must be text, got {text!r}")
    cleaned = text.strip().translate(_UNICODE)
    if not cleaned:
        raise ChordSymbolError(
            f"{text!r}: empty chord symbol — write a chord such as Cmaj7, or N.C. for no chord"
        )
    if cleaned.upper() in _NO_CHORD:
        return None
    root, position = _read_note(text, cleaned, 0, "root")
    if cleaned.startswith(":", position):
        return _parse_harte(text, cleaned[position:], root)
    return _parse_symbol(text, cleaned, position, root)


def _read_note(text: str, cleaned: str, position: int, what: str) -> tuple[int, int]:
    match = _NOTE.match(cleaned, position)
    if match is None:
        found = cleaned[position : position + 1] or "nothing"
        hint = (
            " (lower case is not read: some charts use it for minor)" if found in "abcdefg" else ""
        )
        raise ChordSymbolError(
            f"{text!r}: unknown {what} {found!r} — {what}s are A-G with optional # or b{hint}"
        )
    letter, accidental = match.groups()
    accidental = accidental or ""
    pitch_class = (LETTER_PITCH_CLASS[letter] + accidental.count("#") - accidental.count("b")) % 12
    return pitch_class, match.end()


def _read_bass(text: str, cleaned: str, position: int, root: int) -> int:
    """A bass after '/': a note name (`C/E`) or a degree above the root (`C/3`, `A:min7/b3`)."""
    if position >= len(cleaned):
        raise ChordSymbolError(
            f"{text!r}: nothing after '/' — write a bass note such as E, or a degree such as 3"
        )
    with contextlib.suppress(ChordSymbolError):  # not a degree, so it must be a note name
        return (root + degree_semitones(cleaned[position:])) % 12
    bass, end = _read_note(text, cleaned, position, "bass note")
    if end != len(cleaned):
        raise ChordSymbolError(
            f"{text!r}: cannot read {cleaned[end:]!r} after the bass note {cleaned[position:end]!r}"
        )
    return bass


def _parse_harte(text: str, rest: str, root: int) -> Chord:
    match = _HARTE.fullmatch(rest)
    if match is None:
        raise ChordSymbolError(
            f"{text!r}: not a Harte label — write root:shorthand(degrees)/bass, e.g. A:min7/b3"
        )
    shorthand = match["shorthand"]
    if not shorthand and match["degrees"] is None:
        raise ChordSymbolError(
            f"{text!r}: nothing after the colon — write a shorthand such as maj or min7"
        )
    if shorthand and shorthand not in QUALITY_BY_NAME:
        known = ", ".join(sorted(HARTE_SHORTHANDS))
        raise ChordSymbolError(
            f"{text!r}: unknown Harte shorthand {shorthand!r} — use one of: {known}"
        )
    intervals = set(QUALITY_BY_NAME[shorthand].pitch_class_set if shorthand else {0})
    degrees = match["degrees"]
    for item in degrees.split(",") if degrees is not None else ():
        item = item.strip()
        omit = item.startswith("*")
        try:
            interval = degree_semitones(item.lstrip("*")) % 12
        except ChordSymbolError as error:
            raise ChordSymbolError(f"{text!r}: {error}") from None
        if omit:
            intervals.discard(interval)
        else:
            intervals.add(interval)
    bass = None if match["bass"] is None else _read_bass(text, rest, match.start("bass"), root)
    # mir_eval sounds the root even when a label omits it (`*1`); so do we.
    return Chord.from_intervals(root, intervals, bass)


def _parse_symbol(text: str, cleaned: str, position: int, root: int) -> Chord:
    root_end = position
    while cleaned.startswith(" ", position):
        position += 1
    quality = QUALITY_BY_NAME["maj"]
    # Longest spelling first, so that m7b5 wins over m7 and m.
    for length in range(min(_LONGEST_SPELLING, len(cleaned) - position), 0, -1):
        spelling = cleaned[position : position + length]
        row = _QUALITY_BY_SPELLING.get(spelling)
        # In C7+9 the + sharpens the 9th; only a + with nothing after it makes C7+ augmented.
        if spelling.endswith("+") and cleaned[position + length : position + length + 1].isdigit():
            continue
        if row is not None:
            quality, position = row, position + length
            break
    base, extras = quality.degrees, ()
    while position < len(cleaned) and cleaned[position] != "/":
        if cleaned[position] in " ,()":
            position += 1
            continue
        match = _MODIFIER.match(cleaned, position)
        if match is None:
            read = cleaned[root_end:position].strip(" ,(")
            after = repr(read) if read else f"the root {cleaned[:root_end]!r}"
            raise ChordSymbolError(f"{text!r}: cannot read {cleaned[position:]!r} after {after}")
        base, extras = _apply_modifier(text, match, base, extras)
        position = match.end()
    bass = None if position >= len(cleaned) else _read_bass(text, cleaned, position + 1, root)
    return Chord.from_intervals(root, (degree_semitones(d) for d in (*base, *extras)), bass)


def _apply_modifier(
    text: str, match: re.Match[str], base: tuple[str, ...], extras: tuple[str, ...]
) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """The quality's degrees and the extra degrees after one modifier (`b9`, `add9`, `no3`, `alt`)."""

    def without(degrees: tuple[str, ...], number: int) -> tuple[str, ...]:
        return tuple(d for d in degrees if degree_number(d) != number)

    word = match["word"]
    if word is not None:
        if word.startswith("sus"):
            return without(base, 3), (*extras, "2" if word == "sus2" else "4")
        if word == "alt":
            return without(base, 5), (*extras, *_ALTERED_TENSIONS)
        return without(base, 7), (*extras, "7")
    accidental = (match["accidental"] or "").replace("+", "#").replace("-", "b")
    number = int(match["number"])
    # On a chart a bare 7 is the dominant seventh; Harte's "7" would be the major one.
    degree = "b7" if number == 7 and not accidental else f"{accidental}{number}"
    if match["kind"] in ("no", "omit"):
        if accidental:
            raise ChordSymbolError(
                f"{text!r}: write {match['kind']}{number}, without an accidental"
            )
        return without(base, number), without(extras, number)
    if match["kind"] == "add":
        return base, (*extras, degree)
    if accidental and number in _ALTERABLE:
        # Two alterations of one degree sound together, as in an altered dominant: C7b9#9 (the
        # 7b9 row, then #9) has both ninths, like C7(b9,#9); only the natural degree gives way.
        return tuple(d for d in base if d != str(number)), (*extras, degree)
    return without(base, number), (*extras, degree)
