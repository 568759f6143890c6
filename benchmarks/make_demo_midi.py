"""Write `jasco_bridge/data/demo.mid`, the progression `jasco-bridge demo` renders.

Four bars of I-vi-IV-V in C major at 100 bpm, 4/4 (9.6 s, inside JASCO's 10 s window), as a
"Chords" track of block triads played on each half bar and a "Melody" track, a simple tune
over the changes. Run it again after changing the music here:

    python benchmarks/make_demo_midi.py [OUT.mid]
"""

from __future__ import annotations

import argparse
from pathlib import Path

from midi.notes import Note, NoteTrack
from midi.smf import MidiSong, write_midi_file
from midi.tempo import TempoMap

BPM = 100.0
OUT = Path(__file__).resolve().parents[1] / "jasco_bridge" / "data" / "demo.mid"
# One bar per chord: C, Am, F, G, voiced close around middle C with the root in the left hand.
PROGRESSION = (
    (48, (60, 64, 67)),  # C
    (45, (60, 64, 69)),  # Am
    (41, (60, 65, 69)),  # F
    (43, (59, 62, 67)),  # G
)
# (pitch, start beat within the song, length in beats)
TUNE = (
    (72, 0.0, 1.5),
    (76, 1.5, 0.5),
    (79, 2.0, 2.0),
    (76, 4.0, 1.0),
    (72, 5.0, 1.0),
    (69, 6.0, 2.0),
    (72, 8.0, 1.5),
    (69, 9.5, 0.5),
    (65, 10.0, 2.0),
    (67, 12.0, 1.0),
    (71, 13.0, 1.0),
    (74, 14.0, 2.0),
)


def demo_song() -> MidiSong:
    chord_notes = []
    for bar, (bass, upper) in enumerate(PROGRESSION):
        for half in (0.0, 2.0):  # the chord is struck twice per bar, like a comping pianist
            start = bar * 4.0 + half
            velocity = 96 if half == 0.0 else 80
            chord_notes.append(Note(bass, start, start + 2.0, velocity, channel=0))
            chord_notes.extend(Note(p, start, start + 1.9, velocity - 10, channel=0) for p in upper)
    melody = [Note(p, start, start + length, 100, channel=1) for p, start, length in TUNE]
    return MidiSong(
        tempo_map=TempoMap.constant(BPM, 4, 4),
        tracks=(
            NoteTrack("Chords", chord_notes, channel=0),
            NoteTrack("Melody", melody, channel=1),
        ),
        ticks_per_beat=480,
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("out", nargs="?", type=Path, default=OUT, help="where to write the file")
    args = parser.parse_args()
    print(f"wrote {write_midi_file(demo_song(), args.out)}")


if __name__ == "__main__":
    main()
