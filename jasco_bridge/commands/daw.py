"""Install the companion scripts into your DAW's script folder, and say how to bind them.

  ardour  "Render selected MIDI region with JASCO", an editor action (Ardour 7 and later)
  reaper  reaper_jasco_render.lua, a ReaScript action

The scripts run `jasco-bridge request`, so they need a running `jasco-bridge serve` with TCP on
(the default) and nothing else: no liblo, no reply port.

examples:
  jasco-bridge daw install ardour
  jasco-bridge daw install reaper
  jasco-bridge daw install ardour --dest ~/my-ardour-scripts
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

HELP = "install the Ardour or REAPER companion script"

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
    parser.add_argument("daw", choices=tuple(SCRIPTS), help="which DAW")
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


def run(args: argparse.Namespace) -> int:
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
