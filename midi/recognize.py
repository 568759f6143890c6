"""Chord recognition from notes: a NoteTrack and its TempoMap in, a chord timeline out.

    >>> from midi.notes import Note, NoteTrack
    >>> from midi.tempo import TempoMap
    >>> c_major = [Note(p, 0.0, 4.0) for p in (48, 64, 67)]
    >>> a_minor = [Note(p, 4.0, 8.0) for p in (45, 60, 64, 69)]
    >>> [str(c.chord) for c in recognize_chords(NoteTrack("piano", c_major + a_minor), TempoMap.constant(120))]
    ['C', 'Am']

How it works, in three steps:

1. Profiles. The song is cut into grid units (eighths in 4/4) and every unit gets a
   pitch-class profile and a bass profile (`midi.pcp`): weighted by how long and how loud each
   note sounds there, fading after its attack so that sustained notes count less in the next
   chord, with anticipations (a chord struck up to an eighth before a strong beat) moved to
   the beat they anticipate and slightly early notes moved onto their beat; short notes off
   the beat (passing and neighbour notes) count less. Files whose music
   sits off their own bar lines (a pickup written as a full bar) get their bars re-aligned
   where the harmony changes most.
2. Templates. For a stretch of units, each candidate chord (every root x the recognised
   qualities of the `QUALITIES` table) scores how much of the profile falls on its tones, minus
   what falls outside them and how many of its tones are missing, plus a bonus when the bass
   plays its root, minus a small cost for rarer qualities (sevenths, sus, diminished) and for
   chords with no function in the local key (`midi.keys`), so that the same notes are read as
   the chord the key expects. "No chord" wins where nothing sounds.
3. Segmentation. Dynamic programming picks the boundaries that maximise the total score of
   the stretches minus a cost per chord change; a change costs least on a bar line, then half
   bars, beats, and most between beats, so chords follow the harmonic rhythm instead of every
   passing note; in music that brings a new chord on most beats (a chorale) every change
   costs less. Stretches are scored whole, so an arpeggio or Alberti bass is heard as the
   chord it spells. Within each chord a second, smaller pass follows the bass: a chord tone
   other than the root held in the bass makes a slash chord (`C:maj/3`), and a change of bass
   costs like a change of chord, so a walking bass does not split the chord.

Everything is measured in beats, so a tempo change moves seconds but not chords.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from midi import limits
from midi.checks import is_finite_number
from midi.chords import QUALITY_BY_NAME, Chord, TimedChord
from midi.errors import RecognitionSettingsError
from midi.keys import functional_chords, local_keys
from midi.notes import NoteTrack
from midi.pcp import (
    Level,
    MetricGrid,
    NoteArrays,
    Profiles,
    aligned_notes,
    beat_to_beat_change,
    estimate_bar_offset,
    grid_step,
    metric_grid,
    unit_profiles,
)
from midi.tempo import TempoMap

# Qualities the recogniser chooses between, with the score a chord of that quality gives up
# (fraction of the profile). Triads are free; a seventh must be clearly played to be named;
# sus, diminished and augmented chords need strong evidence because, when wrong, they lose
# the major/minor third.
DEFAULT_QUALITY_COSTS: tuple[tuple[str, float], ...] = (
    ("maj", 0.0),
    ("min", 0.0),
    ("7", 0.32),
    ("maj7", 0.32),
    ("min7", 0.32),
    ("sus2", 0.55),
    ("sus4", 0.55),
    ("dim", 0.6),
    ("aug", 0.6),
    ("hdim7", 0.6),
    ("dim7", 0.6),
)

_NO_CHORD = -1
_SYMMETRIC_QUALITIES = ("dim7", "aug")
# Scoring work grows with the longest stretch; in meters with huge bars (255/4) a chord held
# longer than this many units is scored as joined pieces.
_MAX_SEGMENT_UNITS = 64


@dataclass(frozen=True)
class RecognitionSettings:
    """The few knobs of the recogniser; the defaults were chosen on the chords-dev set.

    Scores are fractions of a stretch's pitch-class profile, counted per beat of sound.

    - `sustain_beats`: a note's weight decays by e every this many beats after its attack.
    - `anticipation_beats`: a note starting at most this early before a bar or half bar and
      sounding past it is counted from that line.
    - `timing_slack_beats`: a note starting this little before any grid line is heard on the
      line (human timing in unquantised MIDI).
    - `bass_memory_beats`: for this long after a low note's attack, even once it has stopped,
      notes more than a fourth above it are not heard as the bass (oom-pah accompaniment).
    - `extra_tone_weight`: how much profile on non-chord tones counts against a chord.
    - `missing_tone_penalty`, `missing_tone_share`: a chord tone with less than this share of
      the profile counts as missing; the penalty is per missing fraction of the chord's tones.
    - `bass_root_bonus`: bonus for the share of the bass profile on the root.
    - `bass_outside_penalty`: cost of the share of the bass profile on non-chord tones.
    - `quality_costs`: (quality name, cost) for every quality considered.
    - `change_costs`: cost of a chord change on a bar line, half bar, beat, between beats.
    - `sounding_no_chord_cost`: what "no chord" gives up per beat in which notes sound.
    - `max_segment_bars`: the longest stretch scored as one piece (longer chords are joined).
    - `ornament_beats`, `ornament_weight`: a note at most this long starting off the beat
      (passing and neighbour notes, short appoggiaturas) counts this much (`midi.pcp`).
    - `key_window_beats`, `off_key_cost`: the local key is estimated over this many beats on
      each side of every unit (`midi.keys`), and a chord with no function in it gives up this
      much (so ambiguous notes are read as the chord the key expects).
    - `harmonic_rhythm_change`, `fast_harmony_cost_factor`: the harmonic rhythm of the music
      sets the price of a change (`midi.pcp.beat_to_beat_change`: how much of each full-chord
      beat is new after the beat before). At or below the first value (a pop accompaniment or
      folk tune keeping its chord for a bar, arpeggios) changes cost `change_costs`; at or above
      the second (a chorale, a new chord on most beats) `fast_harmony_cost_factor` times that,
      and in between proportionally.
    """

    sustain_beats: float = 3.0
    anticipation_beats: float = 0.5
    timing_slack_beats: float = 0.125
    bass_memory_beats: float = 2.0
    extra_tone_weight: float = 1.56
    missing_tone_penalty: float = 0.22
    missing_tone_share: float = 0.03
    bass_root_bonus: float = 0.4
    bass_outside_penalty: float = 0.05
    quality_costs: tuple[tuple[str, float], ...] = field(default=DEFAULT_QUALITY_COSTS)
    change_costs: tuple[float, float, float, float] = (0.2, 0.7, 1.2, 1.8)
    sounding_no_chord_cost: float = 1.3
    max_segment_bars: float = 1.0
    harmonic_rhythm_change: tuple[float, float] = (0.42, 0.5)
    ornament_beats: float = 0.5
    ornament_weight: float = 0.75
    key_window_beats: float = 16.0
    off_key_cost: float = 0.1
    fast_harmony_cost_factor: float = 0.15

    def __post_init__(self) -> None:
        for name in ("sustain_beats", "max_segment_bars", "key_window_beats"):
            _check_setting(name, getattr(self, name), zero_allowed=False)
        for name in _NON_NEGATIVE_SETTINGS:
            _check_setting(name, getattr(self, name))
        if not isinstance(self.change_costs, Sequence) or len(self.change_costs) != len(Level):
            raise RecognitionSettingsError(
                "RecognitionSettings.change_costs needs 4 costs >= 0 (bar, half bar, beat, "
                f"between beats), got {self.change_costs!r}"
            )
        slow, fast = _pair(self.harmonic_rhythm_change)
        if not 0 <= slow < fast <= 2:
            raise RecognitionSettingsError(
                "RecognitionSettings.harmonic_rhythm_change needs two values 0 <= slow < fast "
                f"<= 2, got {self.harmonic_rhythm_change!r}"
            )
        for level, cost in zip(Level, self.change_costs, strict=True):
            _check_setting(f"change_costs[{level.name}]", cost)
        if not self.quality_costs:
            raise RecognitionSettingsError(
                "RecognitionSettings.quality_costs must name at least one quality"
            )
        for row in self.quality_costs:
            if not isinstance(row, Sequence) or len(row) != 2:
                raise RecognitionSettingsError(
                    "RecognitionSettings.quality_costs holds (quality name, cost) pairs, "
                    f"got {row!r}"
                )
            name, cost = row
            if name not in QUALITY_BY_NAME:
                raise RecognitionSettingsError(
                    f"RecognitionSettings.quality_costs: unknown quality {name!r}; "
                    f"use a name from midi.chords.QUALITIES such as 'maj', 'min7', 'sus4'"
                )
            _check_setting(f"quality_costs[{name!r}]", cost)


_NON_NEGATIVE_SETTINGS = (
    "anticipation_beats",
    "timing_slack_beats",
    "bass_memory_beats",
    "extra_tone_weight",
    "missing_tone_penalty",
    "missing_tone_share",
    "bass_root_bonus",
    "bass_outside_penalty",
    "sounding_no_chord_cost",
    "fast_harmony_cost_factor",
    "ornament_beats",
    "ornament_weight",
    "off_key_cost",
)


def _pair(value: object) -> tuple[float, float]:
    if isinstance(value, Sequence) and len(value) == 2 and all(is_finite_number(v) for v in value):
        return float(value[0]), float(value[1])
    return (math.nan, math.nan)


def _check_setting(name: str, value: object, *, zero_allowed: bool = True) -> None:
    if not is_finite_number(value) or value < 0 or (value == 0 and not zero_allowed):
        bound = ">= 0" if zero_allowed else "> 0"
        raise RecognitionSettingsError(f"RecognitionSettings.{name} must be {bound}, got {value!r}")


@dataclass(frozen=True)
class _Templates:
    """Every (root, quality) candidate as a 0/1 row over the 12 pitch classes."""

    roots: np.ndarray  # [C]
    qualities: tuple[str, ...]  # [C]
    tones: np.ndarray  # [C, 12]
    costs: np.ndarray  # [C]

    @classmethod
    def build(cls, quality_costs: tuple[tuple[str, float], ...]) -> _Templates:
        roots, names, rows, costs = [], [], [], []
        for name, cost in quality_costs:
            pitch_classes = QUALITY_BY_NAME[name].pitch_class_set
            for root in range(12):
                row = np.zeros(12)
                row[[(root + pc) % 12 for pc in pitch_classes]] = 1.0
                roots.append(root)
                names.append(name)
                rows.append(row)
                costs.append(cost)
        return cls(np.array(roots), tuple(names), np.array(rows), np.array(costs))


def recognize_chords(
    track: NoteTrack,
    tempo_map: TempoMap,
    settings: RecognitionSettings | None = None,
) -> list[TimedChord]:
    """The chords of `track`, contiguous from beat 0 to the end of its last note.

    Stretches where nothing sounds are `TimedChord(start, end, None)` (N). An empty track gives
    an empty list. A track longer or fuller than `midi.limits` allows raises `MidiLimitError`.
    """
    settings = settings or RecognitionSettings()
    notes = NoteArrays.from_track(track)
    if len(notes) == 0:
        return []
    end_beat = float(notes.end_beat.max())
    limits.check_song_beats(end_beat, track.label)
    limits.check_song_seconds(tempo_map.seconds_at(end_beat), track.label)
    limits.check_notes(len(notes), track.label)
    file_grid = metric_grid(tempo_map, end_beat)
    plain = unit_profiles(notes, file_grid, settings.sustain_beats, settings.bass_memory_beats)
    grid = metric_grid(tempo_map, end_beat, estimate_bar_offset(plain, file_grid, tempo_map))
    heard = aligned_notes(notes, grid, settings.anticipation_beats, settings.timing_slack_beats)
    profiles = unit_profiles(
        heard,
        grid,
        settings.sustain_beats,
        settings.bass_memory_beats,
        settings.ornament_beats,
        settings.ornament_weight,
    )
    templates = _Templates.build(settings.quality_costs)
    keys = local_keys(
        profiles.chroma, profiles.bass, profiles.length_beats, settings.key_window_beats
    )
    off_key = settings.off_key_cost * ~functional_chords(templates.roots, templates.qualities)
    max_units = _max_segment_units(tempo_map, end_beat, settings.max_segment_bars)
    scores, labels = _segment_scores(profiles, templates, settings, max_units, keys, off_key)
    change_cost = np.asarray(settings.change_costs)[grid.levels] * _change_cost_factor(
        profiles, grid, settings
    )
    cuts = _best_cuts(scores, change_cost)
    return _timed_chords(cuts, labels, profiles, templates, grid, change_cost)


def _change_cost_factor(
    profiles: Profiles, grid: MetricGrid, settings: RecognitionSettings
) -> float:
    """How much cheaper chord changes are in this music than in slow harmony (1.0)."""
    slow, fast = settings.harmonic_rhythm_change
    change = beat_to_beat_change(profiles, grid)
    share = min(1.0, max(0.0, (change - slow) / (fast - slow)))
    return 1.0 - share * (1.0 - settings.fast_harmony_cost_factor)


def _max_segment_units(tempo_map: TempoMap, end_beat: float, bars: float) -> int:
    meters = [tempo_map.meter_at(0.0), *(m for m in tempo_map.meters if m.beat < end_beat)]
    longest = max(bars * m.beats_per_bar / grid_step(m) for m in meters)
    return max(1, min(_MAX_SEGMENT_UNITS, math.ceil(longest - 1e-9)))


def _segment_scores(
    profiles: Profiles,
    templates: _Templates,
    settings: RecognitionSettings,
    max_units: int,
    keys: np.ndarray,
    off_key: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """Best score and label of every stretch: `[n + 1, max_units + 1]`, indexed (end unit, length).

    `keys` is the local key of every unit and `off_key` [24, C] what each chord gives up in
    each key; a stretch is heard in the key of its first unit.

    Labels index `templates` rows; `_NO_CHORD` is N. Impossible stretches score -inf.
    """
    n = len(profiles.length_beats)
    sounding = profiles.chroma.sum(axis=1) > 1e-9
    cum_chroma = np.vstack([np.zeros(12), np.cumsum(profiles.chroma, axis=0)])
    cum_bass = np.vstack([np.zeros(12), np.cumsum(profiles.bass, axis=0)])
    cum_length = np.concatenate([[0.0], np.cumsum(profiles.length_beats)])
    cum_sounding = np.concatenate([[0.0], np.cumsum(profiles.length_beats * sounding)])
    # One weight matrix turns [chroma shares, bass shares, missing tones] into every template's
    # fit, so each stretch length costs a single matrix product.
    tones = templates.tones.T  # [12, C]
    outside = 1.0 - tones
    root_rows = np.zeros_like(tones)
    root_rows[templates.roots, np.arange(len(templates.roots))] = 1.0
    # A diminished seventh or augmented triad is the same stack of intervals from each of its
    # tones, so its bass cannot say which is the root (vii°7 is played in every inversion): any
    # of its tones in the bass earns the bonus, and the key context names the root.
    symmetric = np.isin(np.array(templates.qualities), _SYMMETRIC_QUALITIES)
    root_rows[:, symmetric] = tones[:, symmetric]
    weights = np.vstack(
        [
            tones - settings.extra_tone_weight * outside,
            settings.bass_root_bonus * root_rows - settings.bass_outside_penalty * outside,
            -settings.missing_tone_penalty * tones / tones.sum(axis=0),
        ]
    )  # [36, C]

    scores = np.full((n + 1, max_units + 1), -np.inf)
    labels = np.full((n + 1, max_units + 1), _NO_CHORD)
    for length in range(1, min(max_units, n) + 1):
        end = np.arange(length, n + 1)
        chroma = _shares(cum_chroma[end] - cum_chroma[end - length])  # [m, 12]
        bass = _shares(cum_bass[end] - cum_bass[end - length])
        missing = (chroma < settings.missing_tone_share).astype(float)
        fit = np.hstack([chroma, bass, missing]) @ weights - templates.costs  # [m, C]
        fit -= off_key[keys[end - length]]
        sounding_beats = cum_sounding[end] - cum_sounding[end - length]
        silent_beats = cum_length[end] - cum_length[end - length] - sounding_beats
        best = fit.argmax(axis=1)
        # Silence inside a chord neither helps nor hurts it: pianists rest within a chord.
        chord_score = sounding_beats * fit[np.arange(len(end)), best]
        no_chord_score = silent_beats - settings.sounding_no_chord_cost * sounding_beats
        use_chord = chord_score > no_chord_score
        scores[end, length] = np.where(use_chord, chord_score, no_chord_score)
        labels[end, length] = np.where(use_chord, best, _NO_CHORD)
    return scores, labels


def _shares(profile: np.ndarray) -> np.ndarray:
    """Rows scaled to sum to 1 (all-zero rows stay zero)."""
    total = profile.sum(axis=1, keepdims=True)
    return np.divide(profile, total, out=np.zeros_like(profile), where=total > 1e-12)


def _best_cuts(scores: np.ndarray, change_cost: np.ndarray) -> list[tuple[int, int]]:
    """The (start unit, end unit) stretches maximising total score minus change costs."""
    n = scores.shape[0] - 1
    max_length = scores.shape[1] - 1
    # Plain Python: each step is a handful of additions, too small for numpy to pay off.
    table = scores.tolist()
    cost = change_cost.tolist()
    cost[0] = 0.0  # starting the song is not a change
    best = [0.0] + [-math.inf] * n
    back = [0] * (n + 1)
    for end in range(1, n + 1):
        row = table[end]
        for length in range(1, min(max_length, end) + 1):
            start = end - length
            total = best[start] - cost[start] + row[length]
            if total > best[end]:
                best[end] = total
                back[end] = length
    cuts = []
    end = n
    while end > 0:
        cuts.append((end - back[end], end))
        end -= back[end]
    return cuts[::-1]


def _timed_chords(
    cuts: list[tuple[int, int]],
    labels: np.ndarray,
    profiles: Profiles,
    templates: _Templates,
    grid: MetricGrid,
    change_cost: np.ndarray,
) -> list[TimedChord]:
    timed: list[TimedChord] = []
    made: dict[tuple[int, int | None], Chord] = {}
    for start, end in cuts:
        label = int(labels[end, end - start])
        if label == _NO_CHORD:
            runs = [(start, end, None)]
        else:
            runs = _bass_runs(start, end, label, profiles, templates, change_cost)
        for run_start, run_end, bass in runs:
            chord = None
            if label != _NO_CHORD:
                if (label, bass) not in made:
                    root = int(templates.roots[label])
                    made[label, bass] = Chord(root, templates.qualities[label], bass)
                chord = made[label, bass]
            start_beat = float(grid.edges_beat[run_start])
            end_beat = float(grid.edges_beat[run_end])
            if timed and timed[-1].chord == chord:
                start_beat = timed.pop().start_beat
            timed.append(TimedChord(start_beat, end_beat, chord))
    return timed


def _bass_runs(
    start: int,
    end: int,
    label: int,
    profiles: Profiles,
    templates: _Templates,
    change_cost: np.ndarray,
) -> list[tuple[int, int, int | None]]:
    """Split one chord's units where its bass moves to another chord tone and stays there.

    A small Viterbi pass over the chord's tones: each unit rewards the tone its bass plays (per
    beat), and moving the bass costs a chord change on that line, so C then C/E in the next bar
    are two chords while a walking bass is not. Bass None is root position (or no bass).
    """
    root = int(templates.roots[label])
    tones = [root] + [pc for pc in np.flatnonzero(templates.tones[label]) if pc != root]
    gain = _shares(profiles.bass[start:end])[:, tones] * profiles.length_beats[start:end, None]
    best = gain[0].copy()
    came_from = np.zeros(gain.shape, dtype=int)
    came_from[0] = np.arange(len(tones))
    for i in range(1, len(gain)):
        leader = int(np.argmax(best))
        switch = best[leader] - change_cost[start + i]
        stays = best >= switch
        came_from[i] = np.where(stays, np.arange(len(tones)), leader)
        best = gain[i] + np.where(stays, best, switch)
    state = int(np.argmax(best))
    states = [state]
    for i in range(len(gain) - 1, 0, -1):
        state = int(came_from[i, state])
        states.append(state)
    states.reverse()
    runs: list[tuple[int, int, int | None]] = []
    for offset, state in enumerate(states):
        bass = None if state == 0 else int(tones[state])
        if runs and runs[-1][2] == bass:
            runs[-1] = (runs[-1][0], start + offset + 1, bass)
        else:
            runs.append((start + offset, start + offset + 1, bass))
    return runs
