"""Install the companion scripts into your DAW's script folder, and say how to bind them.

  ardour   "Render selected MIDI region with JASCO", an editor action (Ardour 7 and later)
  reaper   reaper_jasco_render.lua, a ReaScript action
  ableton  a Live 12 MIDI Remote Script (Control Surface "JascoBridge"): render the selected
           MIDI clip and get the audio on a "JASCO" track at the clip's start

The Ardour and REAPER scripts run `jasco-bridge request`, so they need a running
`jasco-bridge serve` with TCP on (the default) and nothing else: no liblo, no reply port. The
Live script speaks OSC over UDP from inside Live.

examples:
  jasco-bridge daw install ardour
  jasco-bridge daw install reaper
  jasco-bridge daw install ardour --dest ~/my-ardour-scripts
  jasco-bridge daw install ableton --dest "D:/Ableton/User Library/Remote Scripts"
"""

from __future__ import annotations

import argparse
import os
import shlex
import shutil
import sys
from collections.abc import Mapping
from importlib import resources
from pathlib import Path

from jasco_bridge.errors import UsageError

HELP = "install the Ardour, REAPER or Ableton Live companion script"

SCRIPTS = {
    "ardour": ("ardour/jasco_render_region.lua",),
    "reaper": ("reaper_jasco_render.lua",),
}

_BINDING = {
    "ardour": """In Ardour: Edit > Lua Scripts > Script Manager > Action Scripts, pick a free slot,
"New...", choose "Render selected MIDI region with JASCO" and fill in its parameters (leave the
prompt empty to be asked each time; set "jasco-bridge command" to the command below if Ardour
cannot find jasco-bridge on its PATH). The action then has a toolbar button and appears under
Edit > Scripted Actions; Window > Keyboard Shortcuts binds a key to it. Select a MIDI region
with your chords and run it: the clip lands on the "JASCO" track on the region's first bar.""",
    "reaper": """In REAPER: Actions > Show action list > New action > Load ReaScript..., pick the
script above; bind a key or toolbar button to it there. Select the MIDI item with your chords and
run it: the clip lands on the "JASCO" track on the item's first bar. If REAPER cannot find
jasco-bridge, type the command below in the dialog's "jasco-bridge command" field once.""",
}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("action", choices=("install",), help="what to do")
    parser.add_argument("daw", choices=(*SCRIPTS, "ableton"), help="which DAW")
    parser.add_argument(
        "--dest",
        default=None,
        help="folder to copy the script into; default: where the DAW looks for scripts",
    )


def default_destination(
    daw: str,
    platform: str = sys.platform,
    env: Mapping[str, str] = os.environ,
    home: Path | None = None,
) -> Path:
    """Where `daw` finds user scripts on `platform` (a `sys.platform` value)."""
    home = Path.home() if home is None else home
    if platform == "win32":
        base = Path(env.get("LOCALAPPDATA" if daw == "ardour" else "APPDATA", home / "AppData"))
        return (
            base / "Ardour7" / "scripts"
            if daw == "ardour"
            else base / "REAPER" / "Scripts" / "jasco-bridge"
        )
    if platform == "darwin":
        if daw == "ardour":
            return home / "Library" / "Preferences" / "Ardour7" / "scripts"
        return home / "Library" / "Application Support" / "REAPER" / "Scripts" / "jasco-bridge"
    config = Path(env["XDG_CONFIG_HOME"]) if env.get("XDG_CONFIG_HOME") else home / ".config"
    return (
        config / "ardour7" / "scripts"
        if daw == "ardour"
        else config / "REAPER" / "Scripts" / "jasco-bridge"
    )


def bridge_command() -> str:
    """The command a DAW script should run to reach this installation of jasco-bridge."""
    found = shutil.which("jasco-bridge")
    if found:
        return shlex.quote(found) if sys.platform != "win32" else f'"{found}"'
    return f'"{sys.executable}" -m jasco_bridge'


def _install_ableton(dest: Path | None) -> int:
    from jasco_bridge.install_ableton import install

    installed = install(dest)
    print(f"{'updated' if installed.replaced else 'installed'}: {installed.folder}")
    print("next:")
    for number, step in enumerate(installed.steps, 1):
        print(f"  {number}. {step}")
    return 0


def run(args: argparse.Namespace) -> int:
    if args.daw == "ableton":  # a folder of Python, not a script file, with steps of its own
        return _install_ableton(Path(args.dest).expanduser() if args.dest else None)
    destination = Path(args.dest).expanduser() if args.dest else default_destination(args.daw)
    try:
        destination.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UsageError(f"cannot create {destination}: {exc}; choose another --dest") from None
    package = resources.files("jasco_bridge") / "daw"
    for name in SCRIPTS[args.daw]:
        source = package.joinpath(*name.split("/"))
        target = destination / Path(name).name
        existed = target.exists()
        try:
            target.write_bytes(source.read_bytes())
        except OSError as exc:
            raise UsageError(f"cannot write {target}: {exc}; choose another --dest") from None
        print(f"{'updated' if existed else 'installed'} {target}")
    print()
    print(_BINDING[args.daw])
    print()
    print(f"jasco-bridge command: {bridge_command()}")
    print("Start the daemon first: jasco-bridge serve")
    return 0
