"""Pitch-class profiles on a metric grid: what chord recognition listens to.

The song is cut into grid units (eighths in x/4 and x/8, quarters in x/2, sixteenths in x/16),
and each unit gets two 12-bin profiles (C = bin 0):

* `chroma`: how strongly each pitch class sounds, by overlap with the unit, velocity, and a
  decay since the note's attack, so a note ringing on into the next chord counts less than
  the chord struck there;
* `bass`: the same weights, counting only the lowest pitch that sounds through at least a
  quarter of the unit, unless a much lower note was struck just before (the bass of an oom-pah
  pattern is still the bass).

Every grid line has a metric level (bar line, half bar, beat, between beats). Chord changes are
cheaper on strong lines, and a note struck just before a strong line that sounds on past it (an
anticipation, typical of pop piano) is counted from that line.

POP909-style files are not always aligned with their own bar lines, so `estimate_bar_offset`
finds where the bars really start from where the harmony changes most.

All work is vectorised over notes x units with numpy; nothing loops per note per beat, and a
note takes rows only for the units where its decaying weight still counts, so memory follows
the notes present (and the song's length, capped by `midi.limits`), not a note's claimed end.
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


# How strongly chords are expected to change on each level, used to find the bar lines.
_LEVEL_STRENGTH = np.array([1.0, 0.5, 0.25, 0.1])
# An alternative bar alignment must explain the harmonic changes this much better than the file's.
_OFFSET_MARGIN = 1.15
# ... and be heard over this many bars: a short clip (a DAW loop) keeps its own bar lines.
_MIN_BARS_TO_SHIFT = 8
_EPS = 1e-9
# The widest step a bass line takes while its previous note still counts (a perfect fourth).
_BASS_STEP_SEMITONES = 5
_BASS_MIN_SHARE_OF_UNIT = 0.25
_NEW_PITCH_CLASS_SHARE = 0.05
_DECAY_HORIZON = 21.0  # sustains: exp(-21) ~ 8e-10
_FULL_CHORD_TONE_SHARE = 0.1


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
    """Grid unit in quarter notes: half the written beat down to eighths, then the beat itself."""
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


def estimate_bar_offset(profiles: Profiles, grid: MetricGrid, tempo_map: TempoMap) -> float:
    """How far after the file's bar lines the music's own bar lines fall, in quarter notes.

    `profiles` are measured on `grid`, the file's own grid (offset 0). Chords change most on
    bar lines, so how much the pitch content and the bass change across every grid line (one
    beat before against one beat after) is summed per position in the bar of the most common
    meter, and compared with the metric levels at every shift. The file's own alignment is kept
    unless a shift explains the changes clearly better.
    """
    end_beat = float(grid.edges_beat[-1])
    spans = _meter_spans(tempo_map, end_beat)
    if end_beat < _MIN_BARS_TO_SHIFT * max(m.beats_per_bar for _, _, m in spans):
        return 0.0
    time_in_meter: dict[str, float] = {}
    for start, end, meter in spans:
        time_in_meter[str(meter)] = time_in_meter.get(str(meter), 0.0) + end - max(start, 0.0)
    most_common = max(time_in_meter, key=time_in_meter.__getitem__)
    meter = next(m for _, _, m in spans if str(m) == most_common)
    step = grid_step(meter)
    n_slots = round(meter.beats_per_bar / step)
    change = _change_across_lines(profiles, round(_beat_length(meter) / step))
    histogram = np.zeros(n_slots)
    lines = grid.edges_beat[1:-1]
    for start, end, span_meter in spans:
        if str(span_meter) == most_common:
            here = (lines >= start) & (lines < end)
            slot = np.round(((lines[here] - start) % meter.beats_per_bar) / step).astype(int)
            histogram += np.bincount(slot % n_slots, weights=change[here], minlength=n_slots)
    strength = _LEVEL_STRENGTH[_levels_in_bar(meter, np.arange(n_slots) * step)]
    scores = np.array([np.dot(np.roll(histogram, -k), strength) for k in range(n_slots)])
    best = int(np.argmax(scores))
    # Rounding noise must not move the bars of music whose harmony never changes.
    if scores[best] <= _OFFSET_MARGIN * scores[0] + 1e-6 * (1.0 + histogram.sum()):
        return 0.0
    return best * step


def _change_across_lines(profiles: Profiles, window_units: int) -> np.ndarray:
    """For each inner grid line, 2 - cosine similarities of chroma and of bass, before vs after."""
    change = np.zeros(len(profiles.length_beats) - 1)
    for profile in (profiles.chroma, profiles.bass):
        cumulative = np.vstack([np.zeros(12), np.cumsum(profile, axis=0)])
        n = len(profile)
        line = np.arange(1, n)
        before = cumulative[line] - cumulative[np.maximum(line - window_units, 0)]
        after = cumulative[np.minimum(line + window_units, n)] - cumulative[line]
        norms = np.linalg.norm(before, axis=1) * np.linalg.norm(after, axis=1)
        cosine = np.divide(
            (before * after).sum(axis=1), norms, out=np.ones(n - 1), where=norms > 1e-12
        )
        change += 1.0 - cosine
    return change


def aligned_notes(
    notes: NoteArrays, grid: MetricGrid, anticipation_beats: float, slack_beats: float
) -> NoteArrays:
    """The notes with their timing read the way a listener hears it against the grid.

    - Anticipation: a note that starts at most `anticipation_beats` before a bar or half-bar
      line and still sounds after it belongs to the chord that starts on that line.
    - Slack: a note that starts at most `slack_beats` before any grid line and sounds past it
      is a played-early note on that line (human timing, unquantised MIDI). Ends are left
      alone: cutting late releases back to the line made the dev set worse.
    """
    start = _moved_to_line(
        notes.start_beat,
        notes.end_beat,
        grid.edges_beat[grid.levels <= Level.HALF_BAR],
        anticipation_beats,
    )
    start = _moved_to_line(start, notes.end_beat, grid.edges_beat, slack_beats)
    return NoteArrays(notes.pitch, start, notes.end_beat, notes.velocity)


def _moved_to_line(
    start: np.ndarray, end: np.ndarray, lines: np.ndarray, window_beats: float
) -> np.ndarray:
    """Starts at most `window_beats` before the next of `lines`, for notes sounding past it, moved onto it."""
    if len(lines) == 0 or window_beats <= 0:
        return start
    line = lines[np.minimum(np.searchsorted(lines, start, side="left"), len(lines) - 1)]
    early = line - start
    moved = (early > _EPS) & (early <= window_beats + _EPS) & (end > line + _EPS)
    return np.where(moved, line, start)


def unit_profiles(
    notes: NoteArrays,
    grid: MetricGrid,
    sustain_beats: float,
    bass_memory_beats: float,
    ornament_beats: float = 0.0,
    ornament_weight: float = 1.0,
) -> Profiles:
    """Chroma and bass profiles of every grid unit (see the module docstring).

    A note's weight decays as exp(-t / sustain_beats) from its start, integrated over each unit.
    A note is bass in a unit when it sounds through at least a quarter of the unit, no lower
    note does, and no note more than a fourth lower was struck less than `bass_memory_beats`
    before: after a low note on the downbeat, the chord played above it on the next beats is
    not heard as a new bass.

    A note at most `ornament_beats` long that starts off the beat (the way passing and
    neighbour notes, appoggiaturas resolved within the beat and most melody ornaments sound)
    counts `ornament_weight` times as much; a chord tone struck on the beat, or held, keeps
    its full weight.
    """
    n_units = grid.n_units
    edges = grid.edges_beat
    start_beat = notes.start_beat
    # Past this a note's decayed weight is below what counts as sound, so a held note costs
    # rows for a bounded stretch, not for however long the file says it lasts.
    end_beat = np.minimum(notes.end_beat, start_beat + _DECAY_HORIZON * sustain_beats)
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
    strength = notes.velocity / 100.0
    if ornament_beats > 0 and ornament_weight != 1.0:
        beat_lines = edges[grid.levels <= Level.BEAT]
        nearest = np.clip(np.searchsorted(beat_lines, start_beat), 1, len(beat_lines) - 1)
        off_beat = (
            np.minimum(
                np.abs(beat_lines[nearest] - start_beat),
                np.abs(beat_lines[nearest - 1] - start_beat),
            )
            > _EPS
        )
        short = notes.end_beat - start_beat <= ornament_beats + _EPS
        strength = np.where(off_beat & short, strength * ornament_weight, strength)
    weight = np.maximum(decayed, 0.0) * strength[note_of]
    pitch = notes.pitch[note_of]
    cell = unit_of * 12 + pitch % 12
    chroma = np.bincount(cell, weights=weight, minlength=n_units * 12).reshape(n_units, 12)
    # A note must fill a good part of a unit to be its bass: a release a moment late does not
    # keep the last chord's bass under the new one.
    unit_length = np.diff(edges)[unit_of]
    fills = (hi - lo) >= _BASS_MIN_SHARE_OF_UNIT * unit_length
    candidate_pitch = np.where(fills, pitch, 128)
    ceiling = _bass_ceiling(notes.pitch, first, unit_of, candidate_pitch, grid, bass_memory_beats)
    is_bass = fills & (pitch <= ceiling)
    bass = np.bincount(cell, weights=weight * is_bass, minlength=n_units * 12).reshape(n_units, 12)
    return Profiles(chroma, bass, np.diff(edges))


def _bass_ceiling(
    pitch: np.ndarray,
    attack_unit: np.ndarray,
    unit_of: np.ndarray,
    candidate_pitch: np.ndarray,
    grid: MetricGrid,
    memory_beats: float,
) -> np.ndarray:
    """For each (note, unit) row: the highest pitch that still counts as the bass there.

    `pitch` and `attack_unit` are per note; `unit_of` and `candidate_pitch` per row, the
    latter 128 where the note does not fill enough of the unit to be its bass. The ceiling is
    the lowest candidate in the unit, but no more than a fourth above a lower note struck less
    than `memory_beats` before: an accompaniment figure played above a bass note that has
    stopped is not a new bass, while a bass line moving by step is.
    """
    n_units = grid.n_units
    ceiling = np.full(n_units, 128)
    np.minimum.at(ceiling, unit_of, candidate_pitch)
    struck = np.full(n_units, 128)
    np.minimum.at(struck, attack_unit, pitch)
    starts = grid.edges_beat[:-1]
    for shift in range(1, n_units):
        recent = starts[shift:] - starts[:-shift] < memory_beats - _EPS
        if not recent.any():
            break
        earlier = np.where(recent, struck[:-shift] + _BASS_STEP_SEMITONES, 128)
        ceiling[shift:] = np.minimum(ceiling[shift:], earlier)
    return ceiling[unit_of]


def beat_to_beat_change(profiles: Profiles, grid: MetricGrid) -> float:
    """How much of each beat's sound is new after the beat before it, over the sounding beats.

    The share of a beat's chroma on pitch classes that had under 5% of the previous beat,
    counted only where both beats sound a full chord (3 or more pitch classes with a tenth of
    the beat each): a new chord on most beats (a chorale) gives about 0.4 and up, music that
    keeps its chord for a bar or more 0.1 to 0.4, and a broken chord, spelled a note or two a
    beat, adds nothing.
    """
    starts = np.flatnonzero(grid.levels[:-1] <= Level.BEAT)
    if len(starts) < 2:
        return 0.0
    beats = np.add.reduceat(profiles.chroma, starts, axis=0)
    total = beats.sum(axis=1, keepdims=True)
    sounding = total[:, 0] > _EPS
    if sounding.sum() < 2:
        return 0.0
    shares = np.divide(beats, total, out=np.zeros_like(beats), where=total > _EPS)
    full = (shares >= _FULL_CHORD_TONE_SHARE).sum(axis=1) >= 3
    both = full[1:] & full[:-1]
    absent = shares[:-1] < _NEW_PITCH_CLASS_SHARE
    new = (shares[1:] * absent).sum(axis=1)
    pairs = (sounding[1:] & sounding[:-1]).sum()
    return float(new[both].sum() / pairs)
