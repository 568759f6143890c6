"""The Live 12 remote script (jasco_bridge/daw/ableton/JascoBridge) against a stand-in of the
Live objects it uses and the real daemon over loopback UDP. Live itself never runs here.

The script is imported the way Live imports it: its folder's parent on the path, the package
named after the folder, `Live` a module provided by the host.
"""

from __future__ import annotations

import importlib
import re
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.bridge import live_standin
from tests.bridge.support import REPO, WAIT_SECONDS, OscPeer, running_daemon

SCRIPT_PARENT = REPO / "jasco_bridge" / "daw" / "ableton"


@pytest.fixture
def script(monkeypatch) -> Iterator[object]:
    live, forwarded = live_standin.live_module()
    monkeypatch.setitem(sys.modules, "Live", live)
    monkeypatch.syspath_prepend(str(SCRIPT_PARENT))
    package = importlib.import_module("JascoBridge")
    package.forwarded = forwarded  # type: ignore[attr-defined]
    monkeypatch.setattr(package.settings, "LISTEN_PORT", 0)
    yield package
    for name in [n for n in sys.modules if n == "JascoBridge" or n.startswith("JascoBridge.")]:
        del sys.modules[name]


def chords_clip(**overrides) -> live_standin.Clip:
    """Two bars: C major, then A minor, as an arrangement clip at bar 3 (beat 8) by default."""
    notes = [live_standin.MidiNote(p, 0.0, 4.0, 96) for p in (60, 64, 67)]
    notes += [live_standin.MidiNote(p, 4.0, 4.0, 90) for p in (57, 60, 64)]
    notes.append(live_standin.MidiNote(30, 1.0, 1.0, 100, mute=True))
    settings = {
        "name": "warm rhodes",
        "is_arrangement_clip": True,
        "start_time": 8.0,
        "end_time": 16.0,
        "length": 8.0,
        "notes": notes,
    }
    return live_standin.Clip(**{**settings, **overrides})


def song_with(clip: live_standin.Clip, tempo: float = 100.0) -> live_standin.Song:
    song = live_standin.Song(tempo=tempo)
    song.add_track("Keys", audio=False).arrangement_clips.append(clip)
    song.view.detail_clip = clip
    return song


def tick_until(surface, condition, what: str) -> None:
    """Live's update tick, about every 10 ms here, until `condition()` holds."""
    deadline = time.monotonic() + WAIT_SECONDS
    while time.monotonic() < deadline:
        surface.update_display()
        if condition():
            return
        time.sleep(0.01)
    raise AssertionError(f"timed out waiting for {what}")


def jasco_track(song: live_standin.Song) -> live_standin.Track | None:
    return next((t for t in song.tracks if t.name == "JASCO"), None)


def test_a_midi_control_press_renders_the_clip_onto_the_jasco_track_at_its_start(
    tmp_path, script, monkeypatch
):
    song = song_with(chords_clip())
    host = live_standin.CInstance(song)
    with running_daemon(tmp_path) as daemon:
        monkeypatch.setattr(script.settings, "DAEMON_PORT", daemon.server.udp_port)
        surface = script.create_instance(host)
        tick_until(surface, lambda: any("connected" in m for m in host.messages), "the pong")

        surface.build_midi_map("map-handle")
        assert (4242, "map-handle", 15, 102) in script.forwarded
        surface.receive_midi((0xBF, 102, 127))  # press on channel 16
        surface.receive_midi((0xBF, 102, 0))  # release: ignored
        tick_until(surface, lambda: jasco_track(song) and jasco_track(song).created, "the clip")

        track = jasco_track(song)
        assert track.has_audio_input
        [(kind, path, beat)] = track.created
        assert (kind, beat) == ("arrangement", 8.0)
        assert Path(path).is_file() and Path(path).parent.parent == tmp_path / "clips"
        [audio] = track.arrangement_clips
        assert audio.warping is False and audio.start_time == 8.0
        seed = int(Path(path).stem.rsplit("_", 2)[1])  # bars003-004_<prompt>_<seed>_j<job>
        assert audio.name == f"JASCO bars 3-4 seed {seed}"
        assert (song.undo_steps_begun, song.undo_steps_ended) == (1, 1)
        assert song.changes_outside_undo == 0
        assert any("rendering bars 3-4" in m for m in host.messages)

        session = daemon.call_in_loop(lambda: daemon.server.sessions.get().snapshot())
        assert session.prompt == "warm rhodes"
        assert session.tempo_map.tempos[0].bpm == 100.0
        assert sorted(
            (n.start_beat, n.end_beat, n.pitch, n.velocity) for n in session.chord_notes
        ) == [
            (8.0, 12.0, 60, 96),
            (8.0, 12.0, 64, 96),
            (8.0, 12.0, 67, 96),
            (12.0, 16.0, 57, 90),
            (12.0, 16.0, 60, 90),
            (12.0, 16.0, 64, 90),
        ]  # the muted note stayed out
        surface.disconnect()


def test_an_osc_trigger_in_session_view_fills_the_next_free_slot(tmp_path, script, monkeypatch):
    clip = chords_clip(is_arrangement_clip=False, start_time=0.0, end_time=0.0, name="")
    song = song_with(clip)
    existing = song.add_track("JASCO", audio=True)
    existing.clip_slots[0].clip = live_standin.Clip(is_midi_clip=False, name="earlier take")
    host = live_standin.CInstance(song)
    peer = OscPeer()
    try:
        with running_daemon(tmp_path) as daemon:
            port = daemon.server.udp_port
            monkeypatch.setattr(script.settings, "DAEMON_PORT", port)
            peer.send(port, "/jasco/prompt", "dusty boom bap")
            surface = script.create_instance(host)
            link_port = surface._link.port
            peer.send(link_port, "/jasco/live/render", 1.0)
            peer.send(link_port, "/jasco/live/render", 0.0)
            tick_until(surface, lambda: existing.created, "the session clip")
            assert [c[0::2] for c in existing.created] == [("slot", 1)]
            assert existing.clip_slots[1].clip.warping is False
            assert len(song.tracks) == 2  # the existing JASCO track was used
            session = daemon.call_in_loop(lambda: daemon.server.sessions.get().snapshot())
            assert session.prompt == "dusty boom bap"  # an unnamed clip keeps the prompt
            assert sorted({n.start_beat for n in session.chord_notes}) == [0.0, 4.0]
            surface.update_display()
            assert len(list((tmp_path / "clips" / "default").glob("*.wav"))) == 1
            surface.disconnect()
    finally:
        peer.close()


def test_a_full_session_track_gets_a_new_scene_and_a_silent_arrangement_return_is_found(
    script,
):
    from JascoBridge.live_adapter import LiveAdapter

    song = live_standin.Song(scene_count=1)
    track = song.add_track("JASCO", audio=True)
    track.clip_slots[0].clip = live_standin.Clip(is_midi_clip=False)
    adapter = LiveAdapter(live_standin.CInstance(song))
    assert adapter.place_audio("/c/a.wav", 0.0, False, "take") == "slot 2"
    assert song.scene_count == 2 and track.clip_slots[1].clip.name == "take"
    track.returns_created_clip = False
    adapter.place_audio("/c/b.wav", 12.0, True, "take 2")
    assert track.arrangement_clips[0].warping is False
    assert (song.undo_steps_begun, song.undo_steps_ended) == (2, 2)


def test_plans_snap_to_bars_keep_long_clips_whole_and_follow_the_meter(script):
    from JascoBridge.companion import PlanError, plan_render
    from JascoBridge.live_adapter import Note, SelectedClip, SongTime

    notes = (Note(60, 0.0, 1.0, 100),)
    mid_bar = SelectedClip("", True, 10.0, 4.0, notes)  # beats 10-14 in 4/4: bars 3-4
    plan = plan_render(mid_bar, SongTime(120.0, 4, 4), 10.0)
    assert (plan.start_bar, plan.bars, plan.start_beat) == (3, 2, 8.0)
    assert plan.messages[-1] == ("/jasco/render", (3, 2))

    long = SelectedClip("x", True, 0.0, 64.0, notes)  # 16 bars at 120 bpm = 32 s
    plan = plan_render(long, SongTime(120.0, 4, 4), 10.0)
    assert plan.bars == 16 and plan.messages[-1] == ("/jasco/render", (1, 16))

    six_eight = SelectedClip("x", True, 6.0, 3.0, notes)  # a bar of 6/8 is 3 quarter notes
    plan = plan_render(six_eight, SongTime(90.0, 6, 8), 10.0)
    assert (plan.start_bar, plan.bars) == (3, 1)
    assert plan.messages[0] == ("/jasco/tempo", (90.0, 6, 8))

    with pytest.raises(PlanError, match="no notes"):
        plan_render(SelectedClip("x", True, 0.0, 4.0, ()), SongTime(120.0, 4, 4), 10.0)
    with pytest.raises(PlanError, match="longer than a JASCO clip"):
        plan_render(long, SongTime(20.0, 4, 4), 10.0)


def test_the_osc_codec_round_trips_through_the_daemons_codec(script):
    from JascoBridge import oscwire

    from jasco_bridge.osc import encode_packet, message, parse_packet

    sent = parse_packet(oscwire.encode("/jasco/chords/notes", 0.5, 4.0, 60, 100, "ü", True))
    assert sent.address == "/jasco/chords/notes"
    assert sent.args == (0.5, 4.0, 60, 100, "ü", True)
    back = oscwire.decode(encode_packet(message("/jasco/done", 3, "/c/a.wav", 8.0, 8.0)))
    assert back == ("/jasco/done", (3, "/c/a.wav", 8.0, 8.0))
    assert oscwire.decode(b"#bundle\0") is None and oscwire.decode(b"/x\0\0,q\0\0") is None


def test_nothing_selected_or_a_refused_render_shows_in_the_status_bar(
    tmp_path, script, monkeypatch
):
    song = live_standin.Song(tempo=20.0)  # a 4/4 bar lasts 12 s
    host = live_standin.CInstance(song)
    with running_daemon(tmp_path) as daemon:
        monkeypatch.setattr(script.settings, "DAEMON_PORT", daemon.server.udp_port)
        surface = script.create_instance(host)
        surface.companion.trigger("render")
        assert "select a MIDI clip" in host.messages[-1]
        surface.companion.trigger("cancel")
        assert "nothing to cancel" in host.messages[-1]
        # A script told the window is longer than it is: the daemon's refusal reaches Live.
        monkeypatch.setattr(script.settings, "SEGMENT_SECONDS", 1000.0)
        song.view.detail_clip = chords_clip(start_time=0.0, end_time=8.0, length=8.0)
        surface.companion.trigger("render")
        tick_until(surface, lambda: "longer than JASCO" in host.messages[-1], "the refusal")
        assert host.messages[-1].startswith("JASCO: /jasco/render: bar 1 lasts 12.0 s")
        surface.disconnect()


def test_a_missing_daemon_is_reported_instead_of_waiting_forever(script, monkeypatch):
    closed = OscPeer()  # a port nobody answers on
    monkeypatch.setattr(script.settings, "DAEMON_PORT", closed.port)
    monkeypatch.setattr(script.settings, "ANSWER_TIMEOUT_SECONDS", 0.2)
    song = song_with(chords_clip())
    host = live_standin.CInstance(song)
    surface = script.create_instance(host)
    try:
        surface.receive_midi((0xBF, 102, 127))
        assert host.messages[-1].startswith("JASCO: sent bars 3-4")
        tick_until(surface, lambda: "no answer" in host.messages[-1], "the timeout")
        assert str(closed.port) in host.messages[-1]
        assert jasco_track(song) is None
    finally:
        surface.disconnect()
        closed.close()


def test_the_script_imports_only_the_standard_library_and_live():
    import ast

    allowed = set(sys.stdlib_module_names) | {"Live"}
    for path in (SCRIPT_PARENT / "JascoBridge").glob("*.py"):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                names = [alias.name.split(".")[0] for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0:
                names = [node.module.split(".")[0]]
            else:
                continue
            assert set(names) <= allowed, f"{path.name} imports {names}: Live has no packages"


def test_only_the_adapter_touches_live_objects():
    # The stand-in covers the adapter; any other module reaching into Live would go untested.
    for path in (SCRIPT_PARENT / "JascoBridge").glob("*.py"):
        text = path.read_text(encoding="utf-8")
        if path.name != "live_adapter.py":
            assert "c_instance." not in text, path.name
            assert not re.search(r"^\s*import Live\s*$", text, re.M), path.name
