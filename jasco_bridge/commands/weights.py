"""Download JASCO's weights, or show where the installed ones are.

JASCO's weights are published by Meta on the Hugging Face hub under the CC-BY-NC 4.0 licence:
you may use them for NON-COMMERCIAL purposes only, with attribution. The repositories are
gated: before the first download,

  1. open https://huggingface.co/facebook/jasco-chords-drums-400M (or the model you want),
     log in and accept the terms;
  2. log in here with `hf auth login` (older versions: `huggingface-cli login`), or export
     HF_TOKEN=<a read token from https://huggingface.co/settings/tokens>.

A download fetches the JASCO checkpoint (roughly a gigabyte for a 400M model, more for 1B), the
T5-base text encoder (tokenizer and weights, about 0.9 GB), the EnCodec 32 kHz config (its weights are
already inside the JASCO checkpoint) and the chord table. Files go to the Hugging Face cache,
or with --dest to DIR/<name> (then set JASCO_BRIDGE_MODELS=DIR so renders find them).
Renders never download anything by themselves.

models: chords-drums-400M (default), chords-drums-1B, chords-drums-melody-400M,
chords-drums-melody-1B, or any hub id.

examples:
  jasco-bridge weights                       # where are my weights?
  jasco-bridge weights download              # the default 400M chords+drums model
  jasco-bridge weights download chords-drums-melody-400M --dest ~/models
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

HELP = "download JASCO weights (CC-BY-NC 4.0, gated) or show where they are"

LICENCE = (
    "JASCO weights are licensed CC-BY-NC 4.0 by Meta: non-commercial use only, with "
    "attribution. Access is gated: accept the terms on https://huggingface.co/{repo} and log "
    "in with `hf auth login` (or set HF_TOKEN) first."
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "action", nargs="?", choices=("show", "download"), default="show", help="what to do"
    )
    parser.add_argument("model", nargs="?", help="short name or hub id; None = chords-drums-400M")
    parser.add_argument("--dest", type=Path, help="download into DIR instead of the HF cache")
    parser.add_argument("--quiet", action="store_true", help="no download progress bars")


def run(args: argparse.Namespace) -> int:
    from engine.errors import CheckpointError
    from engine.weights import download_weights, find_jasco_weights, resolve_model_id

    repo = resolve_model_id(args.model)
    if args.action == "show":
        try:
            found = find_jasco_weights(args.model)
        except CheckpointError as missing:
            print(f"missing: {missing}")
            return 1
        _describe(found)
        return 0
    print(LICENCE.format(repo=repo), file=sys.stderr)
    found = download_weights(args.model, dest=args.dest, progress=not args.quiet)
    _describe(found)
    if args.dest is not None:
        print(f"set JASCO_BRIDGE_MODELS={args.dest.expanduser()} so that renders find them")
    return 0


def _describe(found) -> None:
    from jasco_bridge.commands.doctor import describe_location

    print(f"JASCO {describe_location(found)}")
    print(f"  chord table: {found.chord_table or 'missing (the bundled copy will be used)'}")
    print(f"  T5 text encoder: {found.t5 or 'missing: run `jasco-bridge weights download`'}")
