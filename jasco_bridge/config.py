"""`DaemonConfig`: every setting of `jasco-bridge serve`, validated once at startup."""

from __future__ import annotations

import argparse
import ipaddress
import math
import os
from dataclasses import dataclass, field
from pathlib import Path

from jasco_bridge.errors import ConfigError

ENGINE_KINDS = ("auto", "jasco", "preview")
DEFAULT_PORT = 9000
DEFAULT_OUT_DIR = Path("jasco-clips")
UDP_PAYLOAD_LIMIT = 65507  # the largest payload a UDP/IPv4 datagram can carry
TOKEN_ENVIRONMENT_VARIABLE = "JASCO_BRIDGE_TOKEN"


def _check_port(name: str, value: int | None, *, allow_none: bool) -> None:
    if value is None and allow_none:
        return
    if not (isinstance(value, int) and 0 <= value <= 65535):
        raise ConfigError(
            f"{name} must be a port number 0..65535 (0 = any free port), got {value!r}"
        )


def _network(entry: str) -> ipaddress.IPv4Network | ipaddress.IPv6Network:
    try:
        return ipaddress.ip_network(entry, strict=False)
    except ValueError:
        raise ConfigError(
            f"--allow {entry!r} is not an IP address or network (e.g. 127.0.0.1, 10.0.0.0/8)"
        ) from None


@dataclass(frozen=True)
class DaemonConfig:
    """How the daemon listens, where it answers, what it renders with and where clips go.

    `tcp_port=None` turns OSC-over-TCP off. `reply_host`/`reply_port` send every UDP reply to one
    fixed address instead of to each message's sender (needed for senders such as `oscsend`
    that use a throw-away port). `cluster` is a Ray address (`ray://HOST:PORT`): windows then
    render on that cluster's workers, everything else stays here. `allow` is an allow-list of
    client IP addresses or networks (`127.0.0.1`, `192.168.1.0/24`); empty means anyone who can
    reach the socket. It filters
    addresses, it does not authenticate (a UDP source address can be forged): `token`, a shared
    secret, is what state-changing messages from other machines must carry (docs/osc.md).
    TCP connections are capped at `max_tcp_connections`; one idle for
    `tcp_idle_timeout_seconds`, or stuck in the middle of a frame for `tcp_frame_timeout_seconds`,
    is closed. `midi_in` names a live MIDI input port to record chord notes from.
    `ready_file` is where the daemon writes its bound addresses and engine as JSON once it is
    ready (see `jasco_bridge.daemon.ready_document`).
    """

    host: str = "127.0.0.1"
    port: int = DEFAULT_PORT
    tcp_port: int | None = DEFAULT_PORT
    reply_host: str | None = None
    reply_port: int | None = None
    allow: tuple[str, ...] = ()
    out_dir: Path = DEFAULT_OUT_DIR
    engine: str = "auto"
    model: str | None = None
    device: str | None = None
    precision: str = "auto"
    cluster: str | None = None
    max_queue: int = 64
    max_packet_bytes: int = UDP_PAYLOAD_LIMIT
    max_pending_bundles: int = 1024
    max_bundle_delay_seconds: float = 3600.0
    shutdown_timeout_seconds: float = 10.0
    ready_file: Path | None = None
    read_roots: tuple[Path, ...] = ()
    file_read_timeout_seconds: float = 10.0
    # Zeroconf/Bonjour `_osc._udp` record on a non-loopback host (see jasco_bridge.discovery).
    advertise: bool = True
    max_tcp_connections: int = 64
    tcp_idle_timeout_seconds: float = 600.0
    tcp_frame_timeout_seconds: float = 10.0
    token: str | None = field(default=None, repr=False)
    midi_in: str | None = None
    audio_out: str | None = None
    audio_in: str | None = None
    input_latency_ms: float = 0.0
    link: bool = False
    _allowed_networks: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...] = field(
        init=False, repr=False, compare=False
    )

    def __post_init__(self) -> None:
        if not isinstance(self.host, str) or not self.host:
            raise ConfigError(f"host must be an address such as 127.0.0.1, got {self.host!r}")
        _check_port("port", self.port, allow_none=False)
        _check_port("tcp_port", self.tcp_port, allow_none=True)
        _check_port("reply_port", self.reply_port, allow_none=True)
        if self.reply_host is not None and self.reply_port is None:
            raise ConfigError("--reply-host needs --reply-port too (the host alone says nothing)")
        if self.reply_port == 0:
            raise ConfigError("reply_port 0 is not an address to send to; give the listener's port")
        object.__setattr__(self, "_allowed_networks", tuple(map(_network, self.allow)))
        if self.engine not in ENGINE_KINDS:
            raise ConfigError(
                f"engine must be one of {', '.join(ENGINE_KINDS)}, got {self.engine!r}"
            )
        if self.cluster is not None:
            from jasco_bridge.cluster import check_address  # no Ray needed to check it

            check_address(self.cluster)
        if not (isinstance(self.max_queue, int) and 1 <= self.max_queue <= 100_000):
            raise ConfigError(f"max_queue must be a whole number 1..100000, got {self.max_queue!r}")
        if not (
            isinstance(self.max_packet_bytes, int) and 64 <= self.max_packet_bytes <= 16 * 2**20
        ):
            raise ConfigError(f"max_packet_bytes must be 64..16 MiB, got {self.max_packet_bytes!r}")
        if not (isinstance(self.max_pending_bundles, int) and self.max_pending_bundles >= 0):
            raise ConfigError(f"max_pending_bundles must be >= 0, got {self.max_pending_bundles!r}")
        if not (
            isinstance(self.max_tcp_connections, int) and 1 <= self.max_tcp_connections <= 10_000
        ):
            raise ConfigError(
                f"max_tcp_connections must be a whole number 1..10000, got {self.max_tcp_connections!r}"
            )
        for name in ("tcp_idle_timeout_seconds", "tcp_frame_timeout_seconds"):
            value = getattr(self, name)
            if not (isinstance(value, (int, float)) and math.isfinite(value) and value > 0):
                raise ConfigError(f"{name} must be a number of seconds > 0, got {value!r}")
        if self.token is not None and not (isinstance(self.token, str) and len(self.token) >= 8):
            raise ConfigError(
                "the token must be at least 8 characters (a long random string is best, e.g. "
                "python -c 'import secrets; print(secrets.token_urlsafe())')"
            )
        if self.midi_in is not None and not (isinstance(self.midi_in, str) and self.midi_in):
            raise ConfigError(f"midi_in must be a MIDI port name, got {self.midi_in!r}")
        for name in (
            "max_bundle_delay_seconds",
            "shutdown_timeout_seconds",
            "file_read_timeout_seconds",
        ):
            value = getattr(self, name)
            if not (isinstance(value, (int, float)) and math.isfinite(value) and value >= 0):
                raise ConfigError(f"{name} must be a number of seconds >= 0, got {value!r}")
        latency = self.input_latency_ms
        if not (
            isinstance(latency, (int, float))
            and math.isfinite(latency)
            and -1000 <= latency <= 1000
        ):
            raise ConfigError(
                f"input_latency_ms must be -1000..1000 (jasco-bridge latency measures it), "
                f"got {latency!r}"
            )
        # Absolute from the start: /jasco/done tells a DAW (another process, another working
        # folder) where the clip is.
        object.__setattr__(self, "out_dir", Path(self.out_dir).expanduser().absolute())
        if self.ready_file is not None:
            object.__setattr__(self, "ready_file", Path(self.ready_file).expanduser().absolute())
        for root in self.read_roots:
            if not Path(root).expanduser().is_dir():
                raise ConfigError(f"--read-root {root} is not a folder; give an existing folder")

    @property
    def allowed_read_roots(self) -> tuple[Path, ...]:
        """Where files named over OSC may be read from, links resolved: the user's home, the
        clip folder, and each --read-root."""
        roots = [Path.home(), self.out_dir, *(Path(r).expanduser() for r in self.read_roots)]
        return tuple(dict.fromkeys(Path(os.path.realpath(root)) for root in roots))

    @property
    def reply_address(self) -> tuple[str, int] | None:
        """The fixed (host, port) for UDP replies, or None to answer each sender."""
        if self.reply_port is None:
            return None
        return (self.reply_host or "127.0.0.1", self.reply_port)

    @property
    def listens_beyond_loopback(self) -> bool:
        """True when machines other than this one may reach the sockets."""
        try:
            return not ipaddress.ip_address(self.host).is_loopback
        except ValueError:
            return self.host != "localhost"

    def is_allowed(self, client_ip: str) -> bool:
        if not self.allow:
            return True
        try:
            ip = ipaddress.ip_address(client_ip)
        except ValueError:
            return False
        if ip.version == 6 and ip.ipv4_mapped is not None:
            ip = ip.ipv4_mapped
        return any(ip in network for network in self._allowed_networks)

    @classmethod
    def from_args(cls, args: argparse.Namespace) -> DaemonConfig:
        """Build from the options `jasco-bridge serve` parsed."""
        tcp_port = None if args.no_tcp else (args.port if args.tcp_port is None else args.tcp_port)
        return cls(
            host=args.host,
            port=args.port,
            tcp_port=tcp_port,
            reply_host=args.reply_host,
            reply_port=args.reply_port,
            allow=tuple(args.allow or ()),
            out_dir=Path(args.out_dir),
            engine=args.engine,
            model=args.model,
            device=args.device,
            precision=args.precision,
            cluster=args.cluster,
            max_queue=args.max_queue,
            shutdown_timeout_seconds=args.shutdown_timeout,
            ready_file=None if args.ready_file is None else Path(args.ready_file),
            read_roots=tuple(Path(root) for root in args.read_root or ()),
            advertise=not args.no_advertise,
            max_tcp_connections=args.max_connections,
            tcp_idle_timeout_seconds=args.tcp_idle_timeout,
            tcp_frame_timeout_seconds=args.tcp_frame_timeout,
            token=args.token or os.environ.get(TOKEN_ENVIRONMENT_VARIABLE) or None,
            midi_in=args.midi_in,
            audio_out=args.audio_out,
            audio_in=args.audio_in,
            input_latency_ms=args.input_latency_ms,
            link=args.link,
        )
