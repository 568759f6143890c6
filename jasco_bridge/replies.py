"""Where replies go (a UDP sender or the port it named, or the TCP connection a message came
from), and how many.

A reply channel is handed along with each message and each render job, so progress and clips
reach the client that asked, framed the way that client frames. `PacketReplies` wraps the
channel of one received packet so that what the daemon sends stays proportional to what it got.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import OrderedDict
from collections.abc import Callable, MutableMapping
from dataclasses import dataclass, field, replace
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


def _is_request_error(message: OscMessage) -> bool:
    # Job events carry their job id; errors about a request itself carry -1 (docs/osc.md).
    return message.address == "/jasco/error" and message.args[:1] == (-1,)


class ErrorRateLimit:
    """Token buckets per client host: at most `burst` error replies at once, `per_second` after.

    Bounds what one source (or one spoofed address) can make the daemon send. The table of hosts
    is capped; past the cap the stalest host is forgotten.
    """

    def __init__(
        self,
        per_second: float = 10.0,
        burst: float = 20.0,
        *,
        max_hosts: int = 4096,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._per_second = per_second
        self._burst = burst
        self._max_hosts = max_hosts
        self._clock = clock
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()

    def allow(self, host: str) -> bool:
        now = self._clock()
        tokens, since = self._buckets.pop(host, (self._burst, now))
        tokens = min(self._burst, tokens + (now - since) * self._per_second)
        allowed = tokens >= 1.0
        self._buckets[host] = (tokens - 1.0 if allowed else tokens, now)
        if len(self._buckets) > self._max_hosts:
            self._buckets.popitem(last=False)
        return allowed


class ThrottledLog:
    """Logs the first `lines_per_period` events of each period, then one summary of the rest.

    A flood of invalid packets costs a few lines per period instead of one line per packet.
    The summary is written when the next event arrives after the period, or by `flush()`.
    """

    def __init__(
        self,
        target: logging.Logger,
        what: str,
        *,
        lines_per_period: int = 10,
        period_seconds: float = 10.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._target = target
        self._what = what
        self._lines = lines_per_period
        self._period = period_seconds
        self._clock = clock
        self._started = clock()
        self._logged = 0
        self._suppressed = 0
        self._sources: set[str] = set()

    def warning(self, source: str, text: str, *args: object) -> None:
        if self._clock() - self._started >= self._period:
            self.flush()
        if self._logged < self._lines:
            self._logged += 1
            self._target.warning(text, *args)
            return
        self._suppressed += 1
        if len(self._sources) < 1024:
            self._sources.add(source)

    def flush(self) -> None:
        """Write the summary of the period, if anything was held back, and start a new period."""
        if self._suppressed:
            self._target.warning(
                "%d more %s from %d source(s) in the last %.0f s were not logged one by one",
                self._suppressed,
                self._what,
                len(self._sources),
                self._clock() - self._started,
            )
        self._started = self._clock()
        self._logged = 0
        self._suppressed = 0
        self._sources.clear()


@dataclass
class _PacketBudget:
    """What one packet has cost so far in error replies (shared by its rerouted views)."""

    error_sent: bool = False
    errors_dropped: int = 0


@dataclass(frozen=True)
class PacketReplies:
    """The reply channel for everything one datagram or TCP frame causes.

    Keeps replies proportional to the request: at most one request error per packet (later ones
    are dropped), error replies limited per source host, and, with `max_error_bytes` (UDP, where
    the source address can be forged), an error reply never larger than the packet that caused it;
    its text is shortened to fit, and when even the bare error does not fit nothing is sent.
    Other replies (pong, status, acks) and job events pass through. `token_holder`: the packet
    (or its TCP connection) gave the daemon's shared token (`jasco_bridge.ownership`).
    """

    channel: ReplyChannel
    host: str
    limit: ErrorRateLimit
    max_error_bytes: int | None = None
    budget: _PacketBudget = field(default_factory=_PacketBudget)
    token_holder: bool = False

    @property
    def errors_dropped(self) -> int:
        return self.budget.errors_dropped

    def rerouted(self, channel: ReplyChannel) -> PacketReplies:
        """The same packet's replies through another channel, under the same budget."""
        return replace(self, channel=channel)

    def send(self, message: OscMessage) -> None:
        if not _is_request_error(message):
            self.channel.send(message)
            return
        budget = self.budget
        if budget.error_sent or not self.limit.allow(self.host):
            budget.errors_dropped += 1
            return
        budget.error_sent = True
        fitted = self._fit(message)
        if fitted is None:
            budget.errors_dropped += 1
            return
        self.channel.send(fitted)

    def _fit(self, message: OscMessage) -> OscMessage | None:
        if self.max_error_bytes is None:
            return message
        text = str(message.args[1]) if len(message.args) > 1 else ""
        overshoot = len(encode_packet(message)) - self.max_error_bytes
        if overshoot <= 0:
            return message
        raw = text.encode("utf-8")
        # Cutting `overshoot` bytes (plus up to 3 of padding and 3 for the ellipsis) fits.
        keep = len(raw) - overshoot - 6
        if keep < 0:
            bare = OscMessage(message.address, (message.args[0], ""), message.type_tags)
            return bare if len(encode_packet(bare)) <= self.max_error_bytes else None
        shortened = raw[:keep].decode("utf-8", errors="ignore") + "..."
        return OscMessage(message.address, (message.args[0], shortened), message.type_tags)

    def __str__(self) -> str:
        return str(self.channel)
