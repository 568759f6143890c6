"""The daemon over real loopback sockets, rendering with the real preview engine."""

from __future__ import annotations

import asyncio
import json
import re
import signal
import socket
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import mido
import numpy as np
import pytest
import soundfile as sf

from jasco_bridge.config import DaemonConfig
from jasco_bridge.daemon import BackgroundDaemon, Daemon
from jasco_bridge.engines import OpenedRenderer, open_preview
from jasco_bridge.errors import ClipError, ConfigError
from jasco_bridge.osc import (
    IMMEDIATELY,
    OscBundle,
    OscMessage,
    SlipDecoder,
    TimeTag,
    encode_packet,
    message,
    parse_packet,
    slip_encode,
)
from jasco_bridge.server import BridgeServer
from jasco_bridge.session import SessionStore
from midi.notes import Note, NoteTrack
from tests.bridge.support import (
    WAIT_SECONDS,
    GatedRenderer,
    OscPeer,
    bext_time_reference,
    one_running_one_queued,
    read_riff_chunks,
    running_daemon,
    set_up_four_bars,
    write_song,
)

# ---------------------------------------------------------------------------- tests


def test_ping_is_answered_with_its_token(tmp_path, peer):
    with running_daemon(tmp_path) as daemon:
        peer.send(daemon.server.udp_port, "/jasco/ping", 42)
        assert peer.expect("/jasco/pong").args == (42,)
        peer.send(daemon.server.udp_port, "/jasco/ping")
        assert peer.expect("/jasco/pong").args == ()


def test_startup_announces_addresses_and_a_loud_preview(tmp_path):
    with running_daemon(tmp_path) as daemon:
        text = "\n".join(daemon.announced)
    assert f"127.0.0.1:{daemon.server.udp_port}" in text
    assert "PREVIEW ENGINE" in text


def test_a_render_goes_tempo_chords_prompt_to_a_bar_exact_clip(tmp_path, peer):
    with running_daemon(tmp_path) as daemon:
        port = daemon.server.udp_port
        set_up_four_bars(peer, port)
        peer.send(port, "/jasco/render", 2.0, 2.0)  # bars 2-3, sent as floats like REAPER does
        job, seed, variation, start_bar, bars = peer.expect("/jasco/ack").args
        assert (seed, variation, start_bar, bars) == (1234, 0, 2, 2)
        done = peer.expect("/jasco/done", lambda m: m.args[0] == job)
        fractions = [m.args[1] for m in peer.inbox if m.address == "/jasco/progress"]
    _, path, start_beat, length_beats, start_seconds, duration_seconds, sidecar, *bar_range = (
        done.args
    )
    assert bar_range == [2, 2]  # no token was sent, so none comes back
    assert fractions and fractions == sorted(fractions) and fractions[-1] == pytest.approx(1.0)
    assert (start_beat, length_beats) == (4.0, 8.0)  # bar 2 starts on beat 4; 2 bars of 4/4
    assert (start_seconds, duration_seconds) == pytest.approx((2.0, 4.0))
    wav = Path(path)
    assert wav.is_file() and wav.resolve().is_relative_to((tmp_path / "clips").resolve())
    audio, rate = sf.read(wav)
    assert len(audio) == round(4.0 * rate)
    assert abs(audio).max() > 0.01
    assert bext_time_reference(read_riff_chunks(wav.read_bytes())["bext"]) == round(2.0 * rate)
    meta = json.loads(Path(sidecar).read_text())
    assert meta["prompt"] == "warm rhodes"
    assert meta["seed"] == 1234


def write_chord_midi(path: Path) -> Path:
    """Two bars, C major then A minor, as a type-1 file written with mido (not our reader)."""
    song = mido.MidiFile(type=1, ticks_per_beat=480)
    meta, keys = mido.MidiTrack(), mido.MidiTrack()
    meta.append(mido.MetaMessage("set_tempo", tempo=500_000, time=0))
    keys.append(mido.MetaMessage("track_name", name="Keys", time=0))
    for chord in ([60, 64, 67], [57, 60, 64]):
        for pitch in chord:
            keys.append(mido.Message("note_on", note=pitch, velocity=90, time=0))
        for index, pitch in enumerate(chord):
            keys.append(
                mido.Message("note_off", note=pitch, velocity=0, time=1920 if index == 0 else 0)
            )
    song.tracks += [meta, keys]
    song.save(path)
    return path


def test_chords_from_a_midi_file_and_a_drum_stem_from_a_wav(tmp_path, peer):
    midi_path = write_chord_midi(tmp_path / "chords.mid")
    stem = np.zeros(4 * 32000, dtype=np.float32)
    stem[::16000] = 0.9  # a click every half second
    sf.write(tmp_path / "drums.wav", stem, 32000)
    with running_daemon(tmp_path) as daemon:
        port = daemon.server.udp_port
        peer.send(port, "/jasco/tempo", 120.0)
        peer.send(port, "/jasco/chords/file", str(midi_path), "Keys")
        peer.send(port, "/jasco/drums/file", str(tmp_path / "drums.wav"))
        peer.send(port, "/jasco/render", 1, 2)
        job = peer.expect("/jasco/ack").args[0]
        done = peer.expect("/jasco/done", lambda m: m.args[0] == job)
    meta = json.loads(Path(done.args[6]).read_text())
    described = json.dumps(meta)
    assert "chords.mid" in described and "drums.wav" in described
    assert [c["given"] for c in meta["chords"]] == ["C:maj", "A:min"]  # recognised from the file
    assert not [m for m in peer.inbox if m.address == "/jasco/error"]


def test_named_sessions_keep_their_own_state_and_folder(tmp_path, peer):
    with running_daemon(tmp_path) as daemon:
        port = daemon.server.udp_port
        set_up_four_bars(peer, port, prefix="/jasco/session/verse")
        peer.send(port, "/jasco/session/verse/render", 1, 1)
        job = peer.expect("/jasco/ack").args[0]
        path = Path(peer.expect("/jasco/done", lambda m: m.args[0] == job).args[1])
        assert path.parent.name == "verse"
        assert daemon.call_in_loop(lambda: daemon.server.sessions.get("default").prompt) == ""


def test_bad_arguments_get_an_error_naming_the_address(tmp_path, peer):
    with running_daemon(tmp_path) as daemon:
        port = daemon.server.udp_port
        peer.send(port, "/jasco/tempo", "fast")
        job, text = peer.expect("/jasco/error").args
        assert job == -1
        assert text == "/jasco/tempo: bpm must be a number, got string 'fast'"
        peer.send(port, "/jasco/chords/symbol", 0.0, "H#maj99")
        job, text = peer.expect("/jasco/error").args
        assert text.startswith("/jasco/chords/symbol: ") and "H#maj99" in text
        peer.send(port, "/jasco/chords/file", str(tmp_path / "missing.mid"))
        assert "missing.mid" in peer.expect("/jasco/error").args[1]


def test_a_bar_longer_than_the_model_segment_is_refused_at_once(tmp_path, peer):
    with running_daemon(tmp_path) as daemon:
        port = daemon.server.udp_port
        peer.send(port, "/jasco/tempo", 20.0)
        peer.send(port, "/jasco/render", 1, 8)  # a bar lasts 12 s; the preview window is 10 s
        job, text = peer.expect("/jasco/error").args
        assert job == -1 and text.startswith("/jasco/render: ")
        assert "bar 1 lasts 12.0 s" in text


def test_variations_get_one_ack_each_with_distinct_seeds(tmp_path, peer):
    with running_daemon(tmp_path) as daemon:
        port = daemon.server.udp_port
        set_up_four_bars(peer, port)
        peer.send(port, "/jasco/set", "variations", 3)
        peer.send(port, "/jasco/render", 1, 1)
        acks = [peer.expect("/jasco/ack").args for _ in range(3)]
        for job, *_ in acks:
            peer.expect("/jasco/done", lambda m, job=job: m.args[0] == job)
    assert [a[2] for a in acks] == [0, 1, 2]
    assert len({a[1] for a in acks}) == 3


def test_cancel_a_running_and_a_queued_job(tmp_path, peer):
    with running_daemon(tmp_path, gated=True) as daemon:
        port = daemon.server.udp_port
        first, second = one_running_one_queued(peer, daemon)
        peer.send(port, "/jasco/status")
        assert peer.expect("/jasco/status").args == ("rendering", 1, "preview", first)
        peer.send(port, "/jasco/cancel", second)
        assert peer.expect("/jasco/cancelled").args == (second,)
        peer.send(port, "/jasco/cancel", first)
        assert peer.expect("/jasco/cancelled").args == (first,)
        peer.send(port, "/jasco/cancel", 999)
        assert "no job 999" in peer.expect("/jasco/error").args[1]
        assert not any(m.address == "/jasco/done" for m in peer.quiet_for(0.2))


def test_a_full_queue_refuses_renders_and_loses_nothing_queued(tmp_path, peer):
    with running_daemon(tmp_path, gated=True, max_queue=2) as daemon:
        port = daemon.server.udp_port
        set_up_four_bars(peer, port)
        peer.send(port, "/jasco/render", 1, 1)
        running = peer.expect("/jasco/ack").args[0]
        assert daemon.renderer.started.wait(WAIT_SECONDS)
        peer.send(port, "/jasco/render", 1, 1)
        peer.send(port, "/jasco/render", 1, 1)
        queued = [peer.expect("/jasco/ack").args[0] for _ in range(2)]
        peer.send(port, "/jasco/render", 1, 1)
        assert "queue full" in peer.expect("/jasco/error").args[1]
        daemon.renderer.gate.set()
        for job in [running, *queued]:
            peer.expect("/jasco/done", lambda m, job=job: m.args[0] == job)


def test_tcp_with_slip_framing_round_trips(tmp_path):
    with (
        running_daemon(tmp_path) as daemon,
        socket.create_connection(
            ("127.0.0.1", daemon.server.tcp_port), timeout=WAIT_SECONDS
        ) as conn,
    ):
        messages = [
            message("/jasco/ping", 7),
            message("/jasco/tempo", 120.0),
            message("/jasco/chords/symbols", 0.0, "Am7", 4.0, "D7"),
            message("/jasco/render", 1, 2),
        ]
        stream = b"".join(slip_encode(encode_packet(m)) for m in messages)
        conn.sendall(stream[:5])  # split mid-frame: the decoder must reassemble
        conn.sendall(stream[5:])
        decoder, replies = SlipDecoder(), []
        while not any(r.address == "/jasco/done" for r in replies):
            chunk = conn.recv(65536)
            assert chunk, f"connection closed early after {[r.address for r in replies]}"
            replies += [parse_packet(frame) for frame in decoder.feed(chunk)]
    addresses = [r.address for r in replies]
    assert addresses[0] == "/jasco/pong" and replies[0].args == (7,)
    assert "/jasco/ack" in addresses and "/jasco/progress" in addresses


def test_a_future_bundle_runs_later_without_blocking_ping(tmp_path, peer):
    with running_daemon(tmp_path) as daemon:
        port = daemon.server.udp_port
        later = TimeTag.from_unix_seconds(time.time() + 1.5)
        peer.send_packet(port, OscBundle(later, (message("/jasco/ping", 2),)))
        peer.send(port, "/jasco/ping", 1)
        first = peer._read(WAIT_SECONDS)
        second = peer._read(WAIT_SECONDS)
    assert (first.args, second.args) == ((1,), (2,))


def test_an_immediate_bundle_runs_its_messages_in_order(tmp_path, peer):
    with running_daemon(tmp_path) as daemon:
        port = daemon.server.udp_port
        bundle = OscBundle(
            IMMEDIATELY,
            (
                message("/jasco/tempo", 100.0),
                OscBundle(IMMEDIATELY, (message("/jasco/chords/symbol", 0.0, "Cmaj7"),)),
                message("/jasco/render", 1, 1),
            ),
        )
        peer.send_packet(port, bundle)
        job = peer.expect("/jasco/ack").args[0]
        done = peer.expect("/jasco/done", lambda m: m.args[0] == job)
    assert done.args[5] == pytest.approx(2.4)  # one bar of 4/4 at 100 bpm


def test_bundles_far_in_the_future_are_refused(tmp_path, peer):
    with running_daemon(tmp_path) as daemon:
        far = TimeTag.from_unix_seconds(time.time() + 86400)
        peer.send_packet(daemon.server.udp_port, OscBundle(far, (message("/jasco/ping"),)))
        assert "ahead" in peer.expect("/jasco/error").args[1]


def test_replies_go_to_the_configured_reply_port(tmp_path, peer):
    listener = OscPeer()
    try:
        with running_daemon(tmp_path, reply_port=listener.port) as daemon:
            peer.send(daemon.server.udp_port, "/jasco/ping", 5)
            assert listener.expect("/jasco/pong").args == (5,)
    finally:
        listener.close()


def test_clients_outside_the_allow_list_are_dropped(tmp_path, peer):
    with running_daemon(tmp_path, allow=("10.1.2.3",)) as daemon:
        peer.send(daemon.server.udp_port, "/jasco/ping")
        assert peer.quiet_for(0.3) == []


def test_oversized_datagrams_are_refused(tmp_path, peer):
    with running_daemon(tmp_path, max_packet_bytes=1024) as daemon:
        peer.send(daemon.server.udp_port, "/jasco/prompt", "x" * 2000)
        assert "refused" in peer.expect("/jasco/error").args[1]


def test_a_busy_port_is_a_clear_error(tmp_path):
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as taken:
        taken.bind(("127.0.0.1", 0))
        config = DaemonConfig(port=taken.getsockname()[1], tcp_port=None, out_dir=tmp_path)
        daemon = Daemon(config, announce=lambda line: None)
        with pytest.raises(ConfigError, match="cannot listen for OSC/UDP"):
            asyncio.run(daemon.run())


def test_shutdown_cancels_queued_jobs_and_tells_their_clients(tmp_path, peer):
    with running_daemon(tmp_path, gated=True, shutdown_timeout_seconds=0.0) as daemon:
        port = daemon.server.udp_port
        set_up_four_bars(peer, port)
        peer.send(port, "/jasco/render", 1, 1)
        peer.send(port, "/jasco/render", 1, 1)
        running, queued = [peer.expect("/jasco/ack").args[0] for _ in range(2)]
        assert daemon.renderer.started.wait(WAIT_SECONDS)
    assert peer.expect("/jasco/cancelled", lambda m: m.args[0] == queued, timeout=5)
    endings = {m.address for m in peer.inbox + peer.quiet_for(0.2) if m.args[:1] == (running,)}
    assert endings & {"/jasco/done", "/jasco/cancelled"}


def test_config_rejects_unsafe_or_broken_settings():
    with pytest.raises(ConfigError, match="--allow 'everyone'"):
        DaemonConfig(allow=("everyone",))
    with pytest.raises(ConfigError, match="port number"):
        DaemonConfig(port=70000)
    with pytest.raises(ConfigError, match="--reply-port"):
        DaemonConfig(reply_host="10.0.0.2")
    assert DaemonConfig(allow=("192.168.1.0/24",)).is_allowed("192.168.1.20")
    assert not DaemonConfig(allow=("192.168.1.0/24",)).is_allowed("192.168.2.20")
    assert replace(DaemonConfig(), reply_port=9001).reply_address == ("127.0.0.1", 9001)


def test_a_render_through_the_tiny_golden_jasco_checkpoint(tmp_path, golden_dir, peer):
    config = DaemonConfig(
        port=0, tcp_port=None, out_dir=tmp_path / "clips", engine="jasco", model=str(golden_dir)
    )
    with BackgroundDaemon(config) as running:  # the real engine loading path of `serve`
        assert running.server.engine_name != "preview"
        port = running.server.udp_port
        set_up_four_bars(peer, port)
        peer.send(port, "/jasco/set", "steps", 2)
        peer.send(port, "/jasco/render", 1, 2)
        job = peer.expect("/jasco/ack").args[0]
        done = peer.expect("/jasco/done", lambda m: m.args[0] == job)
        fractions = [m.args[1] for m in peer.inbox if m.address == "/jasco/progress"]
    assert fractions == [0.5, 1.0]
    audio, rate = sf.read(done.args[1])
    assert len(audio) == round(4.0 * rate)  # two bars of 4/4 at 120 bpm
    assert not any("PREVIEW" in line for line in running.announced)
    meta = json.loads(Path(done.args[6]).read_text())
    assert meta["engine"] == "jasco" and meta["preview"] is False


def test_the_serve_command_starts_answers_and_stops_on_ctrl_c(tmp_path):
    command = [sys.executable, "-m", "jasco_bridge", "serve", "--port", "0", "--no-tcp"]
    command += ["--engine", "preview", "--out-dir", str(tmp_path / "clips")]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        lines = []
        for line in process.stdout:
            lines.append(line)
            if "ready" in line:
                break
        text = "".join(lines)
        port = int(re.search(r"OSC/UDP on 127\.0\.0\.1:(\d+)", text).group(1))
        assert "PREVIEW ENGINE" in text
        client = OscPeer()
        try:
            client.send(port, "/jasco/ping", 3)
            assert client.expect("/jasco/pong").args == (3,)
        finally:
            client.close()
        process.send_signal(signal.SIGINT)
        rest = process.communicate(timeout=WAIT_SECONDS)[0]
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 0, rest
    assert "stopped" in rest


def test_missing_weights_stop_startup_with_the_engines_explanation(tmp_path):
    from engine.errors import EngineError

    config = DaemonConfig(port=0, tcp_port=0, out_dir=tmp_path, engine="jasco", model=str(tmp_path))
    running = BackgroundDaemon(config)
    with pytest.raises(EngineError) as failure:
        running.__enter__()
    assert str(tmp_path) in str(failure.value)
    assert "stopped" in running.announced  # the sockets bound first were closed again


def test_hostile_names_never_write_outside_the_out_dir(tmp_path, peer):
    with running_daemon(tmp_path) as daemon:
        port = daemon.server.udp_port
        peer.send(port, "/jasco/session/a.b/prompt", "x")
        assert "session name 'a.b' is not allowed" in peer.expect("/jasco/error").args[1]
        peer.send(port, "/jasco/chords/symbol", 0.0, "C")
        peer.send(port, "/jasco/prompt", "../../../../tmp/evil\\..\\x/\x7f")
        peer.send(port, "/jasco/render", 1, 1)
        job = peer.expect("/jasco/ack").args[0]
        path = Path(peer.expect("/jasco/done", lambda m: m.args[0] == job).args[1])
    clips = (tmp_path / "clips").resolve()
    assert path.resolve().parent == clips / "default"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["clips"]


def test_a_second_stop_request_cancels_the_running_job(tmp_path, peer):
    opened = open_preview()
    gated = GatedRenderer(opened.renderer)  # never opened: only a cancel can end this render
    config = DaemonConfig(
        port=0, tcp_port=None, out_dir=tmp_path, shutdown_timeout_seconds=WAIT_SECONDS * 10
    )
    running = BackgroundDaemon(
        config, open_engine=lambda _config: OpenedRenderer(gated, opened.vocabulary, None)
    )
    with running:
        port = running.server.udp_port
        set_up_four_bars(peer, port)
        peer.send(port, "/jasco/render", 1, 1)
        job = peer.expect("/jasco/ack").args[0]
        assert gated.started.wait(WAIT_SECONDS)
        running.request_stop()  # first Ctrl-C
        running.request_stop()  # second Ctrl-C
        running.stop(WAIT_SECONDS)
    assert peer.expect("/jasco/cancelled").args == (job,)
    assert "cancelling the running job" in running.announced


def test_an_unexpected_failure_is_logged_and_answered_generically(tmp_path, peer, caplog):
    class BrokenSessions(SessionStore):
        def get(self, name: str = "default"):
            raise RuntimeError("boom")

    async def scenario() -> tuple[OscMessage, OscMessage]:
        config = DaemonConfig(port=0, tcp_port=None, out_dir=tmp_path)
        server = BridgeServer(config, sessions=BrokenSessions())
        await server.start()
        loop = asyncio.get_running_loop()
        try:
            peer.send(server.udp_port, "/jasco/prompt", "x")
            failure = await loop.run_in_executor(None, peer.expect, "/jasco/error")
            peer.send(server.udp_port, "/jasco/ping", 1)
            alive = await loop.run_in_executor(None, peer.expect, "/jasco/pong")
        finally:
            await server.close(1.0)
        return failure, alive

    failure, alive = asyncio.run(scenario())
    assert failure.args == (
        -1,
        "/jasco/prompt: internal error (RuntimeError); the daemon logged it and keeps running",
    )
    assert alive.args == (1,)
    assert any(record.exc_info and "boom" in str(record.exc_info[1]) for record in caplog.records)


def test_before_the_engine_is_loaded_renders_are_refused_and_status_says_loading(tmp_path, peer):
    async def scenario() -> tuple[OscMessage, OscMessage]:
        server = BridgeServer(DaemonConfig(port=0, tcp_port=None, out_dir=tmp_path))
        await server.start()  # bound, but no attach_engine yet
        loop = asyncio.get_running_loop()
        try:
            peer.send(server.udp_port, "/jasco/status")
            status = await loop.run_in_executor(None, peer.expect, "/jasco/status")
            peer.send(server.udp_port, "/jasco/render", 1, 1)
            refusal = await loop.run_in_executor(None, peer.expect, "/jasco/error")
        finally:
            await server.close(1.0)
        return status, refusal

    status, refusal = asyncio.run(scenario())
    assert status.args == ("loading", 0, "none", -1)
    assert "still loading" in refusal.args[1]


def test_a_relative_out_dir_still_gives_absolute_clip_paths(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert DaemonConfig(out_dir="clips").out_dir == tmp_path / "clips"
    assert DaemonConfig(out_dir="~/clips").out_dir == Path.home() / "clips"


def test_serve_help_teaches_with_examples_and_builds_the_config(tmp_path):
    from jasco_bridge.cli import build_parser

    parser = build_parser()
    serve = parser._subparsers._group_actions[0].choices["serve"]
    help_text = serve.format_help()
    assert "examples:" in help_text and "oscsend localhost 9000 /jasco/render" in help_text
    args = parser.parse_args(["serve", "--port", "9100", "--allow", "10.0.0.0/8", "--no-tcp"])
    config = DaemonConfig.from_args(args)
    assert (config.port, config.tcp_port, config.allow) == (9100, None, ("10.0.0.0/8",))
    assert DaemonConfig.from_args(parser.parse_args(["serve", "--port", "9100"])).tcp_port == 9100


def test_a_render_with_nothing_set_is_noticed_and_still_done(tmp_path, peer, caplog):
    caplog.set_level("INFO", logger="jasco_bridge.jobs")
    with running_daemon(tmp_path) as daemon:
        port = daemon.server.udp_port
        peer.send(port, "/jasco/render", 1, 1)
        job = peer.expect("/jasco/ack").args[0]
        notices = [peer.expect("/jasco/notice").args for _ in range(3)]
        done = peer.expect("/jasco/done", lambda m: m.args[0] == job)
    assert {n[0] for n in notices} == {job}
    text = " ".join(n[1] for n in notices)
    assert "no tempo" in text and "no chords" in text and "no prompt" in text
    finished = [r.getMessage() for r in caplog.records if "done:" in r.getMessage()]
    assert finished == [f"job {job} done: {done.args[1]} (bars 1-1, 2.00 s, 1 window)"]


def test_osc_refuses_negative_seeds_but_minus_one_and_pitched_drum_midi(tmp_path, peer):
    keys = write_song(tmp_path / "keys.mid", [NoteTrack("Piano", [Note(60, 0.0, 1.0)])])
    with running_daemon(tmp_path) as daemon:
        port = daemon.server.udp_port
        peer.send(port, "/jasco/set", "seed", -5)
        assert "seed must be a whole number 0..2147483647" in peer.expect("/jasco/error").args[1]
        peer.send(port, "/jasco/drums/file", str(keys))
        assert "no drum track" in peer.expect("/jasco/error").args[1]
        peer.send(port, "/jasco/set", "seed", -1)
        peer.send(port, "/jasco/ping", 1)
        peer.expect("/jasco/pong")
        settings = daemon.call_in_loop(lambda: daemon.server.sessions.get().settings)
    assert settings.seed is None
    assert peer.quiet_for(0.2) == []


def test_an_unwritable_out_dir_stops_startup(tmp_path):
    (tmp_path / "a-file").write_text("not a folder")
    with pytest.raises(ClipError, match="cannot write clips in"):
        with running_daemon(tmp_path, out_dir=tmp_path / "a-file" / "clips"):
            pass


def test_a_render_token_ends_every_reply_of_its_jobs(tmp_path, peer):
    with running_daemon(tmp_path, gated=True) as daemon:
        port = daemon.server.udp_port
        set_up_four_bars(peer, port)
        peer.send(port, "/jasco/set", "variations", 2)
        peer.send(port, "/jasco/render", 3, 2, "ardour-17")
        first, second = (peer.expect("/jasco/ack").args for _ in range(2))
        assert first[3:] == second[3:] == (3, 2, "ardour-17")
        peer.send(port, "/jasco/cancel", second[0])
        assert peer.expect("/jasco/cancelled").args == (second[0], "ardour-17")
        daemon.renderer.gate.set()
        done = peer.expect("/jasco/done", lambda m: m.args[0] == first[0])
        assert done.args[7:] == (3, 2, "ardour-17")
        progress = [m for m in peer.inbox if m.address == "/jasco/progress"]
        assert progress and all(m.args[-1] == "ardour-17" for m in progress)
        peer.send(port, "/jasco/render", 1, 400, "too-long")  # 800 s: refused at once, no job
        refused = peer.expect("/jasco/error")
        assert refused.args[0] == -1 and refused.args[2] == "too-long"
