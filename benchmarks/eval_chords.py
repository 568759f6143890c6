"""Score the chord recogniser against human chord labels with mir_eval, on one or more dev sets.

For every `NAME.mid` in each DIR that has a `NAME.lab` beside it (MIREX lines `start<TAB>end<TAB>label`
in seconds, Harte labels), the chord track is chosen as `jasco-bridge chords` would choose it
(automatically, or `--track`), its chords are recognised, and mir_eval's duration-weighted
scores are printed per song, per set and overall (weighted by song duration):

  root        the root is right
  majmin      major/minor/N right (the reference's sus, dim, aug, ... segments are skipped)
  majmin_inv  majmin with the bass (inversion) right too
  sevenths    maj, min, 7, maj7, min7 or N right (other reference qualities skipped)
  thirds      root and third right
  triads      the whole triad right (nothing skipped)

The two dev sets: chords-dev (pop piano accompaniments and folk block-chord tracks, shipped
beside the project) and the Bach chorales with their Roman-numeral analyses, rebuilt from
music21 by `benchmarks/make_chorale_set.py OUT`.

Examples:

  python benchmarks/make_chorale_set.py /tmp/chorales
  python benchmarks/eval_chords.py ../shared/data/chords-dev /tmp/chorales
  python benchmarks/eval_chords.py ../shared/data/chords-dev --track PIANO
  python benchmarks/eval_chords.py ../shared/data/chords-dev /tmp/chorales --leave-one-out

`--leave-one-out` shows how honest the defaults are: for every song it picks, from alternatives
for every setting that was tuned (each default, and a lower and higher value of one setting at a
time), the settings that score best on all the other songs of every set, and scores the
held-out song with them.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

import mir_eval
import numpy as np

from midi.errors import MidiError
from midi.recognize import RecognitionSettings, recognize_chords
from midi.smf import read_midi_file
from midi.timeline import to_lab_lines, to_segments
from midi.tracks import choose_chord_track

METRICS = ("root", "majmin", "majmin_inv", "sevenths", "thirds", "triads")


@dataclasses.dataclass(frozen=True)
class Song:
    """One annotated song, ready to be recognised many times."""

    name: str
    duration_seconds: float
    reference_intervals: np.ndarray
    reference_labels: list[str]
    run: Callable[[RecognitionSettings], tuple[np.ndarray, list[str]]]


def load_song(midi_path: Path, track: str | None) -> Song:
    """The song and its labels; a file whose chords cannot be read scores as all N (and says why)."""
    intervals, labels = mir_eval.io.load_labeled_intervals(str(midi_path.with_suffix(".lab")))
    start, end = float(intervals[0, 0]), float(intervals[-1, 1])
    try:
        song = read_midi_file(midi_path)
        choice = choose_chord_track(song, track)
    except MidiError as error:
        print(f"eval_chords: {midi_path.name} scores as all N: {error}", file=sys.stderr)
        return Song(
            midi_path.stem,
            end - start,
            intervals,
            list(labels),
            lambda _settings: (np.array([[start, end]]), ["N"]),
        )

    def run(settings: RecognitionSettings) -> tuple[np.ndarray, list[str]]:
        timed = recognize_chords(choice.track, song.tempo_map, settings)
        lines = to_lab_lines(to_segments(timed, song.tempo_map))
        rows = [line.split("\t") for line in lines]
        return np.array([[float(a), float(b)] for a, b, _ in rows]), [lab for _, _, lab in rows]

    return Song(midi_path.stem, end - start, intervals, list(labels), run)


def score(song: Song, settings: RecognitionSettings) -> dict[str, float]:
    intervals, labels = song.run(settings)
    # Only the annotated span is scored; an estimate wholly outside it (music after the last
    # annotated chord) would become an empty interval, which mir_eval refuses.
    first, last = song.reference_intervals[0, 0], song.reference_intervals[-1, 1]
    inside = (intervals[:, 1] > first + 1e-6) & (intervals[:, 0] < last - 1e-6)
    intervals = np.clip(intervals[inside], first, last)
    labels = [label for label, keep in zip(labels, inside, strict=True) if keep]
    scores = mir_eval.chord.evaluate(
        song.reference_intervals, song.reference_labels, intervals, labels
    )
    return {metric: float(scores[metric]) for metric in METRICS}


def overall(songs: Sequence[Song], per_song: Sequence[dict[str, float]]) -> dict[str, float]:
    weights = np.array([song.duration_seconds for song in songs])
    return {
        metric: float(np.dot(weights, [s[metric] for s in per_song]) / weights.sum())
        for metric in METRICS
    }


def print_table(rows: Sequence[tuple[str, dict[str, float]]]) -> None:
    width = max(len(name) for name, _ in rows)
    print(f"{'song':<{width}}  " + "  ".join(f"{m:>10}" for m in METRICS))
    for name, scores in rows:
        print(f"{name:<{width}}  " + "  ".join(f"{scores[m]:>10.4f}" for m in METRICS))


# Every setting tuned on the dev sets, with the alternatives leave-one-out may choose instead.
TUNED = (
    ("bass_root_bonus", (0.2, 0.8)),
    ("extra_tone_weight", (1.1, 2.2)),
    ("sustain_beats", (1.5, 6.0)),
    ("harmonic_rhythm_change", ((0.38, 0.46), (0.46, 0.55))),
    ("fast_harmony_cost_factor", (0.08, 0.3)),
    ("ornament_weight", (0.5, 1.0)),
    ("off_key_cost", (0.0, 0.2)),
    ("key_window_beats", (8.0, 32.0)),
)


def candidate_settings() -> list[tuple[str, RecognitionSettings]]:
    base = RecognitionSettings()
    candidates = [("defaults", base)]
    for name, values in TUNED:
        for value in values:
            candidates.append((f"{name}={value}", dataclasses.replace(base, **{name: value})))
    return candidates


def leave_one_out(songs: Sequence[Song]) -> list[dict[str, float]]:
    """Each song's scores with the settings chosen on all the other songs."""
    candidates = candidate_settings()
    table = [[score(song, settings) for _, settings in candidates] for song in songs]
    weights = np.array([song.duration_seconds for song in songs])
    objective = np.array([[s["majmin"] + s["sevenths"] for s in row] for row in table])
    held_out = []
    chosen_names = []
    for i in range(len(songs)):
        others = np.delete(np.arange(len(songs)), i)
        chosen = int(np.argmax(weights[others] @ objective[others]))
        held_out.append(table[i][chosen])
        chosen_names.append(candidates[chosen][0])
    for name in sorted(set(chosen_names)):
        print(f"  {chosen_names.count(name)} songs held out with {name}")
    return held_out


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "directories", nargs="+", type=Path, metavar="DIR", help="folders of NAME.mid + NAME.lab"
    )
    parser.add_argument(
        "--track",
        help="chord track(s) by name or 0-based index, commas between several "
        "(default: chosen automatically per file)",
    )
    parser.add_argument(
        "--leave-one-out",
        action="store_true",
        help="also re-choose the tuned settings on all-but-one songs and score the held-out one",
    )
    args = parser.parse_args(argv)
    sets: list[tuple[str, list[Song]]] = []
    for directory in args.directories:
        pairs = sorted(p for p in directory.glob("*.mid") if p.with_suffix(".lab").is_file())
        if not pairs:
            print(
                f"eval_chords: no NAME.mid with a NAME.lab beside it in {directory}",
                file=sys.stderr,
            )
            return 2
        sets.append((directory.name, [load_song(path, args.track) for path in pairs]))
    songs = [song for _, members in sets for song in members]
    settings = RecognitionSettings()
    per_song = [score(song, settings) for song in songs]
    rows = [(song.name, s) for song, s in zip(songs, per_song, strict=True)]
    rows += summary_rows(sets, per_song)
    print_table(rows)
    if args.leave_one_out:
        print("\nleave-one-out (settings re-chosen without the held-out song):")
        held_out = leave_one_out(songs)
        print_table([(f"held-out {name}", s) for name, s in summary_rows(sets, held_out)])
    return 0


def summary_rows(
    sets: Sequence[tuple[str, Sequence[Song]]], per_song: Sequence[dict[str, float]]
) -> list[tuple[str, dict[str, float]]]:
    """Duration-weighted scores of each set and, with several sets, of all songs together."""
    rows = []
    first = 0
    for name, members in sets:
        scores = per_song[first : first + len(members)]
        rows.append((f"SET {name} ({len(members)} songs)", overall(members, scores)))
        first += len(members)
    if len(sets) > 1:
        songs = [song for _, members in sets for song in members]
        rows.append((f"OVERALL ({len(songs)} songs)", overall(songs, per_song)))
    return rows


if __name__ == "__main__":
    raise SystemExit(main())
