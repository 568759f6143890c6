"""Render bars of a MIDI file to a WAV clip, with JASCO or the preview synth.

The file becomes a session exactly like the one a DAW builds over OSC: its tempo map, its chord
track (chosen automatically, or with --track), its melody track (--melody-track), and its own drum
track when it has one (or the stem or drum MIDI given with --drums). The chords are mapped to
JASCO's chord vocabulary (the mapping is printed) and rendered with your text prompt through the
daemon's own pipeline. The clip starts on --start-bar and lasts exactly the requested bars at the
file's tempo, to the sample, so it drops onto the bar line in your DAW. A JSON sidecar beside the
WAV records everything needed to render it again (--again CLIP.json).

Clips are named like the daemon's, <out-dir>/<file>/bars002-003_<prompt>_<seed>.wav, and are
never overwritten: when the name is taken, the next free one (..._0-2.wav) is used.

A clip can be of any length up to 10 minutes (--bars 32, or --bars all: to the file's last
note). JASCO makes 10 s at a time, so a longer clip is rendered window by window, each window a
continuation of the one before over --context-bars shared bars, and decoded as one piece: it
costs about the sum of its windows (16 bars at 96 bpm: 5 windows). Without --bars you get as
many whole bars as fit in one 10 s window, at most 4.

Without weights (`--engine auto`, the default) the clip is a PREVIEW from a built-in synth:
it plays your chords, beat and drums so you can check timing, but it is not JASCO. Get the
weights with `jasco-bridge weights download`.

examples:
  jasco-bridge render song.mid --prompt "80s synth pop, gated drums"
  jasco-bridge render song.mid --prompt "jazz trio" --track piano --start-bar 9 --bars 4
  jasco-bridge render song.mid --prompt "synthwave" --start-bar 1 --bars 32
  jasco-bridge render song.mid --prompt "synthwave" --bars all --context-bars 2
  jasco-bridge render song.mid --prompt "lofi" --drums loop.wav --seed 7 -o lofi.wav
  jasco-bridge render song.mid --prompt "lofi" --variations 3 --sample-rate 48000 --target-lufs -14
  jasco-bridge render song.mid --prompt "rock" --engine jasco --model ~/models/jasco-400M \\
      --sampler dopri5 --cfg-all 1.5 --cfg-text 3
  jasco-bridge render --again jasco-clips/song/bars001-004_rock_0.json
"""

from __future__ import annotations

import argparse
import json
import random
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

from engine.request import PRECISIONS, SAMPLER_NAMES
from jasco_bridge.config import DEFAULT_OUT_DIR, ENGINE_KINDS

if TYPE_CHECKING:
    from midi.chords import TimedChord

HELP = "render bars of a MIDI file to a WAV clip (JASCO, or a preview without weights)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "file", type=Path, nargs="?", metavar="FILE.mid", help="MIDI file with a chord track"
    )
    parser.add_argument("--prompt", help="text description of the music (needed with FILE.mid)")
    parser.add_argument(
        "--again",
        type=Path,
        metavar="CLIP.json",
        help="render a clip again from its sidecar: same session, bars, seed and settings",
    )
    add_render_options(parser)
    parser.add_argument("--out-dir", type=Path, default=DEFAULT_OUT_DIR, help="folder for clips")
    parser.add_argument(
        "-o",
        "--output",
        type=Path,
        help="WAV to write instead of a name under --out-dir (never overwritten either)",
    )


def add_precision_option(parser: argparse.ArgumentParser) -> None:
    """`--precision`, the same for every command that opens JASCO."""
    parser.add_argument(
        "--precision",
        choices=PRECISIONS,
        default="auto",
        help="JASCO's arithmetic: auto = bf16 where the CPU/GPU runs it natively, else fp32; "
        "int8 (CPUs with bf16 and VNNI, only on request) is faster and less exact",
    )


def add_render_options(parser: argparse.ArgumentParser) -> None:
    """Every option but the file, the prompt and where clips go; `demo` uses their defaults.

    Render settings default to None here: unset means RenderSettings' own default, the one
    the daemon uses too."""
    from jasco_bridge.settings import DEFAULT_START_BAR, MAX_SEED, RenderSettings

    defaults = RenderSettings()
    parser.add_argument(
        "--track", help="chord track by name or index; None = the most chord-like track"
    )
    parser.add_argument("--melody-track", help="melody track by name or index (melody models)")
    parser.add_argument(
        "--start-bar", type=int, default=DEFAULT_START_BAR, help="first bar (1-based)"
    )
    parser.add_argument(
        "--bars",
        type=_bar_count,
        help="number of bars (any length up to 10 minutes), or 'all' = to the file's last note; "
        "None = as many as fit in one 10 s window, at most 4",
    )
    parser.add_argument(
        "--context-bars",
        type=int,
        help="bars each window of a long render shares with the one before; "
        f"None = {defaults.context_bars}",
    )
    parser.add_argument(
        "--engine",
        choices=ENGINE_KINDS,
        default="auto",
        help="auto = JASCO when its weights are found, else the preview synth",
    )
    parser.add_argument(
        "--model",
        help="JASCO folder, short name (chords-drums-400M) or hub id; None = the default model",
    )
    parser.add_argument(
        "--device", help="torch device for JASCO; None = CUDA when present, else CPU"
    )
    parser.add_argument(
        "--cluster",
        metavar="ray://HOST:PORT",
        help="render on the workers of this Ray cluster; None = render here",
    )
    add_precision_option(parser)
    parser.add_argument(
        "--seed",
        type=int,
        default=0,
        help=f"random seed 0..{MAX_SEED}, -1 = a new one per clip; same seed, same clip",
    )
    parser.add_argument(
        "--steps", type=int, help=f"sampler steps (euler, midpoint); None = {defaults.steps}"
    )
    parser.add_argument(
        "--sampler",
        choices=SAMPLER_NAMES,
        help="ODE solver: euler (the authors' demo), midpoint (2 calls/step), dopri5 (adaptive); "
        f"None = {defaults.sampler}",
    )
    parser.add_argument(
        "--cfg-all", type=float, help=f"guidance on all conditions; None = {defaults.cfg_all}"
    )
    parser.add_argument(
        "--cfg-text", type=float, help=f"extra guidance on the text; None = {defaults.cfg_text}"
    )
    parser.add_argument(
        "--variations", type=int, help="clips to render, seeds counting up from --seed; None = 1"
    )
    parser.add_argument(
        "--sample-rate", type=int, help="resample clips to this rate; None = the engine's rate"
    )
    parser.add_argument(
        "--target-lufs", type=float, help="normalise loudness, e.g. -14; None = leave it alone"
    )
    parser.add_argument(
        "--drums",
        type=Path,
        metavar="DRUMS",
        help="drum stem (wav/flac/aiff/ogg) aligned to bar 1, or a MIDI file whose drum track "
        "to use; None = FILE.mid's own drum track, if it has one",
    )


ALL_BARS = "all"


def _bar_count(text: str) -> int | str:
    """--bars: a whole number, or 'all' (resolved once the song is read)."""
    if text.strip().lower() == ALL_BARS:
        return ALL_BARS
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"bars must be a whole number or 'all', got {text!r}"
        ) from None


class ProgressBar:
    """A one-line text bar on a terminal stream: `[#######.............]  7/20`, with the
    window running in a render of more than one (`window 2/5`)."""

    def __init__(self, label: str, stream: TextIO | None = None, width: int = 30) -> None:
        self.label = label
        self.stream = stream
        self.width = width
        self.window = (0, 1)

    def on_window(self, index: int, count: int) -> None:
        self.window = (index, count)

    def __call__(self, step: int, total: int) -> None:
        filled = round(self.width * step / total) if total else self.width
        bar = "#" * filled + "." * (self.width - filled)
        index, count = self.window
        where = f" window {index + 1}/{count}" if count > 1 else ""
        stream = self.stream or sys.stderr  # looked up late: the process may swap stderr
        if stream.isatty():
            end = "\n" if step >= total else ""
            stream.write(f"\r{self.label} [{bar}] {step}/{total}{where}{end}")
        else:  # a log file or a pipe: carriage returns would pile up on one line
            stream.write(f"{self.label} [{bar}] {step}/{total}{where}\n")
        stream.flush()


def _track_key(value: str | None) -> str | int | None:
    return int(value) if value is not None and value.isdigit() else value


def _settings(args: argparse.Namespace):
    """The render settings the options ask for, checked by RenderSettings like OSC's."""
    from dataclasses import replace

    from jasco_bridge.settings import RenderSettings, setting_value

    given = {
        "seed": args.seed,
        "steps": args.steps,
        "sampler": args.sampler,
        "cfg_all": args.cfg_all,
        "cfg_text": args.cfg_text,
        "variations": args.variations,
        "sample_rate": args.sample_rate,
        "target_lufs": args.target_lufs,
        "context_bars": args.context_bars,
    }
    return replace(
        RenderSettings(),
        **{name: setting_value(name, value) for name, value in given.items() if value is not None},
    )


def session_from_midi(args: argparse.Namespace):
    """The session a DAW would send for this file: tempo map, chord track, melody, drums."""
    from jasco_bridge.clips import slugify
    from jasco_bridge.session import Session
    from jasco_bridge.sources import is_drum_track, midi_drums
    from midi.smf import read_midi_file
    from midi.tracks import choose_chord_track

    path = Path(args.file).expanduser().absolute()
    song = read_midi_file(path)
    session = Session(slugify(path.stem, 64, fallback="song"))
    session.set_chord_file(path, _track_key(args.track))  # brings the file's tempo map too
    session.set_prompt(args.prompt)
    if args.melody_track is not None:
        session.set_melody_track(choose_chord_track(song, _track_key(args.melody_track)).track)
    if args.drums is not None:
        session.set_drums_file(Path(args.drums).expanduser().absolute())
    elif any(is_drum_track(t) for t in song.tracks):
        session.set_drums(midi_drums(song))
    session.settings = _settings(args)
    return session


def render_file(args: argparse.Namespace) -> int:
    """Everything `render` does; `demo` calls it with the bundled file."""
    from jasco_bridge.clips import check_clip_folder
    from jasco_bridge.conditioning import bars_to_song_end, plan_render
    from jasco_bridge.engines import open_renderer
    from jasco_bridge.errors import UsageError
    from jasco_bridge.pipeline import notices, render_clip, variation_seeds
    from jasco_bridge.session import session_from_sidecar

    if (args.file is None) == (args.again is None):
        raise UsageError("give a MIDI file to render, or --again CLIP.json (not both)")
    if args.again is not None:
        given = [
            option
            for option, value in (
                ("--prompt", args.prompt),
                ("--track", args.track),
                ("--melody-track", args.melody_track),
                ("--drums", args.drums),
                ("--bars", args.bars),
            )
            if value is not None
        ]
        if given:
            raise UsageError(
                f"--again renders the sidecar's session and bars as they were; "
                f"drop {', '.join(given)} (or render FILE.mid with them)"
            )
        session, start_bar, bars = _from_sidecar(args.again, session_from_sidecar)
    else:
        if args.prompt is None:
            raise UsageError("--prompt is needed: describe the music, e.g. --prompt 'lofi, rhodes'")
        session = session_from_midi(args)
        start_bar, bars = args.start_bar, args.bars
    if args.output is not None:
        check_clip_folder(args.output.parent)
    out_dir = check_clip_folder(args.out_dir)
    snapshot = session.snapshot()
    opened = open_renderer(
        args.engine, args.model, args.device, args.precision, cluster=args.cluster
    )
    renderer = opened.renderer
    if bars == ALL_BARS:
        bars = bars_to_song_end(snapshot.tempo_map, start_bar, snapshot.last_beat())
    plan = plan_render(
        snapshot.tempo_map,
        start_bar,
        bars,
        renderer.segment_seconds,
        renderer.frame_rate_hz,
        context_bars=snapshot.settings.context_bars,
    )
    window = plan.span
    # Only now that every argument is known to work: what the user should know about the engine.
    if opened.notice:
        print(opened.notice, file=sys.stderr)
    if snapshot.melody_notes and not renderer.accepts_melody:
        print(f"note: {renderer.model_id} has no melody input; the melody track is left out")
    for text in notices(snapshot, window):
        print(f"warning: {text}", file=sys.stderr)
    if snapshot.chord_file is not None:
        print(f"chord track: {snapshot.chord_file.reason}")
    label = "PREVIEW" if renderer.is_preview else "JASCO"
    printed: list[bool] = []

    def show_chords(chords: Sequence[TimedChord]) -> None:
        if not printed:  # the same for every variation
            _print_chords(chords, snapshot.tempo_map)
            printed.append(True)

    if plan.is_long:
        print(_plan_text(plan, renderer.is_preview))
    for seed in variation_seeds(snapshot.settings, random.Random()):
        bar = ProgressBar(f"{label} render")
        clip = render_clip(
            snapshot,
            plan,
            opened,
            seed=seed,
            out_dir=out_dir,
            path=args.output,
            progress=bar,
            on_window=bar.on_window,
            on_chords=show_chords,
        )
        bars_text = f"bars {window.start_bar}-{window.end_bar}"
        print(
            f"{label} clip ({bars_text}, seed {seed}, {clip.duration_seconds:.3f} s): {clip.path}"
        )
    if renderer.is_preview:
        print(
            "this is a PREVIEW from the built-in synth, not JASCO: "
            "get JASCO with `jasco-bridge weights download`"
        )
    return 0


def _plan_text(plan, preview: bool) -> str:
    """The windows of a long render, one line each, before it starts."""
    span = plan.span
    lines = [
        f"bars {span.start_bar}-{span.end_bar} ({span.duration_seconds:.1f} s) in "
        f"{len(plan.windows)} windows"
        + (" (the preview synthesises them in one pass)" if preview else "")
        + ":"
    ]
    for index, window in enumerate(plan.windows):
        shared = plan.overlap_bars(index)
        context = f", continues {shared} bar{'s' if shared != 1 else ''}" if shared else ""
        lines.append(
            f"  window {index + 1}: bars {window.start_bar}-{window.end_bar} from "
            f"{window.start_seconds:.2f} s{context}"
        )
    return "\n".join(lines)


def _from_sidecar(path: Path, read):
    from jasco_bridge.errors import UsageError

    try:
        document = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise UsageError(f"cannot read the sidecar {path}: {error}") from error
    if not isinstance(document, dict) or "start_bar" not in document:
        raise UsageError(f"{path} is not a jasco-bridge clip sidecar (no start_bar)")
    return read(document), document["start_bar"], document["bars"]


def _print_chords(chords: Sequence[TimedChord], tempo_map) -> None:
    if not chords:
        print("chords: none in these bars (JASCO will follow the prompt alone)")
        return
    print("chords (given -> JASCO label; = where the label is exact):")
    for timed in chords:
        arrow = "=" if timed.match.exact else "->"
        where = tempo_map.position_at(timed.start_beat)
        given = timed.harte if timed.written is None else timed.written
        print(f"  {str(where):<18} {given:>10} {arrow} {timed.match.shown}")


def run(args: argparse.Namespace) -> int:
    return render_file(args)
