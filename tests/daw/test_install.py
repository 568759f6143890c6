"""`jasco-bridge daw install`: the scripts land where each DAW looks for them."""

from __future__ import annotations

from pathlib import Path

from jasco_bridge.commands.daw import default_destination
from tests.bridge.support import REPO, run_cli

DAW = REPO / "jasco_bridge" / "daw"


def test_ardour_scripts_go_to_the_xdg_config_folder_and_binding_is_explained(tmp_path):
    done = run_cli("daw", "install", "ardour", env={"XDG_CONFIG_HOME": str(tmp_path)})
    assert done.returncode == 0, done.stderr
    installed = tmp_path / "ardour7" / "scripts" / "jasco_render_region.lua"
    assert installed.read_bytes() == (DAW / "ardour" / "jasco_render_region.lua").read_bytes()
    assert "Script Manager" in done.stdout and "jasco-bridge command:" in done.stdout
    again = run_cli("daw", "install", "ardour", env={"XDG_CONFIG_HOME": str(tmp_path)})
    assert again.stdout.startswith("updated ")


def test_reaper_script_goes_to_dest_when_given(tmp_path):
    done = run_cli("daw", "install", "reaper", "--dest", str(tmp_path / "scripts"))
    assert done.returncode == 0, done.stderr
    installed = tmp_path / "scripts" / "reaper_jasco_render.lua"
    assert installed.read_bytes() == (DAW / "reaper_jasco_render.lua").read_bytes()
    assert "Load ReaScript" in done.stdout


def test_default_folders_per_platform():
    home = Path("/home/me")
    assert default_destination("ardour", "linux", {}, home) == home / ".config/ardour7/scripts"
    assert default_destination("ardour", "linux", {"XDG_CONFIG_HOME": "/x"}, home) == Path(
        "/x/ardour7/scripts"
    )
    assert (
        default_destination("reaper", "linux", {}, home)
        == home / ".config/REAPER/Scripts/jasco-bridge"
    )
    assert (
        default_destination("ardour", "darwin", {}, home)
        == home / "Library/Preferences/Ardour7/scripts"
    )
    assert default_destination("reaper", "darwin", {}, home) == (
        home / "Library/Application Support/REAPER/Scripts/jasco-bridge"
    )
    windows = {
        "APPDATA": "C:/Users/me/AppData/Roaming",
        "LOCALAPPDATA": "C:/Users/me/AppData/Local",
    }
    assert default_destination("ardour", "win32", windows, home) == Path(
        "C:/Users/me/AppData/Local/Ardour7/scripts"
    )
    assert default_destination("reaper", "win32", windows, home) == Path(
        "C:/Users/me/AppData/Roaming/REAPER/Scripts/jasco-bridge"
    )


def test_an_unknown_daw_is_refused_with_the_choices():
    done = run_cli("daw", "install", "cubase")
    assert done.returncode == 2 and "ardour" in done.stderr and "reaper" in done.stderr
