"""`jasco-bridge daw install`: the script lands where the DAW looks, upgrades replace only our
own copy, and every file under jasco_bridge/daw is shipped as package data."""

import fnmatch
from pathlib import Path

import pytest

from jasco_bridge.errors import UsageError
from jasco_bridge.install_ableton import SCRIPT_SOURCE, default_remote_scripts_folder, install
from tests.bridge.support import REPO, run_cli


def test_install_copies_the_script_and_an_upgrade_replaces_it(tmp_path):
    first = install(tmp_path / "Remote Scripts")
    assert first.folder == tmp_path / "Remote Scripts" / "JascoBridge" and not first.replaced
    shipped = sorted(p.name for p in SCRIPT_SOURCE.iterdir() if p.suffix in (".py", ".txt"))
    assert sorted(p.name for p in first.folder.iterdir()) == shipped
    (first.folder / "stale.py").write_text("")
    again = install(tmp_path / "Remote Scripts")
    assert again.replaced and not (again.folder / "stale.py").exists()


def test_a_foreign_folder_of_the_same_name_is_never_deleted(tmp_path):
    foreign = tmp_path / "JascoBridge"
    foreign.mkdir()
    (foreign / "mine.txt").write_text("keep me")
    with pytest.raises(UsageError, match="not a JascoBridge script"):
        install(tmp_path)
    assert (foreign / "mine.txt").read_text() == "keep me"


def test_the_default_folder_is_lives_user_library():
    home = Path("/home/me")
    assert default_remote_scripts_folder(home, "darwin") == (
        home / "Music" / "Ableton" / "User Library" / "Remote Scripts"
    )
    assert default_remote_scripts_folder(home, "win32").parts[-4:] == (
        "Documents",
        "Ableton",
        "User Library",
        "Remote Scripts",
    )
    with pytest.raises(UsageError, match="--dest"):
        default_remote_scripts_folder(home, "linux")


def test_the_cli_installs_and_prints_the_steps(tmp_path):
    result = run_cli("daw", "install", "ableton", "--dest", str(tmp_path))
    assert result.returncode == 0, result.stderr
    assert f"installed: {tmp_path / 'JascoBridge'}" in result.stdout
    assert "Control Surface" in result.stdout and "CC 102" in result.stdout
    assert (tmp_path / "JascoBridge" / "__init__.py").is_file()


def test_package_data_ships_every_daw_file():
    tomllib = pytest.importorskip("tomllib", reason="tomllib is in the standard library from 3.11")
    config = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))
    patterns = config["tool"]["setuptools"]["package-data"]["jasco_bridge"]
    package = REPO / "jasco_bridge"
    files = [
        p.relative_to(package).as_posix()
        for p in (package / "daw").rglob("*")
        if p.is_file() and "__pycache__" not in p.parts
    ]
    assert files
    # setuptools globs: '*' does not cross a folder boundary.
    missed = [
        f
        for f in files
        if not any(fnmatch.fnmatch(f, pat) and f.count("/") == pat.count("/") for pat in patterns)
    ]
    assert not missed, f"add these to [tool.setuptools.package-data]: {missed}"
