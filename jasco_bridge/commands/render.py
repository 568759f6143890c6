"""Render bars of a MIDI file's chord track to a WAV clip, with JASCO or the preview synth.

The chords come from the notes of one track (chosen automatically, or with --track), are
mapped to JASCO's chord vocabulary (the mapping is printed), and are rendered together with
your text prompt. The clip starts on --start-bar and lasts exactly the requested bars at the
file's tempo, to the sample, so it drops onto the bar line in your DAW. A JSON sidecar beside
the WAV records everything needed to render it again.

One clip holds at most 10 s of music (JASCO's window). Without --bars you get as many whole
bars as fit in 10 s, at most 4; asking for more than fits is refused with the number that does.

Without weights (`--engine auto`, the default) the clip is a PREVIEW from a built-in synth:
it plays your chords, beat and drums so you can check timing, but it is not JASCO. Get the
weights with `jasco-bridge weights download`.

examples:
  jasco-bridge render song.mid --prompt "80s synth pop, gated drums"
  jasco-bridge render song.mid --prompt "jazz trio" --track piano --start-bar 9 --bars 4
  jasco-bridge render song.mid --prompt "lofi" --drums loop.wav --seed 7 -o lofi.wav
  jasco-bridge render song.mid --prompt "rock" --engine jasco --model ~/models/jasco-400M \\
      --sampler dopri5 --cfg-all 1.5 --cfg-text 3
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TextIO

from jasco_bridge.config import DEFAULT_OUT_DIR, ENGINE_KINDS

HELP = "render bars of a MIDI file to a WAV clip (JASCO, or a preview without weights)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("file", type=Path, metavar="FILE.mid", help="MIDI file with a chord track")
    parser.add_argument("--prompt", required=True, help="text description of the music")
    add_render_options(parser)
    parser.add_argument(
        "-o",
        "--output",
        type=Path,
        help="WAV to write; None = ./jasco-clips/<file>_bars<N>-<M>_<seed>.wav",
    )
    parser.add_argument("--overwrite", action="store_true", help="replace an existing output file")


def add_render_options(parser: argparse.ArgumentParser) -> None:
    """Every option but the file, the prompt and the output; `demo` renders with their defaults."""
    parser.add_argument(
        "--track", help="chord track by name or index; None = the most chord-like track"
    )
    parser.add_argument("--melody-track", help="melody track by name or index (melody models)")
    parser.add_argument("--start-bar", type=int, default=1, help="first bar (1-based)")
    parser.add_argument(
        "--bars", type=int, help="number of bars; None = as many as fit in 10 s, at most 4"
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
    parser.add_argument("--seed", type=int, default=0, help="random seed; same seed, same clip")
    parser.add_argument("--steps", type=int, default=10, help="sampler steps (euler, midpoint)")
    parser.add_argument(
        "--sampler",
        choices=("euler", "midpoint", "dopri5"),
        default="euler",
        help="ODE solver: euler (the authors' demo), midpoint (2 calls/step), dopri5 (adaptive)",
    )
    parser.add_argument("--cfg-all", type=float, default=1.25, help="guidance on all conditions")
    parser.add_argument("--cfg-text", type=float, default=2.5, help="extra guidance on the text")
    parser.add_argument(
        "--drums", type=Path, metavar="STEM.wav", help="drum stem aligned to bar 1 of the file"
    )


class ProgressBar:
    """A one-line text bar on a terminal stream: `[#######.............]  7/20`."""

    def __init__(self, label: str, stream: TextIO | None = None, width: int = 30) -> None:
        self.label = label
        self.stream = stream
        self.width = width

    def __call__(self, step: int, total: int) -> None:
        filled = round(self.width * step / total) if total else self.width
        bar = "#" * filled + "." * (self.width - filled)
        stream = self.stream or sys.stderr  # looked up late: the process may swap stderr
        if stream.isatty():
            end = "\n" if step >= total else ""
            stream.write(f"\r{self.label} [{bar}] {step}/{total}{end}")
        else:  # a log file or a pipe: carriage returns would pile up on one line
            stream.write(f"{self.label} [{bar}] {step}/{total}\n")
        stream.flush()


def _track_key(value: str | None) -> str | int | None:
    return int(value) if value is not None and value.isdigit() else value


def default_output(midi_path: Path, start_bar: int, bars: int, seed: int) -> Path:
    return DEFAULT_OUT_DIR / f"{midi_path.stem}_bars{start_bar}-{start_bar + bars - 1}_{seed}.wav"


def _read_drums(path: Path):
    import soundfile

    from jasco_bridge.errors import RenderError

    try:
        audio, rate = soundfile.read(str(path), dtype="float32", always_2d=True)
    except (OSError, RuntimeError) as exc:
        raise RenderError(f"cannot read drum stem {path}: {exc}") from exc
    return audio.T, rate  # [channels, samples]


def render_file(args: argparse.Namespace, output: Path | None, overwrite: bool) -> int:
    """Everything `render` does; `demo` calls it with the bundled file."""
    from jasco_bridge.clips import save_clip
    from jasco_bridge.conditioning import build_request, plan_window
    from jasco_bridge.engines import open_renderer
    from jasco_bridge.errors import RenderError
    from midi.recognize import recognize_chords
    from midi.smf import read_midi_file
    from midi.tracks import choose_chord_track

    song = read_midi_file(args.file)
    choice = choose_chord_track(song, _track_key(args.track))
    melody = (
        choose_chord_track(song, _track_key(args.melody_track)).track.notes
        if args.melody_track is not None
        else None
    )
    chords = recognize_chords(choice.track, song.tempo_map)
    opened = open_renderer(args.engine, args.model, args.device, args.cluster)
    renderer = opened.renderer
    if opened.notice:
        print(opened.notice, file=sys.stderr)
    if melody is not None and not renderer.accepts_melody:
        print(f"note: {renderer.model_id} has no melody input; the melody track is left out")
        melody = None
    window = plan_window(song.tempo_map, args.start_bar, args.bars, renderer.segment_seconds)
    path = output or default_output(args.file, window.start_bar, window.bars, args.seed)
    if path.exists() and not overwrite:
        raise RenderError(f"{path} already exists: pass --overwrite or choose -o OTHER.wav")
    drums, drums_rate = _read_drums(args.drums) if args.drums else (None, 32000)
    conditioned = build_request(
        window,
        chords,
        opened.vocabulary,
        renderer,
        prompt=args.prompt,
        seed=args.seed,
        steps=args.steps,
        sampler=args.sampler,
        cfg_all=args.cfg_all,
        cfg_text=args.cfg_text,
        drums_wav=drums,
        drums_sample_rate=drums_rate,
        melody_notes=melody,
    )
    print(f"chord track: {choice.reason}")
    _print_chords(conditioned.chord_report, song.tempo_map)
    label = "PREVIEW" if renderer.is_preview else "JASCO"
    result = renderer.generate(conditioned.request, progress=ProgressBar(f"{label} render"))
    path.parent.mkdir(parents=True, exist_ok=True)
    if overwrite:  # only now that the new clip is ready, so a failed render loses nothing
        path.unlink(missing_ok=True)
        path.with_suffix(".json").unlink(missing_ok=True)
    info = save_clip(
        result.audio,
        result.sample_rate,
        path=path,
        window=window,
        sidecar={
            **conditioned.describe_render(result),
            "source_midi": str(args.file),
            "chord_track": choice.track.label,
            "tempo_map": str(song.tempo_map),
            "drums": str(args.drums) if args.drums else None,
            "timings": result.timings,
        },
        description=f"jasco-bridge {label} clip: {args.prompt}"[:256],
    )
    bars = f"bars {window.start_bar}-{window.end_bar}"
    print(f"{label} clip ({bars}, {window.duration_seconds:.3f} s): {info.path.resolve()}")
    if renderer.is_preview:
        print(
            "this is a PREVIEW from the built-in synth, not JASCO: get JASCO with `jasco-bridge weights download`"
        )
    return 0


def _print_chords(report: Sequence, tempo_map) -> None:
    if not report:
        print("chords: none in these bars (JASCO will follow the prompt alone)")
        return
    print("chords (given -> JASCO label; = where the label is exact):")
    for use in report:
        arrow = "=" if use.exact else "->"
        where = tempo_map.position_at(use.start_beat)
        print(f"  {str(where):<18} {use.given:>10} {arrow} {use.label}")


def run(args: argparse.Namespace) -> int:
    return render_file(args, args.output, args.overwrite)
