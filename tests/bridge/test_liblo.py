"""Interoperability with an OSC implementation not written here: liblo's oscsend and oscdump.

oscsend sends from a throw-away port, so the daemon is started with a reply port on which
oscdump listens: the same setup docs/osc.md gives for a quick start.
"""

from __future__ import annotations

import queue
import shutil
import socket
import subprocess
import threading
import time

import pytest

from tests.bridge.support import WAIT_SECONDS, running_daemon

pytestmark = pytest.mark.skipif(
    shutil.which("oscsend") is None or shutil.which("oscdump") is None,
    reason="liblo-tools (oscsend, oscdump) is not installed: apt-get install liblo-tools",
)


def free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def oscsend(target: str, *args: str) -> None:
    subprocess.run(["oscsend", *target.split(), *args], check=True, timeout=10, capture_output=True)


class OscDump:
    """oscdump on a port, its output lines collected by a reader thread."""

    def __init__(self, port: int) -> None:
        self.process = subprocess.Popen(
            ["oscdump", "-L", str(port)],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        self.lines: queue.Queue[str] = queue.Queue()
        threading.Thread(target=self._pump, daemon=True).start()

    def _pump(self) -> None:
        for line in self.process.stdout:
            self.lines.put(line.rstrip("\n"))

    def wait_for(self, address: str, timeout: float = WAIT_SECONDS) -> str:
        deadline = time.monotonic() + timeout
        seen = []
        while (left := deadline - time.monotonic()) > 0:
            try:
                line = self.lines.get(timeout=left)
            except queue.Empty:
                break
            seen.append(line)
            # oscdump prints "[timestamp] /address types values" depending on version: find it.
            if f"{address} " in line or line.endswith(address):
                return line
        raise AssertionError(f"oscdump saw no {address} within {timeout} s; saw {seen[-10:]}")

    def close(self) -> None:
        self.process.terminate()
        self.process.wait(10)


@pytest.fixture
def dump():
    port = free_udp_port()
    dumper = OscDump(port)
    yield port, dumper
    dumper.close()


def test_oscsend_renders_and_oscdump_receives_done(tmp_path, dump):
    reply_port, dumper = dump
    with running_daemon(tmp_path, reply_port=reply_port) as daemon:
        target = f"127.0.0.1 {daemon.server.udp_port}"
        # oscdump needs a moment to bind: ping until it hears the pong.
        for _ in range(100):
            oscsend(target, "/jasco/ping", "i", "1")
            try:
                dumper.wait_for("/jasco/pong", timeout=0.3)
                break
            except AssertionError:
                continue
        oscsend(target, "/jasco/tempo", "fii", "100", "4", "4")
        oscsend(target, "/jasco/chords/symbols", "fsfs", "0", "Am7", "4", "D9")
        oscsend(target, "/jasco/prompt", "s", "lofi hip hop, rhodes")
        oscsend(target, "/jasco/render", "ii", "1", "2")
        assert "/jasco/ack" in dumper.wait_for("/jasco/ack")
        done = dumper.wait_for("/jasco/done")
    assert ".wav" in done and "bars001-002" in done
    assert (tmp_path / "clips" / "default").is_dir()


def test_liblo_errors_come_back_readable(tmp_path, dump):
    reply_port, dumper = dump
    with running_daemon(tmp_path, reply_port=reply_port) as daemon:
        target = f"127.0.0.1 {daemon.server.udp_port}"
        for _ in range(100):
            oscsend(target, "/jasco/tempo", "s", "fast")
            try:
                line = dumper.wait_for("/jasco/error", timeout=0.3)
                break
            except AssertionError:
                continue
        else:
            pytest.fail("no /jasco/error from the daemon")
    assert "bpm must be a number" in line


def test_oscsend_over_tcp_uses_size_prefixed_framing(tmp_path):
    with running_daemon(tmp_path) as daemon:
        url = f"osc.tcp://127.0.0.1:{daemon.server.tcp_port}"
        oscsend(url, "/jasco/session/tcp/prompt", "s", "sent over tcp")

        def prompt_of_tcp_session() -> str | None:
            sessions = daemon.server.sessions
            return sessions.get("tcp").prompt if "tcp" in sessions.names() else None

        deadline = time.monotonic() + WAIT_SECONDS
        while daemon.call_in_loop(prompt_of_tcp_session) != "sent over tcp":
            assert time.monotonic() < deadline, "the TCP message never reached the session"
            time.sleep(0.01)


def test_oscsend_names_its_reply_port_without_a_daemon_wide_flag(tmp_path, dump):
    reply_port, dumper = dump
    with running_daemon(tmp_path) as daemon:  # no --reply-port
        target = f"127.0.0.1 {daemon.server.udp_port}"
        # Each oscsend is a new socket; the route holds for this host and session.
        oscsend(target, "/jasco/session/liblo/reply/port", "i", str(reply_port))
        for _ in range(100):
            oscsend(target, "/jasco/session/liblo/prompt", "i", "3")  # an error, for session liblo
            try:
                line = dumper.wait_for("/jasco/error", timeout=0.3)
                break
            except AssertionError:
                continue
        else:
            pytest.fail("no reply reached the port named with /jasco/session/liblo/reply/port")
    assert "text must be a string" in line
