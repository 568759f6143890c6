"""Which tempo map and which chords a render follows, over real sockets and real MIDI files.

A chord MIDI file brings its tempo map and meters unless the session has an explicit one; among
chord symbols, notes and a chord file the latest kind sent wins. Both are told as /jasco/notice
and recorded in the sidecar (`tempo_source`, `chord_source`)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import mido
import pytest

from jasco_bridge.cli import main
from tests.bridge.support import REPO, WAIT_SECONDS, running_daemon

WALTZ_BPM = 92.0


def write_waltz(path: Path) -> Path:
    """A 92 bpm 3/4 type-1 file written with mido (not our reader): a triad per bar, twelve
    bars of C, F, G, C."""
    song = mido.MidiFile(type=1, ticks_per_beat=480)
    meta = mido.MidiTrack()
    meta.append(mido.MetaMessage("set_tempo", tempo=mido.bpm2tempo(WALTZ_BPM), time=0))
    meta.append(mido.MetaMessage("time_signature", numerator=3, denominator=4, time=0))
    keys = mido.MidiTrack()
    keys.append(mido.MetaMessage("track_name", name="Keys", time=0))
    for bar in range(12):
        root = 48 + (0, 5, 7, 0)[bar % 4]
        chord = (root, root + 4, root + 7)
        for pitch in chord:
            keys.append(mido.Message("note_on", note=pitch, velocity=90, time=0))
        for index, pitch in enumerate(chord):
            keys.append(
                mido.Message("note_off", note=pitch, velocity=0, time=3 * 480 if index == 0 else 0)
            )
    song.tracks += [meta, keys]
    song.save(path)
    return path


def sidecar_of(done) -> dict:
    return json.loads(Path(done.args[6]).read_text())


def render_bars(peer, port: int, start_bar: int, bars: int):
    peer.send(port, "/jasco/render", start_bar, bars)
    job = peer.expect("/jasco/ack").args[0]
    return peer.expect("/jasco/done", lambda m: m.args[0] == job)


def test_a_chord_file_brings_its_tempo_and_meter_when_the_session_has_none(tmp_path, peer):
    waltz = write_waltz(tmp_path / "waltz.mid")
    with running_daemon(tmp_path) as daemon:
        port = daemon.server.udp_port
        peer.send(port, "/jasco/prompt", "waltz")
        peer.send(port, "/jasco/chords/file", str(waltz))
        job, text = peer.expect("/jasco/notice").args
        done = render_bars(peer, port, 9, 2)
    assert job == -1
    assert text == ("/jasco/chords/file: the bars follow the chord file's tempo map: 92 bpm 3/4")
    _, _, start_beat, length_beats, start_seconds, duration_seconds, *_ = done.args
    assert (start_beat, length_beats) == (24.0, 6.0)  # bar 9 of 3/4; two bars of three beats
    assert start_seconds == pytest.approx(24 * 60 / WALTZ_BPM, rel=1e-5)
    assert duration_seconds == pytest.approx(6 * 60 / WALTZ_BPM, rel=1e-5)
    sidecar = sidecar_of(done)
    assert (sidecar["tempo_source"], sidecar["chord_source"]) == ("chord file", "file")
    assert sidecar["tempo_map"]["meters"] == [[0.0, 3, 4]]
    assert [c["given"] for c in sidecar["chords"]] == ["C:maj", "F:maj"]  # bars 9 and 10


def test_an_explicit_tempo_wins_over_the_chord_file_and_a_notice_says_so(tmp_path, peer):
    waltz = write_waltz(tmp_path / "waltz.mid")
    with running_daemon(tmp_path) as daemon:
        port = daemon.server.udp_port
        peer.send(port, "/jasco/tempo", 120.0, 4, 4)
        peer.send(port, "/jasco/chords/file", str(waltz))
        text = peer.expect("/jasco/notice").args[1]
        done = render_bars(peer, port, 9, 2)
    assert "the session's tempo map (120 bpm 4/4), not the chord file's (92 bpm 3/4)" in text
    assert "/jasco/reset" in text
    assert done.args[2:6] == pytest.approx((32.0, 8.0, 16.0, 4.0))  # bar 9 of 4/4 at 120
    assert sidecar_of(done)["tempo_source"] == "session"


def test_the_latest_kind_of_chords_sent_wins_and_each_switch_is_told(tmp_path, peer):
    waltz = write_waltz(tmp_path / "waltz.mid")
    triads = [  # C then F, a bar each: (start, length, pitch, velocity) flat
        value
        for start, root in ((0.0, 48), (4.0, 53))
        for pitch in (root, root + 4, root + 7)
        for value in (start, 4.0, pitch, 90)
    ]
    with running_daemon(tmp_path) as daemon:
        port = daemon.server.udp_port
        peer.send(port, "/jasco/tempo", 120.0)
        peer.send(port, "/jasco/chords/file", str(waltz))
        peer.send(port, "/jasco/chords/symbols", 0.0, "Dbmaj7", 4.0, "Gm7")
        dropped_file = peer.expect(
            "/jasco/notice", lambda m: "come from the chord symbols" in m.args[1]
        )
        symbols = render_bars(peer, port, 1, 2)
        peer.send(port, "/jasco/chords/notes", *triads)
        dropped_symbols = peer.expect(
            "/jasco/notice", lambda m: "come from the chord notes" in m.args[1]
        )
        notes = render_bars(peer, port, 1, 2)
        peer.send(port, "/jasco/chords/file", str(waltz))
        dropped_notes = peer.expect(
            "/jasco/notice", lambda m: "come from the chord file" in m.args[1]
        )
        from_file = render_bars(peer, port, 1, 2)
        errors = [m for m in peer.inbox if m.address == "/jasco/error"]
    assert not errors
    assert dropped_file.args[1].startswith("/jasco/chords/symbols: ")
    assert f"the chord file {waltz} is dropped" in dropped_file.args[1]
    assert "the 2 chord symbols sent before are dropped" in dropped_symbols.args[1]
    assert "the 6 chord notes sent before are dropped" in dropped_notes.args[1]
    assert sidecar_of(symbols)["chord_source"] == "symbols"
    assert sidecar_of(symbols)["chord_file"] is None
    notes_sidecar = sidecar_of(notes)
    assert notes_sidecar["chord_source"] == "notes" and notes_sidecar["chord_symbols"] == []
    assert [c["given"] for c in notes_sidecar["chords"]][:2] == ["C:maj", "F:maj"]
    file_sidecar = sidecar_of(from_file)
    assert (file_sidecar["chord_source"], file_sidecar["chord_notes"]) == ("file", [])
    # The tempo sent first still wins over the file sent again.
    assert file_sidecar["tempo_source"] == "session"


def test_the_cli_and_render_again_keep_the_files_tempo_and_say_where_it_came_from(
    tmp_path, monkeypatch
):
    waltz = write_waltz(tmp_path / "waltz.mid")
    monkeypatch.chdir(tmp_path)
    args = ["render", str(waltz), "--prompt", "waltz", "--engine", "preview"]
    assert main([*args, "--start-bar", "9", "--bars", "2", "--seed", "3"]) == 0
    first = next((tmp_path / "jasco-clips" / "waltz").glob("*.json"))
    sidecar = json.loads(first.read_text())
    assert (sidecar["tempo_source"], sidecar["start_beat"]) == ("chord file", 24.0)
    assert main(["render", "--again", str(first), "--out-dir", "again"]) == 0
    again = json.loads(next((tmp_path / "again" / "waltz").glob("*.json")).read_text())
    assert again["tempo_source"] == "chord file"
    assert (again["start_beat"], again["length_beats"]) == (24.0, 6.0)
    assert again["tempo_map"] == sidecar["tempo_map"]


def test_the_request_client_lets_a_chord_file_bring_its_tempo(tmp_path):
    waltz = write_waltz(tmp_path / "waltz.mid")
    document = {"chord_file": {"path": str(waltz)}, "prompt": "waltz", "start_bar": 9, "bars": 2}
    with running_daemon(tmp_path) as daemon:
        port = str(daemon.server.tcp_port)
        runs = [
            subprocess.run(
                [sys.executable, "-m", "jasco_bridge", "request", "-", "--port", port],
                input=json.dumps(given),
                capture_output=True,
                text=True,
                env={**os.environ, "PYTHONPATH": str(REPO)},
                timeout=WAIT_SECONDS,
                check=False,
            )
            for given in (document, {**document, "tempo": {"bpm": 120}})
        ]
    dones = []
    for run in runs:
        assert run.returncode == 0, run.stdout + run.stderr
        dones.append(json.loads(run.stdout.splitlines()[-1]))
    from_file, from_tempo = dones
    assert (from_file["start_beat"], from_file["length_beats"]) == (24.0, 6.0)
    assert json.loads(Path(from_file["sidecar"]).read_text())["tempo_source"] == "chord file"
    assert (from_tempo["start_beat"], from_tempo["length_beats"]) == (32.0, 8.0)
    assert json.loads(Path(from_tempo["sidecar"]).read_text())["tempo_source"] == "session"


def test_the_sidecar_keeps_the_spelling_of_chord_symbols_beside_the_label(tmp_path, peer):
    with running_daemon(tmp_path) as daemon:
        port = daemon.server.udp_port
        peer.send(port, "/jasco/tempo", 120.0)
        peer.send(port, "/jasco/chords/symbols", 0.0, "Dbmaj9/F", 4.0, "N.C.", 6.0, "Gbm7")
        symbols = sidecar_of(render_bars(peer, port, 1, 2))
        peer.send(port, "/jasco/chords/notes", 0.0, 4.0, 49, 90, 0.0, 4.0, 53, 90, 0.0, 4.0, 56, 90)
        notes = sidecar_of(render_bars(peer, port, 1, 1))
    first, no_chord, last = symbols["chords"]
    assert (first["written"], first["label"], first["spelled"]) == ("Dbmaj9/F", "C#maj7", "Dbmaj7")
    assert first["given"] == "C#:maj9/3" and not first["exact"]
    assert (no_chord["written"], no_chord["label"], no_chord["spelled"]) == ("N.C.", "N", "N")
    assert (last["written"], last["label"], last["spelled"]) == ("Gbm7", "F#m7", "Gbm7")
    (recognised,) = [c for c in notes["chords"] if c["label"] != "N"]
    assert recognised["written"] is None and recognised["spelled"] == recognised["label"]
