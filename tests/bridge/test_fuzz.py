"""Thousands of hostile datagrams: the codec only ever raises ProtocolError, and the daemon
keeps answering and finishes the jobs it had already queued."""

from __future__ import annotations

import random
import socket
import struct

from jasco_bridge import protocol
from jasco_bridge.errors import ProtocolError
from jasco_bridge.osc import (
    IMMEDIATELY,
    OscBundle,
    OscMessage,
    encode_packet,
    message,
    parse_packet,
)
from tests.bridge.support import OscPeer, one_running_one_queued, running_daemon

VALID = [
    message("/jasco/tempo", 120.0, 4, 4),
    message("/jasco/chords/notes", 0.0, 4.0, 60, 100, 0.0, 4.0, 64, 100),
    message("/jasco/chords/symbols", 0.0, "Am7", 4.0, "D9"),
    message("/jasco/prompt", "lofi"),
    message("/jasco/set", "steps", 4),
    OscBundle(IMMEDIATELY, (message("/jasco/ping", 3), message("/jasco/status"))),
]


def hostile_datagrams(rng: random.Random, count: int) -> list[bytes]:
    """Random bytes, truncations and bit flips of valid packets, wrong types, huge and odd values."""
    encoded = [encode_packet(p) for p in VALID]
    out: list[bytes] = []
    # /jasco/cancel is left out: a random "T" argument is a valid "cancel job 1", which would be
    # the flood legitimately cancelling the job whose survival the test checks.
    addresses = [c.address for c in protocol.COMMANDS if c.name != "cancel"]
    addresses += ["/jasco/session/x/render", "/jasco/session/../tempo", "/jasco/session/x/y/z"]
    while len(out) < count:
        kind = rng.randrange(8)
        base = rng.choice(encoded)
        if kind == 0:
            out.append(rng.randbytes(rng.randrange(0, 200)))
        elif kind == 1:
            out.append(base[: rng.randrange(len(base))])
        elif kind == 2:
            flipped = bytearray(base)
            for _ in range(rng.randrange(1, 4)):
                flipped[rng.randrange(len(flipped))] ^= 1 << rng.randrange(8)
            out.append(bytes(flipped))
        elif kind == 3:
            # A valid address with random arguments of random types.
            args = [
                rng.choice(
                    [
                        rng.random() * 1e9,
                        -rng.randrange(2**31),
                        "x" * rng.randrange(50),
                        b"\x00",
                        None,
                        True,
                    ]
                )
                for _ in range(rng.randrange(6))
            ]
            out.append(encode_packet(OscMessage(rng.choice(addresses), tuple(args))))
        elif kind == 4:
            out.append(encode_packet(message("/jasco/prompt", "ü" * rng.randrange(2000, 6000))))
        elif kind == 5:
            # Bundle elements whose sizes lie.
            body = rng.choice(encoded)
            size = rng.choice([len(body) + 4, -4, 3, 2**31 - 1, 0])
            out.append(b"#bundle\x00" + struct.pack(">Q", 1) + struct.pack(">i", size) + body)
        elif kind == 6:
            out.append(encode_packet(message(rng.choice(addresses), float("nan"), float("inf"))))
        else:
            out.append(encode_packet(message("/jasco/render", rng.choice([0, -1, 10**6, 1.5]), 3)))
    return out


def answers_ping(peer: OscPeer, port: int) -> bool:
    """UDP may drop our ping while the kernel buffer is full of flood: ask a few times."""
    for token in range(100, 110):
        peer.send(port, "/jasco/ping", token)
        try:
            peer.expect("/jasco/pong", lambda m, token=token: m.args == (token,), timeout=3)
            return True
        except AssertionError:
            continue
    return False


def test_the_codec_raises_only_protocol_errors():
    rng = random.Random(1)
    parsed = 0
    for data in hostile_datagrams(rng, 20_000):
        try:
            parse_packet(data)
            parsed += 1
        except ProtocolError:
            pass
    assert parsed > 1000  # some mutations stay valid: the generator is not only producing junk


def test_the_daemon_survives_a_flood_and_finishes_queued_jobs(tmp_path, peer):
    with running_daemon(tmp_path, gated=True) as daemon:
        port = daemon.server.udp_port
        jobs = one_running_one_queued(peer, daemon)
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as attacker:
            for data in hostile_datagrams(random.Random(2), 3000):
                attacker.sendto(data, ("127.0.0.1", port))
        assert answers_ping(peer, port)
        daemon.renderer.gate.set()
        for job in jobs:
            done = peer.expect("/jasco/done", lambda m, job=job: m.args[0] == job)
            assert done.args[1].endswith(".wav")


def test_a_hostile_tcp_stream_does_not_take_the_daemon_down(tmp_path, peer):
    with running_daemon(tmp_path) as daemon:
        rng = random.Random(3)
        for first_byte in (b"\xc0", b"\x00"):  # SLIP and size-prefixed framings
            with socket.create_connection(("127.0.0.1", daemon.server.tcp_port), timeout=5) as conn:
                conn.sendall(first_byte + rng.randbytes(200_000))
        assert answers_ping(peer, daemon.server.udp_port)
