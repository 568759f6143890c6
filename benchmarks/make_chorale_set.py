"""Build the chorale dev set: Bach chorales as MIDI + their Roman-numeral analyses as .lab files.

music21 (`pip install music21`, or `pip install -e .[bench]`) ships RomanText analyses of Bach
chorales (`corpus/bach/choraleAnalyses/*.rntxt`, by Andrew Jones, proofread by Dmitri Tymoczko
and Hamish Robb) beside the chorales themselves. For each analysis this script writes into OUT:

  NAME.mid  the chorale, one track per voice (Soprano, Alto, Tenor, Bass), at a constant tempo
            in its own time signature, bars as written (a pickup is a short first bar);
  NAME.lab  MIREX lines `start<TAB>end<TAB>label` in seconds, one per Roman numeral: the root,
            quality and bass of the numeral in its key, as a Harte label (`G:maj`, `D:7/3`);
            numerals with no Harte quality (augmented sixths and the like) are `X`, which
            mir_eval leaves out of every score.

With `--corpus monteverdi` the same is done for the Monteverdi madrigals music21 ships with
analyses (`corpus/monteverdi/madrigal.*.rntxt` beside `madrigal.*.mxl`, five voices), a style
nothing was tuned on.

The last chord lasts to the end of the music. A piece whose analysis does not fit its notes
(under 80% of the sounding time on the numeral's tones: a different version, a repeat laid out
another way, or an analysis with gaps) is skipped, and the script says so. Neither the corpus nor the generated files belong in the
repository; rebuild them when needed:

  python benchmarks/make_chorale_set.py /tmp/chorales
  python benchmarks/make_chorale_set.py --corpus monteverdi /tmp/madrigals
  python benchmarks/eval_chords.py /tmp/chorales /tmp/madrigals
"""

from __future__ import annotations

import argparse
import re
import sys
from collections.abc import Sequence
from pathlib import Path

from midi.notes import Note, NoteTrack
from midi.smf import MidiSong, write_midi_file
from midi.tempo import TempoChange, TempoMap, TimeSignature

TEMPO_BPM = 80.0
_VELOCITY = 80
_MIN_FIT = 0.8
_PITCH_NAMES = ("C", "C#", "D", "Eb", "E", "F", "F#", "G", "Ab", "A", "Bb", "B")
# Semitones above the root -> the Harte degree of a bass note (the chord's own tones only).
_BASS_DEGREES = {3: "b3", 4: "3", 6: "b5", 7: "5", 8: "#5", 9: "bb7", 10: "b7", 11: "7"}
# (triad quality, seventh above the root in semitones or None) -> Harte quality.
_HARTE_QUALITIES = {
    ("major", None): "maj",
    ("minor", None): "min",
    ("diminished", None): "dim",
    ("augmented", None): "aug",
    ("major", 10): "7",
    ("major", 11): "maj7",
    ("minor", 10): "min7",
    ("minor", 11): "minmaj7",
    ("diminished", 10): "hdim7",
    ("diminished", 9): "dim7",
}


def harte_label(numeral) -> str:
    """The Harte label of a music21 RomanNumeral, or X when it has no Harte quality."""
    root = numeral.root().pitchClass
    seventh = numeral.seventh
    interval = None if seventh is None else (seventh.pitchClass - root) % 12
    quality = _HARTE_QUALITIES.get((numeral.quality, interval))
    if quality is None or len(numeral.pitches) not in (3, 4):
        return "X"
    label = f"{_PITCH_NAMES[root]}:{quality}"
    bass = (numeral.bass().pitchClass - root) % 12
    if bass:
        label += f"/{_BASS_DEGREES[bass]}"
    return label


def chorale_song(score, tempo_bpm: float) -> tuple[MidiSong, float]:
    """The score's parts as note tracks on a constant tempo, and where the music ends (beats)."""
    meter = score.recurse().getElementsByClass("TimeSignature").first()
    meters = (TimeSignature(0.0, meter.numerator, meter.denominator),) if meter else ()
    tracks = []
    end = 0.0
    for index, part in enumerate(score.parts):
        notes = []
        for element in part.stripTies().flatten().notes:
            start = float(element.offset)
            stop = start + float(element.quarterLength)
            if stop <= start:  # grace notes take no time in the score
                continue
            end = max(end, stop)
            for pitch in element.pitches:
                notes.append(Note(int(pitch.midi), start, stop, _VELOCITY, index))
        tracks.append(NoteTrack(part.partName or f"voice {index + 1}", notes, index, index))
    tempo_map = TempoMap((TempoChange(0.0, tempo_bpm),), meters)
    return MidiSong(tempo_map, tuple(tracks)), end


def analysis_rows(analysis, end_beat: float) -> list[tuple[float, float, str, frozenset[int]]]:
    """(start beat, end beat, Harte label, pitch classes) per numeral, each lasting to the next
    (the last to the end of the music)."""
    numerals = [
        (float(n.getOffsetInHierarchy(analysis)), n)
        for n in analysis.recurse().getElementsByClass("RomanNumeral")
    ]
    numerals.sort(key=lambda row: row[0])
    rows = []
    for i, (start, numeral) in enumerate(numerals):
        stop = min(numerals[i + 1][0] if i + 1 < len(numerals) else end_beat, end_beat)
        if stop - start > 1e-3:  # a numeral after the last note, or two on one offset
            pitch_classes = frozenset(p.pitchClass for p in numeral.pitches)
            rows.append((start, stop, harte_label(numeral), pitch_classes))
    return rows


def fit(song: MidiSong, rows) -> float:
    """Share of sounding note time that falls on the analysed chord's tones."""
    on = total = 0.0
    for track in song.tracks:
        for note in track.notes:
            for start, stop, _, pitch_classes in rows:
                overlap = min(stop, note.end_beat) - max(start, note.start_beat)
                if overlap > 0:
                    total += overlap
                    on += overlap * (note.pitch % 12 in pitch_classes)
    return on / total if total else 0.0


def _score_of(path: Path, corpus: str, music21):
    """(file stem, score) for an analysis, or a sentence saying why there is none."""
    if corpus == "monteverdi":
        score_path = path.with_suffix(".mxl")
        if not score_path.is_file():
            return "no score beside it"
        return path.stem.replace(".", "_"), music21.converter.parse(score_path)
    found = re.search(r"^BWV:\s*(\S+)", path.read_text(encoding="utf-8"), re.MULTILINE)
    if not found:
        return "no BWV number"
    bwv = found.group(1)
    try:
        score = music21.corpus.parse(f"bach/bwv{bwv}")
    except Exception as error:  # music21 raises several unrelated types for a missing work
        return f"BWV {bwv} not in the corpus ({error})"
    return f"{path.stem}_bwv{bwv.replace('/', '-')}", score


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("out", type=Path, help="folder to write NAME.mid + NAME.lab into")
    parser.add_argument("--tempo", type=float, default=TEMPO_BPM, help="tempo of the MIDI files")
    parser.add_argument(
        "--corpus",
        choices=("bach", "monteverdi"),
        default="bach",
        help="Bach chorales (the dev set) or Monteverdi madrigals (an unseen style)",
    )
    args = parser.parse_args(argv)
    try:
        import music21
    except ImportError:
        print("make_chorale_set: needs music21: pip install music21", file=sys.stderr)
        return 2
    corpus = Path(music21.__file__).parent / "corpus"
    if args.corpus == "bach":
        analyses = sorted((corpus / "bach" / "choraleAnalyses").glob("*.rntxt"))
    else:
        analyses = sorted((corpus / "monteverdi").glob("*.rntxt"))
    if not analyses:
        print(f"make_chorale_set: this music21 has no {args.corpus} analyses", file=sys.stderr)
        return 2
    args.out.mkdir(parents=True, exist_ok=True)
    seconds_per_beat = 60.0 / args.tempo
    written = 0
    for path in analyses:
        found = _score_of(path, args.corpus, music21)
        if isinstance(found, str):
            print(f"  {path.name}: {found}, skipped", file=sys.stderr)
            continue
        name, score = found
        song, end_beat = chorale_song(score, args.tempo)
        rows = analysis_rows(music21.converter.parse(path, format="romanText"), end_beat)
        agreement = fit(song, rows)
        if agreement < _MIN_FIT:
            print(
                f"  {path.name}: only {agreement:.0%} of the notes fit the analysis "
                "(a different version?), skipped",
                file=sys.stderr,
            )
            continue
        write_midi_file(song, args.out / f"{name}.mid")
        lines = [
            f"{start * seconds_per_beat:.6f}\t{stop * seconds_per_beat:.6f}\t{label}"
            for start, stop, label, _ in rows
        ]
        (args.out / f"{name}.lab").write_text("\n".join(lines) + "\n", encoding="utf-8")
        written += 1
        print(f"  {name}: {len(rows)} chords, {agreement:.0%} of the notes on chord tones")
    print(f"make_chorale_set: {written} of {len(analyses)} pieces written to {args.out}")
    return 0 if written else 2


if __name__ == "__main__":
    raise SystemExit(main())
