"""Install the JascoBridge MIDI Remote Script into Live's User Library.

Live 12 loads control-surface scripts from `User Library/Remote Scripts/<name>/`; the folder's
name is the name shown in Live's Control Surface menu. Installing replaces an earlier copy of
JascoBridge there (never anything else) and leaves compiled files behind.
"""

from __future__ import annotations

import shutil
import sys
from dataclasses import dataclass
from pathlib import Path

from jasco_bridge.errors import UsageError

SCRIPT_NAME = "JascoBridge"
SCRIPT_SOURCE = Path(__file__).resolve().parent / "daw" / "ableton" / SCRIPT_NAME

STEPS = (
    "Run `jasco-bridge serve` in a terminal and leave it running.",
    "Start (or restart) Live 12.0.5 or newer. Live > Settings > Link, Tempo & MIDI: in a free "
    f"Control Surface row choose {SCRIPT_NAME}; as its Input choose the MIDI controller whose "
    "button should trigger renders (or None to trigger over OSC only). The status bar says "
    "'JASCO: connected to jasco-bridge'.",
    "Set a button to send CC 102 on MIDI channel 16 (render); CC 103 cancels, CC 104 renders "
    "another take. Or send OSC /jasco/live/render to 127.0.0.1:9010.",
    "Name a MIDI clip after the music you want (the name is the prompt), select it, press the "
    'button: the audio lands on the "JASCO" track at the clip\'s start (session view: the '
    "next free slot).",
)


@dataclass(frozen=True)
class Installed:
    folder: Path
    replaced: bool
    steps: tuple[str, ...] = STEPS


def default_remote_scripts_folder(home: Path | None = None, platform: str = sys.platform) -> Path:
    """Where Live looks for user scripts on macOS and Windows (Live's default User Library)."""
    home = home or Path.home()
    if platform == "darwin":
        return home / "Music" / "Ableton" / "User Library" / "Remote Scripts"
    if platform.startswith("win"):
        return home / "Documents" / "Ableton" / "User Library" / "Remote Scripts"
    raise UsageError(
        "Live runs on macOS and Windows only; give the Remote Scripts folder with --dest "
        "(Live > Settings > Library shows the User Library location)"
    )


def install(dest: Path | None = None) -> Installed:
    """Copy the script to `dest/JascoBridge` (`dest` default: Live's User Library folder)."""
    folder = (dest or default_remote_scripts_folder()).expanduser()
    if folder.exists() and not folder.is_dir():
        raise UsageError(f"{folder} is a file; give the Remote Scripts folder with --dest")
    target = folder / SCRIPT_NAME
    replaced = target.exists()
    if replaced:
        if not (target / "surface.py").is_file():
            raise UsageError(
                f"{target} exists but is not a JascoBridge script; move it away and install again"
            )
        shutil.rmtree(target)
    folder.mkdir(parents=True, exist_ok=True)
    shutil.copytree(SCRIPT_SOURCE, target, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    return Installed(target, replaced)
