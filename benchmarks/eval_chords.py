"""Score the chord recogniser against human chord labels with mir_eval.

For every `NAME.mid` in DIR that has a `NAME.lab` beside it (MIREX lines `start<TAB>end<TAB>label`
in seconds, Harte labels), the chord track is chosen as `jasco-bridge chords` would choose it
(automatically, or `--track`), its chords are recognised, and mir_eval's duration-weighted
scores are printed per song and overall (weighted by song duration):

  root        the root is right
  majmin      major/minor/N right (the reference's sus, dim, aug, ... segments are skipped)
  majmin_inv  majmin with the bass (inversion) right too
  sevenths    maj, min, 7, maj7, min7 or N right (other reference qualities skipped)
  thirds      root and third right
  triads      the whole triad right (nothing skipped)

Examples:

  python benchmarks/eval_chords.py ../shared/data/chords-dev
  python benchmarks/eval_chords.py ../shared/data/chords-dev --track PIANO
  python benchmarks/eval_chords.py ../shared/data/chords-dev --leave-one-out

`--leave-one-out` also shows how stable the defaults are: for every song it picks, from a small
set of alternatives for the most influential settings, the one that scores best on the other
songs, and scores the held-out song with it.
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


def leave_one_out(songs: Sequence[Song]) -> dict[str, float]:
    """Held-out scores when a few settings are re-chosen on the other songs each time."""
    base = RecognitionSettings()
    candidates = [base]
    for name, factors in (
        ("bass_root_bonus", (0.5, 2.0)),
        ("extra_tone_weight", (0.7, 1.4)),
        ("sustain_beats", (0.5, 2.0)),
    ):
        for factor in factors:
            candidates.append(dataclasses.replace(base, **{name: getattr(base, name) * factor}))
    table = [[score(song, c) for c in candidates] for song in songs]
    weights = np.array([song.duration_seconds for song in songs])
    objective = np.array([[s["majmin"] + s["sevenths"] for s in row] for row in table])
    held_out = []
    for i in range(len(songs)):
        others = np.delete(np.arange(len(songs)), i)
        chosen = int(np.argmax(weights[others] @ objective[others]))
        held_out.append(table[i][chosen])
        print(f"  {songs[i].name}: settings #{chosen} chosen on the other songs")
    return overall(songs, held_out)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("directory", type=Path, help="folder of NAME.mid + NAME.lab pairs")
    parser.add_argument(
        "--track",
        help="chord track by name or 0-based index (default: chosen automatically per file)",
    )
    parser.add_argument(
        "--leave-one-out",
        action="store_true",
        help="also re-choose key settings on all-but-one songs and score the held-out one",
    )
    args = parser.parse_args(argv)
    pairs = sorted(p for p in args.directory.glob("*.mid") if p.with_suffix(".lab").is_file())
    if not pairs:
        print(
            f"eval_chords: no NAME.mid with a NAME.lab beside it in {args.directory}",
            file=sys.stderr,
        )
        return 2
    songs = [load_song(path, args.track) for path in pairs]
    settings = RecognitionSettings()
    per_song = [score(song, settings) for song in songs]
    rows = [(song.name, s) for song, s in zip(songs, per_song, strict=True)]
    rows.append((f"OVERALL ({len(songs)} songs)", overall(songs, per_song)))
    print_table(rows)
    if args.leave_one_out:
        print("\nleave-one-out:")
        print_table([("held-out", leave_one_out(songs))])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
