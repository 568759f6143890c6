"""Chord timelines in beats and seconds, and their MIREX ``.lab`` form.

    >>> segments = to_segments(timed_chords, TempoMap.constant(120))    # doctest: +SKIP
    >>> print("\\n".join(to_lab_lines(segments)))                        # doctest: +SKIP
    0.000000	2.000000	C:maj
    2.000000	3.000000	N
    3.000000	5.000000	A:min7/b3

A ``.lab`` file is what `mir_eval` scores and what ``jasco-bridge chords --format lab`` prints:
one line per segment, ``start<TAB>end<TAB>label`` in seconds with the Harte label, contiguous
from 0.0, with ``N`` (no chord) wherever nothing is given.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from midi.checks import is_finite_number
from midi.errors import TempoMapError
from midi.tempo import TempoMap

if TYPE_CHECKING:
    from midi.chords import Chord

NO_CHORD_LABEL = "N"
# Lab times are written with 6 decimals; boundaries closer than that are the same instant.
_SAME_INSTANT_SECONDS = 1e-6


class TimedChordLike(Protocol):
    """Anything with a chord between two beats, such as `midi.chords.TimedChord`."""

    start_beat: float
    end_beat: float
    chord: Chord | None


@dataclass(frozen=True)
class ChordSegment:
    """A chord (or None for no chord) from `start_beat` to `end_beat`, with the same span in seconds."""

    start_beat: float
    end_beat: float
    start_seconds: float
    end_seconds: float
    chord: Chord | None

    def __post_init__(self) -> None:
        for name in ("start_beat", "end_beat", "start_seconds", "end_seconds"):
            value = getattr(self, name)
            if not is_finite_number(value):
                raise TempoMapError(f"ChordSegment.{name} must be a finite number, got {value!r}")
        if self.end_beat <= self.start_beat or self.end_seconds <= self.start_seconds:
            raise TempoMapError(
                f"chord segment {self.label} ends (beat {self.end_beat}, {self.end_seconds} s) "
                f"no later than it starts (beat {self.start_beat}, {self.start_seconds} s)"
            )

    @property
    def label(self) -> str:
        """The Harte label (``C:maj7/3``), or ``N`` for no chord."""
        return NO_CHORD_LABEL if self.chord is None else self.chord.harte

    @property
    def duration_seconds(self) -> float:
        return self.end_seconds - self.start_seconds

    @property
    def duration_beats(self) -> float:
        return self.end_beat - self.start_beat


def to_segments(
    timed_chords: Iterable[TimedChordLike], tempo_map: TempoMap
) -> tuple[ChordSegment, ...]:
    """Place chords given in beats on the clock, in start order.

    Where a chord starts before the previous one ends, the new chord cuts the old one short:
    a chord change replaces what was sounding.
    """
    ordered = sorted(timed_chords, key=lambda timed: timed.start_beat)
    segments: list[ChordSegment] = []
    for timed, following in zip(ordered, [*ordered[1:], None], strict=True):
        end_beat = timed.end_beat
        if following is not None:
            end_beat = min(end_beat, following.start_beat)
        if end_beat <= timed.start_beat:
            continue
        segments.append(
            ChordSegment(
                timed.start_beat,
                end_beat,
                tempo_map.seconds_at(timed.start_beat),
                tempo_map.seconds_at(end_beat),
                timed.chord,
            )
        )
    return tuple(segments)


def to_lab_lines(segments: Sequence[ChordSegment], end_seconds: float | None = None) -> list[str]:
    """MIREX lines ``start\\tend\\tlabel`` (seconds, 6 decimals) covering 0.0 to the end without gaps.

    Gaps before, between and (up to `end_seconds`, when given) after the segments become ``N``.
    """
    lines: list[str] = []
    cursor = 0.0

    def add(start: float, end: float, label: str) -> None:
        first, last = f"{start:.6f}", f"{end:.6f}"
        if first != last:
            lines.append(f"{first}\t{last}\t{label}")

    for segment in sorted(segments, key=lambda s: s.start_seconds):
        start = segment.start_seconds
        if start - cursor > _SAME_INSTANT_SECONDS:
            add(cursor, start, NO_CHORD_LABEL)
        elif start < cursor - _SAME_INSTANT_SECONDS:
            raise TempoMapError(
                f"chord segments overlap: {segment.label} starts at {start:.6f} s, before the "
                f"previous segment ends at {cursor:.6f} s; build them with to_segments()"
            )
        else:
            # Snap to the previous end so both lines print the same boundary.
            start = cursor
        add(start, segment.end_seconds, segment.label)
        cursor = max(cursor, segment.end_seconds)
    if end_seconds is not None and end_seconds - cursor > _SAME_INSTANT_SECONDS:
        add(cursor, end_seconds, NO_CHORD_LABEL)
    return lines
