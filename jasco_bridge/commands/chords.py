"""Show the chords JASCO will hear: recognised from a MIDI file, or read from chord symbols.

From a MIDI file, the chord track is chosen automatically (the most chord-like part: several
notes at once, a middle or low register, a name such as PIANO or CHORDS; the reason is shown),
or by --track NAME or a 0-based track number as listed in the message. When the harmony is
spread over several parts (a piano written as two hands, a pad over a bass track, a choir in
four voices) they are combined automatically and recognised as one, with the bass from the
lowest; drums and lead melodies stay out. Name several parts yourself with --track repeated or
separated by commas (--track RH --track LH, --track 1,2). Its notes become a
chord timeline on the song's bar grid: block chords, arpeggios, inversions (C:maj/3 is C over
E), melody notes on top, anticipations and rests (N) are all handled. Each chord is shown in
three ways: where it starts (bar:beat and seconds), its Harte label and chord symbol, and the
label of JASCO's 194-chord vocabulary the model will be given (an exact match, or the nearest
one when the vocabulary lacks the chord, such as sus chords).

Formats:
  table  for reading (the default);
  lab    MIREX lines `start<TAB>end<TAB>label` in seconds, what mir_eval and Sonic Visualiser
         read; the track choice goes to stderr so stdout stays pure;
  json   everything, for scripts: track choice, tempo map, and per chord the beats, seconds,
         bar:beat, Harte label, symbol, JASCO label and index.

With --symbol (repeatable) no file is read: each symbol is parsed as a producer or lead sheet
writes it (Cmaj7, F#m7b5, Bb/D, C7(b9,#11), N.C.) or as a Harte label (A:min7/b3), and the
JASCO label it maps to is shown with the reason, spelled as you wrote it beside the
vocabulary's own spelling (Dbmaj9/F -> C#maj7 (Dbmaj7)).

The vocabulary is the chord table of the checkpoint in --model DIR
(DIR/chord_to_index_mapping.pkl), else the copy of the released table bundled with
jasco-bridge; all released JASCO checkpoints share it.

examples:
  jasco-bridge chords song.mid
  jasco-bridge chords song.mid --track PIANO --format lab > song.lab
  jasco-bridge chords piano.mid --track RH --track LH
  jasco-bridge chords song.mid --format json | jq '.segments[].jasco_label'
  jasco-bridge chords --symbol Cmaj9 --symbol "Bb/D" --symbol Gsus4
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

HELP = "show the chords of a MIDI file (or chord symbols) as JASCO's vocabulary labels"

FORMATS = ("table", "lab", "json")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("file", nargs="?", type=Path, help="a MIDI file (.mid)")
    parser.add_argument(
        "--track",
        action="append",
        metavar="TRACK",
        help="chord track: a name (case-insensitive) or a 0-based track number; repeat it or "
        "separate with commas to read several parts as one harmony "
        "(default: chosen automatically, combining parts when the harmony is spread over them)",
    )
    parser.add_argument(
        "--format", choices=FORMATS, default="table", help="output format (see above)"
    )
    parser.add_argument(
        "--model",
        type=Path,
        metavar="DIR",
        help="checkpoint folder holding its chord table, chord_to_index_mapping.pkl "
        "(default: the bundled copy of the released table)",
    )
    parser.add_argument(
        "--symbol",
        action="append",
        metavar="TEXT",
        help="explain a chord symbol instead of reading a file; repeat for several",
    )


def run(args: argparse.Namespace) -> int:
    from jasco_bridge.errors import UsageError

    if (args.file is None) == (not args.symbol):
        raise UsageError("give a MIDI file or --symbol TEXT (one or more), not both or neither")
    if args.symbol and args.track is not None:
        raise UsageError("--track chooses a track of a MIDI file; it does not apply to --symbol")
    if args.symbol and args.format == "lab":
        raise UsageError("--format lab is a timeline of a MIDI file; use table or json")
    vocabulary = _open_vocabulary(args.model)
    if args.symbol:
        return _print_symbols(args.symbol, vocabulary, args.format)
    _print_file(args.file, args.track, vocabulary, args.format)
    return 0


def _open_vocabulary(model: Path | None):
    from engine.weights import CHORD_TABLE_FILE
    from jasco_bridge.engines import bundled_chord_table
    from midi.vocabulary import ChordVocabulary

    if model is None:
        return ChordVocabulary.from_pickle(bundled_chord_table())
    table = model if model.suffix == ".pkl" else model / CHORD_TABLE_FILE
    return ChordVocabulary.from_pickle(table)


def _print_file(path: Path, track: list[str] | None, vocabulary, output_format: str) -> None:
    from midi.recognize import recognize_chords
    from midi.smf import read_midi_file
    from midi.timeline import to_lab_lines, to_segments
    from midi.tracks import choose_chord_track

    song = read_midi_file(path)
    choice = choose_chord_track(song, track)
    segments = to_segments(recognize_chords(choice.track, song.tempo_map), song.tempo_map)
    if output_format == "lab":
        print(f"chords from {choice.reason}", file=sys.stderr)
        for line in to_lab_lines(segments):
            print(line)
        return
    rows = [_segment_row(segment, song.tempo_map, vocabulary) for segment in segments]
    if output_format == "json":
        print(f"chords from {choice.reason}", file=sys.stderr)
        document = {
            "file": str(path),
            "track": {
                "label": choice.label,
                "name": choice.track.name,
                "index": choice.track.index,
                "channel": choice.track.channel,
                "reason": choice.reason,
                "parts": [
                    {"label": part.label, "name": part.name, "index": part.index}
                    for part in choice.parts
                ],
            },
            "tempo_map": _tempo_summary(song.tempo_map, song.duration_seconds),
            "vocabulary": vocabulary.source,
            "segments": rows,
        }
        print(json.dumps(document, indent=2, ensure_ascii=False))
        return
    print(f"{path}: {len(rows)} chords, {song.duration_seconds:.1f} s, {song.tempo_map}")
    print(f"chords from {choice.reason}")
    print(f"JASCO labels from {vocabulary.source}\n")
    _print_table(
        ("bar:beat", "seconds", "chord", "symbol", "JASCO", "index"),
        [
            (
                row["start"],
                f"{row['start_seconds']:.3f}",
                row["harte"],
                row["symbol"],
                row["jasco_label"] + ("" if row["exact"] else " ~"),
                str(row["jasco_index"]),
            )
            for row in rows
        ],
        right_aligned={1, 5},
    )
    if any(not row["exact"] for row in rows):
        print("\n~ nearest label: the vocabulary has no such chord")


def _segment_row(segment, tempo_map, vocabulary) -> dict[str, Any]:
    match = vocabulary.map_chord(segment.chord)
    return {
        "start": _bar_beat(tempo_map, segment.start_beat),
        "end": _bar_beat(tempo_map, segment.end_beat),
        "start_beat": segment.start_beat,
        "end_beat": segment.end_beat,
        "start_seconds": round(segment.start_seconds, 6),
        "end_seconds": round(segment.end_seconds, 6),
        "harte": segment.label,
        "symbol": "N.C." if segment.chord is None else segment.chord.symbol,
        "jasco_label": match.label,
        "jasco_index": match.index,
        "exact": match.exact,
    }


def _bar_beat(tempo_map, beat: float) -> str:
    position = tempo_map.position_at(beat)
    return f"{position.bar}:{position.beat:g}"


def _tempo_summary(tempo_map, duration_seconds: float) -> dict[str, Any]:
    return {
        "tempos": [{"beat": t.beat, "bpm": t.bpm} for t in tempo_map.tempos],
        "meters": [
            {"beat": m.beat, "numerator": m.numerator, "denominator": m.denominator}
            for m in tempo_map.meters
        ],
        "constant_tempo": tempo_map.is_constant_tempo,
        "duration_seconds": round(duration_seconds, 6),
        "summary": str(tempo_map),
    }


def _print_symbols(symbols: Sequence[str], vocabulary, output_format: str) -> int:
    """Explain every symbol; a bad one is reported beside the good ones (exit 2), not instead."""
    from midi.errors import ChordSymbolError
    from midi.vocabulary import describe_symbol

    described, errors = [], []
    for text in symbols:
        try:
            described.append(describe_symbol(text, vocabulary))
        except ChordSymbolError as error:
            errors.append({"input": text, "error": str(error)})
    if output_format == "json":
        document = {"vocabulary": vocabulary.source, "symbols": described, "errors": errors}
        print(json.dumps(document, indent=2))
    elif described:
        _print_table(
            ("symbol", "reads as", "harte", "notes", "JASCO", "index"),
            [
                (
                    str(d["input"]),
                    str(d["symbol"]),
                    str(d["harte"]),
                    " ".join(d["pitch_names"]) or "-",
                    _label_beside_spelling(d) + ("" if d["exact"] else " ~"),
                    str(d["index"]),
                )
                for d in described
            ],
            right_aligned={5},
        )
        for d in described:
            if not d["exact"]:
                print(f"~ {d['input']}: {d['reason']}")
    for error in errors:
        print(f"jasco-bridge chords: error: {error['error']}", file=sys.stderr)
    return 2 if errors else 0


def _label_beside_spelling(described: dict[str, Any]) -> str:
    label, spelled = str(described["label"]), str(described["label_spelled"])
    return label if label == spelled else f"{label} ({spelled})"


def _print_table(
    header: Sequence[str], rows: Sequence[Sequence[str]], right_aligned: set[int]
) -> None:
    widths = [max(len(cell) for cell in column) for column in zip(header, *rows, strict=False)]

    def line(cells: Sequence[str]) -> str:
        return "  ".join(
            cell.rjust(width) if i in right_aligned else cell.ljust(width)
            for i, (cell, width) in enumerate(zip(cells, widths, strict=True))
        ).rstrip()

    print(line(header))
    for row in rows:
        print(line(row))
