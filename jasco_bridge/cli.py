"""jasco-bridge: Meta's JASCO (chords + drums + text -> music) inside your DAW.

Start with `jasco-bridge demo`, then `jasco-bridge serve` beside your DAW.
Every command explains itself: `jasco-bridge COMMAND --help`.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import signal
import sys
from collections.abc import Sequence

from jasco_bridge import __version__

# Each command lives in its own module under jasco_bridge.commands and exposes
# HELP (one line), add_arguments(parser) and run(args) -> exit code. Command modules import
# heavy libraries (torch, transformers) inside run(), so `--help` stays instant.
COMMANDS = (
    "demo",
    "chords",
    "render",
    "serve",
    "request",
    "daw",
    "worker",
    "devices",
    "latency",
    "weights",
    "doctor",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="jasco-bridge",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"jasco-bridge {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log debug details")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMANDS:
        module = importlib.import_module(f"jasco_bridge.commands.{name}")
        command = sub.add_parser(
            name,
            help=module.HELP,
            description=module.__doc__,
            formatter_class=_HelpFormatter,
        )
        module.add_arguments(command)
        command.set_defaults(run=module.run)
    return parser


class _HelpFormatter(argparse.ArgumentDefaultsHelpFormatter, argparse.RawDescriptionHelpFormatter):
    """Shows defaults and keeps the examples in each command's docstring as written."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        # "(default: None)" teaches nothing; such options say in their own help what unset means.
        if action.default is None or action.default is False:
            return action.help
        return super()._get_help_string(action)


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(levelname)s %(name)s: %(message)s",
    )
    if not getattr(args, "command", None):
        parser.print_help()
        return 0
    if args.command != "weights":
        # Loading T5 and EnCodec from disk draws transformers' "Loading weights" bars between our
        # own lines; only a download is long enough for a bar to help.
        os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    # Errors meant for the user carry their own explanation: print it, no traceback.
    from engine.errors import EngineError
    from jasco_bridge.errors import BridgeError
    from midi.errors import MidiError

    try:
        code = int(args.run(args) or 0)
        # Flushed here so that a reader gone away (`| head`) is noticed inside this handler.
        sys.stdout.flush()
        return code
    except BrokenPipeError:
        return _reader_gone()
    except (BridgeError, MidiError, EngineError) as exc:
        print(f"jasco-bridge {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"jasco-bridge {args.command}: interrupted", file=sys.stderr)
        return 130


def _reader_gone() -> int:
    """Stop quietly when stdout's reader has closed the pipe, as Unix tools do on SIGPIPE.

    Whatever is still buffered can never be delivered; pointing stdout at /dev/null keeps the
    interpreter's final flush from printing a second BrokenPipeError. The status is the shell's
    for a command ended by SIGPIPE (128 + 13).
    """
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    os.close(devnull)
    return 128 + signal.SIGPIPE


if __name__ == "__main__":
    raise SystemExit(main())
