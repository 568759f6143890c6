"""Renders longer than one window: plans on bar lines, bar-exact clips with both engines through
`render_clip`, the CLI and the daemon, progress over every window and cancel in the third."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import soundfile

from jasco_bridge.cli import main
from jasco_bridge.conditioning import (
    MAX_RENDER_SECONDS,
    bars_to_song_end,
    plan_render,
)
from jasco_bridge.config import DaemonConfig
from jasco_bridge.daemon import BackgroundDaemon
from jasco_bridge.engines import OpenedRenderer, open_renderer
from jasco_bridge.errors import RenderError
from jasco_bridge.jobs import JobQueue, JobState
from jasco_bridge.pipeline import render_clip
from jasco_bridge.session import Session
from midi.notes import Note, NoteTrack
from midi.smf import MidiSong, read_midi_file, write_midi_file
from midi.tempo import TempoMap
from tests.bridge.support import (
    WAIT_SECONDS,
    Events,
    bext_time_reference,
    read_riff_chunks,
    running_daemon,
)

SR = 32000
SEGMENT, FRAME_RATE = 10.0, 50.0
CHORDS = ([48, 60, 64, 67], [45, 60, 64, 69], [41, 60, 65, 69], [43, 59, 62, 67])  # C Am F G


def tempo_and_meter_change() -> TempoMap:
    """8 bars of 4/4 at 100 bpm, then 3/4 at 132 bpm from beat 32 (bar 9)."""
    return TempoMap.constant(100.0).with_tempo_change(32.0, 132.0).with_time_signature(32.0, 3, 4)


def chord_notes(tempo_map: TempoMap, bars: int) -> list[Note]:
    """One chord per bar, C Am F G over and over, each lasting its bar."""
    notes = []
    for bar in range(1, bars + 1):
        start, end = tempo_map.bar_window(bar, 1)
        notes += [Note(p, start, end) for p in CHORDS[(bar - 1) % 4]]
    return notes


def song_session(tempo_map: TempoMap, bars: int, **settings) -> Session:
    session = Session("long")
    session.set_tempo_map(tempo_map)
    notes = chord_notes(tempo_map, bars)
    session.add_chord_notes(
        [(n.start_beat, n.end_beat - n.start_beat, n.pitch, 100) for n in notes]
    )
    session.set_prompt("warm rhodes")
    session.set_setting("seed", 3)
    for name, value in settings.items():
        session.set_setting(name, value)
    return session


def write_song(path: Path, tempo_map: TempoMap, bars: int) -> Path:
    song = MidiSong(tempo_map, (NoteTrack("Piano", chord_notes(tempo_map, bars), channel=0),))
    return write_midi_file(song, path)


def expected(tempo_map: TempoMap, start_bar: int, bars: int) -> tuple[int, int]:
    """(samples, time reference in samples) of a clip of these bars."""
    start, end = (tempo_map.seconds_at(b) for b in tempo_map.bar_window(start_bar, bars))
    return round((end - start) * SR), round(start * SR)


def assert_clip(path: Path, tempo_map: TempoMap, start_bar: int, bars: int) -> dict:
    """One WAV exactly these bars long, stamped with where they start; returns the sidecar."""
    samples, reference = expected(tempo_map, start_bar, bars)
    info = soundfile.info(path)
    assert (info.frames, info.samplerate) == (samples, SR)
    assert bext_time_reference(read_riff_chunks(path.read_bytes())["bext"]) == reference
    audio, _ = soundfile.read(path)
    assert np.isfinite(audio).all() and np.abs(audio).max() > 0
    return json.loads(path.with_suffix(".json").read_text())


# ---------------------------------------------------------------------------- plans


def check_plan(plan, tempo_map: TempoMap, context_bars: int = 1) -> None:
    """What every plan promises: whole bars on bar lines, each segment inside the model's,
    on the frame grid, every next window continuing `context_bars` of the one before."""
    span = plan.span
    assert plan.windows[0].start_bar == span.start_bar
    assert plan.windows[-1].end_bar == span.end_bar
    for k, window in enumerate(plan.windows):
        assert window.start_beat == tempo_map.bar_start_beat(window.start_bar)
        assert window.fits and plan.window_frames[k] <= SEGMENT * FRAME_RATE
        segment_start = span.start_seconds + plan.offset_frames[k] / FRAME_RATE
        assert window.segment_start_seconds == pytest.approx(segment_start, abs=1e-9)
        assert 0 <= window.lead_seconds < 1 / FRAME_RATE
        last_frame = (window.end_seconds - span.start_seconds) * FRAME_RATE
        assert plan.offset_frames[k] + plan.window_frames[k] == math.ceil(last_frame - 1e-6)
        if k:
            before = plan.windows[k - 1]
            assert 1 <= plan.overlap_bars(k) <= context_bars
            assert window.start_bar == before.end_bar + 1 - plan.overlap_bars(k)
            overlap = plan.offset_frames[k - 1] + plan.window_frames[k - 1] - plan.offset_frames[k]
            assert plan.overlap_frames[k] == overlap > 0


def test_sixteen_bars_at_96_bpm_are_five_windows_sharing_a_bar():
    tempo = TempoMap.constant(96.0)
    plan = plan_render(tempo, 1, 16, SEGMENT, FRAME_RATE)
    check_plan(plan, tempo)
    assert [(w.start_bar, w.end_bar) for w in plan.windows] == [
        (1, 4), (4, 7), (7, 10), (10, 13), (13, 16)
    ]  # fmt: skip
    assert plan.overlap_frames == (0, 125, 125, 125, 125)  # a 2.5 s bar of context
    assert plan.describe_window(1)["overlap_seconds"] == 2.5


def test_windows_follow_tempo_and_meter_changes():
    tempo = tempo_and_meter_change()
    plan = plan_render(tempo, 1, 18, SEGMENT, FRAME_RATE)
    check_plan(plan, tempo)
    # faster 3/4 bars after bar 8: more of them fit one window
    assert [w.bars for w in plan.windows] == [4, 4, 5, 7, 2]
    assert plan.span.duration_seconds == pytest.approx(8 * 2.4 + 10 * 3 * 60 / 132)


def test_a_change_inside_an_overlap_bar_is_planned_like_any_other():
    # 96 bpm: windows 1-4 and 4-7 share bar 4; the tempo jumps in the middle of it
    tempo = TempoMap.constant(96.0).with_tempo_change(14.0, 140.0)
    plan = plan_render(tempo, 1, 12, SEGMENT, FRAME_RATE)
    check_plan(plan, tempo)
    assert plan.windows[0].end_bar == plan.windows[1].start_bar == 4
    # after the change, bar lines fall between 20 ms frames: the segments start just before
    assert all(w.lead_seconds > 0 for w in plan.windows[2:])
    # a meter change on the shared bar line
    tempo = TempoMap.constant(96.0).with_time_signature(12.0, 7, 8)
    check_plan(plan_render(tempo, 1, 12, SEGMENT, FRAME_RATE), tempo)


def test_more_context_bars_mean_more_overlap_and_more_windows():
    tempo = TempoMap.constant(120.0)
    one = plan_render(tempo, 3, 32, SEGMENT, FRAME_RATE)
    two = plan_render(tempo, 3, 32, SEGMENT, FRAME_RATE, context_bars=2)
    check_plan(one, tempo)
    check_plan(two, tempo, context_bars=2)
    assert {two.overlap_bars(k) for k in range(1, len(two.windows))} == {2}
    assert len(one.windows) == 8 < len(two.windows)


def test_bars_that_fit_one_window_stay_one_plain_window():
    plan = plan_render(TempoMap.constant(120.0), 2, 4, SEGMENT, FRAME_RATE)
    assert not plan.is_long and plan.engine_seconds(0) is None
    assert plan.windows == (plan.span,) and plan.span.lead_seconds == 0


def test_past_ten_minutes_and_bars_longer_than_a_window_are_refused():
    with pytest.raises(RenderError, match="at most 10 minutes"):
        plan_render(TempoMap.constant(120.0), 1, 301, SEGMENT, FRAME_RATE)  # 602 s
    assert (
        plan_render(TempoMap.constant(120.0), 1, 300, SEGMENT, FRAME_RATE).span.duration_seconds
        == MAX_RENDER_SECONDS
    )
    slow = TempoMap.constant(60.0).with_tempo_change(16.0, 20.0)  # bar 5 on lasts 12 s
    with pytest.raises(RenderError, match="bar 5 lasts 12.0 s, longer than JASCO's 10 s"):
        plan_render(slow, 1, 6, SEGMENT, FRAME_RATE)


def test_bars_all_runs_to_the_bar_of_the_last_note():
    tempo = tempo_and_meter_change()
    assert bars_to_song_end(tempo, 1, 62.0) == 18  # ends on the bar line after bar 18
    assert bars_to_song_end(tempo, 3, 62.5) == 17  # a note into bar 19
    with pytest.raises(RenderError, match="before start bar 20"):
        bars_to_song_end(tempo, 20, 62.0)
    with pytest.raises(RenderError, match="no notes"):
        bars_to_song_end(tempo, 1, 0.0)


# ---------------------------------------------------------------------------- render_clip


@pytest.fixture(scope="module")
def golden(golden_dir) -> OpenedRenderer:
    return open_renderer("jasco", golden_dir, precision="fp32")


def render(opened, session, start_bar, bars, tmp_path, **kwargs):
    snapshot = session.snapshot()
    renderer = opened.renderer
    plan = plan_render(
        snapshot.tempo_map, start_bar, bars, renderer.segment_seconds, renderer.frame_rate_hz
    )
    return plan, render_clip(snapshot, plan, opened, seed=3, out_dir=tmp_path, **kwargs)


def test_a_32_bar_preview_clip_is_one_exact_wav_with_its_windows_in_the_sidecar(preview, tmp_path):
    tempo = TempoMap.constant(120.0)
    plan, clip = render(preview, song_session(tempo, 40), 3, 32, tmp_path)
    sidecar = assert_clip(clip.path, tempo, 3, 32)
    assert clip.path.name.startswith("bars003-034_")
    assert len(sidecar["windows"]) == len(plan.windows) == 8
    first, second = sidecar["windows"][:2]
    assert (first["start_bar"], first["bars"], first["overlap_bars"]) == (3, 5, 0)
    assert (second["start_bar"], second["overlap_bars"], second["overlap_seconds"]) == (7, 1, 2.0)
    assert [c["label"] for c in second["chords"]] == ["F", "G", "C", "Am", "F"]  # bars 7-11
    labels = [c["label"] for c in sidecar["chords"]]
    assert labels == (["F", "G", "C", "Am"] * 8)  # every bar once, no repeats at the seams
    assert sidecar["chords"][0]["start_beat"] == 8.0 and sidecar["chords"][-1]["end_beat"] == 136.0


def test_a_32_bar_jasco_clip_on_the_tiny_checkpoint_is_exact(golden, tmp_path):
    tempo = TempoMap.constant(240.0)  # 32 s: four windows, cheap on the tiny model
    plan, clip = render(golden, song_session(tempo, 34, steps=1), 2, 32, tmp_path)
    sidecar = assert_clip(clip.path, tempo, 2, 32)
    assert len(plan.windows) == 4 and sidecar["engine"] == "jasco"
    assert [w["start_bar"] for w in sidecar["windows"]] == [w.start_bar for w in plan.windows]


def test_the_same_seed_renders_the_same_long_clip(golden, tmp_path):
    tempo = TempoMap.constant(240.0)
    session = song_session(tempo, 14, steps=1)
    _, first = render(golden, session, 1, 14, tmp_path)
    _, second = render(golden, session, 1, 14, tmp_path)
    assert first.path != second.path
    assert np.array_equal(soundfile.read(first.path)[0], soundfile.read(second.path)[0])


# ---------------------------------------------------------------------------- the queue


def test_progress_counts_every_step_of_every_window_and_cancel_stops_the_third(golden, tmp_path):
    events = Events()
    queues: list[JobQueue] = []

    def cancel_in_window_three(event):
        events(event)
        if event.kind is JobState.RUNNING and event.window == 2 and event.job_id == 2:
            queues[0].cancel(event.job_id)

    queue = JobQueue(golden, tmp_path, on_event=cancel_in_window_three)
    queues.append(queue)
    session = song_session(TempoMap.constant(96.0), 16, steps=2)
    queue.start()
    try:
        (done,) = queue.submit(session.snapshot(), 1, 16)
        (cancelled,) = queue.submit(session.snapshot(), 1, 16)
        assert events.terminal(done.id).kind == "done"
        assert events.terminal(cancelled.id).kind == "cancelled"
    finally:
        queue.shutdown(timeout=WAIT_SECONDS)
    steps = [
        (e.step, e.total, e.window, e.windows)
        for e in events.of(done.id)
        if e.kind is JobState.RUNNING
    ]
    assert steps == [(s, 10, (s - 1) // 2, 5) for s in range(1, 11)]
    stopped = [e.step for e in events.of(cancelled.id) if e.kind is JobState.RUNNING]
    assert stopped == [1, 2, 3, 4, 5]  # the third window's first step, and not one more
    assert len(list((tmp_path / "long").glob("*.wav"))) == 1


# ---------------------------------------------------------------------------- done when: CLI and daemon


SONGS = {
    "96bpm": (TempoMap.constant(96.0), 16, 5),
    "change": (tempo_and_meter_change(), 18, 5),
}


@pytest.mark.parametrize("engine", ["preview", "jasco"])
@pytest.mark.parametrize("song", sorted(SONGS))
def test_the_cli_renders_a_long_song_as_one_clip_on_its_bar(
    song, engine, tmp_path, capsys, monkeypatch, golden_dir
):
    monkeypatch.setenv("JASCO_BRIDGE_MODELS", str(tmp_path / "no-models"))
    monkeypatch.chdir(tmp_path)
    tempo, bars, windows = SONGS[song]
    midi = write_song(tmp_path / "song.mid", tempo, bars)
    args = ["render", str(midi), "--prompt", "rhodes", "--bars", "all", "--engine", engine]
    if engine == "jasco":
        args += ["--model", str(golden_dir), "--steps", "1", "--precision", "fp32"]
    code = main(args)
    out = capsys.readouterr()
    assert code == 0, out.err
    (clip,) = (tmp_path / "jasco-clips" / "song").glob("*.wav")
    assert clip.name.startswith(f"bars001-{bars:03d}_")
    # a MIDI file stores tempo in whole microseconds per beat: the clip follows the file's
    sidecar = assert_clip(clip, read_midi_file(midi).tempo_map, 1, bars)
    assert len(sidecar["windows"]) == windows and sidecar["engine"] == engine
    assert f"in {windows} windows" in out.out
    if engine == "jasco":
        assert f"window {windows}/{windows}" in out.err


@pytest.fixture(scope="module")
def golden_daemon(golden_dir, tmp_path_factory):
    config = DaemonConfig(
        port=0,
        tcp_port=None,
        out_dir=tmp_path_factory.mktemp("golden") / "clips",
        engine="jasco",
        model=str(golden_dir),
        precision="fp32",
    )
    with BackgroundDaemon(config) as running:
        yield running


def send_song(peer, port: int, tempo: TempoMap, bars: int) -> None:
    first = tempo.tempos[0]
    meter = tempo.meters[0]
    peer.send(port, "/jasco/tempo", float(first.bpm), meter.numerator, meter.denominator)
    for change in tempo.tempos[1:]:
        peer.send(port, "/jasco/tempo/change", float(change.beat), float(change.bpm))
    for change in tempo.meters[1:]:
        peer.send(
            port, "/jasco/meter/change", float(change.beat), change.numerator, change.denominator
        )
    peer.send(port, "/jasco/chords/clear")
    flat = []
    for note in chord_notes(tempo, bars):
        flat += [note.start_beat, note.end_beat - note.start_beat, float(note.pitch), 100.0]
    peer.send(port, "/jasco/chords/notes", *flat)
    peer.send(port, "/jasco/prompt", "warm rhodes")
    peer.send(port, "/jasco/set", "seed", 9)
    peer.send(port, "/jasco/set", "steps", 1)


@pytest.mark.parametrize("engine", ["preview", "jasco"])
@pytest.mark.parametrize("song", sorted(SONGS))
def test_the_daemon_renders_a_long_song_as_one_clip_on_its_bar(
    song, engine, tmp_path, peer, request
):
    tempo, bars, windows = SONGS[song]
    if engine == "jasco":
        daemon = request.getfixturevalue("golden_daemon")
        _render_over_osc(daemon, peer, tempo, bars, windows, steps_per_window=1)
    else:
        with running_daemon(tmp_path) as daemon:
            _render_over_osc(daemon, peer, tempo, bars, windows, steps_per_window=None)


def _render_over_osc(daemon, peer, tempo, bars, windows, steps_per_window):
    port = daemon.server.udp_port
    send_song(peer, port, tempo, bars)
    peer.send(port, "/jasco/render", 1, 0)  # 0 = to the song's last note
    job = peer.expect("/jasco/ack").args[0]
    done = peer.expect("/jasco/done", lambda m: m.args[0] == job, timeout=120.0)
    progress = [m.args for m in peer.inbox if m.address == "/jasco/progress" and m.args[0] == job]
    peer.inbox.clear()
    path = Path(done.args[1])
    sidecar = assert_clip(path, tempo, 1, bars)
    assert done.args[2] == 0.0 and done.args[3] == pytest.approx(tempo.bar_window(1, bars)[1])
    assert len(sidecar["windows"]) == windows
    if steps_per_window is None:  # the preview: one synthesis of four stages
        assert [tuple(p[2:]) for p in progress] == [(s, 4, 1, 1) for s in range(1, 5)]
    else:
        total = windows * steps_per_window
        assert [tuple(p[2:]) for p in progress] == [
            (s, total, s, windows) for s in range(1, total + 1)
        ]


def test_long_variations_and_again_render_whole_clips(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("JASCO_BRIDGE_MODELS", str(tmp_path / "no-models"))
    monkeypatch.chdir(tmp_path)
    tempo = TempoMap.constant(96.0)
    midi = write_song(tmp_path / "song.mid", tempo, 12)
    args = ["render", str(midi), "--prompt", "rhodes", "--bars", "12", "--variations", "2"]
    assert main([*args, "--seed", "4"]) == 0
    clips = sorted((tmp_path / "jasco-clips" / "song").glob("*.wav"))
    assert [c.name for c in clips] == ["bars001-012_rhodes_4.wav", "bars001-012_rhodes_5.wav"]
    for clip in clips:
        assert len(assert_clip(clip, read_midi_file(midi).tempo_map, 1, 12)["windows"]) == 4
    assert main(["render", "--again", str(clips[0].with_suffix(".json"))]) == 0
    (again,) = set((tmp_path / "jasco-clips" / "song").glob("*.wav")) - set(clips)
    assert np.array_equal(soundfile.read(again)[0], soundfile.read(clips[0])[0])
    capsys.readouterr()
