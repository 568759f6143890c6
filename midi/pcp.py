"""Pitch-class profiles on a metric grid: what chord recognition listens to.

The song is cut into grid units (eighth notes in x/4 and compound x/8, a beat in other meters),
and each unit gets two 12-bin profiles (C = bin 0):

* `chroma`: how strongly each pitch class sounds, by overlap with the unit, velocity, and a
  decay since the note's attack, so a note ringing on into the next chord counts less than
  the chord struck there;
* `bass`: the same weights, counting only the lowest pitch sounding in the unit.

Every grid line has a metric level (bar line, half bar, beat, between beats). Chord changes are
cheaper on strong lines, and a note struck just before a strong line that sounds on past it (an
anticipation, typical of pop piano) is counted from that line.

POP909-style files are not always aligned with their own bar lines, so `estimate_bar_offset`
finds where the bars really start from where the long and low notes fall.

All work is vectorised over notes x units with numpy; nothing loops per note per beat.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum

import numpy as np

from midi.notes import NoteTrack
from midi.tempo import TempoMap, TimeSignature


class Level(IntEnum):
    """Metric strength of a grid line, strongest first."""

    BAR = 0
    HALF_BAR = 1
    BEAT = 2
    OFFBEAT = 3


# Relative weight of a long/low note attack on each level, used to find the bar lines.
_LEVEL_STRENGTH = np.array([1.0, 0.5, 0.25, 0.1])
# An alternative bar alignment must explain the attacks this much better than the file's own.
_OFFSET_MARGIN = 1.15
# Notes below this quantile of the track's pitches count as bass when looking for bar lines.
_LOW_PITCH_QUANTILE = 30.0
_EPS = 1e-9


@dataclass(frozen=True)
class NoteArrays:
    """A track's notes as parallel numpy arrays (beats, MIDI pitch, MIDI velocity)."""

    pitch: np.ndarray
    start_beat: np.ndarray
    end_beat: np.ndarray
    velocity: np.ndarray

    @classmethod
    def from_track(cls, track: NoteTrack) -> NoteArrays:
        rows = np.array(
            [(n.pitch, n.start_beat, n.end_beat, n.velocity) for n in track.notes], dtype=float
        ).reshape(-1, 4)
        return cls(rows[:, 0].astype(int), rows[:, 1], rows[:, 2], rows[:, 3])

    def __len__(self) -> int:
        return len(self.pitch)


@dataclass(frozen=True)
class MetricGrid:
    """Unit boundaries `edges_beat` (n + 1, increasing, from 0) and the `levels` of those lines."""

    edges_beat: np.ndarray
    levels: np.ndarray

    @property
    def n_units(self) -> int:
        return len(self.edges_beat) - 1


@dataclass(frozen=True)
class Profiles:
    """Per-unit `chroma` and `bass` ([n_units, 12]) and each unit's length in beats."""

    chroma: np.ndarray
    bass: np.ndarray
    length_beats: np.ndarray


def _beat_length(meter: TimeSignature) -> float:
    """The felt beat in quarter notes: a dotted quarter in 6/8, 9/8, 12/8, else the written unit."""
    if _is_compound(meter):
        return 1.5
    return meter.beat_unit


def _is_compound(meter: TimeSignature) -> bool:
    return meter.denominator == 8 and meter.numerator % 3 == 0 and meter.numerator >= 6


def grid_step(meter: TimeSignature) -> float:
    """Grid unit in quarter notes: eighths in x/4 and compound meters, else the written beat."""
    if _is_compound(meter):
        return 0.5
    beat = meter.beat_unit
    return beat / 2 if beat >= 1 else beat


def _levels_in_bar(meter: TimeSignature, positions: np.ndarray) -> np.ndarray:
    """Metric level of each position (quarter notes from the bar line, in [0, bar))."""
    beat = _beat_length(meter)
    bar = meter.beats_per_bar
    beats_in_bar = round(bar / beat)
    levels = np.full(positions.shape, int(Level.OFFBEAT))
    on_beat = np.abs(positions / beat - np.round(positions / beat)) < 1e-6
    levels[on_beat] = Level.BEAT
    # Two beats a bar (6/8, 2/4) or an even count of four or more has a felt middle.
    if beats_in_bar % 2 == 0:
        levels[np.abs(positions - bar / 2) < 1e-6] = Level.HALF_BAR
    levels[np.abs(positions) < 1e-6] = Level.BAR
    return levels


def _meter_spans(tempo_map: TempoMap, end_beat: float) -> list[tuple[float, float, TimeSignature]]:
    """(start beat, end beat, meter) of each stretch in one meter; the first reaches back one bar.

    Bar lines fall at whole bars from each stretch's start, as in `TempoMap.downbeats`.
    """
    meters = [m for m in tempo_map.meters if m.beat < end_beat]
    if not meters or meters[0].beat > 0:
        meters.insert(0, tempo_map.meter_at(0.0))
    spans = []
    for i, meter in enumerate(meters):
        start = meter.beat if i else -meter.beats_per_bar
        end = meters[i + 1].beat if i + 1 < len(meters) else end_beat + meter.beats_per_bar
        spans.append((start, end, meter))
    return spans


def metric_grid(tempo_map: TempoMap, end_beat: float, offset_beats: float = 0.0) -> MetricGrid:
    """Grid lines from beat 0 up to `end_beat`, the bars moved later by `offset_beats`."""
    edges: list[np.ndarray] = []
    levels: list[np.ndarray] = []
    for start, end, meter in _meter_spans(tempo_map, end_beat):
        positions = np.arange(0.0, end - start - _EPS, grid_step(meter))
        edges.append(start + offset_beats + positions)
        levels.append(_levels_in_bar(meter, positions % meter.beats_per_bar))
    all_edges = np.concatenate(edges)
    all_levels = np.concatenate(levels)
    keep = (all_edges > _EPS) & (all_edges < end_beat - _EPS)
    all_edges = np.concatenate([[0.0], all_edges[keep], [end_beat]])
    all_levels = np.concatenate([[int(Level.BAR)], all_levels[keep], [int(Level.BAR)]])
    return MetricGrid(all_edges, all_levels)


def estimate_bar_offset(notes: NoteArrays, tempo_map: TempoMap) -> float:
    """How far after the file's bar lines the music's own bar lines fall, in quarter notes.

    Chord changes bring long and low attacks, so the histogram of those attacks over the bar
    positions of the most common meter is compared with the metric levels at every shift; the
    file's own alignment (0.0) is kept unless a shift explains them clearly better.
    """
    if len(notes) == 0:
        return 0.0
    spans = _meter_spans(tempo_map, float(notes.end_beat.max()))
    time_in_meter: dict[str, float] = {}
    for start, end, meter in spans:
        time_in_meter[str(meter)] = time_in_meter.get(str(meter), 0.0) + end - max(start, 0.0)
    most_common = max(time_in_meter, key=time_in_meter.__getitem__)
    meter = next(m for _, _, m in spans if str(m) == most_common)
    step = grid_step(meter)
    n_slots = round(meter.beats_per_bar / step)
    inside = np.zeros(len(notes), dtype=bool)
    into_bar = np.zeros(len(notes))
    for start, end, span_meter in spans:
        if str(span_meter) == most_common:
            here = (notes.start_beat >= start) & (notes.start_beat < end)
            inside |= here
            into_bar[here] = (notes.start_beat[here] - start) % meter.beats_per_bar
    slot = np.round(into_bar[inside] / step).astype(int) % n_slots
    low = notes.pitch[inside] <= np.percentile(notes.pitch, _LOW_PITCH_QUANTILE)
    weight = np.minimum(notes.end_beat - notes.start_beat, meter.beats_per_bar)[inside] * (
        1.0 + 2.0 * low
    )
    histogram = np.bincount(slot, weights=weight, minlength=n_slots)
    strength = _LEVEL_STRENGTH[_levels_in_bar(meter, np.arange(n_slots) * step)]
    scores = np.array([np.dot(np.roll(histogram, -k), strength) for k in range(n_slots)])
    best = int(np.argmax(scores))
    if scores[best] <= _OFFSET_MARGIN * scores[0]:
        return 0.0
    return best * step


def anticipated_starts(
    notes: NoteArrays, grid: MetricGrid, window_beats: float, strongest: Level = Level.HALF_BAR
) -> np.ndarray:
    """Note starts with anticipations moved onto the line they anticipate.

    A note that starts at most `window_beats` before a line of level `strongest` or stronger and
    still sounds after it belongs to the chord that starts on that line.
    """
    strong = grid.edges_beat[grid.levels <= strongest]
    if len(strong) == 0 or window_beats <= 0:
        return notes.start_beat
    k = np.minimum(np.searchsorted(strong, notes.start_beat, side="left"), len(strong) - 1)
    line = strong[k]
    early = line - notes.start_beat
    moved = (early > _EPS) & (early <= window_beats + _EPS) & (notes.end_beat > line + _EPS)
    return np.where(moved, line, notes.start_beat)


def unit_profiles(
    notes: NoteArrays, grid: MetricGrid, start_beat: np.ndarray, sustain_beats: float
) -> Profiles:
    """Chroma and bass profiles of every grid unit (see the module docstring).

    `start_beat` is where each note starts counting (its attack, or the line it anticipates);
    a note's weight decays as exp(-t / sustain_beats) from there, integrated over each unit.
    """
    n_units = grid.n_units
    edges = grid.edges_beat
    end_beat = notes.end_beat
    first = np.clip(np.searchsorted(edges, start_beat, side="right") - 1, 0, n_units - 1)
    last = np.clip(np.searchsorted(edges, end_beat, side="left") - 1, first, n_units - 1)
    # One row per (note, unit it overlaps), built without Python loops.
    counts = last - first + 1
    note_of = np.repeat(np.arange(len(notes)), counts)
    offsets = np.arange(counts.sum()) - np.repeat(np.cumsum(counts) - counts, counts)
    unit_of = first[note_of] + offsets
    attack = start_beat[note_of]
    lo = np.maximum(edges[unit_of], attack) - attack
    hi = np.minimum(edges[unit_of + 1], end_beat[note_of]) - attack
    decayed = sustain_beats * (np.exp(-lo / sustain_beats) - np.exp(-hi / sustain_beats))
    weight = np.maximum(decayed, 0.0) * notes.velocity[note_of] / 100.0
    pitch = notes.pitch[note_of]
    cell = unit_of * 12 + pitch % 12
    chroma = np.bincount(cell, weights=weight, minlength=n_units * 12).reshape(n_units, 12)
    lowest = np.full(n_units, 128)
    np.minimum.at(lowest, unit_of, np.where(weight > 0, pitch, 128))
    is_bass = pitch == lowest[unit_of]
    bass = np.bincount(cell, weights=weight * is_bass, minlength=n_units * 12).reshape(n_units, 12)
    return Profiles(chroma, bass, np.diff(edges))
