"""The daemon's life in three verbs: startup -> serve -> shutdown.

startup   binds the sockets first (a busy port fails in a second, not after a model load), then
          loads the engine in a thread while ping and session messages already work, and
          announces the addresses and the engine, loudly when it is only the preview.
serve     waits for SIGINT/SIGTERM (or `request_stop()`).
shutdown  stops intake, lets the running jobs finish within the timeout and cancels what is left
          (each job's client gets `/jasco/cancelled`), closes the sockets. A second Ctrl-C cancels
          the running jobs at their next sampler step instead of waiting. Signal handlers are
          restored afterwards.

With `--ready-file PATH` the daemon writes `ready_document(...)` there as JSON once it is bound
and its engine is loaded (atomically: a reader never sees half a file), and removes it on
shutdown, so a script or test that starts `--port 0` learns the ports without parsing logs.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import json
import logging
import os
import signal
import tempfile
import threading
from collections.abc import Callable
from pathlib import Path
from types import TracebackType
from typing import TypeVar

from jasco_bridge import discovery
from jasco_bridge.clips import check_clip_folder
from jasco_bridge.config import DaemonConfig
from jasco_bridge.engines import OpenedRenderer, open_renderer
from jasco_bridge.errors import ConfigError
from jasco_bridge.live_midi import LiveChordRecording
from jasco_bridge.server import BridgeServer

logger = logging.getLogger(__name__)

Announce = Callable[[str], None]
OpenEngine = Callable[[DaemonConfig], OpenedRenderer]

_SIGNALS = (signal.SIGINT, signal.SIGTERM)
T = TypeVar("T")


def open_configured_engine(config: DaemonConfig) -> OpenedRenderer:
    """Load the engine the config asks for (JASCO imports torch: call it off the event loop)."""
    return open_renderer(
        config.engine,
        config.model,
        config.device,
        config.precision,
        warm_up=True,
        cluster=config.cluster,
    )


def describe_engine(opened: OpenedRenderer) -> list[str]:
    """What the operator must know about the live engine; a preview is impossible to miss."""
    renderer = opened.renderer
    lines = []
    if renderer.is_preview:
        bar = "!" * 72
        lines += [
            bar,
            "!! PREVIEW ENGINE: clips are a built-in synthesiser, NOT JASCO.",
            "!! Install the weights (jasco-bridge weights download) and restart for real renders.",
            bar,
        ]
    else:
        lines.append(f"engine: {renderer.name} ({renderer.model_id})")
    if opened.notice:
        lines.append(opened.notice)
    return lines


def ready_document(server: BridgeServer, opened: OpenedRenderer) -> dict[str, object]:
    """What `--ready-file` holds: where to send (`tcp_port` is None with --no-tcp) and what renders."""
    host, udp_port = server.udp_address
    renderer = opened.renderer
    return {
        "host": host,
        "udp_port": udp_port,
        "tcp_port": server.tcp_port,
        "engine": "preview" if renderer.is_preview else renderer.name,
        "model": renderer.model_id,
        "out_dir": str(server.config.out_dir),
        "pid": os.getpid(),
    }


def write_file_atomically(path: Path, text: str) -> None:
    """Write `text` to a temporary file beside `path`, then rename it over `path`."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        handle, temporary = tempfile.mkstemp(
            dir=path.parent, prefix=f".{path.name}.", suffix=".tmp"
        )
        with os.fdopen(handle, "w", encoding="utf-8") as out:
            out.write(text)
        os.replace(temporary, path)
    except OSError as exc:
        raise ConfigError(
            f"cannot write the ready file {path}: {exc}; choose another --ready-file"
        ) from None


def exposure_warnings(config: DaemonConfig) -> list[str]:
    """What an operator must hear when the daemon can be reached from other machines."""
    if not config.listens_beyond_loopback:
        return []
    bar = "!" * 72
    lines = []
    if not config.allow:
        lines += [
            bar,
            f"!! listening on {config.host} with no --allow list: any machine that can reach",
            "!! this one may send OSC. Add --allow ADDR (your DAW's address or network).",
            bar,
        ]
    if config.token is None:
        lines.append(
            "warning: no --token: --allow only filters addresses (UDP sources can be forged); "
            "set --token (or $JASCO_BRIDGE_TOKEN) so other machines must prove they may "
            "change anything"
        )
    return lines


class Daemon:
    """One `jasco-bridge serve` run. `announce` receives the lines an operator should see."""

    def __init__(
        self,
        config: DaemonConfig,
        *,
        announce: Announce = logger.info,
        open_engine: OpenEngine = open_configured_engine,
        server: BridgeServer | None = None,
    ) -> None:
        self.config = config
        self.server = server if server is not None else BridgeServer(config)
        self._announce = announce
        self._open_engine = open_engine
        self._stop: asyncio.Event | None = None
        self._stop_requests = 0
        self._ready_file_written: Path | None = None
        self._advertiser: discovery.Advertiser | None = None
        self._midi: LiveChordRecording | None = None

    async def startup(self) -> None:
        self._stop = asyncio.Event()
        check_clip_folder(self.config.out_dir)  # refused now, not after the first render
        await self.server.start()
        host, port = self.server.udp_address
        tcp = self.server.tcp_port
        tcp_text = f", OSC/TCP (SLIP) on {host}:{tcp}" if tcp is not None else ", TCP off"
        self._announce(f"listening: OSC/UDP on {host}:{port}{tcp_text}")
        if self.config.reply_address is not None:
            reply_host, reply_port = self.config.reply_address
            self._announce(f"UDP replies go to {reply_host}:{reply_port}")
        for line in exposure_warnings(self.config):
            self._announce(line)
        if self.config.midi_in is not None:
            self._midi = LiveChordRecording(self.server.sessions, asyncio.get_running_loop())
            name = self._midi.open(self.config.midi_in)
            self._announce(
                f"recording chord notes from MIDI input {name!r} while its MIDI clock runs"
            )
        self._announce(f"clips are written under {self.config.out_dir.resolve()}")
        loop = asyncio.get_running_loop()
        # Registering takes a second or two of multicast probing: do it while the engine loads.
        advertising = loop.create_task(self._advertise(host, port, tcp))
        self._announce("loading the engine ...")
        try:
            opened = await loop.run_in_executor(None, self._open_engine, self.config)
        finally:
            await advertising
        self.server.attach_engine(opened)
        for line in describe_engine(opened):
            self._announce(line)
        ready_file = self.config.ready_file
        if ready_file is not None:
            document = ready_document(self.server, opened)
            write_file_atomically(ready_file, json.dumps(document, indent=2) + "\n")
            self._ready_file_written = ready_file
            self._announce(f"addresses and engine written to {ready_file}")
        self._announce("ready (Ctrl-C to stop)")

    async def _advertise(self, host: str, port: int, tcp_port: int | None) -> None:
        """The Zeroconf record on a reachable address; a failure only costs discovery."""
        if not discovery.should_advertise(host, self.config.advertise):
            return
        loop = asyncio.get_running_loop()
        try:
            advertiser = discovery.advertiser_for(host, port, tcp_port)
            await loop.run_in_executor(None, advertiser.start)
        except ImportError:
            self._announce(
                f"not advertised over Bonjour: {discovery.INSTALL_HINT} so that controllers "
                "list this daemon (or type its address into them)"
            )
            return
        except Exception as exc:  # multicast refused, name conflict, no interface ...
            self._announce(
                f"not advertised over Bonjour ({exc or type(exc).__name__}); type the address into "
                "controllers"
            )
            return
        self._advertiser = advertiser
        addresses = ", ".join(advertiser.info.parsed_addresses())
        name = advertiser.info.name.removesuffix("." + discovery.SERVICE_TYPE)
        self._announce(f"advertised over Bonjour as '{name}' (_osc._udp on {addresses}:{port})")

    async def serve(self) -> None:
        if self._stop is None:
            raise RuntimeError("call startup() before serve()")
        await self._stop.wait()

    async def shutdown(self) -> None:
        if self._midi is not None:
            self._midi.close()
        if not self.server.started:
            return  # startup failed before binding: nothing to stop
        if self._ready_file_written is not None:
            # Gone first: nobody should start talking to a daemon on its way out.
            self._ready_file_written.unlink(missing_ok=True)
            self._ready_file_written = None
        self._announce("shutting down: finishing the running job (Ctrl-C again to cancel it)")
        await self.server.close(self.config.shutdown_timeout_seconds)
        if self._advertiser is not None:
            advertiser, self._advertiser = self._advertiser, None
            await asyncio.get_running_loop().run_in_executor(None, advertiser.close)
        self._announce("stopped")

    def request_stop(self) -> None:
        """First call: stop serving. Later calls: cancel the running renders now."""
        self._stop_requests += 1
        if self._stop is not None:
            self._stop.set()
        if self._stop_requests > 1:
            self._announce("cancelling the running job")
            self.server.cancel_running()

    async def run(self) -> None:
        """startup, serve until a signal, shutdown; signal handlers are restored on the way out."""
        loop = asyncio.get_running_loop()
        previous = {sig: signal.getsignal(sig) for sig in _SIGNALS}
        installed = []
        try:
            for sig in _SIGNALS:
                try:
                    loop.add_signal_handler(sig, self.request_stop)
                    installed.append(sig)
                except (NotImplementedError, RuntimeError):
                    # Not the main thread, or a platform without loop signal support.
                    logger.debug("cannot install a handler for %s here", sig.name)
            try:
                await self.startup()
                await self.serve()
            finally:
                await self.shutdown()
        finally:
            for sig in installed:
                loop.remove_signal_handler(sig)
                signal.signal(sig, previous[sig])


def run_daemon(config: DaemonConfig, *, announce: Announce = logger.info) -> int:
    """Run the daemon until SIGINT/SIGTERM; returns the process exit status."""
    asyncio.run(Daemon(config, announce=announce).run())
    return 0


class BackgroundDaemon:
    """A daemon on its own thread and event loop, for embedding (tests, benchmarks, a Python host).

        with BackgroundDaemon(DaemonConfig(port=0), open_engine=...) as daemon:
            port = daemon.server.udp_port
            ...
    Entering waits until the engine is attached; leaving runs the normal shutdown.
    """

    def __init__(
        self,
        config: DaemonConfig,
        *,
        open_engine: OpenEngine = open_configured_engine,
        announce: Announce = logger.info,
        start_timeout_seconds: float = 120.0,
    ) -> None:
        self.announced: list[str] = []
        self._outer_announce = announce
        self._ready = threading.Event()
        self._failure: list[BaseException] = []
        self._start_timeout = start_timeout_seconds
        self.daemon = Daemon(config, announce=self._announce, open_engine=open_engine)
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._run, name="jasco-daemon", daemon=True)

    @property
    def server(self) -> BridgeServer:
        return self.daemon.server

    def _announce(self, line: str) -> None:
        self.announced.append(line)
        self._outer_announce(line)
        if line.startswith("ready"):
            self._ready.set()

    def _run(self) -> None:
        try:
            self._loop.run_until_complete(self.daemon.run())
        except BaseException as exc:  # handed to the thread that started us
            self._failure.append(exc)
        finally:
            self._ready.set()
            self._loop.close()

    def __enter__(self) -> BackgroundDaemon:
        self._thread.start()
        if not self._ready.wait(self._start_timeout):
            raise RuntimeError(f"the daemon did not start within {self._start_timeout} s")
        if self._failure:
            raise self._failure[0]
        return self

    def call_in_loop(self, function: Callable[[], T], timeout_seconds: float = 30.0) -> T:
        """Run `function` on the daemon's event loop and return its result: the safe way for
        another thread to look at sessions or the server while the daemon runs."""
        result: concurrent.futures.Future[T] = concurrent.futures.Future()

        def run() -> None:
            try:
                result.set_result(function())
            except BaseException as exc:  # handed to the calling thread
                result.set_exception(exc)

        self._loop.call_soon_threadsafe(run)
        return result.result(timeout_seconds)

    def request_stop(self) -> None:
        """What Ctrl-C does, from any thread: the first call stops serving, a second cancels
        the running job."""
        try:
            self._loop.call_soon_threadsafe(self.daemon.request_stop)
        except RuntimeError:
            pass  # the loop already closed: the thread is finishing on its own

    def stop(self, timeout_seconds: float = 120.0) -> None:
        """Graceful shutdown (as on Ctrl-C); re-raises anything the daemon thread died of."""
        if self._thread.is_alive():
            self.request_stop()
            self._thread.join(timeout_seconds)
        if self._thread.is_alive():
            raise RuntimeError(f"the daemon did not stop within {timeout_seconds} s")
        if self._failure:
            raise self._failure[0]

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()
