"""The asyncio OSC endpoints: UDP datagrams and TCP streams (SLIP), one error boundary per message.

`BridgeServer` owns the sockets, the sessions and the render queue. Everything that arrives goes
through `_receive`: decode (bad bytes -> `/jasco/error -1`), honour bundle time tags with
`loop.call_at` (never by sleeping), check the address table, then run the command. Daemon-wide
commands (ping, status, cancel) are answered at once. Session commands run one after another on a
single command lane, so a DAW's "tempo, chords, prompt, render" keeps its order even when one of
them (reading a MIDI or audio file) is moved off the loop. Rendering never runs on the loop: the
`JobQueue` worker thread renders, and its events come back through `call_soon_threadsafe`.

Replies go to the sender (UDP), to the fixed reply address when one is configured (UDP), or back
on the same connection (TCP), through a `PacketReplies` per received packet that keeps them
proportional (one error per packet, limited per source, never larger than a forgeable datagram).
Bytes that are not OSC are not answered. Bundles are checked whole before any of them runs. With
a token configured, state changes from other machines need `/jasco/auth` first. TCP connections
are capped and time out when idle or stuck mid-frame.
"""

from __future__ import annotations

import asyncio
import dataclasses
import hmac
import ipaddress
import logging
import socket
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from engine.errors import EngineError
from jasco_bridge import controller, protocol
from jasco_bridge.audition import AudioDesk, AudioSettings, Take
from jasco_bridge.clips import ClipInfo, check_clip_folder, remove_stale_temporaries
from jasco_bridge.config import DaemonConfig
from jasco_bridge.engines import OpenedRenderer
from jasco_bridge.errors import BridgeError, ConfigError, ProtocolError, RenderError, SessionError
from jasco_bridge.jobs import JobEvent, JobQueue, JobState
from jasco_bridge.journal import InterruptedJob, JobJournal
from jasco_bridge.osc import (
    SLIP_END,
    OscBundle,
    OscMessage,
    OscPacket,
    SizePrefixDecoder,
    SlipDecoder,
    encode_packet,
    looks_like_osc,
    parse_packet,
    size_prefix_encode,
    slip_encode,
)
from jasco_bridge.ownership import claim_session, client_of
from jasco_bridge.pipeline import notices
from jasco_bridge.replies import (
    ErrorRateLimit,
    JobReplies,
    PacketReplies,
    ReplyChannel,
    ReplyRoutes,
    SenderUdpReply,
    TcpReply,
    ThrottledLog,
)
from jasco_bridge.session import DEFAULT_SESSION, Session, SessionStore
from midi.errors import MidiError

logger = logging.getLogger(__name__)

# Session commands waiting on the lane (each up to 64 KB) before new ones are refused.
_MAX_PENDING_COMMANDS = 1000
_UDP_RECEIVE_BUFFER_BYTES = 8 * 2**20
_MAX_REPLY_ROUTES = 1024  # (session, client) pairs with their own reply port
# Per-session commands applied as they arrive rather than in the session lane: where replies go
# is the transport's business, and a ping sent right after must already follow it.
_ON_ARRIVAL = frozenset({"set_reply_port"})
# Per-session commands that change nothing another client owns (a reply port is per client).
_ANYONE = frozenset({"set_reply_port"})
# Bulk lists sent in parts (begin / part / commit): at most this many lists waiting for their
# commit, each at most this many groups.
_MAX_PENDING_LISTS = 256
_MAX_PENDING_GROUPS = 100_000
_EXPECTED = (BridgeError, MidiError, EngineError)
AUTH_ADDRESS = "/jasco/auth"
# The only commands a client without the shared token may send from another machine.
_READ_ONLY_ADDRESSES = frozenset({"/jasco/ping", "/jasco/status"})
# Descriptors kept free for clip files, MIDI/audio reads and the engine, whatever TCP does.
_RESERVED_DESCRIPTORS = 256
_ACCEPT_RESOURCE_ERROR = "socket.accept() out of system resource"


@dataclass
class _Client:
    """Who sent a packet: the host, and whether its TCP connection has given the token."""

    host: str
    authenticated: bool = False


class BridgeServer:
    """OSC in, sessions and render jobs inside, OSC out.

    server = BridgeServer(config)
    await server.start()                        # binds; ping works from here on
    server.attach_engine(opened)                # renders work from here on
    ...
    await server.close(timeout_seconds=10)
    """

    def __init__(
        self,
        config: DaemonConfig,
        *,
        sessions: SessionStore | None = None,
        wall_clock: Callable[[], float] = time.time,
        queue_factory: Callable[..., JobQueue] = JobQueue,
    ) -> None:
        self.config = config
        self.sessions = (
            sessions if sessions is not None else SessionStore(read_roots=config.allowed_read_roots)
        )
        self._wall_clock = wall_clock
        self._queue_factory = queue_factory
        self._queue: JobQueue | None = None
        self._journal: JobJournal | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._udp: asyncio.DatagramTransport | None = None
        self._tcp: asyncio.Server | None = None
        self._tcp_transports: set[asyncio.Transport] = set()
        self._lane: asyncio.Queue[tuple[protocol.Request, ReplyChannel]] | None = None
        self._lane_task: asyncio.Task[None] | None = None
        self._timers: set[asyncio.TimerHandle] = set()
        self._refused_hosts: set[str] = set()
        self._reply_routes: ReplyRoutes = {}
        # (session, bulk command, client) -> the groups received since its /begin
        self._pending_lists: dict[tuple[str, str, str], list[tuple[object, ...]]] = {}
        self._accepting = False
        self._panels: dict[str, controller.ControlPanel] = {}
        self._error_limit = ErrorRateLimit()
        self._invalid_log = ThrottledLog(logger, "invalid packets")
        self._refusal_log = ThrottledLog(logger, "refused messages")
        self._tcp_log = ThrottledLog(logger, "TCP connection problems", lines_per_period=3)
        self._tcp_cap = config.max_tcp_connections
        self._previous_exception_handler: Callable[..., object] | None = None
        self.audio = AudioDesk(
            AudioSettings(config.audio_out, config.audio_in, config.input_latency_ms)
        )
        self._last_clips: dict[str, ClipInfo] = {}
        # What the server keeps per session goes when the store forgets the session, so a flood
        # of session names grows nothing here either.
        self.sessions.on_forget = self._session_forgotten
        self._daemon_handlers = {
            c.handler: self._daemon_handler(c) for c in protocol.COMMANDS if c.runs_on == "daemon"
        }
        for command in protocol.COMMANDS:
            if command.runs_on == "session" and not callable(
                getattr(Session, command.handler, None)
            ):
                raise BridgeError(f"{command.address}: Session has no method {command.handler!r}")

    def _session_forgotten(self, name: str) -> None:
        self._panels.pop(name, None)
        self._last_clips.pop(name, None)
        self.audio.forget(name)

    def _daemon_handler(self, command: protocol.Command) -> Callable[..., None]:
        method = getattr(self, f"_on_{command.handler}", None)
        if method is None:
            raise BridgeError(f"{command.address}: BridgeServer has no _on_{command.handler}")
        return method

    # ------------------------------------------------------------------ lifecycle

    async def start(self) -> None:
        """Bind the UDP socket (and the TCP listener unless disabled) and start the command lane."""
        self._loop = asyncio.get_running_loop()
        if self.config.link:
            self.audio.join_link()
        self._lane = asyncio.Queue(maxsize=_MAX_PENDING_COMMANDS)
        self._lane_task = self._loop.create_task(self._run_lane(), name="jasco-command-lane")
        host = self.config.host
        try:
            transport, _ = await self._loop.create_datagram_endpoint(
                lambda: _UdpProtocol(self), local_addr=(host, self.config.port)
            )
        except OSError as exc:
            raise ConfigError(_bind_problem("UDP", host, self.config.port, exc)) from None
        self._udp = transport
        _enlarge_receive_buffer(transport.get_extra_info("socket"))
        if self.config.tcp_port is not None:
            self._tcp_cap = _connection_cap(self.config.max_tcp_connections)
            self._previous_exception_handler = self._loop.get_exception_handler()
            self._loop.set_exception_handler(self._loop_exception)
            try:
                self._tcp = await asyncio.start_server(self._serve_tcp, host, self.config.tcp_port)
            except OSError as exc:
                transport.close()
                raise ConfigError(_bind_problem("TCP", host, self.config.tcp_port, exc)) from None
        self._accepting = True

    def attach_engine(self, opened: OpenedRenderer) -> None:
        """Start the render queue on a loaded engine; until then renders are refused politely."""
        if self._queue is not None:
            raise BridgeError("an engine is already attached to this server")
        out_dir = check_clip_folder(self.config.out_dir)
        journal, interrupted = JobJournal.open(out_dir)
        for stale in remove_stale_temporaries(out_dir):
            logger.info("removed %s, left half-written by a daemon that was stopped", stale)
        queue = self._queue_factory(
            opened,
            self.config.out_dir,
            max_queued=self.config.max_queue,
            on_event=self._on_job_event_threadsafe,
            journal=journal,
        )
        queue.start()
        self._journal = journal
        self._queue = queue
        for job in interrupted:
            self._report_interrupted(job)

    def _report_interrupted(self, job: InterruptedJob) -> None:
        """Tell the log, and the UDP client that queued it (when it still listens there), that
        a job of the last run was interrupted: failed, with its own id and token."""
        logger.warning("%s", job.message)
        if job.reply_to is not None and self._udp is not None:
            if self.config.is_allowed(job.reply_to[0]):
                self._udp.sendto(
                    encode_packet(protocol.error(job.id, job.message, job.token)), job.reply_to
                )

    async def close(self, timeout_seconds: float | None = None) -> None:
        """Stop intake, let the running jobs finish (or cancel them after the timeout), close sockets."""
        timeout = (
            self.config.shutdown_timeout_seconds if timeout_seconds is None else timeout_seconds
        )
        self._accepting = False
        await asyncio.get_running_loop().run_in_executor(None, self.audio.close)
        for timer in self._timers:
            timer.cancel()
        self._timers.clear()
        if self._lane is not None and self._lane_task is not None:
            try:
                await asyncio.wait_for(self._lane.join(), timeout=max(timeout, 0.1))
            except asyncio.TimeoutError:
                logger.warning("shutdown: session commands still pending were dropped")
            self._lane_task.cancel()
        if self._queue is not None:
            loop = asyncio.get_running_loop()
            await loop.run_in_executor(None, self._queue.shutdown, timeout)
        if self._journal is not None:
            self._journal.close()
        if self._tcp is not None:
            self._tcp.close()
            for transport in list(self._tcp_transports):
                transport.close()
            await self._tcp.wait_closed()
            asyncio.get_running_loop().set_exception_handler(self._previous_exception_handler)
        if self._udp is not None:
            self._udp.close()
        for log in (self._invalid_log, self._refusal_log, self._tcp_log):
            log.flush()

    def cancel_running(self) -> None:
        """Cancel the jobs being rendered now, if any (a forced shutdown)."""
        if self._queue is None:
            return
        for running in self._queue.running():
            try:
                self._queue.cancel(running)
            except BridgeError as exc:
                logger.info("could not cancel job %s: %s", running, exc)

    @property
    def started(self) -> bool:
        """True once the sockets are bound (and until they are closed)."""
        return self._udp is not None and not self._udp.is_closing()

    @property
    def udp_address(self) -> tuple[str, int]:
        if self._udp is None:
            raise BridgeError("the server is not started: call await server.start() first")
        return self._udp.get_extra_info("sockname")[:2]

    @property
    def udp_port(self) -> int:
        return self.udp_address[1]

    @property
    def tcp_port(self) -> int | None:
        if self._tcp is None or not self._tcp.sockets:
            return None
        return self._tcp.sockets[0].getsockname()[1]

    @property
    def engine_name(self) -> str:
        """What renders: "jasco" or "preview" (as /jasco/status says), "none" while loading."""
        return "none" if self._queue is None else self._queue.status().engine

    # ------------------------------------------------------------------ transports

    def _allowed(self, host: str) -> bool:
        if self.config.is_allowed(host):
            return True
        # One log line per refused host is enough; the set is capped against spoofed floods.
        if host not in self._refused_hosts and len(self._refused_hosts) < 1024:
            self._refused_hosts.add(host)
            logger.warning("dropping OSC from %s: not in the --allow list", host)
        return False

    def datagram_received(self, data: bytes, peer: tuple[str, int]) -> None:
        if not self._accepting or self._udp is None or not self._allowed(peer[0]):
            return
        sender = (peer[0], peer[1])
        fallback = self.config.reply_address or sender
        # A datagram's source can be forged from the network (not as loopback, which the kernel
        # only accepts from this machine): there an error never outgrows what caused it.
        channel = PacketReplies(
            SenderUdpReply(self._udp, sender, fallback, self._reply_routes, DEFAULT_SESSION),
            peer[0],
            self._error_limit,
            max_error_bytes=None if _is_loopback(peer[0]) else len(data),
        )
        if len(data) > self.config.max_packet_bytes:
            self._invalid_log.warning(
                peer[0], "oversized datagram from %s: %d bytes", channel, len(data)
            )
            channel.send(
                protocol.error(
                    -1,
                    f"datagram of {len(data)} bytes refused (limit {self.config.max_packet_bytes})",
                )
            )
            return
        self._receive(data, channel, _Client(peer[0]))

    async def _serve_tcp(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        peer = writer.get_extra_info("peername") or ("?", 0)
        transport = writer.transport
        if not self._allowed(peer[0]):
            transport.abort()
            return
        if len(self._tcp_transports) >= self._tcp_cap:
            self._tcp_log.warning(
                peer[0],
                "refusing a TCP connection from %s:%s: %d are open, the limit (--max-connections)",
                peer[0],
                peer[1],
                len(self._tcp_transports),
            )
            transport.abort()
            return
        self._tcp_transports.add(transport)
        client = _Client(peer[0])
        channel: TcpReply | None = None
        decoder: SlipDecoder | SizePrefixDecoder | None = None
        try:
            while self._accepting:
                # Idle connections are closed after a while; a frame once begun must finish soon.
                timeout = (
                    self.config.tcp_frame_timeout_seconds
                    if decoder is not None and decoder.in_frame
                    else self.config.tcp_idle_timeout_seconds
                )
                try:
                    chunk = await asyncio.wait_for(reader.read(65536), timeout)
                except asyncio.TimeoutError:
                    what = "a frame" if decoder is not None and decoder.in_frame else "idle"
                    self._tcp_log.warning(
                        peer[0], "closing TCP %s:%s: %s for %.0f s", peer[0], peer[1], what, timeout
                    )
                    break
                if not chunk:
                    break
                if decoder is None or channel is None:
                    # OSC 1.1 streams start with a SLIP END; OSC 1.0 ones with a size prefix.
                    slip = chunk[0] == SLIP_END
                    limit = self.config.max_packet_bytes
                    decoder = SlipDecoder(limit) if slip else SizePrefixDecoder(limit)
                    frame = slip_encode if slip else size_prefix_encode
                    channel = TcpReply(transport, f"{peer[0]}:{peer[1]}", frame)
                for item in decoder.feed(chunk):
                    replies = PacketReplies(channel, peer[0], self._error_limit)
                    if isinstance(item, ProtocolError):
                        self._invalid_log.warning(
                            peer[0], "invalid TCP frame from %s: %s", channel, item
                        )
                        replies.send(protocol.error(-1, f"invalid TCP frame: {item}"))
                    else:
                        self._receive(item, replies, client)
        except (ConnectionError, OSError) as exc:
            logger.debug("tcp %s:%s closed: %s", peer[0], peer[1], exc)
        finally:
            self._tcp_transports.discard(transport)
            transport.close()

    def _loop_exception(self, loop: asyncio.AbstractEventLoop, context: dict[str, object]) -> None:
        # Out of descriptors, asyncio retries accept() every second and reports each failure;
        # a few lines per period say it, the rest is counted.
        if str(context.get("message", "")).startswith(_ACCEPT_RESOURCE_ERROR):
            self._tcp_log.warning(
                "accept", "cannot accept TCP connections: %s", context.get("exception")
            )
            return
        if self._previous_exception_handler is not None:
            self._previous_exception_handler(loop, context)
        else:
            loop.default_exception_handler(context)

    # ------------------------------------------------------------------ packets and bundles

    def _receive(self, data: bytes, channel: PacketReplies, client: _Client) -> None:
        if not looks_like_osc(data):
            # Not OSC at all (noise, a scan, another protocol): logged, never answered.
            self._invalid_log.warning(
                client.host, "ignored %d bytes of non-OSC from %s", len(data), channel
            )
            return
        try:
            packet = parse_packet(data)
        except ProtocolError as exc:
            self._invalid_log.warning(client.host, "invalid OSC packet from %s: %s", channel, exc)
            channel.send(protocol.error(-1, f"invalid OSC packet: {exc}"))
            return
        packet = self._authenticate(packet, channel, client)
        if packet is None:
            return
        if self.config.token is not None and client.authenticated:
            channel = dataclasses.replace(channel, token_holder=True)
        if isinstance(packet, OscBundle) and not self._bundle_is_valid(packet, channel, client):
            return
        self._route(packet, channel)

    def _needs_token(self, host: str) -> bool:
        return self.config.token is not None and not _is_loopback(host)

    def _authenticate(
        self, packet: OscPacket, channel: ReplyChannel, client: _Client
    ) -> OscPacket | None:
        """Take out a leading `/jasco/auth`; refuse state changes from remote hosts without it.

        Over TCP one `/jasco/auth s TOKEN` covers the rest of the connection; over UDP (no
        connection to remember) it leads the bundle it covers. Loopback needs no token.
        """
        first = packet if isinstance(packet, OscMessage) else next(iter(packet.elements), None)
        if isinstance(first, OscMessage) and first.address == AUTH_ADDRESS:
            if not self._token_matches(first):
                self._refusal_log.warning(
                    client.host, "wrong %s token from %s", AUTH_ADDRESS, channel
                )
                channel.send(protocol.error(-1, f"{AUTH_ADDRESS}: wrong token"))
                return None
            client.authenticated = True
            if isinstance(packet, OscMessage):
                return None
            packet = OscBundle(packet.timetag, packet.elements[1:])
            authenticated_here = True
        else:
            authenticated_here = client.authenticated
        if not self._needs_token(client.host) or authenticated_here:
            return packet
        changing = next(
            (m for m in _messages(packet) if m.address not in _READ_ONLY_ADDRESSES), None
        )
        if changing is None:
            return packet
        self._refusal_log.warning(
            client.host, "%s from %s refused: no token", changing.address[:200], channel
        )
        channel.send(
            protocol.error(
                -1,
                f"{changing.address[:200]}: from another machine this needs the daemon's token: "
                f"send {AUTH_ADDRESS} s TOKEN first (TCP) or as the first message of the bundle (UDP)",
            )
        )
        return None

    def _token_matches(self, message: OscMessage) -> bool:
        token = self.config.token
        if token is None:
            return True  # no token configured: /jasco/auth is accepted and means nothing
        given = message.args[0] if len(message.args) == 1 else None
        return isinstance(given, str) and hmac.compare_digest(
            given.encode("utf-8"), token.encode("utf-8")
        )

    def _bundle_is_valid(self, bundle: OscBundle, channel: ReplyChannel, client: _Client) -> bool:
        """A bundle runs whole or not at all; a bad one gets one error, with the count."""
        messages = list(_messages(bundle))
        first_problem: tuple[int, ProtocolError] | None = None
        bad = 0
        for index, message in enumerate(messages, start=1):
            try:
                protocol.parse_request(message)
            except ProtocolError as exc:
                bad += 1
                if first_problem is None:
                    first_problem = (index, exc)
        if first_problem is None:
            return True
        index, exc = first_problem
        self._refusal_log.warning(
            client.host, "bundle from %s refused: %d bad message(s)", channel, bad
        )
        channel.send(
            protocol.error(
                -1,
                f"#bundle refused, nothing in it was applied: {bad} of {len(messages)} messages "
                f"are invalid; the first (message {index}): {exc}",
            )
        )
        return False

    def _route(self, packet: OscPacket, channel: ReplyChannel) -> None:
        if isinstance(packet, OscMessage):
            self._dispatch(packet, channel)
            return
        delay = self._seconds_until(packet)
        if delay <= 0:
            for element in packet.elements:
                self._route(element, channel)
            return
        if delay > self.config.max_bundle_delay_seconds:
            channel.send(
                protocol.error(
                    -1,
                    f"#bundle: time tag is {delay:.0f} s ahead; the limit is "
                    f"{self.config.max_bundle_delay_seconds:.0f} s (check the sender's clock)",
                )
            )
            return
        if len(self._timers) >= self.config.max_pending_bundles:
            channel.send(
                protocol.error(
                    -1,
                    f"#bundle: {len(self._timers)} bundles already scheduled; "
                    "wait for them or send with an immediate time tag",
                )
            )
            return
        loop = self._loop
        if loop is None:
            raise BridgeError("the server is not started")
        handle: asyncio.TimerHandle | None = None

        def fire() -> None:
            self._timers.discard(handle)  # type: ignore[arg-type]
            if self._accepting:
                for element in packet.elements:
                    self._route(element, channel)

        handle = loop.call_at(loop.time() + delay, fire)
        self._timers.add(handle)

    def _seconds_until(self, bundle: OscBundle) -> float:
        if bundle.timetag.is_immediate:
            return 0.0
        return bundle.timetag.to_unix_seconds() - self._wall_clock()

    def _dispatch(self, message: OscMessage, channel: ReplyChannel) -> None:
        """The error boundary for one message."""
        sender = _udp_sender(channel)
        if sender is not None:
            # Before parsing: a refused message's error follows the session's reply port too.
            routed = dataclasses.replace(sender, session=protocol.session_of(message.address))
            channel = channel.rerouted(routed) if isinstance(channel, PacketReplies) else routed
        try:
            request = protocol.parse_request(message)
            if request.command.per_session and request.command.handler not in _ANYONE:
                claim_session(self.sessions.get(request.session), client_of(channel))
            channel = controller.feedback_channel(request.command.name, channel)
            if not request.command.per_session or request.command.handler in _ON_ARRIVAL:
                self._daemon_handlers[request.command.handler](request, channel)
                return
            if self._lane is None:
                raise BridgeError("the server is not started")
            self._lane.put_nowait((request, channel))
        except asyncio.QueueFull:
            channel.send(
                protocol.error(
                    -1, f"{message.address[:200]}: too many commands waiting; slow down and resend"
                )
            )
        except Exception as exc:  # this is the boundary: nothing may escape to the loop
            self._report(message.address, exc, channel)

    def _report(
        self,
        address: str,
        exc: BaseException,
        channel: ReplyChannel,
        token: str | None = None,
    ) -> None:
        shown = address[:200]
        if isinstance(exc, _EXPECTED):
            self._refusal_log.warning(
                str(channel), "%s refused (error sent to %s): %s", shown, channel, exc
            )
            # Protocol errors already start with the address.
            text = str(exc) if isinstance(exc, ProtocolError) else f"{shown}: {exc}"
        else:
            logger.error("unexpected failure handling %s from %s", shown, channel, exc_info=exc)
            text = f"{shown}: internal error ({type(exc).__name__}); the daemon logged it and keeps running"
        channel.send(protocol.error(-1, text, token))

    async def _run_lane(self) -> None:
        lane = self._lane
        if lane is None:
            return
        loop = asyncio.get_running_loop()
        while True:
            request, channel = await lane.get()
            try:
                if request.command.runs_on == "daemon":
                    self._daemon_handlers[request.command.handler](request, channel)
                elif request.command.reads_file:
                    await self._read_file(loop, request, channel)
                else:
                    self._tell(request.address, self._apply(request), channel)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # error boundary of the lane
                self._report(request.address, exc, channel)
            finally:
                lane.task_done()

    async def _read_file(
        self, loop: asyncio.AbstractEventLoop, request: protocol.Request, channel: ReplyChannel
    ) -> None:
        """A file command: the file is read on a worker thread within the time limit, and only
        then is the session changed (on the loop), so a huge file stalls no one and a read
        given up on changes nothing."""
        session = self.sessions.get(request.session)
        reading = loop.run_in_executor(
            None, session.read_file, request.command.handler, request.values
        )
        limit = self.config.file_read_timeout_seconds
        try:
            apply = await asyncio.wait_for(reading, timeout=limit)
        except asyncio.TimeoutError:
            raise SessionError(
                f"the file took longer than {limit:g} s to read and was given up "
                "(file_read_timeout_seconds): send a smaller file or a faster disk's path"
            ) from None
        self._tell(request.address, apply() or (), channel)

    # ------------------------------------------------------------------ job events (worker thread)

    def _on_job_event_threadsafe(self, event: JobEvent) -> None:
        if self._loop is not None:
            try:
                self._loop.call_soon_threadsafe(self._deliver, event)
                return
            except RuntimeError:  # the loop is closed
                pass
        logger.warning("job %s event %s arrived after the loop closed", event.job_id, event.kind)

    def _deliver(self, event: JobEvent) -> None:
        job = self._queue.job(event.job_id) if self._queue is not None else None
        if event.clip is not None and job is not None:
            self._last_clips[job.session] = event.clip  # what /jasco/play plays by default
        replies = event.reply_to
        if not isinstance(replies, JobReplies):
            return
        bars = (job.start_bar, job.bars) if job is not None else (0, 0)
        channel = replies.channel
        try:
            channel.send(_event_message(event, replies.token, bars))
        except Exception:  # a vanished client must not break event delivery
            logger.exception(
                "could not send job %s %s event to %s", event.job_id, event.kind, channel
            )

    # ------------------------------------------------------------------ daemon-wide commands

    def _on_ping(self, request: protocol.Request, channel: ReplyChannel) -> None:
        channel.send(protocol.pong(request["token"]))  # type: ignore[arg-type]

    def _on_status(self, request: protocol.Request, channel: ReplyChannel) -> None:
        if self._queue is None:
            channel.send(protocol.status("loading", 0, self.engine_name, None))
            return
        current = self._queue.status()
        channel.send(
            protocol.status(current.state, current.queued, current.engine, current.running)
        )

    def _on_set_reply_port(self, request: protocol.Request, channel: ReplyChannel) -> None:
        sender = _udp_sender(channel)
        if sender is None:
            raise ProtocolError(
                f"{request.address}: over TCP the replies come back on the connection; "
                "/jasco/reply/port is for UDP clients"
            )
        client = sender.sender[0]
        key = (request.session, client)
        port: int = request["port"]  # type: ignore[assignment]
        if port == 0:
            self._reply_routes.pop(key, None)
            return
        host = _reply_host(request.address, client, request["host"])  # type: ignore[arg-type]
        if key not in self._reply_routes and len(self._reply_routes) >= _MAX_REPLY_ROUTES:
            raise ProtocolError(
                f"{request.address}: {_MAX_REPLY_ROUTES} reply ports are set already; "
                "clear unused ones with port 0"
            )
        self._reply_routes[key] = (host, port)

    def _pending_key(
        self, request: protocol.Request, channel: ReplyChannel
    ) -> tuple[tuple[str, str, str], protocol.Command]:
        target = protocol.COMMANDS_BY_NAME[request.command.name.rpartition("/")[0]]
        # oscsend and friends send every datagram from a new port: a UDP client is its host.
        sender = _udp_sender(channel)
        client = sender.sender[0] if sender is not None else str(channel)
        return (request.session, target.name, client), target

    def _on_bulk_begin(self, request: protocol.Request, channel: ReplyChannel) -> None:
        key, _ = self._pending_key(request, channel)
        if key not in self._pending_lists and len(self._pending_lists) >= _MAX_PENDING_LISTS:
            raise ProtocolError(
                f"{request.address}: {_MAX_PENDING_LISTS} lists are waiting for their commit; "
                "commit or restart them first"
            )
        self._pending_lists[key] = []

    def _on_bulk_part(self, request: protocol.Request, channel: ReplyChannel) -> None:
        key, target = self._pending_key(request, channel)
        pending = self._pending_lists.get(key)
        if pending is None:
            raise ProtocolError(f"{request.address}: send {target.address}/begin first")
        if len(pending) + len(request.groups) > _MAX_PENDING_GROUPS:
            del self._pending_lists[key]
            raise ProtocolError(
                f"{request.address}: more than {_MAX_PENDING_GROUPS} groups in one list; "
                "the parts so far were dropped"
            )
        pending.extend(request.groups)

    def _on_bulk_commit(self, request: protocol.Request, channel: ReplyChannel) -> None:
        key, target = self._pending_key(request, channel)
        pending = self._pending_lists.pop(key, None)
        if pending is None:
            raise ProtocolError(
                f"{request.address}: nothing to commit; send {target.address}/begin first"
            )
        expected: int = request["groups"]  # type: ignore[assignment]
        if len(pending) != expected:
            raise ProtocolError(
                f"{request.address}: the parts hold {len(pending)} groups, not {expected}: a part "
                f"was lost or refused, and nothing was applied; send the list again from "
                f"{target.address}/begin"
            )
        method = getattr(self.sessions.get(request.session), target.handler)
        self._tell(request.address, method(tuple(pending)) or (), channel)  # all or nothing

    def _on_cancel(self, request: protocol.Request, channel: ReplyChannel) -> None:
        job_id = int(request["job"])  # type: ignore[call-overload]
        if not self._require_queue().cancel(job_id, by=client_of(channel)):
            raise RenderError(f"job {job_id} has already finished; nothing to cancel")

    # ------------------------------------------------------------------ session commands

    def _require_queue(self) -> JobQueue:
        if self._queue is None:
            raise RenderError(
                "the engine is still loading; try again in a few seconds (/jasco/status says 'idle' when ready)"
            )
        return self._queue

    def _apply(self, request: protocol.Request) -> Sequence[str]:
        """A session command: the Session method named in the table, arguments by name. Returns
        what the method had to tell the producer (most methods have nothing: None)."""
        method = getattr(self.sessions.get(request.session), request.command.handler)
        if request.command.repeat:
            return method(request.groups) or ()  # all or nothing
        return method(**request.values) or ()

    @staticmethod
    def _tell(address: str, notices: Sequence[str], channel: ReplyChannel) -> None:
        """A session method's notices (e.g. chords of another kind dropped), as
        `/jasco/notice -1`."""
        for text in notices:
            channel.send(protocol.notice(-1, f"{address[:200]}: {text}"))

    def _on_render(self, request: protocol.Request, channel: ReplyChannel) -> None:
        token: str | None = request["token"]  # type: ignore[assignment]
        try:
            queue = self._require_queue()
            snapshot = self.sessions.get(request.session).snapshot()
            replies = JobReplies(channel, token)
            sender = _udp_sender(channel)
            jobs = queue.submit(
                snapshot,
                request["start_bar"],
                request["bars"],
                reply_to=replies,
                owner=client_of(channel),
                token=token,
                reply_address=None if sender is None else sender.address,
            )
        except Exception as exc:  # refused: the error still carries the client's token
            self._report(request.address, exc, channel, token)
            return
        for job in jobs:
            channel.send(
                protocol.ack(job.id, job.seed, job.variation, job.start_bar, job.bars, token)
            )
        for text in notices(snapshot, jobs[0].window):
            for job in jobs:
                channel.send(protocol.notice(job.id, text, token))

    # ------------------------------------------------------------------ controller commands

    def _panel(self, session: str) -> controller.ControlPanel:
        self.sessions.get(session)  # checks the name and the session limit
        return self._panels.setdefault(session, controller.ControlPanel())

    def _on_ctl_render(self, request: protocol.Request, channel: ReplyChannel) -> None:
        if controller.is_press(request["press"]):  # type: ignore[arg-type]
            self._render_from_panel(request.session, channel, fresh_seed=False)

    def _on_ctl_another_take(self, request: protocol.Request, channel: ReplyChannel) -> None:
        if controller.is_press(request["press"]):  # type: ignore[arg-type]
            self._render_from_panel(request.session, channel, fresh_seed=True)

    def _render_from_panel(self, session: str, channel: ReplyChannel, *, fresh_seed: bool) -> None:
        queue = self._require_queue()
        panel = self._panel(session)
        snapshot = self.sessions.get(session).snapshot()
        if fresh_seed:
            snapshot = dataclasses.replace(
                snapshot, settings=dataclasses.replace(snapshot.settings, seed=None)
            )
        sender = _udp_sender(channel)
        jobs = queue.submit(
            snapshot,
            panel.start_bar,
            panel.bars,
            reply_to=JobReplies(channel, None),
            owner=client_of(channel),
            reply_address=None if sender is None else sender.address,
        )
        panel.last_jobs = tuple(job.id for job in jobs)
        for job in jobs:
            channel.send(protocol.ack(job.id, job.seed, job.variation, job.start_bar, job.bars))

    def _on_ctl_cancel(self, request: protocol.Request, channel: ReplyChannel) -> None:
        if not controller.is_press(request["press"]):  # type: ignore[arg-type]
            return
        queue = self._require_queue()
        panel = self._panel(request.session)
        by = client_of(channel)
        cancelled = [job_id for job_id in panel.last_jobs if queue.cancel(job_id, by=by)]
        if not cancelled:
            channel.send(controller.state("nothing to cancel: the last render has finished"))

    def _on_ctl_set(self, request: protocol.Request, channel: ReplyChannel) -> None:
        value = float(request["value"])  # type: ignore[arg-type]
        panel = self._panel(request.session)
        session = self.sessions.get(request.session)
        name = request.command.name[len(controller.CONTROL_PREFIX) :]
        if name == "start_bar":
            panel.start_bar = max(1, controller.snap_whole(value))
        elif name == "bars":
            bars = controller.snap_whole(value)
            panel.bars = bars if bars >= 1 else None
        elif name == "seed":
            seed = controller.snap_whole(value)
            session.set_setting("seed", seed if seed >= 0 else -1)
        elif name == "steps":
            session.set_setting("steps", max(1, controller.snap_whole(value)))
        elif name == "guidance":
            session.set_setting("cfg_all", controller.snap_quarter(value))
        settings = session.settings
        seed = "random" if settings.seed is None else str(settings.seed)
        channel.send(
            controller.state(
                f"{panel.range_text()} · seed {seed} · {settings.steps} steps · "
                f"guidance {settings.cfg_all:g}"
            )
        )

    # ------------------------------------------------------------------ audio (audition.py)

    def _on_set_transport(self, request: protocol.Request, channel: ReplyChannel) -> None:
        self.audio.transport(request.session).report_osc(
            bool(request["playing"]),
            request["beat"],  # type: ignore[arg-type]
            request["latency_ms"] / 1000.0,  # type: ignore[operator]
        )

    def _on_play(self, request: protocol.Request, channel: ReplyChannel) -> None:
        job_id = int(request["job"])  # type: ignore[call-overload]
        if job_id == 0:
            clip = self._last_clips.get(request.session)
            if clip is None:
                raise RenderError(
                    f"session {request.session!r} has no clip yet; render one first "
                    "(or give a job id from /jasco/ack)"
                )
        else:
            job = self._require_queue().job(job_id)
            if job is None or job.clip is None:
                raise RenderError(
                    f"job {job_id} has no clip to play (unknown, not finished or failed); "
                    "wait for its /jasco/done"
                )
            clip = job.clip
        tempo_map = self.sessions.get(request.session).tempo_map
        self.audio.play(
            request.session,
            clip,
            tempo_map,
            loop=bool(request["loop"]),
            report=self._desk_report(request.session, channel),
        )

    def _on_stop_audition(self, request: protocol.Request, channel: ReplyChannel) -> None:
        # Closing a stream waits for PortAudio: off the loop.
        threading.Thread(target=self.audio.stop, name="jasco-audition-stop", daemon=True).start()

    def _on_record_drums(self, request: protocol.Request, channel: ReplyChannel) -> None:
        session = self.sessions.get(request.session)
        self.audio.record_drums(
            request.session,
            session.tempo_map,
            start_bar=request["start_bar"],  # type: ignore[arg-type]
            bars=request["bars"],  # type: ignore[arg-type]
            count_in_bars=request["count_in"],  # type: ignore[arg-type]
            click_through=bool(request["click"]),
            out_dir=self.config.out_dir / session.name,
            report=self._desk_report(request.session, channel),
        )

    def _desk_report(self, session: str, channel: ReplyChannel) -> _AudioReplies:
        if self._loop is None:
            raise BridgeError("the server is not started")
        return _AudioReplies(self, session, channel, self._loop)

    def _adopt_take(self, session: str, take: Take, channel: ReplyChannel) -> None:
        """On the loop: the take becomes the session's drum stem, then the client hears of it."""
        try:
            self.sessions.get(session).set_drums_file(str(take.path), take.start_beat)
        except Exception as exc:  # the take stays on disk; say why it is not used
            self._report(protocol.PREFIX + "drums/record", exc, channel)
            return
        channel.send(
            protocol.drums_recorded(
                str(take.path), take.start_beat, take.length_beats, take.latency_ms
            )
        )


def _udp_sender(channel: ReplyChannel) -> SenderUdpReply | None:
    """The UDP sender behind a packet's channel (None over TCP)."""
    if isinstance(channel, controller.ControllerFeedback):
        channel = channel.inner
    if isinstance(channel, PacketReplies):
        channel = channel.channel
    return channel if isinstance(channel, SenderUdpReply) else None


def _reply_host(address: str, client: str, asked: str | None) -> str:
    """The host replies may go to: the client itself, or, for a client on loopback, any
    loopback address it names; never a third machine."""
    if asked is None:
        return client
    wanted = "127.0.0.1" if asked == "localhost" else asked
    try:
        wanted_ip, client_ip = ipaddress.ip_address(wanted), ipaddress.ip_address(client)
    except ValueError:
        raise ProtocolError(
            f"{address}: host must be an IP address such as 127.0.0.1, got {asked!r}"
        ) from None
    if wanted_ip == client_ip or (wanted_ip.is_loopback and client_ip.is_loopback):
        return wanted
    raise ProtocolError(
        f"{address}: replies go back to the host that sends ({client}), not to {asked}; "
        "leave the host out"
    )


def _messages(packet: OscPacket) -> Iterator[OscMessage]:
    """Every message of a packet, depth first, in the order they run."""
    if isinstance(packet, OscMessage):
        yield packet
        return
    for element in packet.elements:
        yield from _messages(element)


def _is_loopback(host: str) -> bool:
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        return False
    if ip.version == 6 and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_loopback


def _connection_cap(wanted: int) -> int:
    """The TCP connection cap, lowered when the descriptor limit would leave renders too few."""
    try:
        import resource
    except ImportError:  # not on POSIX: trust the configured cap
        return wanted
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    needed = wanted + _RESERVED_DESCRIPTORS
    if soft != resource.RLIM_INFINITY and soft < needed:
        raised = needed if hard == resource.RLIM_INFINITY else min(needed, hard)
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (raised, hard))
            soft = raised
        except (OSError, ValueError) as exc:
            logger.debug("could not raise the descriptor limit: %s", exc)
    if soft == resource.RLIM_INFINITY or soft >= needed:
        return wanted
    cap = max(1, soft - _RESERVED_DESCRIPTORS)
    logger.warning(
        "only %d file descriptors: at most %d TCP connections (not %d), so renders keep %d",
        soft,
        cap,
        wanted,
        _RESERVED_DESCRIPTORS,
    )
    return cap


def _enlarge_receive_buffer(sock: socket.socket | None) -> None:
    # A DAW script sends a song's worth of messages in one burst; the default buffer
    # (~200 KB) would drop datagrams while the loop is busy. The kernel caps the request.
    if sock is None:
        return
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, _UDP_RECEIVE_BUFFER_BYTES)
    except OSError as exc:
        logger.debug("could not enlarge the UDP receive buffer: %s", exc)


def _bind_problem(kind: str, host: str, port: int, exc: OSError) -> str:
    return (
        f"cannot listen for OSC/{kind} on {host}:{port}: {exc.strerror or exc}; "
        "is another jasco-bridge running? Choose another --port (or --no-tcp)"
    )


def _event_message(event: JobEvent, token: str | None, bars: tuple[int, int]) -> OscMessage:
    """The reply for one job event; `bars` is the job's (start_bar, bars)."""
    if event.kind is JobState.RUNNING:
        return protocol.progress(
            event.job_id,
            event.fraction,
            event.step,
            event.total,
            event.window + 1,
            event.windows,
            token,
        )
    if event.kind is JobState.CANCELLED:
        return protocol.cancelled(event.job_id, token)
    if event.kind is JobState.DONE and event.clip is not None:
        return protocol.done(event.job_id, event.clip, *bars, token)
    return protocol.error(event.job_id, event.message or f"job {event.job_id} failed", token)


class _AudioReplies:
    """The audio desk's news (from its threads) as OSC replies sent from the loop."""

    def __init__(
        self,
        server: BridgeServer,
        session: str,
        channel: ReplyChannel,
        loop: asyncio.AbstractEventLoop,
    ) -> None:
        self._server, self._session, self._channel, self._loop = server, session, channel, loop

    def _later(self, function: Callable[..., None], *args: object) -> None:
        try:
            self._loop.call_soon_threadsafe(function, *args)
        except RuntimeError:  # the loop is closed: the daemon is gone
            logger.info("audio news after shutdown dropped")

    def playing(self, path: Path, starts_in_seconds: float, looping: bool) -> None:
        self._later(self._channel.send, protocol.playing(str(path), starts_in_seconds, looping))

    def stopped(self, path: Path) -> None:
        self._later(self._channel.send, protocol.stopped(str(path)))

    def recorded(self, take: Take) -> None:
        self._later(self._server._adopt_take, self._session, take, self._channel)

    def link_tempo(self, link_bpm: float, session_bpm: float) -> None:
        self._later(self._channel.send, protocol.link_tempo(link_bpm, session_bpm))

    def failed(self, message: str) -> None:
        self._later(self._channel.send, protocol.error(-1, message))


class _UdpProtocol(asyncio.DatagramProtocol):
    def __init__(self, server: BridgeServer) -> None:
        self._server = server

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        self._server.datagram_received(data, addr)

    def error_received(self, exc: Exception) -> None:
        # ICMP "port unreachable" for a reply to a client that went away: nothing to do.
        logger.debug("udp error: %s", exc)
