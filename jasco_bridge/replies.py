"""Where replies go: a UDP sender (or the port it named), or the TCP connection a message came from.

A reply channel is handed along with each message and each render job, so progress and clips
reach the client that asked, framed the way that client frames.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, MutableMapping
from dataclasses import dataclass
from typing import Protocol

from jasco_bridge.osc import OscMessage, encode_packet, slip_encode

logger = logging.getLogger(__name__)

_MAX_TCP_BACKLOG_BYTES = 4 * 2**20  # a TCP client that stops reading is disconnected past this


class ReplyChannel(Protocol):
    """Where the replies to one message (and the events of its jobs) go."""

    def send(self, message: OscMessage) -> None: ...


# (session, client IP) -> where that client asked for its UDP replies (/jasco/reply/port)
ReplyRoutes = MutableMapping[tuple[str, str], tuple[str, int]]


@dataclass(frozen=True)
class SenderUdpReply:
    """UDP replies to one sender's message about `session`: to the port that client named for
    the session with /jasco/reply/port, else to `fallback` (the sender, or --reply-port).

    The route is looked up at each send, so replies sent after a /jasco/reply/port (later in the
    same bundle, or a job's progress) already follow it."""

    transport: asyncio.DatagramTransport
    sender: tuple[str, int]
    fallback: tuple[str, int]
    routes: ReplyRoutes
    session: str

    @property
    def address(self) -> tuple[str, int]:
        return self.routes.get((self.session, self.sender[0]), self.fallback)

    def send(self, message: OscMessage) -> None:
        if not self.transport.is_closing():
            self.transport.sendto(encode_packet(message), self.address)

    def __str__(self) -> str:
        host, port = self.address
        return f"udp {host}:{port}"


@dataclass(frozen=True)
class TcpReply:
    """Replies on the connection the message came from, framed the way the client frames."""

    transport: asyncio.Transport
    peer: str
    frame: Callable[[bytes], bytes] = slip_encode

    def send(self, message: OscMessage) -> None:
        if self.transport.is_closing():
            return
        if self.transport.get_write_buffer_size() > _MAX_TCP_BACKLOG_BYTES:
            logger.warning("tcp %s stopped reading its replies; closing the connection", self.peer)
            self.transport.abort()
            return
        self.transport.write(self.frame(encode_packet(message)))

    def __str__(self) -> str:
        return f"tcp {self.peer}"


@dataclass(frozen=True)
class JobReplies:
    """Where a render's job events go, and the client's token that each of them ends with."""

    channel: ReplyChannel
    token: str | None = None
