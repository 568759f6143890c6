"""Install jasco-bridge's companion scripts into your DAW.

Each DAW gets its script copied where the DAW looks for it, and the steps to switch it on are
printed. Run it again after upgrading jasco-bridge to update the copy.

  ableton   a Live 12 MIDI Remote Script (Control Surface "JascoBridge"): render the selected
            MIDI clip and get the audio on a "JASCO" track at the clip's start

examples:
  jasco-bridge daw install ableton
  jasco-bridge daw install ableton --dest "D:/Ableton/User Library/Remote Scripts"
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path

HELP = "install the companion script for a DAW (ableton)"


def _install_ableton(dest: Path | None) -> tuple[Path, bool, tuple[str, ...]]:
    from jasco_bridge.install_ableton import install

    installed = install(dest)
    return installed.folder, installed.replaced, installed.steps


# One row per DAW: name -> installer(dest) -> (where it went, replaced an older copy, steps).
INSTALLERS: dict[str, Callable[[Path | None], tuple[Path, bool, tuple[str, ...]]]] = {
    "ableton": _install_ableton,
}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    actions = parser.add_subparsers(dest="daw_action", metavar="ACTION", required=True)
    install = actions.add_parser(
        "install",
        help="copy a DAW's companion script where the DAW finds it",
        description="Copy a DAW's companion script where the DAW finds it and print how to "
        "enable it.",
    )
    install.add_argument("daw", choices=sorted(INSTALLERS), help="which DAW")
    install.add_argument(
        "--dest",
        type=Path,
        default=None,
        help="folder to install into; default: where the DAW looks (Live: the User Library's "
        "Remote Scripts folder)",
    )


def run(args: argparse.Namespace) -> int:
    folder, replaced, steps = INSTALLERS[args.daw](args.dest)
    print(f"{'updated' if replaced else 'installed'}: {folder}")
    print("next:")
    for number, step in enumerate(steps, 1):
        print(f"  {number}. {step}")
    return 0
