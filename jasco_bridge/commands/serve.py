"""Run the OSC daemon your DAW talks to.

The daemon listens for OSC on UDP (and on TCP with SLIP framing, OSC 1.1) and renders clips with
JASCO, or with the built-in preview synthesiser when no weights are installed (it says so loudly).
Replies go back to the sender; give --reply-port when your sender uses a throw-away port (oscsend,
some controllers) and listens somewhere else. Stop with Ctrl-C: the running job is finished first
(Ctrl-C again cancels it).

examples:
  jasco-bridge serve
  jasco-bridge serve --port 9000 --out-dir ~/Music/jasco-clips
  jasco-bridge serve --engine preview --no-tcp
  jasco-bridge serve --reply-port 9001          # replies to 127.0.0.1:9001
  jasco-bridge serve --port 0 --ready-file ready.json   # any free port; read it from the file
  jasco-bridge serve --cluster ray://10.0.0.5:10001   # render on the studio's GPU workers

  # in another terminal (liblo-tools):
  oscdump 9001 &
  oscsend localhost 9000 /jasco/tempo f 100
  oscsend localhost 9000 /jasco/chords/symbols fsfsfsfs 0 Am7 4 D9 8 Gmaj7 12 Cmaj7
  oscsend localhost 9000 /jasco/prompt s "lofi hip hop, rhodes, vinyl crackle"
  oscsend localhost 9000 /jasco/render ii 1 4     # -> /jasco/ack, /jasco/progress, /jasco/done
  oscsend localhost 9000 /jasco/play              # hear the last clip, from the next bar

Every address, argument and reply is listed in docs/osc.md. Security: the daemon binds
127.0.0.1 unless --host says otherwise and only writes under --out-dir. When you open it to a
network, --allow filters client addresses (a filter, not authentication: UDP sources can be
forged) and --token (or $JASCO_BRIDGE_TOKEN) is the secret other machines must send before they
may change anything. On such a bind the daemon is advertised over Bonjour/Zeroconf as an
`_osc._udp` service (needs the `discovery` extra) so that TouchOSC and Open Stage Control list it;
--no-advertise turns that off.
"""

from __future__ import annotations

import argparse
import dataclasses

from jasco_bridge.commands.render import add_precision_option
from jasco_bridge.config import (
    DEFAULT_OUT_DIR,
    DEFAULT_PORT,
    ENGINE_KINDS,
    TOKEN_ENVIRONMENT_VARIABLE,
    DaemonConfig,
)

HELP = "run the OSC daemon for your DAW (UDP + TCP)"

# The option defaults are DaemonConfig's, so `serve --help` and an embedded daemon agree.
_DEFAULTS = {field.name: field.default for field in dataclasses.fields(DaemonConfig)}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--host", default=_DEFAULTS["host"], help="address to listen on (0.0.0.0 = all)"
    )
    parser.add_argument(
        "--port", type=int, default=DEFAULT_PORT, help="UDP port (0 = any free port)"
    )
    tcp = parser.add_mutually_exclusive_group()
    tcp.add_argument(
        "--tcp-port",
        type=int,
        default=None,
        help="TCP port (SLIP or size-prefixed framing); %(default)s = the same as --port",
    )
    tcp.add_argument("--no-tcp", action="store_true", help="do not listen on TCP")
    parser.add_argument(
        "--reply-host",
        default=None,
        help="send UDP replies to this host; %(default)s = 127.0.0.1 when --reply-port is given",
    )
    parser.add_argument(
        "--reply-port",
        type=int,
        default=None,
        help="send UDP replies to this port; %(default)s = answer each sender",
    )
    parser.add_argument(
        "--allow",
        action="append",
        metavar="ADDR",
        help="accept OSC only from this IP or network (repeatable), e.g. 192.168.1.0/24; "
        "%(default)s = anyone who can reach --host",
    )
    parser.add_argument(
        "--no-advertise",
        action="store_true",
        help="do not announce the daemon over Zeroconf/Bonjour (_osc._udp); it is only "
        "announced when --host is not a loopback address",
    )
    parser.add_argument(
        "--token",
        default=None,
        help="shared secret that clients on other machines must send (/jasco/auth s TOKEN) "
        f"before changing anything; %(default)s = ${TOKEN_ENVIRONMENT_VARIABLE} if set. "
        "Loopback clients never need it",
    )
    parser.add_argument(
        "--max-connections",
        type=int,
        default=_DEFAULTS["max_tcp_connections"],
        help="TCP connections open at once; more are closed right away",
    )
    parser.add_argument(
        "--tcp-idle-timeout",
        type=float,
        default=_DEFAULTS["tcp_idle_timeout_seconds"],
        help="seconds a TCP connection may stay silent before it is closed",
    )
    parser.add_argument(
        "--tcp-frame-timeout",
        type=float,
        default=_DEFAULTS["tcp_frame_timeout_seconds"],
        help="seconds a TCP packet, once begun, may take to arrive whole",
    )
    parser.add_argument(
        "--midi-in",
        metavar="PORT",
        default=None,
        help="record chord notes from this live MIDI input (needs pip install "
        "'jasco-bridge[live]'); beats come from the MIDI clock and song position on that port",
    )
    parser.add_argument("--out-dir", default=str(DEFAULT_OUT_DIR), help="folder for the clips")
    parser.add_argument(
        "--read-root",
        action="append",
        metavar="DIR",
        help="also read chord and drum files named over OSC from this folder (repeatable); "
        "always allowed: your home folder and --out-dir. Paths elsewhere get 'not allowed'",
    )
    parser.add_argument("--engine", choices=ENGINE_KINDS, default="auto", help="renderer to load")
    parser.add_argument(
        "--model", default=None, help="JASCO weights folder or model id; %(default)s = find it"
    )
    parser.add_argument(
        "--device", default=None, help="torch device, e.g. cuda, cpu; %(default)s = the best one"
    )
    add_precision_option(parser)
    parser.add_argument(
        "--cluster",
        default=None,
        metavar="ray://HOST:PORT",
        help="render on the workers of this Ray cluster (see `jasco-bridge worker --help`); "
        "%(default)s = render here",
    )
    parser.add_argument(
        "--max-queue", type=int, default=_DEFAULTS["max_queue"], help="render jobs that may wait"
    )
    parser.add_argument(
        "--shutdown-timeout",
        type=float,
        default=_DEFAULTS["shutdown_timeout_seconds"],
        help="seconds to let the running job finish on Ctrl-C before cancelling it",
    )
    parser.add_argument(
        "--ready-file",
        metavar="PATH",
        default=None,
        help="once ready, write the bound host, UDP/TCP ports, engine and model here as JSON "
        "(replaced atomically; removed on shutdown), so a script that starts --port 0 "
        "needs no log parsing",
    )

    audio = parser.add_argument_group(
        "audio (audition with /jasco/play, drum takes with /jasco/drums/record)"
    )
    audio.add_argument(
        "--audio-out",
        metavar="DEVICE",
        default=None,
        help="output device: name, part of a name or index (jasco-bridge devices lists them); "
        "%(default)s = the system's default",
    )
    audio.add_argument(
        "--audio-in",
        metavar="DEVICE",
        default=None,
        help="input device for drum takes; %(default)s = the system's default",
    )
    audio.add_argument(
        "--input-latency-ms",
        type=float,
        default=_DEFAULTS["input_latency_ms"],
        help="input latency the driver does not report, subtracted from takes "
        "(jasco-bridge latency measures it)",
    )
    audio.add_argument(
        "--link",
        action="store_true",
        help="join an Ableton Link session for tempo and bar phase (needs the link extra)",
    )


def run(args: argparse.Namespace) -> int:
    from jasco_bridge.daemon import run_daemon

    config = DaemonConfig.from_args(args)
    return run_daemon(config, announce=lambda line: print(f"jasco-bridge: {line}", flush=True))
