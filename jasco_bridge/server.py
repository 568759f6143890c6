"""The asyncio OSC endpoints: UDP datagrams and TCP streams (SLIP), one error boundary per message.

`BridgeServer` owns the sockets, the sessions and the render queue. Everything that arrives goes
through `_receive`: decode (bad bytes -> `/jasco/error -1`), honour bundle time tags with
`loop.call_at` (never by sleeping), check the address table, then run the command. Daemon-wide
commands (ping, status, cancel) are answered at once. Session commands run one after another on a
single command lane, so a DAW's "tempo, chords, prompt, render" keeps its order even when one of
them (reading a MIDI or audio file) is moved off the loop. Rendering never runs on the loop: the
`JobQueue` worker thread renders, and its events come back through `call_soon_threadsafe`.

Replies go to the sender (UDP), to the fixed reply address when one is configured (UDP), or back
on the same connection (TCP).
"""

from __future__ import annotations

import asyncio
import logging
import socket
import time
from collections.abc import Callable

from engine.errors import EngineError
from jasco_bridge import protocol
from jasco_bridge.config import DaemonConfig
from jasco_bridge.engines import OpenedRenderer
from jasco_bridge.errors import BridgeError, ConfigError, ProtocolError, RenderError
from jasco_bridge.jobs import JobEvent, JobQueue, JobState
from jasco_bridge.osc import (
    SLIP_END,
    OscBundle,
    OscMessage,
    OscPacket,
    SizePrefixDecoder,
    SlipDecoder,
    parse_packet,
    size_prefix_encode,
    slip_encode,
)
from jasco_bridge.pipeline import notices
from jasco_bridge.replies import ReplyChannel, TcpReply, UdpReply
from jasco_bridge.session import Session, SessionStore
from midi.errors import MidiError

logger = logging.getLogger(__name__)

# Session commands waiting on the lane (each up to 64 KB) before new ones are refused.
_MAX_PENDING_COMMANDS = 1000
_UDP_RECEIVE_BUFFER_BYTES = 8 * 2**20
_EXPECTED = (BridgeError, MidiError, EngineError)


class BridgeServer:
    """OSC in, sessions and render jobs inside, OSC out.

    server = BridgeServer(config)
    await server.start()                        # binds; ping works from here on
    server.attach_engine(renderer, vocabulary)  # renders work from here on
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
        self.sessions = sessions if sessions is not None else SessionStore()
        self._wall_clock = wall_clock
        self._queue_factory = queue_factory
        self._queue: JobQueue | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._udp: asyncio.DatagramTransport | None = None
        self._tcp: asyncio.Server | None = None
        self._tcp_transports: set[asyncio.Transport] = set()
        self._lane: asyncio.Queue[tuple[protocol.Request, ReplyChannel]] | None = None
        self._lane_task: asyncio.Task[None] | None = None
        self._timers: set[asyncio.TimerHandle] = set()
        self._refused_hosts: set[str] = set()
        self._accepting = False
        self._daemon_handlers = {
            c.handler: self._daemon_handler(c) for c in protocol.COMMANDS if c.runs_on == "daemon"
        }
        for command in protocol.COMMANDS:
            if command.runs_on == "session" and not callable(
                getattr(Session, command.handler, None)
            ):
                raise BridgeError(f"{command.address}: Session has no method {command.handler!r}")

    def _daemon_handler(self, command: protocol.Command) -> Callable[..., None]:
        method = getattr(self, f"_on_{command.handler}", None)
        if method is None:
            raise BridgeError(f"{command.address}: BridgeServer has no _on_{command.handler}")
        return method

    # ------------------------------------------------------------------ lifecycle

    async def start(self) -> None:
        """Bind the UDP socket (and the TCP listener unless disabled) and start the command lane."""
        self._loop = asyncio.get_running_loop()
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
        queue = self._queue_factory(
            opened,
            self.config.out_dir,
            max_queued=self.config.max_queue,
            on_event=self._on_job_event_threadsafe,
        )
        queue.start()
        self._queue = queue

    async def close(self, timeout_seconds: float | None = None) -> None:
        """Stop intake, let the running job finish (or cancel it after the timeout), close sockets."""
        timeout = (
            self.config.shutdown_timeout_seconds if timeout_seconds is None else timeout_seconds
        )
        self._accepting = False
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
        if self._tcp is not None:
            self._tcp.close()
            for transport in list(self._tcp_transports):
                transport.close()
            await self._tcp.wait_closed()
        if self._udp is not None:
            self._udp.close()

    def cancel_running(self) -> None:
        """Cancel the job being rendered now, if any (a forced shutdown)."""
        if self._queue is None:
            return
        running = self._queue.status().running
        if running is not None:
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
        channel = UdpReply(self._udp, self.config.reply_address or (peer[0], peer[1]))
        if len(data) > self.config.max_packet_bytes:
            channel.send(
                protocol.error(
                    -1,
                    f"datagram of {len(data)} bytes refused (limit {self.config.max_packet_bytes})",
                )
            )
            return
        self._receive(data, channel)

    async def _serve_tcp(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        peer = writer.get_extra_info("peername") or ("?", 0)
        transport = writer.transport
        if not self._allowed(peer[0]):
            transport.abort()
            return
        self._tcp_transports.add(transport)
        channel: TcpReply | None = None
        decoder: SlipDecoder | SizePrefixDecoder | None = None
        try:
            while self._accepting:
                chunk = await reader.read(65536)
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
                    if isinstance(item, ProtocolError):
                        channel.send(protocol.error(-1, f"invalid TCP frame: {item}"))
                    else:
                        self._receive(item, channel)
        except (ConnectionError, OSError) as exc:
            logger.debug("tcp %s:%s closed: %s", peer[0], peer[1], exc)
        finally:
            self._tcp_transports.discard(transport)
            transport.close()

    # ------------------------------------------------------------------ packets and bundles

    def _receive(self, data: bytes, channel: ReplyChannel) -> None:
        try:
            packet = parse_packet(data)
        except ProtocolError as exc:
            logger.warning("invalid OSC packet from %s: %s", channel, exc)
            channel.send(protocol.error(-1, f"invalid OSC packet: {exc}"))
            return
        self._route(packet, channel)

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
        try:
            request = protocol.parse_request(message)
            if not request.command.per_session:
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

    def _report(self, address: str, exc: BaseException, channel: ReplyChannel) -> None:
        shown = address[:200]
        if isinstance(exc, _EXPECTED):
            logger.warning("%s refused (error sent to %s): %s", shown, channel, exc)
            # Protocol errors already start with the address.
            text = str(exc) if isinstance(exc, ProtocolError) else f"{shown}: {exc}"
        else:
            logger.error("unexpected failure handling %s from %s", shown, channel, exc_info=exc)
            text = f"{shown}: internal error ({type(exc).__name__}); the daemon logged it and keeps running"
        channel.send(protocol.error(-1, text))

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
                    await loop.run_in_executor(None, self._apply, request)
                else:
                    self._apply(request)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # error boundary of the lane
                self._report(request.address, exc, channel)
            finally:
                lane.task_done()

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
        channel = event.reply_to
        if channel is None:
            return
        try:
            channel.send(_event_message(event))
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

    def _on_cancel(self, request: protocol.Request, channel: ReplyChannel) -> None:
        job_id = int(request["job"])  # type: ignore[call-overload]
        if not self._require_queue().cancel(job_id):
            raise RenderError(f"job {job_id} has already finished; nothing to cancel")

    # ------------------------------------------------------------------ session commands

    def _require_queue(self) -> JobQueue:
        if self._queue is None:
            raise RenderError(
                "the engine is still loading; try again in a few seconds (/jasco/status says 'idle' when ready)"
            )
        return self._queue

    def _apply(self, request: protocol.Request) -> None:
        """A session command: the Session method named in the table, arguments by name."""
        method = getattr(self.sessions.get(request.session), request.command.handler)
        if request.command.repeat:
            method(request.groups)  # all or nothing
        else:
            method(**request.values)

    def _on_render(self, request: protocol.Request, channel: ReplyChannel) -> None:
        queue = self._require_queue()
        snapshot = self.sessions.get(request.session).snapshot()
        jobs = queue.submit(snapshot, request["start_bar"], request["bars"], reply_to=channel)
        for job in jobs:
            channel.send(protocol.ack(job.id, job.seed, job.variation))
        for text in notices(snapshot, jobs[0].window):
            for job in jobs:
                channel.send(protocol.notice(job.id, text))


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


def _event_message(event: JobEvent) -> OscMessage:
    if event.kind is JobState.RUNNING:
        return protocol.progress(
            event.job_id, event.fraction, event.step, event.total, event.window + 1, event.windows
        )
    if event.kind is JobState.CANCELLED:
        return protocol.cancelled(event.job_id)
    if event.kind is JobState.DONE and event.clip is not None:
        return protocol.done(event.job_id, event.clip)
    return protocol.error(event.job_id, event.message or f"job {event.job_id} failed")


class _UdpProtocol(asyncio.DatagramProtocol):
    def __init__(self, server: BridgeServer) -> None:
        self._server = server

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        self._server.datagram_received(data, addr)

    def error_received(self, exc: Exception) -> None:
        # ICMP "port unreachable" for a reply to a client that went away: nothing to do.
        logger.debug("udp error: %s", exc)
