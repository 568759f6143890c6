"""Send one render request (JSON) to a running daemon, and print its replies as JSON lines.

For DAW scripts and shells that can start a process but cannot speak OSC: write the song's tempo
map, the chord notes (or symbols), the prompt, the bars and the settings as JSON (schema:
docs/request.md), and run this. It talks to `jasco-bridge serve` over TCP, so replies come back
on the same connection (no reply port, no liblo) and requests of any size fit. Each reply is
printed as one JSON line as it arrives, and the exit status says how it ended:

  0  every job is done (the last line of each job is its "done" event, with the clip's path)
  1  the daemon refused or failed it, it timed out, or the daemon cannot be reached
  2  the request itself is wrong (the error names the field)

examples:
  jasco-bridge request song.json
  cat song.json | jasco-bridge request - --port 9000
  jasco-bridge request song.json --ready-file ready.json --events-file events.jsonl

a minimal request (two bars of chords from bar 5, a fresh seed each run):
  {"tempo": {"bpm": 92, "numerator": 4, "denominator": 4},
   "notes": [{"start_beat": 16, "length_beats": 4, "pitch": 57},
             {"start_beat": 16, "length_beats": 4, "pitch": 60}],
   "prompt": "warm rhodes, brushed drums", "start_bar": 5, "bars": 2}

output, one line per reply:
  {"event": "ack", "job": 4, "seed": 812, "variation": 0, "start_bar": 5, "bars": 2, "token": "..."}
  {"event": "progress", "job": 4, "fraction": 0.1, "token": "..."}
  {"event": "done", "job": 4, "path": "/.../bars005-006_....wav", "start_beat": 16.0, ...}
"""

from __future__ import annotations

import argparse
import json
import select
import socket
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

from jasco_bridge.client import Event, RenderSpec, ReplyTracker
from jasco_bridge.config import DEFAULT_PORT
from jasco_bridge.errors import ProtocolError, UsageError
from jasco_bridge.osc import OscMessage, SlipDecoder, encode_packet, parse_packet, slip_encode

HELP = "send a JSON render request to the daemon; print its replies as JSON lines"

_CONNECT_SECONDS = 5.0
_POLL_SECONDS = 0.2  # how often --cancel-file is looked for while waiting


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "request", nargs="?", default="-", help="the JSON request file; - reads standard input"
    )
    parser.add_argument("--host", default="127.0.0.1", help="the daemon's address")
    parser.add_argument(
        "--port", type=int, default=DEFAULT_PORT, help="the daemon's TCP port (serve --tcp-port)"
    )
    parser.add_argument(
        "--ready-file",
        metavar="PATH",
        default=None,
        help="take host and TCP port from the file `serve --ready-file` wrote",
    )
    parser.add_argument(
        "--timeout",
        type=float,
        default=3600.0,
        help="seconds to wait for the jobs to end; then they are cancelled and the exit is 1",
    )
    parser.add_argument(
        "--cancel-file",
        metavar="PATH",
        default=None,
        help="cancel the jobs (exit 1) as soon as this file exists: how a DAW script stops a "
        "render it started, on any OS",
    )
    parser.add_argument(
        "--events-file",
        metavar="PATH",
        default=None,
        help="also append each JSON line to this file (flushed per line), for hosts that poll a "
        "file instead of reading a pipe",
    )


def run(args: argparse.Namespace) -> int:
    sinks: list[IO[str]] = [sys.stdout]
    events_file = None
    if args.events_file:
        try:
            events_file = open(args.events_file, "a", encoding="utf-8")
        except OSError as exc:
            raise UsageError(f"cannot write --events-file {args.events_file}: {exc}") from None
        sinks.append(events_file)

    def emit(event: Event) -> None:
        # ASCII with \u escapes: a Windows console or pipe may not take UTF-8.
        line = json.dumps(event)
        for sink in sinks:
            sink.write(line + "\n")
            sink.flush()

    try:
        try:
            spec = RenderSpec.from_json(_read_document(args.request))
            host, port = _daemon_address(args)
        except UsageError as exc:
            emit({"event": "error", "job": -1, "message": str(exc)})
            return 2
        token = spec.token or uuid.uuid4().hex[:16]
        try:
            cancel_file = Path(args.cancel_file) if args.cancel_file else None
            return _converse(spec, token, host, port, args.timeout, cancel_file, emit)
        except OSError as exc:
            emit(
                {
                    "event": "error",
                    "job": -1,
                    "message": f"cannot talk to the daemon at {host}:{port} over TCP ({exc}); "
                    "is `jasco-bridge serve` running, with TCP on (not --no-tcp)?",
                    "token": token,
                }
            )
            return 1
    finally:
        if events_file is not None:
            events_file.close()


def _read_document(source: str) -> Any:
    try:
        text = sys.stdin.read() if source == "-" else Path(source).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"cannot read the request {source}: {exc}") from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise UsageError(f"the request {source} is not valid JSON: {exc}") from None


def _daemon_address(args: argparse.Namespace) -> tuple[str, int]:
    if args.ready_file is None:
        return args.host, args.port
    try:
        ready = json.loads(Path(args.ready_file).read_text(encoding="utf-8"))
        host, port = ready["host"], ready["tcp_port"]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise UsageError(
            f"cannot read --ready-file {args.ready_file} ({exc}); is the daemon running?"
        ) from None
    if port is None:
        raise UsageError("the daemon runs with --no-tcp; `request` needs its TCP port")
    # A daemon listening on every interface is reached on loopback.
    return ("127.0.0.1" if host in ("0.0.0.0", "::") else host), int(port)


def _converse(
    spec: RenderSpec,
    token: str,
    host: str,
    port: int,
    timeout_seconds: float,
    cancel_file: Path | None,
    emit: Callable[[Event], None],
) -> int:
    tracker = ReplyTracker(token)
    decoder = SlipDecoder(16 * 2**20)
    with socket.create_connection((host, port), timeout=_CONNECT_SECONDS) as sock:

        def send(message: OscMessage) -> None:
            sock.sendall(slip_encode(encode_packet(message)))

        for message in spec.messages(token):
            send(message)
        deadline = time.monotonic() + timeout_seconds
        while not tracker.finished:
            left = deadline - time.monotonic()
            if left <= 0:
                reason = f"no end after {timeout_seconds:g} s; raise --timeout for slow renders"
                return _give_up(tracker, token, reason, send, emit)
            if cancel_file is not None and cancel_file.exists():
                return _give_up(tracker, token, f"cancelled ({cancel_file} appeared)", send, emit)
            readable, _, _ = select.select([sock], [], [], min(left, _POLL_SECONDS))
            if not readable:
                continue
            chunk = sock.recv(65536)
            if not chunk:
                emit(
                    {
                        "event": "error",
                        "job": -1,
                        "message": "the daemon closed the connection before the jobs ended "
                        "(was it stopped?)",
                        "token": token,
                    }
                )
                return 1
            for frame in decoder.feed(chunk):
                if isinstance(frame, Exception):
                    continue  # a broken frame from the daemon: the next END resynchronises
                try:
                    reply = parse_packet(frame)
                except ProtocolError:
                    continue  # not OSC: nothing this request can use
                if isinstance(reply, OscMessage):
                    for event in tracker.feed(reply):
                        emit(event)
                for job in tracker.take_cancel_requests():
                    send(OscMessage("/jasco/cancel", (job,)))
    return tracker.exit_status


def _give_up(
    tracker: ReplyTracker,
    token: str,
    reason: str,
    send: Callable[[OscMessage], None],
    emit: Callable[[Event], None],
) -> int:
    unfinished = tracker.unfinished_jobs
    for job in unfinished:
        send(OscMessage("/jasco/cancel", (job,)))
    jobs = f"; cancelled job(s) {', '.join(map(str, unfinished))}" if unfinished else ""
    emit({"event": "error", "job": -1, "message": reason + jobs, "token": token})
    return 1
