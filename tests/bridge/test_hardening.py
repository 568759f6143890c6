"""Hostile clients and bad days over real sockets and real files: spoofed control, session
floods, huge or lying files, a killed daemon, a full disk, a folder swapped for a link."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import struct
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from jasco_bridge import session as session_module
from jasco_bridge.clips import write_clip
from jasco_bridge.errors import ClipError
from jasco_bridge.journal import JOURNAL_NAME
from jasco_bridge.osc import IMMEDIATELY, OscBundle, message
from midi.notes import Note, NoteTrack
from tests.bridge.support import (
    REPO,
    WAIT_SECONDS,
    OscPeer,
    one_running_one_queued,
    run_cli,
    running_daemon,
    set_up_four_bars,
    write_song,
)


def _peer_on(host: str) -> OscPeer:
    peer = OscPeer.__new__(OscPeer)
    peer.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    peer.sock.bind((host, 0))
    peer.inbox = []
    return peer


@pytest.fixture
def other_host():
    """A client on another loopback address (Linux answers on all of 127/8)."""
    try:
        peer = _peer_on("127.0.0.2")
    except OSError as error:
        pytest.skip(f"cannot bind 127.0.0.2 here: {error}")
    yield peer
    peer.close()


def _wav_claiming(rate: int, channels: int = 1) -> bytes:
    data = b"\0" * (8 * channels)
    fmt = struct.pack("<HHIIHH", 1, channels, rate, 0, channels * 2, 16)
    body = b"WAVE" + b"fmt " + struct.pack("<I", len(fmt)) + fmt
    body += b"data" + struct.pack("<I", len(data)) + data
    return b"RIFF" + struct.pack("<I", len(body)) + body


# ---------------------------------------------------------------------------- ownership


def test_another_client_can_neither_change_a_session_nor_cancel_its_job(tmp_path, peer, other_host):
    with running_daemon(tmp_path, gated=True) as daemon:
        port = daemon.server.udp_port
        running, queued = one_running_one_queued(peer, daemon)
        other_host.send(port, "/jasco/prompt", "spoofed")
        refused = other_host.expect("/jasco/error")
        assert "belongs to another client; not allowed" in refused.args[1]
        other_host.send(port, "/jasco/cancel", queued)
        assert "not allowed to cancel" in other_host.expect("/jasco/error").args[1]
        other_host.send(port, "/jasco/session/mine/prompt", "my own session works")
        other_host.send(port, "/jasco/ping", 3)
        assert other_host.expect("/jasco/pong").args == (3,)
        assert daemon.call_in_loop(lambda: daemon.server.sessions.get().prompt) == "warm rhodes"
        # The owner's scripts send each message from a new port (as oscsend does): still theirs.
        throwaway = OscPeer()
        try:
            throwaway.send(port, "/jasco/cancel", queued)
            throwaway.send(port, "/jasco/prompt", "changed by its owner")
            throwaway.send(port, "/jasco/ping", 4)
            throwaway.expect("/jasco/pong")
            assert not [m for m in throwaway.inbox if m.address == "/jasco/error"]
        finally:
            throwaway.close()
        peer.expect("/jasco/cancelled", lambda m: m.args[0] == queued)
        assert daemon.call_in_loop(lambda: daemon.server.sessions.get().prompt) == (
            "changed by its owner"
        )
        daemon.renderer.gate.set()
        peer.expect("/jasco/done", lambda m: m.args[0] == running)


def test_a_client_with_the_daemons_token_may_use_any_session(tmp_path, peer, other_host):
    token = "a-long-shared-secret"
    with running_daemon(tmp_path, gated=True, token=token) as daemon:
        port = daemon.server.udp_port
        running, queued = one_running_one_queued(peer, daemon)
        other_host.send(port, "/jasco/prompt", "no token")
        assert "not allowed" in other_host.expect("/jasco/error").args[1]
        other_host.send_packet(
            port,
            OscBundle(
                IMMEDIATELY,
                (message("/jasco/auth", token), message("/jasco/prompt", "from the tablet")),
            ),
        )
        other_host.send_packet(
            port,
            OscBundle(
                IMMEDIATELY, (message("/jasco/auth", token), message("/jasco/cancel", queued))
            ),
        )
        peer.expect("/jasco/cancelled", lambda m: m.args[0] == queued)
        assert daemon.call_in_loop(lambda: daemon.server.sessions.get().prompt) == (
            "from the tablet"
        )
        daemon.renderer.gate.set()
        peer.expect("/jasco/done", lambda m: m.args[0] == running)


# ---------------------------------------------------------------------------- sessions and caps


def test_a_flood_of_session_names_never_locks_out_the_default_session(tmp_path, peer):
    with running_daemon(tmp_path) as daemon:
        port = daemon.server.udp_port
        for n in range(session_module.MAX_SESSIONS + 50):
            peer.send(port, f"/jasco/session/flood{n}/prompt", "x")
        peer.send(port, "/jasco/prompt", "still works")
        peer.send(port, "/jasco/session/late/prompt", "and so do new names")
        peer.send(port, "/jasco/ping", 1)
        peer.expect("/jasco/pong", timeout=30)
        assert not [m for m in peer.inbox if m.address == "/jasco/error"]
        store = daemon.server.sessions
        assert daemon.call_in_loop(lambda: store.get().prompt) == "still works"
        assert daemon.call_in_loop(lambda: len(store)) == session_module.MAX_SESSIONS + 1
        for n in range(session_module.MAX_SESSIONS + 50):
            peer.send(port, f"/jasco/session/knob{n}/ctl/bars", 2.0)
        peer.send(port, "/jasco/ping", 2)
        peer.expect("/jasco/pong", timeout=30)
        panels = daemon.call_in_loop(lambda: len(daemon.server._panels))
        assert panels <= session_module.MAX_SESSIONS + 1  # forgotten sessions' panels go too


def test_tempo_changes_past_the_cap_are_refused_naming_it_and_ping_stays_quick(tmp_path, peer):
    with running_daemon(tmp_path) as daemon:
        port = daemon.server.udp_port
        for n in range(session_module.MAX_TEMPO_CHANGES + 5):
            peer.send(port, "/jasco/tempo/change", float(n + 1), 100.0 + n % 50)
        started = time.monotonic()
        peer.send(port, "/jasco/ping", 9)
        peer.expect("/jasco/pong", timeout=30)
        errors = [m.args[1] for m in peer.inbox if m.address == "/jasco/error"]
        assert errors and all("MAX_TEMPO_CHANGES" in text for text in errors)
        assert len(errors) == 6  # the session starts with one tempo, at beat 0
        # The map is built once, when read, not once per change.
        tempo_map = daemon.call_in_loop(lambda: daemon.server.sessions.get().tempo_map)
        assert len(tempo_map.tempos) == session_module.MAX_TEMPO_CHANGES
        assert time.monotonic() - started < 10


# ---------------------------------------------------------------------------- files over OSC


def test_paths_outside_the_read_roots_get_the_same_not_allowed(tmp_path, peer):
    root = tmp_path / "songs"
    root.mkdir()
    with running_daemon(tmp_path, read_roots=(root,)) as daemon:
        port = daemon.server.udp_port
        probes = ["/etc/passwd", "/etc/no-such-file.wav", "/etc", str(tmp_path / "x.wav")]
        texts = set()
        for probe in probes:
            peer.send(port, "/jasco/drums/file", probe)
            text = peer.expect("/jasco/error").args[1]
            texts.add(text.replace(repr(probe), "PATH"))
        assert len(texts) == 1 and "not allowed" in texts.pop()


def test_a_wav_header_claiming_2_31_hz_gets_an_error_within_a_second(tmp_path, peer):
    path = tmp_path / "claims.wav"
    path.write_bytes(_wav_claiming(2**31 - 1))
    with running_daemon(tmp_path) as daemon:
        port = daemon.server.udp_port
        started = time.monotonic()
        peer.send(port, "/jasco/drums/file", str(path))
        error = peer.expect("/jasco/error")
        assert "MAX_AUDIO_SAMPLE_RATE" in error.args[1]
        assert time.monotonic() - started < 1.0
        peer.send(port, "/jasco/ping", 2)
        peer.expect("/jasco/pong")


def test_the_cli_refuses_a_lying_drum_stem_in_one_line(tmp_path):
    song = write_song(
        tmp_path / "song.mid",
        [NoteTrack("Keys", [Note(60 + i, 0.0, 4.0) for i in (0, 4, 7)])],
    )
    claims = tmp_path / "claims.wav"
    claims.write_bytes(_wav_claiming(2**31 - 1))
    result = run_cli(
        "render",
        str(song),
        "--engine",
        "preview",
        "--prompt",
        "lofi",
        "--drums",
        str(claims),
        "--out-dir",
        str(tmp_path / "clips"),
    )
    assert result.returncode != 0
    errors = [line for line in result.stderr.splitlines() if "error" in line]
    assert len(errors) == 1 and "MAX_AUDIO_SAMPLE_RATE" in errors[0], result.stderr
    assert "Traceback" not in result.stderr + result.stdout


def test_a_slow_file_is_given_up_after_the_time_limit_and_others_keep_being_served(tmp_path, peer):
    notes = [Note(48 + (i % 24), i * 0.25, i * 0.25 + 0.25) for i in range(30_000)]
    big = write_song(tmp_path / "big.mid", [NoteTrack("Keys", notes)])
    with running_daemon(tmp_path, file_read_timeout_seconds=0.05) as daemon:
        port = daemon.server.udp_port
        peer.send(port, "/jasco/chords/file", str(big))
        started = time.monotonic()
        peer.send(port, "/jasco/ping", 6)
        peer.expect("/jasco/pong")
        assert time.monotonic() - started < 1.0  # not behind the file
        error = peer.expect("/jasco/error")
        assert "file_read_timeout_seconds" in error.args[1]
        peer.send(port, "/jasco/prompt", "the lane goes on")
        peer.send(port, "/jasco/ping", 7)
        peer.expect("/jasco/pong")
        session = daemon.call_in_loop(lambda: daemon.server.sessions.get().snapshot())
        assert session.chord_file is None  # a read given up on changes nothing


# ---------------------------------------------------------------------------- confinement


def test_a_session_folder_swapped_for_a_link_never_receives_a_clip_outside(tmp_path):
    root = tmp_path / "clips"
    outside = tmp_path / "outside"
    outside.mkdir()
    root.mkdir()
    (root / "verse").symlink_to(outside, target_is_directory=True)
    audio = np.zeros(800, dtype=np.float32)
    kwargs = {"time_reference_samples": 0, "start_beat": 0.0, "length_beats": 1.0}
    with pytest.raises(ClipError, match="is a link"):
        write_clip(audio, 8000, root / "verse" / "a.wav", sidecar={}, root=root, **kwargs)
    # A folder swapped back and forth while clips are written: nothing lands outside.
    (root / "verse").unlink()
    stop = threading.Event()

    def swap() -> None:
        real = root / "verse"
        while not stop.is_set():
            with contextlib.suppress(OSError):
                real.mkdir()
            with contextlib.suppress(OSError):
                real.rename(root / f"moved-{time.monotonic_ns()}")
                real.symlink_to(outside, target_is_directory=True)
            with contextlib.suppress(OSError):
                real.unlink()

    swapper = threading.Thread(target=swap)
    swapper.start()
    try:
        for n in range(60):
            with contextlib.suppress(ClipError):
                write_clip(
                    audio, 8000, root / "verse" / f"c{n}.wav", sidecar={}, root=root, **kwargs
                )
    finally:
        stop.set()
        swapper.join()
    assert list(outside.iterdir()) == []


# ---------------------------------------------------------------------------- crash and disk full


def _serve(tmp_path: Path, out_dir: Path, ready: Path) -> tuple[subprocess.Popen, dict]:
    ready.unlink(missing_ok=True)
    command = [sys.executable, "-m", "jasco_bridge", "serve", "--port", "0", "--no-tcp"]
    command += ["--engine", "preview", "--out-dir", str(out_dir), "--ready-file", str(ready)]
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    process = subprocess.Popen(
        command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
    )
    deadline = time.monotonic() + 60
    while not ready.exists() and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    if not ready.exists():
        process.kill()
        raise AssertionError(f"serve did not start: {process.communicate()[1][-2000:]}")
    return process, json.loads(ready.read_text())


def test_after_kill_9_the_restarted_daemon_fails_each_interrupted_job_and_never_reuses_an_id(
    tmp_path,
):
    out_dir, ready = tmp_path / "clips", tmp_path / "ready.json"
    client = OscPeer()
    process, document = _serve(tmp_path, out_dir, ready)
    try:
        port = document["udp_port"]
        set_up_four_bars(client, port)
        client.send(port, "/jasco/set", "variations", 8)
        for bar in (1, 2, 3):
            client.send(port, "/jasco/render", bar, 1, f"take-{bar}")
        acked = {client.expect("/jasco/ack").args[0]: None for _ in range(24)}
        os.kill(process.pid, signal.SIGKILL)
        process.wait(WAIT_SECONDS)
    finally:
        if process.poll() is None:
            process.kill()
    finished = {
        m.args[0]
        for m in client.quiet_for(0.5) + client.inbox
        if m.address in ("/jasco/done", "/jasco/error", "/jasco/cancelled")
    }
    acks = {m.args[0]: m.args[-1] for m in client.inbox if m.address == "/jasco/ack"}
    interrupted = set(acked) - finished
    assert interrupted, "the kill came too late to leave a job in flight"
    stale = out_dir / "default" / ".bars001-001_x_1_j1.wav.0badc0de.part"
    stale.parent.mkdir(parents=True, exist_ok=True)
    stale.write_bytes(b"half a clip")
    not_ours = out_dir / "default" / ".download.part"
    not_ours.write_bytes(b"another program's")
    client.inbox.clear()
    process, document = _serve(tmp_path, out_dir, ready)
    try:
        reported = {}
        for _ in interrupted:
            error = client.expect("/jasco/error", lambda m: m.args[0] in interrupted)
            reported[error.args[0]] = error
        assert set(reported) == interrupted
        for job, error in reported.items():
            assert "was interrupted" in error.args[1] and "render it again" in error.args[1]
            assert error.args[-1].startswith("take-")
            assert acks.get(job, error.args[-1]) == error.args[-1]
        assert not stale.exists() and not_ours.exists()
        port = document["udp_port"]
        set_up_four_bars(client, port)
        client.send(port, "/jasco/render", 1, 1)
        new_id = client.expect("/jasco/ack").args[0]
        assert new_id > max(acked)
        client.expect("/jasco/done", lambda m: m.args[0] == new_id)
        process.send_signal(signal.SIGINT)
        process.communicate(timeout=WAIT_SECONDS)
    finally:
        client.close()
        if process.poll() is None:
            process.kill()
    assert list(out_dir.rglob("*.part")) == [not_ours]
    assert len((out_dir / JOURNAL_NAME).read_text().splitlines()) < 10  # compacted at start


@pytest.fixture
def full_disk(tmp_path):
    """A 600 KiB tmpfs: room for the daemon's journal, not for a clip."""
    mount = tmp_path / "small"
    mount.mkdir()
    if shutil.which("mount") is None or os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root and mount(8); not available here")
    result = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=600k", "tmpfs", str(mount)],
        capture_output=True,
        text=True,
    )
    if result.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs here: {result.stderr.strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", str(mount)], check=False)


def test_a_full_disk_fails_the_job_clearly_and_leaves_no_partial_file(tmp_path, peer, full_disk):
    with running_daemon(tmp_path, out_dir=full_disk) as daemon:
        port = daemon.server.udp_port
        set_up_four_bars(peer, port)
        for _attempt in range(3):
            peer.send(port, "/jasco/render", 1, 4)
            job = peer.expect("/jasco/ack").args[0]
            error = peer.expect("/jasco/error", lambda m, job=job: m.args[0] == job)
            assert "No space left" in error.args[1]
        leftovers = [p for p in full_disk.rglob("*") if p.is_file()]
        assert all(p.name.startswith(".jasco-jobs") for p in leftovers), leftovers


def test_a_second_daemon_on_the_same_clip_folder_stops_with_one_line(tmp_path):
    pytest.importorskip("fcntl")
    out_dir = tmp_path / "clips"
    first, _ = _serve(tmp_path, out_dir, tmp_path / "ready.json")
    try:
        command = [sys.executable, "-m", "jasco_bridge", "serve", "--port", "0", "--no-tcp"]
        command += ["--engine", "preview", "--out-dir", str(out_dir)]
        second = subprocess.run(
            command,
            env={**os.environ, "PYTHONPATH": str(REPO)},
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert second.returncode != 0
        assert "another jasco-bridge is serving clips into" in second.stderr
        assert "Traceback" not in second.stderr
    finally:
        first.send_signal(signal.SIGINT)
        first.communicate(timeout=WAIT_SECONDS)


# ---------------------------------------------------------------------------- chord recognition


def test_a_recognition_past_its_time_limit_fails_its_job_with_the_reason(preview, tmp_path):
    from jasco_bridge.jobs import JobQueue
    from jasco_bridge.session import Session
    from tests.bridge.support import Events

    events = Events()
    queue = JobQueue(preview, tmp_path, on_event=events, recognition_timeout_seconds=0.01)
    queue.start()
    try:
        heavy = Session("heavy")
        heavy.add_chord_notes(
            [(i * 0.125, 0.125, 48 + (i * 7) % 36, 90) for i in range(session_module.MAX_NOTES)]
        )
        [slow] = queue.submit(heavy.snapshot(), 200, 4)
        failed = events.terminal(slow.id)
        assert failed.kind.value == "error" and "chord recognition took longer" in failed.message
        assert not list(tmp_path.rglob("*.wav"))
    finally:
        queue.shutdown(timeout=WAIT_SECONDS)
