"""Where replies go: a UDP address, or the TCP connection a message came from.

A reply channel is handed along with each message and each render job, so progress and clips
reach the client that asked, framed the way that client frames.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from jasco_bridge.osc import OscMessage, encode_packet, slip_encode

logger = logging.getLogger(__name__)

_MAX_TCP_BACKLOG_BYTES = 4 * 2**20  # a TCP client that stops reading is disconnected past this


class ReplyChannel(Protocol):
    """Where the replies to one message (and the events of its jobs) go."""

    def send(self, message: OscMessage) -> None: ...


@dataclass(frozen=True)
class UdpReply:
    """Replies as datagrams to one address."""

    transport: asyncio.DatagramTransport
    address: tuple[str, int]

    def send(self, message: OscMessage) -> None:
        if not self.transport.is_closing():
            self.transport.sendto(encode_packet(message), self.address)

    def __str__(self) -> str:
        return f"udp {self.address[0]}:{self.address[1]}"


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
