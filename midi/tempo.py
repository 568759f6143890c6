"""Tempo maps: beats <-> seconds and bars, across tempo and time-signature changes.

A *beat* here is always a quarter note, counted from 0.0 at the start of the song, whatever the
time signature says (in 6/8 a bar is 3.0 beats long). Bars and the beats shown inside a bar are
1-based, as a DAW shows them; in-bar beats count the meter's own unit (eighths in 6/8).

Tempo is constant between changes, so time is piecewise linear in beats and both directions are
exact inverses:

    >>> tempo_map = TempoMap.constant(120).with_tempo_change(16.0, 60)
    >>> tempo_map.seconds_at(20.0)          # 16 beats at 0.5 s, then 4 beats at 1 s
    12.0
    >>> tempo_map.beat_at(12.0)
    20.0
    >>> tempo_map.bar_window(start_bar=5, bars=2)
    (16.0, 24.0)
    >>> str(tempo_map)
    '120 bpm 4/4; 60 bpm from bar 5'

A time signature normally starts on a bar line; if a MIDI file puts one elsewhere, the bar
before it is cut short and a new bar starts at the change, as notation programs do.
"""

from __future__ import annotations

import math
from bisect import bisect_right
from collections.abc import Iterable
from dataclasses import dataclass, field
from itertools import pairwise

from midi.checks import is_finite_number, is_whole_number
from midi.errors import TempoMapError

MIN_BPM = 1.0
MAX_BPM = 1000.0
DEFAULT_BPM = 120.0
MAX_NUMERATOR = 255  # what a MIDI time-signature event can hold
MAX_DENOMINATOR = 128
# Beats computed as ticks / ppq may miss a bar line by a rounding error; this close counts as on it.
_ON_GRID = 1e-9


def _check_beat(value: float, what: str) -> float:
    if not is_finite_number(value):
        raise TempoMapError(f"{what} must be a finite number of beats, got {value!r}")
    return float(value)


@dataclass(frozen=True)
class TempoChange:
    """From `beat` on, the tempo is `bpm` quarter notes per minute."""

    beat: float
    bpm: float

    def __post_init__(self) -> None:
        object.__setattr__(self, "beat", _check_beat(self.beat, "tempo change beat"))
        if self.beat < 0:
            raise TempoMapError(f"tempo change beat must be >= 0, got {self.beat!r}")
        bpm = self.bpm
        if not is_finite_number(bpm):
            raise TempoMapError(f"tempo must be a finite number of bpm, got {bpm!r}")
        if not MIN_BPM <= bpm <= MAX_BPM:
            raise TempoMapError(
                f"tempo {bpm!r} bpm is outside {MIN_BPM:g}..{MAX_BPM:g} bpm; "
                "send quarter notes per minute (e.g. 120)"
            )
        object.__setattr__(self, "bpm", float(bpm))

    @property
    def seconds_per_beat(self) -> float:
        return 60.0 / self.bpm


@dataclass(frozen=True)
class TimeSignature:
    """From `beat` on, bars hold `numerator` notes of value 1/`denominator` (6/8: six eighths)."""

    beat: float
    numerator: int
    denominator: int

    def __post_init__(self) -> None:
        object.__setattr__(self, "beat", _check_beat(self.beat, "time signature beat"))
        if self.beat < 0:
            raise TempoMapError(f"time signature beat must be >= 0, got {self.beat!r}")
        num, den = self.numerator, self.denominator
        if not is_whole_number(num) or not 1 <= num <= MAX_NUMERATOR:
            raise TempoMapError(
                f"time signature numerator must be an integer 1..{MAX_NUMERATOR}, got {num!r}"
            )
        if not is_whole_number(den) or den < 1 or den & (den - 1):
            raise TempoMapError(
                f"time signature denominator must be a power of two (1, 2, 4, 8, 16, ...), "
                f"got {den!r}"
            )
        if den > MAX_DENOMINATOR:
            raise TempoMapError(
                f"time signature denominator {den} is too small a note; use <= {MAX_DENOMINATOR}"
            )
        object.__setattr__(self, "numerator", int(num))
        object.__setattr__(self, "denominator", int(den))

    @property
    def beats_per_bar(self) -> float:
        """Bar length in quarter notes: 4/4 -> 4.0, 3/4 -> 3.0, 6/8 -> 3.0, 7/8 -> 3.5."""
        return self.numerator * 4.0 / self.denominator

    @property
    def beat_unit(self) -> float:
        """The counted note value in quarter notes: 1.0 in x/4, 0.5 in x/8, 2.0 in x/2."""
        return 4.0 / self.denominator

    def __str__(self) -> str:
        return f"{self.numerator}/{self.denominator}"


@dataclass(frozen=True)
class BarBeat:
    """A position as a musician reads it: bar 1 beat 1 is the start of the song.

    `beat` counts the meter's beat unit from 1 and may be fractional (bar 3, beat 2.5).
    """

    bar: int
    beat: float

    def __str__(self) -> str:
        return f"bar {self.bar} beat {self.beat:g}"


def _sorted_unique(items: Iterable, kind: type[TempoChange] | type[TimeSignature]) -> tuple:
    items = tuple(items)
    for item in items:
        if not isinstance(item, kind):
            raise TempoMapError(f"expected {kind.__name__} values, got {item!r}")
    what = "tempo change" if kind is TempoChange else "time signature"
    ordered = tuple(sorted(items, key=lambda item: item.beat))
    for before, after in pairwise(ordered):
        if after.beat == before.beat:
            raise TempoMapError(
                f"two {what}s at beat {after.beat:g} ({before} and {after}); keep one of them"
            )
    return ordered


@dataclass(frozen=True)
class TempoMap:
    """Tempo changes and time signatures of a song.

    Missing information follows the MIDI file convention: 120 bpm until the first tempo change
    and 4/4 until the first time signature, so `TempoMap((), ())` is 120 bpm 4/4.
    Two changes of the same kind on one beat are an error.
    """

    tempos: tuple[TempoChange, ...] = ()
    meters: tuple[TimeSignature, ...] = ()
    # Derived lookup tables, filled in __post_init__ so that every query is one bisect.
    _tempo_segments: tuple[TempoChange, ...] = field(init=False, repr=False, compare=False)
    _tempo_beats: tuple[float, ...] = field(init=False, repr=False, compare=False)
    _tempo_seconds: tuple[float, ...] = field(init=False, repr=False, compare=False)
    _meter_segments: tuple[TimeSignature, ...] = field(init=False, repr=False, compare=False)
    _meter_beats: tuple[float, ...] = field(init=False, repr=False, compare=False)
    _meter_first_bars: tuple[int, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        tempos = _sorted_unique(self.tempos, TempoChange)
        meters = _sorted_unique(self.meters, TimeSignature)
        object.__setattr__(self, "tempos", tempos)
        object.__setattr__(self, "meters", meters)

        segments = list(tempos)
        if not segments or segments[0].beat > 0:
            segments.insert(0, TempoChange(0.0, DEFAULT_BPM))
        seconds = [0.0]
        for before, after in pairwise(segments):
            seconds.append(seconds[-1] + (after.beat - before.beat) * before.seconds_per_beat)
        self._set("_tempo_segments", tuple(segments))
        self._set("_tempo_beats", tuple(t.beat for t in segments))
        self._set("_tempo_seconds", tuple(seconds))

        bars = list(meters)
        if not bars or bars[0].beat > 0:
            bars.insert(0, TimeSignature(0.0, 4, 4))
        first_bars = [1]
        for before, after in pairwise(bars):
            first_bars.append(first_bars[-1] + _bars_started(after.beat - before.beat, before))
        self._set("_meter_segments", tuple(bars))
        self._set("_meter_beats", tuple(m.beat for m in bars))
        self._set("_meter_first_bars", tuple(first_bars))

    def _set(self, name: str, value: object) -> None:
        object.__setattr__(self, name, value)

    # ----------------------------------------------------------------- construction

    @classmethod
    def constant(cls, bpm: float, numerator: int = 4, denominator: int = 4) -> TempoMap:
        """One tempo and one time signature for the whole song."""
        return cls((TempoChange(0.0, bpm),), (TimeSignature(0.0, numerator, denominator),))

    def with_tempo_change(self, beat: float, bpm: float) -> TempoMap:
        """A new map whose tempo is `bpm` from `beat` on (replacing a change already there)."""
        change = TempoChange(beat, bpm)
        kept = tuple(t for t in self._tempo_segments if t.beat != change.beat)
        return TempoMap(kept + (change,), self.meters)

    def with_time_signature(self, beat: float, numerator: int, denominator: int) -> TempoMap:
        """A new map whose meter is `numerator/denominator` from `beat` on, which must be a bar line.

        Meter changes sent by a DAW always sit on bar lines; one that does not is a mistake
        (probably a bar number given as a beat), so it is refused with the nearest bar lines.
        """
        meter = TimeSignature(beat, numerator, denominator)
        position = self.position_at(meter.beat)
        on_bar_line = abs(self.bar_start_beat(position.bar) - meter.beat) <= _ON_GRID
        if not on_bar_line:
            before = self.bar_start_beat(position.bar)
            after = self.bar_start_beat(position.bar + 1)
            raise TempoMapError(
                f"time signature {meter} at beat {meter.beat:g} falls inside bar {position.bar}; "
                f"put it on a bar line (beat {before:g} or {after:g})"
            )
        kept = tuple(m for m in self._meter_segments if m.beat != meter.beat)
        return TempoMap(self.tempos, kept + (meter,))

    # ----------------------------------------------------------------- time

    def seconds_at(self, beat: float) -> float:
        """Seconds from the song start at `beat`; beats before 0 extend the first tempo."""
        beat = _check_beat(beat, "beat")
        i = max(bisect_right(self._tempo_beats, beat) - 1, 0)
        segment = self._tempo_segments[i]
        return self._tempo_seconds[i] + (beat - segment.beat) * segment.seconds_per_beat

    def beat_at(self, seconds: float) -> float:
        """The beat sounding `seconds` after the song start; the exact inverse of `seconds_at`."""
        if not is_finite_number(seconds):
            raise TempoMapError(f"seconds must be a finite number, got {seconds!r}")
        i = max(bisect_right(self._tempo_seconds, seconds) - 1, 0)
        segment = self._tempo_segments[i]
        return segment.beat + (seconds - self._tempo_seconds[i]) * segment.bpm / 60.0

    def bpm_at(self, beat: float) -> float:
        beat = _check_beat(beat, "beat")
        return self._tempo_segments[max(bisect_right(self._tempo_beats, beat) - 1, 0)].bpm

    @property
    def is_constant_tempo(self) -> bool:
        return len({t.bpm for t in self._tempo_segments}) == 1

    # ----------------------------------------------------------------- bars

    def meter_at(self, beat: float) -> TimeSignature:
        """The time signature in force at `beat`."""
        return self._meter_segments[self._meter_index_at(beat)]

    def beats_per_bar_at(self, beat: float) -> float:
        """Length in quarter notes of a full bar of the meter in force at `beat`."""
        return self.meter_at(beat).beats_per_bar

    def bar_start_beat(self, bar: int) -> float:
        """The beat on which 1-based `bar` starts (bar 1 starts on beat 0.0)."""
        bar = _check_bar(bar, "bar")
        i = bisect_right(self._meter_first_bars, bar) - 1
        meter = self._meter_segments[i]
        return meter.beat + (bar - self._meter_first_bars[i]) * meter.beats_per_bar

    def position_at(self, beat: float) -> BarBeat:
        """Bar and in-bar beat (both 1-based, beat in the meter's unit) of a 0-based `beat`."""
        beat = _check_beat(beat, "beat")
        if beat < 0:
            raise TempoMapError(f"beat must be >= 0 to have a bar position, got {beat!r}")
        i = self._meter_index_at(beat)
        meter = self._meter_segments[i]
        offset = beat - meter.beat
        bars_in = _whole_bars(offset, meter.beats_per_bar)
        into_bar = max(offset - bars_in * meter.beats_per_bar, 0.0)
        return BarBeat(self._meter_first_bars[i] + bars_in, 1.0 + into_bar / meter.beat_unit)

    def beat_of(self, bar: int, beat: float = 1.0) -> float:
        """Inverse of `position_at`: the 0-based beat of 1-based `bar` and in-bar `beat`."""
        start = self.bar_start_beat(bar)
        in_bar = _check_beat(beat, "in-bar beat")
        if in_bar < 1:
            raise TempoMapError(f"in-bar beats start at 1, got {beat!r}")
        return start + (in_bar - 1.0) * self.meter_at(start).beat_unit

    def bar_window(self, start_bar: int, bars: int) -> tuple[float, float]:
        """(start_beat, end_beat) of `bars` whole bars from 1-based `start_bar`, meter changes included."""
        start_bar = _check_bar(start_bar, "start_bar")
        bars = _check_bar(bars, "bars")
        return self.bar_start_beat(start_bar), self.bar_start_beat(start_bar + bars)

    def beat_grid(self, start_beat: float, end_beat: float) -> tuple[float, ...]:
        """Beat onsets in [start_beat, end_beat), counting the meter's unit from each bar line."""
        return self._grid(start_beat, end_beat, lambda meter: meter.beat_unit)

    def downbeats(self, start_beat: float, end_beat: float) -> tuple[float, ...]:
        """Bar starts in [start_beat, end_beat)."""
        return self._grid(start_beat, end_beat, lambda meter: meter.beats_per_bar)

    def _grid(self, start_beat: float, end_beat: float, step_of) -> tuple[float, ...]:
        start = max(_check_beat(start_beat, "start_beat"), 0.0)
        end = _check_beat(end_beat, "end_beat")
        grid: list[float] = []
        segments = self._meter_segments
        for i in range(self._meter_index_at(start), len(segments)):
            meter = segments[i]
            if meter.beat >= end:
                break
            segment_end = segments[i + 1].beat if i + 1 < len(segments) else math.inf
            step = step_of(meter)
            # A meter change off a bar line restarts the count there, and so does the grid.
            first = max(math.ceil((start - meter.beat) / step - _ON_GRID), 0)
            k = first
            while True:
                beat = meter.beat + k * step
                if beat >= min(end, segment_end) - _ON_GRID:
                    break
                grid.append(beat)
                k += 1
        return tuple(grid)

    def _meter_index_at(self, beat: float) -> int:
        beat = _check_beat(beat, "beat")
        return max(bisect_right(self._meter_beats, beat + _ON_GRID) - 1, 0)

    # ----------------------------------------------------------------- text

    def __repr__(self) -> str:
        return f"TempoMap(tempos={self.tempos!r}, meters={self.meters!r})"

    def __str__(self) -> str:
        changes: dict[float, list[str]] = {}
        for t in self._tempo_segments:
            changes.setdefault(t.beat, []).append(f"{round(t.bpm, 2):g} bpm")
        for m in self._meter_segments:
            changes.setdefault(m.beat, []).append(str(m))
        parts = []
        for beat in sorted(changes):
            text = " ".join(changes[beat])
            if beat == 0.0:
                parts.append(text)
                continue
            position = self.position_at(beat)
            where = f"bar {position.bar}"
            if abs(position.beat - 1.0) > _ON_GRID:
                where += f" beat {position.beat:g}"
            parts.append(f"{text} from {where}")
        return "; ".join(parts)


def _check_bar(value: int, what: str) -> int:
    if not is_finite_number(value) or value != int(value) or value < 1:
        raise TempoMapError(f"{what} must be a whole number >= 1 (bars are 1-based), got {value!r}")
    return int(value)


def _whole_bars(length_beats: float, beats_per_bar: float) -> int:
    """Whole bars in `length_beats`, treating a length within rounding of a bar line as on it."""
    bars = length_beats / beats_per_bar
    nearest = round(bars)
    if abs(bars - nearest) <= _ON_GRID:
        return int(nearest)
    return math.floor(bars)


def _bars_started(length_beats: float, meter: TimeSignature) -> int:
    """Bars begun within `length_beats` of `meter`: a cut-short last bar still counts as one."""
    whole = _whole_bars(length_beats, meter.beats_per_bar)
    if length_beats - whole * meter.beats_per_bar > _ON_GRID:
        return whole + 1
    return whole
