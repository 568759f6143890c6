"""Render the bundled demo progression end to end and say where the clip is.

The demo file holds four bars of C - Am - F - G at 100 bpm (a chord track and a melody). It is
rendered exactly as `jasco-bridge render` would: chords are recognised from the notes, mapped
to JASCO's chord vocabulary, rendered, and written as a WAV with a JSON sidecar. A clip from an
earlier run is never replaced: the new one takes the next free name.

With JASCO weights installed this is a real JASCO render (a few seconds on a GPU, minutes on a
CPU). Without them it is a PREVIEW from the built-in synth, ready in a second or two, and the
output tells you how to get the weights (`jasco-bridge weights download`).

examples:
  jasco-bridge demo
  jasco-bridge demo --prompt "bossa nova, nylon guitar" --seed 3
  jasco-bridge demo --engine preview --out-dir /tmp/clips
"""

from __future__ import annotations

import argparse
from importlib import resources
from pathlib import Path

from jasco_bridge.commands.render import add_precision_option
from jasco_bridge.config import DEFAULT_OUT_DIR, ENGINE_KINDS

HELP = "render a bundled chord progression (works without weights, as a preview)"

DEMO_PROMPT = "warm lofi hip hop, rhodes piano, soft drums"


def demo_file() -> Path:
    return Path(str(resources.files("jasco_bridge") / "data" / "demo.mid"))


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--prompt", default=DEMO_PROMPT, help="text description of the music")
    parser.add_argument(
        "--engine",
        choices=ENGINE_KINDS,
        default="auto",
        help="auto = JASCO when its weights are found, else the preview synth",
    )
    parser.add_argument("--model", help="JASCO folder, short name or hub id")
    parser.add_argument(
        "--device", help="torch device for JASCO; None = CUDA when present, else CPU"
    )
    add_precision_option(parser)
    parser.add_argument("--seed", type=int, default=0, help="random seed")
    parser.add_argument("--out-dir", type=Path, default=DEFAULT_OUT_DIR, help="folder for the clip")


def run(args: argparse.Namespace) -> int:
    from jasco_bridge.commands.render import add_render_options, render_file

    # Everything else is render's defaults, read from its own options.
    render_parser = argparse.ArgumentParser()
    add_render_options(render_parser)
    render_args = render_parser.parse_args([])
    vars(render_args).update(
        file=demo_file(),
        again=None,
        prompt=args.prompt,
        track="Chords",
        melody_track="Melody",
        start_bar=1,
        bars=4,
        engine=args.engine,
        model=args.model,
        device=args.device,
        precision=args.precision,
        seed=args.seed,
        out_dir=args.out_dir,
        output=None,
    )
    return render_file(render_args)
