"""Rendering through a real Ray cluster: the same audio as here, progress, cancel, a worker
killed mid-render, two daemons on one pool, and the whole OSC loop."""

from __future__ import annotations

import os
import signal
import threading
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from engine.errors import GenerationCancelled
from engine.request import GenerationRequest, LongRequest
from jasco_bridge.cli import main
from jasco_bridge.cluster import list_workers
from jasco_bridge.config import DaemonConfig
from jasco_bridge.daemon import BackgroundDaemon
from jasco_bridge.engines import open_renderer
from jasco_bridge.errors import RenderError
from tests.bridge.support import OscPeer, running_daemon, set_up_four_bars
from tests.conftest import GOLDEN

WAIT_SECONDS = 120.0


def preview_request(seed: int = 5) -> GenerationRequest:
    return GenerationRequest(
        text="warm rhodes",
        chord_indices=tuple([2] * 250 + [8] * 250),
        beat_seconds=tuple(0.5 * i for i in range(20)),
        downbeat_seconds=(0.0, 2.0, 4.0, 6.0, 8.0),
        seed=seed,
        steps=4,
    )


def jasco_request(seed: int = 7, steps: int = 2) -> GenerationRequest:
    drums = np.zeros(2 * 32000, dtype=np.float32)
    drums[::16000] = 1.0  # clicks on the beat, sent as an array
    return GenerationRequest(
        text="lofi hip hop groove",
        chord_indices=tuple([2] * 50 + [8] * 50),
        drums_wav=drums,
        duration_seconds=2.0,
        seed=seed,
        steps=steps,
    )


@pytest.fixture(scope="module")
def cluster_preview(ray_cluster):
    return open_renderer("preview", cluster=ray_cluster.client_address)


@pytest.fixture(scope="module")
def cluster_jasco(ray_cluster):
    return open_renderer("jasco", model=str(GOLDEN), cluster=ray_cluster.client_address)


@pytest.fixture(scope="module")
def local_jasco():
    return open_renderer("jasco", model=GOLDEN, device="cpu")


def wait_for_workers(engine: str, count: int) -> list[dict]:
    deadline = time.monotonic() + WAIT_SECONDS
    while time.monotonic() < deadline:
        workers = [w for w in list_workers() if w["engine"] == engine]
        if len(workers) >= count:
            return workers
        time.sleep(0.5)
    raise AssertionError(f"fewer than {count} {engine} workers after {WAIT_SECONDS} s")


def test_doctor_lists_the_workers_their_devices_and_models(ray_cluster, capsys):
    # In this process (which is connected already): a fresh one costs a Ray Client session.
    assert main(["doctor", "--cluster", ray_cluster.client_address]) == 0
    out = capsys.readouterr().out
    lines = [
        line for line in out.splitlines() if line.startswith("OK") and "cluster worker" in line
    ]
    assert len(lines) == 3, out
    assert sum("preview" in line for line in lines) == 1
    assert sum("jasco" in line and "chords_drums" in line for line in lines) == 2
    assert all("cpu" in line for line in lines)


def test_the_cluster_renderer_takes_the_workers_timing_and_chord_table(cluster_jasco, local_jasco):
    remote, local = cluster_jasco.renderer, local_jasco.renderer
    for name in ("name", "is_preview", "sample_rate", "frame_rate_hz", "segment_seconds"):
        assert getattr(remote, name) == getattr(local, name), name
    assert remote.accepts_melody == local.accepts_melody
    assert cluster_jasco.vocabulary.labels == local_jasco.vocabulary.labels
    assert "2 worker(s)" in cluster_jasco.notice


def test_preview_on_the_cluster_is_the_local_preview_sample_for_sample(cluster_preview):
    local = open_renderer("preview").renderer.generate(preview_request())
    remote = cluster_preview.renderer.generate(preview_request())
    assert np.array_equal(remote.audio, local.audio)
    assert (remote.sample_rate, remote.engine) == (local.sample_rate, "preview")


def test_jasco_on_the_cluster_renders_what_it_renders_here(cluster_jasco, local_jasco):
    steps: list[tuple[int, int]] = []
    remote = cluster_jasco.renderer.generate(
        jasco_request(), progress=lambda s, n: steps.append((s, n))
    )
    local = local_jasco.renderer.generate(jasco_request())
    assert steps == [(1, 2), (2, 2)]
    assert remote.audio.shape == local.audio.shape == (2 * 32000,)
    # bf16 matmuls split over another thread count round a few values differently (a worker
    # is not this process): the same render, up to those few samples
    difference = np.abs(remote.audio - local.audio)
    assert difference.mean() < 1e-5 and difference.max() < 0.01
    other = cluster_jasco.renderer.generate(jasco_request(seed=8))
    assert np.abs(other.audio - remote.audio).max() > 1e-3


def test_a_long_render_runs_whole_on_one_worker_as_it_does_here(cluster_jasco, local_jasco):
    windows = tuple(
        replace(jasco_request(), duration_seconds=2.0, seed=7, chord_indices=(c,) * 100)
        for c in (2, 8, 20)
    )
    request = LongRequest(windows, (0, 40, 40))
    steps: list[tuple[int, int]] = []
    seen: list[tuple[int, int]] = []
    remote = cluster_jasco.renderer.generate_long(
        request,
        progress=lambda s, n: steps.append((s, n)),
        on_window=lambda i, n: seen.append((i, n)),
    )
    local = local_jasco.renderer.generate_long(request)
    assert steps == [(s, 6) for s in range(1, 7)]
    assert seen[-1] == (2, 3) and seen == sorted(set(seen))
    assert remote.audio.shape == local.audio.shape == (220 * 640,)
    # bf16 rounding may flip a few values between processes with other thread counts, and a
    # flip in one window carries into the next: the same piece, not bit for bit
    difference = np.abs(remote.audio - local.audio)
    assert difference.mean() < 1e-4 and difference.max() < 0.05


def test_a_cancel_reaches_the_remote_sampler_within_a_step(cluster_jasco):
    steps: list[int] = []
    with pytest.raises(GenerationCancelled):
        cluster_jasco.renderer.generate(
            jasco_request(steps=20),
            progress=lambda s, n: steps.append(s),
            should_cancel=lambda: bool(steps),
        )
    # The cancel is sent at the first step; the sampler may finish the step it is in.
    assert 1 <= len(steps) <= 3


def test_a_full_cluster_keeps_the_daemons_bounded_queue_refusing(ray_cluster, tmp_path):
    config = DaemonConfig(
        port=0,
        tcp_port=None,
        out_dir=tmp_path / "clips",
        engine="jasco",
        model=str(GOLDEN),
        cluster=ray_cluster.client_address,
        max_queue=1,
        shutdown_timeout_seconds=0.0,
    )
    peer = OscPeer()
    try:
        with BackgroundDaemon(config) as daemon:
            port = daemon.server.udp_port
            set_up_four_bars(peer, port)
            peer.send(port, "/jasco/set", "steps", 200)
            # Two render at once (one per JASCO worker), one waits, the fourth is refused. Each
            # of the first two is seen running before the next is sent, so the count is exact.
            acks = []
            for _ in range(2):
                peer.send(port, "/jasco/render", 1, 1)
                job = peer.expect("/jasco/ack").args[0]
                peer.expect("/jasco/progress", lambda m, job=job: m.args[0] == job)
                acks.append(job)
            peer.send(port, "/jasco/render", 1, 1)
            acks.append(peer.expect("/jasco/ack").args[0])
            peer.send(port, "/jasco/render", 1, 1)
            assert "queue full" in peer.expect("/jasco/error").args[1]
            for job in acks:
                peer.send(port, "/jasco/cancel", job)
            for job in acks:
                peer.expect("/jasco/cancelled", lambda m, job=job: m.args[0] == job)
    finally:
        peer.close()


def render_bar_one(daemon: BackgroundDaemon, peer: OscPeer) -> tuple[np.ndarray, list[float]]:
    port = daemon.server.udp_port
    set_up_four_bars(peer, port)
    peer.send(port, "/jasco/render", 1, 2)
    job = peer.expect("/jasco/ack").args[0]
    done = peer.expect("/jasco/done", lambda m: m.args[0] == job, timeout=WAIT_SECONDS)
    fractions = [m.args[1] for m in peer.inbox if m.address == "/jasco/progress"]
    audio, _rate = sf.read(Path(done.args[1]), dtype="float32")
    return audio, fractions


def test_the_osc_loop_renders_through_the_cluster_the_clip_it_renders_here(ray_cluster, tmp_path):
    peer, local_peer = OscPeer(), OscPeer()
    try:
        with running_daemon(tmp_path / "here") as here:
            local, _ = render_bar_one(here, local_peer)
        config = DaemonConfig(
            port=0,
            tcp_port=None,
            out_dir=tmp_path / "cluster",
            engine="preview",
            cluster=ray_cluster.client_address,
            shutdown_timeout_seconds=5.0,
        )
        with BackgroundDaemon(config) as daemon:
            assert any("Ray cluster" in line for line in daemon.announced)
            remote, fractions = render_bar_one(daemon, peer)
    finally:
        peer.close()
        local_peer.close()
    assert fractions == [0.25, 0.5, 0.75, 1.0]
    assert np.array_equal(remote, local)


def test_two_daemons_share_the_pool(ray_cluster, tmp_path):
    peers = [OscPeer(), OscPeer()]
    configs = [
        DaemonConfig(
            port=0,
            tcp_port=None,
            out_dir=tmp_path / f"daemon{i}",
            engine="preview",
            cluster=ray_cluster.client_address,
        )
        for i in range(2)
    ]
    try:
        with BackgroundDaemon(configs[0]) as first, BackgroundDaemon(configs[1]) as second:
            for daemon, peer in zip((first, second), peers, strict=True):
                set_up_four_bars(peer, daemon.server.udp_port)
                peer.send(daemon.server.udp_port, "/jasco/set", "variations", 3)
                peer.send(daemon.server.udp_port, "/jasco/render", 1, 1)
            for daemon, peer in zip((first, second), peers, strict=True):
                jobs = [peer.expect("/jasco/ack").args[0] for _ in range(3)]
                for job in jobs:
                    done = peer.expect("/jasco/done", lambda m, job=job: m.args[0] == job)
                    assert Path(done.args[1]).is_relative_to(daemon.daemon.config.out_dir)
    finally:
        for peer in peers:
            peer.close()


def test_two_variations_render_at_once_on_two_workers(ray_cluster, tmp_path):
    wait_for_workers("jasco", 2)
    config = DaemonConfig(
        port=0,
        tcp_port=None,
        out_dir=tmp_path / "clips",
        engine="jasco",
        model=str(GOLDEN),
        cluster=ray_cluster.client_address,
    )
    peer = OscPeer()
    try:
        with BackgroundDaemon(config) as daemon:
            assert any("2 worker(s)" in line for line in daemon.announced)
            port = daemon.server.udp_port
            set_up_four_bars(peer, port)
            peer.send(port, "/jasco/set", "steps", 20)
            peer.send(port, "/jasco/set", "variations", 2)
            peer.send(port, "/jasco/render", 1, 1)
            first, second = (peer.expect("/jasco/ack").args[0] for _ in range(2))
            peer.expect("/jasco/done", lambda m: m.args[0] == first, timeout=WAIT_SECONDS)
            # What came in before the first clip was done: the second was rendering meanwhile.
            before = [m.args[0] for m in peer.inbox if m.address == "/jasco/progress"]
            assert second in before, before
            peer.expect("/jasco/done", lambda m: m.args[0] == second, timeout=WAIT_SECONDS)
    finally:
        peer.close()


def test_render_cli_renders_on_the_cluster(ray_cluster, tmp_path, capsys):
    from jasco_bridge.commands.demo import demo_file

    out = tmp_path / "clip.wav"
    argv = ["render", str(demo_file()), "--prompt", "lofi", "--engine", "preview"]
    argv += ["--cluster", ray_cluster.client_address, "--bars", "2", "-o", str(out)]
    assert main(argv) == 0
    assert "Ray cluster" in capsys.readouterr().err
    audio, rate = sf.read(out)
    assert len(audio) > rate and np.abs(audio).max() > 0.01


class KillAtFirstStep:
    """A progress callback that SIGKILLs the process of the worker rendering, at the first step
    of each of the first `kills` workers it sees."""

    def __init__(self, renderer, kills: int) -> None:
        self.renderer = renderer
        self.kills = kills
        self.killed: list[str] = []
        self.steps: list[tuple[int, int]] = []
        self._lock = threading.Lock()

    def __call__(self, step: int, total: int) -> None:
        self.steps.append((step, total))
        with self._lock:
            if len(self.killed) >= self.kills:
                return
            busy = [w for w in list_workers() if w["busy_for"] == self.renderer.client]
            for worker in busy:
                if worker["name"] not in self.killed:
                    os.kill(worker["pid"], signal.SIGKILL)
                    self.killed.append(worker["name"])


def test_a_worker_killed_mid_render_is_retried_once_on_another(cluster_jasco, local_jasco):
    wait_for_workers("jasco", 2)
    kill = KillAtFirstStep(cluster_jasco.renderer, kills=1)
    result = cluster_jasco.renderer.generate(jasco_request(steps=4), progress=kill)
    assert len(kill.killed) == 1
    assert kill.steps[-1] == (4, 4)
    local = local_jasco.renderer.generate(jasco_request(steps=4))
    np.testing.assert_allclose(result.audio, local.audio, rtol=0, atol=1e-5)


def test_when_the_retry_dies_too_the_job_fails_saying_so(cluster_jasco):
    wait_for_workers("jasco", 2)  # Ray restarted the worker killed above; it registered again
    kill = KillAtFirstStep(cluster_jasco.renderer, kills=2)
    with pytest.raises(RenderError, match="died while rendering"):
        cluster_jasco.renderer.generate(jasco_request(steps=4), progress=kill)
    assert len(kill.killed) == 2
