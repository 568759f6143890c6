"""Issue 11 over real sockets: replies proportional to requests, TCP limits, the shared token."""

from __future__ import annotations

import argparse
import logging
import socket
import struct
import time

import pytest

from jasco_bridge.commands import serve
from jasco_bridge.config import DaemonConfig
from jasco_bridge.daemon import exposure_warnings
from jasco_bridge.errors import ConfigError
from jasco_bridge.osc import (
    IMMEDIATELY,
    OscBundle,
    SizePrefixDecoder,
    SlipDecoder,
    encode_packet,
    message,
    parse_packet,
    size_prefix_encode,
    slip_encode,
)
from tests.bridge.support import OscPeer, running_daemon

TOKEN = "correct horse battery"


def local_non_loopback_ip() -> str | None:
    """An address of this machine that is not loopback (traffic to it stays on this machine)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            probe.connect(("203.0.113.1", 9))  # no packet is sent: this only picks a route
            address = probe.getsockname()[0]
        except OSError:
            return None
    return None if address.startswith("127.") or address == "0.0.0.0" else address


REMOTE_IP = local_non_loopback_ip()
needs_remote_ip = pytest.mark.skipif(
    REMOTE_IP is None, reason="this machine has no non-loopback IPv4 address to send from"
)


class RemotePeer(OscPeer):
    """An OSC peer whose datagrams come from a non-loopback address of this machine."""

    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind((REMOTE_IP, 0))
        self.inbox = []

    def send_bytes(self, daemon_port: int, data: bytes) -> None:
        self.sock.sendto(data, (REMOTE_IP, daemon_port))


def prompt_of(daemon) -> str:
    return daemon.call_in_loop(lambda: daemon.server.sessions.get().prompt)


def ping_answered(peer: OscPeer, port: int, token: int = 7) -> None:
    peer.send(port, "/jasco/ping", token)
    assert peer.expect("/jasco/pong", lambda m: m.args == (token,), timeout=10).args == (token,)


# ---------------------------------------------------------------- replies proportional to requests


def test_bytes_that_are_not_osc_get_no_reply(tmp_path):
    peer = OscPeer()
    try:
        with running_daemon(tmp_path) as daemon:
            port = daemon.server.udp_port
            for junk in (b"\x00\x01\x02\x03", b"GET / HTTP/1.1\r\n\r\n", b"\xff" * 400, b""):
                peer.send_bytes(port, junk)
            assert peer.quiet_for(0.5) == []
            # Malformed but OSC-shaped still gets its one error, and the daemon keeps serving.
            peer.send_bytes(port, b"/abc")
            assert "invalid OSC packet" in peer.expect("/jasco/error", timeout=10).args[1]
            ping_answered(peer, port)
    finally:
        peer.close()


def test_a_bad_bundle_gets_one_error_with_the_count_and_applies_nothing(tmp_path):
    peer = OscPeer()
    try:
        with running_daemon(tmp_path) as daemon:
            port = daemon.server.udp_port
            elements = [message("/jasco/prompt", "should not apply")]
            elements += [message("/jasco/tempo", "fast")] * 500
            peer.send_packet(port, OscBundle(IMMEDIATELY, tuple(elements)))
            error = peer.expect("/jasco/error", timeout=10)
            assert "500 of 501 messages are invalid" in error.args[1]
            assert "message 2" in error.args[1] and "/jasco/tempo" in error.args[1]
            assert peer.quiet_for(0.5) == []
            assert prompt_of(daemon) != "should not apply"
    finally:
        peer.close()


def test_error_replies_are_rate_limited_per_source(tmp_path):
    flooder, bystander = OscPeer(), OscPeer()
    try:
        with running_daemon(tmp_path) as daemon:
            port = daemon.server.udp_port
            for _ in range(300):
                flooder.send(port, "/jasco/nope")
            errors = [m for m in flooder.quiet_for(1.0) if m.address == "/jasco/error"]
            assert 1 <= len(errors) <= 40  # a burst of 20 plus what refills in the second
            # The limit is per source host; the bystander on the same host shares it, so it is
            # the read-only ping, never limited, that shows the daemon still serves.
            ping_answered(bystander, port)
    finally:
        flooder.close()
        bystander.close()


def test_invalid_packet_logging_is_throttled_and_summarised(tmp_path, caplog):
    peer = OscPeer()
    try:
        with caplog.at_level(logging.WARNING, logger="jasco_bridge.server"):
            with running_daemon(tmp_path) as daemon:
                port = daemon.server.udp_port
                for index in range(400):
                    peer.send_bytes(port, b"/ab" if index % 2 else b"junk")
                ping_answered(peer, port)
        lines = [r.getMessage() for r in caplog.records if r.name == "jasco_bridge.server"]
        assert len(lines) <= 15
        assert any("were not logged one by one" in line for line in lines)
    finally:
        peer.close()


@needs_remote_ip
def test_errors_to_a_forgeable_source_are_never_larger_than_the_request(tmp_path):
    peer = RemotePeer()
    try:
        with running_daemon(tmp_path, host="0.0.0.0") as daemon:
            port = daemon.server.udp_port
            small = encode_packet(message("/jasco/tempo", "fast"))
            peer.send_bytes(port, small)
            peer.send_bytes(port, b"/ab\x00")  # 4 bytes: even a bare error would not fit
            big = encode_packet(message("/jasco/tempo", "x" * 40))
            peer.send_bytes(port, big)
            replies = peer.quiet_for(1.0)
            sizes = [len(encode_packet(m)) for m in replies]
            assert len(replies) == 2 and sizes[0] <= len(small) and sizes[1] <= len(big)
            assert replies[1].args[1].startswith("/jasco/tempo: bpm")
    finally:
        peer.close()


# ---------------------------------------------------------------- TCP limits


def read_frames(conn: socket.socket, decoder, count: int, timeout: float = 10.0):
    conn.settimeout(timeout)
    out = []
    while len(out) < count:
        chunk = conn.recv(65536)
        if not chunk:
            break
        out += [parse_packet(item) for item in decoder.feed(chunk)]
    return out


def test_an_odd_sized_frame_is_skipped_and_the_connection_keeps_working(tmp_path):
    with running_daemon(tmp_path) as daemon:
        with socket.create_connection(("127.0.0.1", daemon.server.tcp_port), timeout=10) as conn:
            conn.sendall(bytes.fromhex("00000003414141"))
            conn.sendall(size_prefix_encode(encode_packet(message("/jasco/ping", 5))))
            error, pong = read_frames(conn, SizePrefixDecoder(), 2)
            assert error.address == "/jasco/error" and "multiple of 4" in error.args[1]
            assert pong.address == "/jasco/pong" and pong.args == (5,)


def test_connections_past_the_cap_are_closed_and_the_daemon_keeps_rendering(tmp_path):
    peer = OscPeer()
    held = []
    try:
        with running_daemon(tmp_path, max_tcp_connections=4) as daemon:
            port = daemon.server.tcp_port
            for _ in range(4):
                held.append(socket.create_connection(("127.0.0.1", port), timeout=10))
                held[-1].sendall(slip_encode(encode_packet(message("/jasco/ping", 1))))
                assert read_frames(held[-1], SlipDecoder(), 1)[0].address == "/jasco/pong"
            extra = [socket.create_connection(("127.0.0.1", port), timeout=10) for _ in range(20)]
            for conn in extra:
                conn.settimeout(10)
                assert conn.recv(1) == b""  # closed by the daemon, not left hanging
                conn.close()
            ping_answered(peer, daemon.server.udp_port)
            held.pop().close()
            time.sleep(0.2)
            with socket.create_connection(("127.0.0.1", port), timeout=10) as conn:
                conn.sendall(slip_encode(encode_packet(message("/jasco/ping", 2))))
                assert read_frames(conn, SlipDecoder(), 1)[0].args == (2,)
    finally:
        for conn in held:
            conn.close()
        peer.close()


def test_idle_and_stalled_frame_connections_are_closed(tmp_path):
    with running_daemon(
        tmp_path, tcp_idle_timeout_seconds=0.5, tcp_frame_timeout_seconds=0.5
    ) as daemon:
        port = daemon.server.tcp_port
        with socket.create_connection(("127.0.0.1", port), timeout=10) as idle:
            started = time.monotonic()
            assert idle.recv(1) == b""
            assert time.monotonic() - started < 5
    with running_daemon(
        tmp_path, tcp_idle_timeout_seconds=60.0, tcp_frame_timeout_seconds=0.5
    ) as daemon:
        with socket.create_connection(("127.0.0.1", daemon.server.tcp_port), timeout=10) as slow:
            slow.sendall(struct.pack(">i", 64) + b"/jas")  # a frame begun, never finished
            started = time.monotonic()
            assert slow.recv(1) == b""
            assert time.monotonic() - started < 5


# ---------------------------------------------------------------- the allow-list and the token


def test_a_non_loopback_bind_without_an_allow_list_is_announced_loudly():
    exposed = exposure_warnings(DaemonConfig(host="0.0.0.0", port=0))
    assert any("no --allow list" in line for line in exposed)
    assert any("--token" in line for line in exposed)
    assert exposure_warnings(DaemonConfig(port=0)) == []
    guarded = exposure_warnings(
        DaemonConfig(host="0.0.0.0", port=0, allow=("10.0.0.0/8",), token=TOKEN)
    )
    assert guarded == []


def test_the_token_is_checked_at_configuration_and_read_from_the_environment(monkeypatch):
    with pytest.raises(ConfigError, match="at least 8 characters"):
        DaemonConfig(token="short")
    assert TOKEN not in repr(DaemonConfig(token=TOKEN))
    parser = argparse.ArgumentParser()
    serve.add_arguments(parser)
    monkeypatch.setenv("JASCO_BRIDGE_TOKEN", TOKEN)
    assert DaemonConfig.from_args(parser.parse_args([])).token == TOKEN
    assert DaemonConfig.from_args(parser.parse_args(["--token", "given-on-cli"])).token == (
        "given-on-cli"
    )
    monkeypatch.delenv("JASCO_BRIDGE_TOKEN")
    assert DaemonConfig.from_args(parser.parse_args([])).token is None


def test_loopback_clients_need_no_token(tmp_path):
    peer = OscPeer()
    try:
        with running_daemon(tmp_path, token=TOKEN) as daemon:
            peer.send(daemon.server.udp_port, "/jasco/prompt", "local")
            ping_answered(peer, daemon.server.udp_port)
            assert prompt_of(daemon) == "local"
    finally:
        peer.close()


@needs_remote_ip
def test_remote_state_changes_need_the_token_over_udp(tmp_path):
    peer = RemotePeer()
    try:
        with running_daemon(tmp_path, host="0.0.0.0", token=TOKEN) as daemon:
            port = daemon.server.udp_port
            padded = "p" * 200  # long enough for the whole error text to fit its size cap
            peer.send(port, "/jasco/prompt", padded)
            assert "needs the daemon's token" in peer.expect("/jasco/error", timeout=10).args[1]
            ping_answered(peer, port)  # read-only commands need no token
            wrong = OscBundle(
                IMMEDIATELY,
                (message("/jasco/auth", "guess-guess"), message("/jasco/prompt", padded)),
            )
            peer.send_packet(port, wrong)
            assert "wrong token" in peer.expect("/jasco/error", timeout=10).args[1]
            assert prompt_of(daemon) != padded
            right = OscBundle(
                IMMEDIATELY, (message("/jasco/auth", TOKEN), message("/jasco/prompt", "remote"))
            )
            peer.send_packet(port, right)
            ping_answered(peer, port)
            assert prompt_of(daemon) == "remote"
            # Over UDP the token covers only its own bundle.
            peer.send(port, "/jasco/prompt", padded)
            assert "needs the daemon's token" in peer.expect("/jasco/error", timeout=10).args[1]
    finally:
        peer.close()


@needs_remote_ip
def test_remote_state_changes_need_the_token_once_per_tcp_connection(tmp_path):
    with running_daemon(tmp_path, host="0.0.0.0", token=TOKEN) as daemon:
        port = daemon.server.tcp_port
        with socket.create_connection(
            (REMOTE_IP, port), timeout=10, source_address=(REMOTE_IP, 0)
        ) as conn:
            conn.sendall(slip_encode(encode_packet(message("/jasco/prompt", "refused"))))
            (error,) = read_frames(conn, SlipDecoder(), 1)
            assert "needs the daemon's token" in error.args[1]
            conn.sendall(slip_encode(encode_packet(message("/jasco/auth", TOKEN))))
            conn.sendall(slip_encode(encode_packet(message("/jasco/prompt", "remote over tcp"))))
            conn.sendall(slip_encode(encode_packet(message("/jasco/ping", 3))))
            (pong,) = read_frames(conn, SlipDecoder(), 1)
            assert pong.address == "/jasco/pong"
            assert prompt_of(daemon) == "remote over tcp"
