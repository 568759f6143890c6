"""/jasco/reply/port: a client that cannot receive on its sending socket names where it listens."""

from __future__ import annotations

import socket

import pytest

from jasco_bridge.osc import (
    SLIP_END,
    SlipDecoder,
    encode_packet,
    message,
    parse_packet,
    slip_encode,
)
from tests.bridge.support import OscPeer, running_daemon, set_up_four_bars


@pytest.fixture
def peer():
    client = OscPeer()
    yield client
    client.close()


@pytest.fixture
def listeners():
    made = [OscPeer(), OscPeer()]
    yield made
    for listener in made:
        listener.close()


def test_replies_follow_the_named_port_for_that_session_only(tmp_path, peer, listeners):
    first, second = listeners
    with running_daemon(tmp_path) as daemon:
        port = daemon.server.udp_port
        peer.send(port, "/jasco/reply/port", first.port)
        peer.send(port, "/jasco/session/b/reply/port", second.port, "127.0.0.1")
        peer.send(port, "/jasco/ping", 1)
        assert first.expect("/jasco/pong").args == (1,)
        set_up_four_bars(peer, port)
        set_up_four_bars(peer, port, prefix="/jasco/session/b")
        peer.send(port, "/jasco/render", 1, 1, "a")
        peer.send(port, "/jasco/session/b/render", 1, 1, "b")
        assert first.expect("/jasco/done").args[-1] == "a"
        assert second.expect("/jasco/done").args[-1] == "b"
        peer.send(port, "/jasco/reply/port", 0)  # back to the sender
        peer.send(port, "/jasco/ping", 2)
        assert peer.expect("/jasco/pong").args == (2,)
    assert not [m for m in peer.inbox if m.address == "/jasco/done"]


def test_replies_never_go_to_a_host_that_did_not_send(tmp_path, peer):
    with running_daemon(tmp_path) as daemon:
        peer.send(daemon.server.udp_port, "/jasco/reply/port", 9, "192.0.2.7")
        error = peer.expect("/jasco/error")
        assert "not to 192.0.2.7" in error.args[1]
        peer.send(daemon.server.udp_port, "/jasco/reply/port", 9, "example.org")
        assert "must be an IP address" in peer.expect("/jasco/error").args[1]


def test_over_tcp_the_connection_is_the_reply_channel(tmp_path):
    decoder = SlipDecoder()
    with running_daemon(tmp_path) as daemon:
        with socket.create_connection(("127.0.0.1", daemon.server.tcp_port), timeout=10) as sock:
            packet = slip_encode(encode_packet(message("/jasco/reply/port", 9)))
            sock.sendall(bytes([SLIP_END]) + packet)
            frames: list = []
            while not frames:
                frames = decoder.feed(sock.recv(65536))
    reply = parse_packet(frames[0])
    assert reply.address == "/jasco/error" and "over TCP" in reply.args[1]
