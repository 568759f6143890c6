"""A real Ray cluster on loopback for the cluster tests and the benchmark.

`ray start --head --block` runs in its own process group and is stopped by its pid (never
`ray stop`, which would stop every Ray cluster of this user on the machine). Workers are real
`jasco-bridge worker` processes. The head is asked for 127.0.0.1 (on Linux Ray substitutes the
machine's own address, see docs/cluster.md); the dashboard is off, the object store small and
the CPUs few: the machine is shared.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
START_SECONDS = 120.0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _environment() -> dict[str, str]:
    # Ray's worker processes inherit this: they must import this checkout, quietly.
    return {
        **os.environ,
        "PYTHONPATH": str(REPO),
        "RAY_USAGE_STATS_ENABLED": "0",
        "RAY_DEDUP_LOGS": "0",
        "HF_HUB_DISABLE_PROGRESS_BARS": "1",
    }


def _stop_group(process: subprocess.Popen, grace_seconds: float = 10.0) -> None:
    """SIGTERM the process group we started, SIGKILL what is left after the grace period."""
    if process.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(grace_seconds)
        except subprocess.TimeoutExpired:
            pass
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
    with contextlib.suppress(subprocess.TimeoutExpired):
        process.wait(5.0)


@dataclass
class LocalCluster:
    """Addresses of a running head: `address` (GCS, for processes on this node) and
    `client_address` (Ray Client, what a daemon on another machine would use)."""

    address: str
    client_address: str
    temp_dir: Path
    head: subprocess.Popen = field(repr=False)
    workers: list[subprocess.Popen] = field(default_factory=list, repr=False)

    def start_workers(self, *option_lists: tuple[str, ...]) -> list[subprocess.Popen]:
        """`jasco-bridge worker --cluster ADDRESS OPTIONS` for each option list, started
        together and returned once every one says ready."""
        launched = [self._launch(options) for options in option_lists]
        deadline = time.monotonic() + START_SECONDS
        for process, log, options in launched:
            while "worker: ready" not in log.read_text():
                if process.poll() is not None:
                    raise RuntimeError(f"worker {options} exited:\n{log.read_text()}")
                if time.monotonic() > deadline:
                    raise RuntimeError(f"worker {options} not ready in time:\n{log.read_text()}")
                time.sleep(0.2)
        return [process for process, _log, _options in launched]

    def _launch(self, options: tuple[str, ...]) -> tuple[subprocess.Popen, Path, tuple[str, ...]]:
        log = Path(tempfile.mkstemp(prefix="worker-", suffix=".log", dir=self.temp_dir)[1])
        with open(log, "w") as out:
            process = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "jasco_bridge",
                    "worker",
                    "--cluster",
                    self.address,
                    *options,
                ],
                stdout=out,
                stderr=subprocess.STDOUT,
                env=_environment(),
                start_new_session=True,
            )
        self.workers.append(process)
        return process, log, options

    def stop_worker(self, process: subprocess.Popen) -> None:
        _stop_group(process)
        self.workers.remove(process)


@contextlib.contextmanager
def local_cluster(num_cpus: int = 3) -> Iterator[LocalCluster]:
    temp_dir = Path(tempfile.mkdtemp(prefix="jb-ray-", dir="/tmp"))  # short: Ray's socket paths
    port, client_port = free_port(), free_port()
    head = subprocess.Popen(
        [
            _ray_command(),
            "start",
            "--head",
            "--block",
            "--node-ip-address",
            "127.0.0.1",
            "--port",
            str(port),
            "--ray-client-server-port",
            str(client_port),
            "--num-cpus",
            str(num_cpus),
            "--num-gpus",
            "0",
            "--include-dashboard",
            "false",
            "--object-store-memory",
            str(200 * 2**20),
            "--temp-dir",
            str(temp_dir),
            "--disable-usage-stats",
        ],
        stdout=subprocess.DEVNULL,
        stderr=open(temp_dir / "head.log", "w"),  # noqa: SIM115 - lives as long as the head
        env=_environment(),
        start_new_session=True,
    )
    cluster = LocalCluster(f"127.0.0.1:{port}", f"ray://127.0.0.1:{client_port}", temp_dir, head)
    try:
        _wait_for_port(port, head, temp_dir)
        _wait_for_port(client_port, head, temp_dir)
        yield cluster
    finally:
        for worker in list(cluster.workers):
            cluster.stop_worker(worker)
        _stop_group(head)
        shutil.rmtree(temp_dir, ignore_errors=True)


def _ray_command() -> str:
    beside_python = Path(sys.executable).parent / "ray"
    return str(beside_python) if beside_python.exists() else "ray"


def _wait_for_port(port: int, head: subprocess.Popen, temp_dir: Path) -> None:
    deadline = time.monotonic() + START_SECONDS
    while time.monotonic() < deadline:
        if head.poll() is not None:
            raise RuntimeError(f"ray start failed:\n{(temp_dir / 'head.log').read_text()}")
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.2)
    raise RuntimeError(f"the Ray head did not listen on {port} within {START_SECONDS} s")
