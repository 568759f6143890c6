"""One bulk list in several datagrams: begin, parts, commit; applied all or nothing."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from jasco_bridge import protocol
from jasco_bridge.osc import encode_packet, message
from tests.bridge.support import OscPeer, running_daemon


@pytest.fixture
def peer():
    client = OscPeer()
    yield client
    client.close()


def triad(bar: int, root: int) -> list[float]:
    return [v for step in (0, 4, 7) for v in (4.0 * (bar - 1), 4.0, float(48 + root + step), 90.0)]


def test_parts_are_applied_together_at_commit(tmp_path, peer):
    parts = [triad(1, 0), triad(2, 5), triad(3, 7)]  # C, F, G in three datagrams
    with running_daemon(tmp_path) as daemon:
        port = daemon.server.udp_port
        peer.send(port, "/jasco/tempo", 120.0)
        peer.send(port, "/jasco/chords/notes/begin")
        for part in parts:
            peer.send(port, "/jasco/chords/notes/part", *part)
        peer.send(port, "/jasco/chords/notes/commit", 9)
        peer.send(port, "/jasco/render", 1, 3)
        job = peer.expect("/jasco/ack").args[0]
        done = peer.expect("/jasco/done", lambda m: m.args[0] == job)
    meta = json.loads(Path(done.args[6]).read_text())
    assert [c["given"] for c in meta["chords"]][:3] == ["C:maj", "F:maj", "G:maj"]
    assert not [m for m in peer.inbox if m.address == "/jasco/error"]


def test_a_lost_part_applies_nothing(tmp_path, peer):
    with running_daemon(tmp_path) as daemon:
        port = daemon.server.udp_port
        peer.send(port, "/jasco/chords/notes/begin")
        peer.send(port, "/jasco/chords/notes/part", *triad(1, 0))
        peer.send(port, "/jasco/chords/notes/part", *triad(2, 5)[:-1])  # refused: 11 values
        assert "groups of 4" in peer.expect("/jasco/error").args[1]
        peer.send(port, "/jasco/chords/notes/commit", 6)
        error = peer.expect("/jasco/error")
        notes = daemon.call_in_loop(lambda: daemon.server.sessions.get("default").snapshot())
    assert "hold 3 groups, not 6" in error.args[1] and "nothing was applied" in error.args[1]
    assert notes.chord_source != "notes"  # not even the part that arrived


def test_parts_need_a_begin_and_a_commit_needs_parts(tmp_path, peer):
    with running_daemon(tmp_path) as daemon:
        port = daemon.server.udp_port
        peer.send(port, "/jasco/session/x/chords/symbols/part", 0.0, "Am7")
        assert "/jasco/chords/symbols/begin first" in peer.expect("/jasco/error").args[1]
        peer.send(port, "/jasco/session/x/chords/symbols/commit", 1)
        assert "nothing to commit" in peer.expect("/jasco/error").args[1]


def test_a_datagram_of_parts_holds_the_documented_3200_notes():
    notes = [v for i in range(3200) for v in (float(i), 1.0, 60, 100)]
    address = "/jasco/session/a-long-session-name/chords/notes/part"
    assert len(encode_packet(message(address, *notes))) <= 65507
    part = protocol.COMMANDS_BY_NAME["chords/notes/part"]
    assert part.repeat == protocol.COMMANDS_BY_NAME["chords/notes"].repeat
