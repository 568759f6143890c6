"""`serve --ready-file`: a script that starts the daemon on free ports learns them from a file."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

from tests.bridge.support import REPO, WAIT_SECONDS, OscPeer, running_daemon


def test_the_ready_file_names_the_bound_ports_and_engine(tmp_path):
    ready = tmp_path / "state" / "ready.json"
    with running_daemon(tmp_path, ready_file=ready) as daemon:
        document = json.loads(ready.read_text())
        assert document == {
            "host": "127.0.0.1",
            "udp_port": daemon.server.udp_port,
            "tcp_port": daemon.server.tcp_port,
            "engine": "preview",
            "model": daemon.renderer.model_id,
            "out_dir": str((tmp_path / "clips").absolute()),
            "pid": os.getpid(),
        }
        assert [p.name for p in ready.parent.iterdir()] == ["ready.json"]  # no temporary left
    assert not ready.exists(), "a stopped daemon must not leave a ready file behind"


def test_serve_with_port_0_is_reachable_through_its_ready_file(tmp_path):
    ready = tmp_path / "ready.json"
    command = [sys.executable, "-m", "jasco_bridge", "serve", "--port", "0", "--tcp-port", "0"]
    command += ["--engine", "preview", "--out-dir", str(tmp_path), "--ready-file", str(ready)]
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    process = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + WAIT_SECONDS
        while not ready.exists() and process.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        document = json.loads(ready.read_text())
        assert document["pid"] == process.pid and document["engine"] == "preview"
        assert document["udp_port"] > 0 and document["tcp_port"] > 0
        client = OscPeer()
        try:
            client.send(document["udp_port"], "/jasco/ping", 5)
            assert client.expect("/jasco/pong").args == (5,)
        finally:
            client.close()
        process.send_signal(signal.SIGINT)
        process.communicate(timeout=WAIT_SECONDS)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.returncode == 0
    assert not ready.exists()
