"""Time chord recognition on 5-minute multi-track MIDI files, on one CPU thread.

Two files are built here (or one is given as FILE):

- pop: 120 bpm 4/4 arrangement, 150 bars, with a piano part (bass note + sixteenth-note broken
  chords + a block chord on beats 2 and 4), a melody and a drum track, about 5,000 notes;
- two-hand piano: a classical-style piece written on two tracks, 100 bpm 3/4, 166 bars (about
  5 minutes): the left hand an Alberti bass in sixteenths, the right hand a melody in eighths
  with chord tones under it, a chord a bar, moving through three keys, about 3,300
  notes. Both hands are combined automatically.

The figure that matters is `recognize_chords` on the chosen track(s) (targets: under 0.2 s for
pop, under 0.3 s for the two-hand piano); reading the file and choosing the track are shown apart.

numpy's BLAS is pinned to one thread before numpy loads (OMP/OPENBLAS/MKL_NUM_THREADS=1), so the
figures are single-core. Each step is run once to warm up, then --repeat times; the median and
the fastest wall-clock run are printed, and the median CPU time, which other processes
sharing the machine do not inflate.

examples:
  python benchmarks/bench_chords.py
  python benchmarks/bench_chords.py --repeat 20
  python benchmarks/bench_chords.py ../shared/data/chords-dev/pop909_250.mid
"""

from __future__ import annotations

import os

for _variable in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_variable] = "1"

import argparse  # noqa: E402
import statistics  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from collections.abc import Callable, Sequence  # noqa: E402
from pathlib import Path  # noqa: E402

from midi.notes import Note, NoteTrack  # noqa: E402
from midi.recognize import recognize_chords  # noqa: E402
from midi.smf import MidiSong, read_midi_file, write_midi_file  # noqa: E402
from midi.tempo import TempoMap  # noqa: E402
from midi.tracks import choose_chord_track  # noqa: E402

# I-vi-IV-V and ii-V-I-IV in C, two chords a bar: the root as a MIDI note, then the third, fifth
# and seventh (None for a triad) in semitones above it.
PROGRESSION = [
    (48, 4, 7, None),
    (45, 3, 7, 10),
    (41, 4, 7, 11),
    (43, 4, 7, 10),
    (50, 3, 7, 10),
    (43, 4, 7, None),
    (48, 4, 7, 11),
    (41, 4, 7, None),
]
BARS = 150  # 150 bars of 4/4 at 120 bpm = 300 s
PIANO_BARS = 166  # 166 bars of 3/4 at 100 bpm = 299 s
# I IV V7 I vi ii V7 I in major (root in semitones above the tonic, third, fifth, seventh).
PIANO_PHRASE = [(0, 4, 7, None), (5, 4, 7, None), (7, 4, 7, 10), (0, 4, 7, None),
                (9, 3, 7, None), (2, 3, 7, None), (7, 4, 7, 10), (0, 4, 7, None)]  # fmt: skip
PIANO_KEYS = (60, 67, 62)  # C, G and D major, eight bars each, in turn


def five_minute_song() -> MidiSong:
    piano: list[Note] = []
    melody: list[Note] = []
    drums: list[Note] = []
    for half_bar in range(BARS * 2):
        root, third, fifth, seventh = PROGRESSION[half_bar % len(PROGRESSION)]
        start = 2.0 * half_bar
        tones = [third, fifth] + ([seventh] if seventh is not None else [12])
        piano.append(Note(root - 12, start, start + 2.0, 70))
        for step in range(8):  # sixteenths up and down the chord
            interval = (0, *tones, 12 + third, *reversed(tones))[step % 8]
            piano.append(Note(root + interval, start + 0.25 * step, start + 0.25 * step + 0.25, 60))
        piano.extend(Note(root + 12 + i, start + 1.0, start + 1.5, 80) for i in tones)
        for step in range(4):  # melody in eighths, chord tones and passing notes
            pitch = root + 24 + (0, 2, third, 5)[(half_bar + step) % 4]
            melody.append(Note(pitch, start + 0.5 * step, start + 0.5 * step + 0.5, 90))
        drums.extend(
            Note(36 if i % 2 == 0 else 38, start + i, start + i + 0.25, 100, 9) for i in range(2)
        )
    tracks = (
        NoteTrack("PIANO", piano, index=1, channel=0),
        NoteTrack("MELODY", melody, index=2, channel=1),
        NoteTrack("DRUMS", drums, index=3, channel=9, is_drum=True),
    )
    return MidiSong(TempoMap.constant(120), tracks, 480)


def two_hand_piano_song() -> MidiSong:
    left: list[Note] = []
    right: list[Note] = []
    for bar in range(PIANO_BARS):
        tonic = PIANO_KEYS[(bar // 8) % len(PIANO_KEYS)]
        degree, third, fifth, seventh = PIANO_PHRASE[bar % len(PIANO_PHRASE)]
        root = tonic - 24 + degree
        start = 3.0 * bar
        upper = seventh if seventh is not None else 12
        for step in range(12):  # Alberti: low, high, middle, high in sixteenths
            interval = (
                (0, fifth, third, fifth)[step % 4]
                if step < 8
                else (0, upper, third, upper)[step % 4]
            )
            left.append(Note(root + interval, start + 0.25 * step, start + 0.25 * step + 0.25, 60))
        for step in range(6):  # melody in eighths: chord tones on beats, steps between
            offset = (12 + third, 14 + third, 12 + fifth, 10 + fifth, 12 + upper, 24)[step]
            pitch = root + 12 + offset
            right.append(Note(pitch, start + 0.5 * step, start + 0.5 * step + 0.5, 85))
        right.extend(Note(root + 12 + i, start, start + 1.0, 55) for i in (third, fifth))
    tracks = (
        NoteTrack("Piano RH", right, index=1, channel=0),
        NoteTrack("Piano LH", left, index=2, channel=0),
    )
    return MidiSong(TempoMap.constant(100, 3, 4), tracks, 480)


def timed(step: Callable[[], object], repeat: int) -> tuple[list[float], list[float]]:
    """Wall-clock and CPU seconds of each run, after one warm-up run (caches, lazy imports)."""
    step()
    wall, cpu = [], []
    for _ in range(repeat):
        wall_start, cpu_start = time.perf_counter(), time.process_time()
        step()
        wall.append(time.perf_counter() - wall_start)
        cpu.append(time.process_time() - cpu_start)
    return wall, cpu


def bench_file(path: Path, repeat: int) -> None:
    song = read_midi_file(path)
    choice = choose_chord_track(song)
    notes = sum(len(t.notes) for t in song.tracks)
    print(f"{path.name}: {song.duration_seconds:.0f} s, {len(song.tracks)} tracks, {notes} notes")
    print(f"chords from {choice.label} ({len(choice.track.notes)} notes)")
    print("one thread (OMP/OPENBLAS/MKL_NUM_THREADS=1)")
    steps = {
        "read_midi_file": lambda: read_midi_file(path),
        "choose_chord_track": lambda: choose_chord_track(song),
        "recognize_chords": lambda: recognize_chords(choice.track, song.tempo_map),
    }
    print(f"{'step':<20} {'median ms':>10} {'best ms':>10} {'median CPU ms':>14}")
    medians = {}
    for name, step in steps.items():
        wall, cpu = timed(step, repeat)
        medians[name] = statistics.median(wall)
        print(
            f"{name:<20} {1000 * medians[name]:>10.1f} {1000 * min(wall):>10.1f} "
            f"{1000 * statistics.median(cpu):>14.1f}"
        )
    chords = recognize_chords(choice.track, song.tempo_map)
    factor = song.duration_seconds / medians["recognize_chords"]
    print(f"{len(chords)} chords; recognize_chords runs {factor:.0f}x faster than real time")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__,
        formatter_class=type(
            "Formatter",
            (argparse.ArgumentDefaultsHelpFormatter, argparse.RawDescriptionHelpFormatter),
            {},
        ),
    )
    parser.add_argument("file", nargs="?", type=Path, help="a MIDI file (default: built here)")
    parser.add_argument("--repeat", type=int, default=10, help="timed runs per step")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as folder:
        if args.file is not None:
            paths = [args.file]
        else:
            paths = []
            for name, song in (
                ("pop", five_minute_song()),
                ("two_hand_piano", two_hand_piano_song()),
            ):
                paths.append(write_midi_file(song, Path(folder) / f"{name}.mid"))
        for path in paths:
            bench_file(path, args.repeat)
            print()
    print(f"load average {os.getloadavg()[0]:.1f} (wall times grow when other work shares the CPU)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
