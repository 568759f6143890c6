"""A small sans-IO codec for Open Sound Control 1.0 packets, and SLIP framing for OSC over TCP.

`parse_packet(data)` turns one datagram into an `OscMessage` or an `OscBundle`;
`encode_packet(packet)` is its inverse. Nothing here touches a socket. Every malformed input
raises `ProtocolError` with the problem and the byte offset, never another exception type, so
the server has exactly one thing to catch.

Wire format in one paragraph: every item is padded with zero bytes to a multiple of 4. A message
is an address string (`/jasco/tempo`), a type-tag string (`,fii`) and the arguments, big-endian.
A bundle is the string `#bundle`, a 64-bit NTP time tag, then elements each prefixed by a 32-bit
size. OSC over TCP (OSC 1.1) frames each packet with SLIP: END (0xC0) marks the end, and END/ESC
bytes inside a packet are escaped as ESC+0xDC / ESC+0xDD. Older OSC 1.0 stream peers (liblo's
TCP default) prefix each packet with its size as a big-endian int32 instead.

Type tags read and written: i f s S b h d t T F N I c r m. Python values map as
int -> i (h when it does not fit in 32 bits), float -> f, str -> s, bytes -> b, True -> T,
False -> F, None -> N, `TimeTag` -> t, `Impulse` -> I, `Char` -> c, `Rgba` -> r,
`MidiBytes` -> m. Pass explicit `type_tags` to `OscMessage` to send a `d` or an `h`.
"""

from __future__ import annotations

import math
import struct
from dataclasses import dataclass, field

from jasco_bridge.errors import ProtocolError

NTP_UNIX_OFFSET_SECONDS = 2_208_988_800  # 1900-01-01 to 1970-01-01
# Nested bundles deeper than this are refused: it bounds the recursion on hostile input.
MAX_BUNDLE_DEPTH = 8
_BUNDLE_HEADER = b"#bundle\x00"


@dataclass(frozen=True)
class TimeTag:
    """An NTP time: whole seconds since 1900 and a 32-bit binary fraction of a second.

    `IMMEDIATELY` (0 seconds, fraction 1) means "now" by the OSC spec.
    """

    seconds: int
    fraction: int = 0

    def __post_init__(self) -> None:
        for name in ("seconds", "fraction"):
            value = getattr(self, name)
            if not (isinstance(value, int) and 0 <= value < 2**32):
                raise ProtocolError(
                    f"time tag {name} must be an integer in 0..2**32-1, got {value!r}"
                )

    @property
    def is_immediate(self) -> bool:
        return self.seconds == 0 and self.fraction == 1

    def to_unix_seconds(self) -> float:
        return self.seconds - NTP_UNIX_OFFSET_SECONDS + self.fraction / 2**32

    @classmethod
    def from_unix_seconds(cls, unix_seconds: float) -> TimeTag:
        if not math.isfinite(unix_seconds) or unix_seconds < -NTP_UNIX_OFFSET_SECONDS:
            raise ProtocolError(f"cannot express {unix_seconds!r} as an OSC time tag")
        whole = math.floor(unix_seconds)
        fraction = min(round((unix_seconds - whole) * 2**32), 2**32 - 1)
        return cls(whole + NTP_UNIX_OFFSET_SECONDS, fraction)

    def to_bits(self) -> int:
        return (self.seconds << 32) | self.fraction

    @classmethod
    def from_bits(cls, bits: int) -> TimeTag:
        return cls(bits >> 32, bits & 0xFFFFFFFF)


IMMEDIATELY = TimeTag(0, 1)
"""The OSC time tag meaning "as soon as it arrives"."""


@dataclass(frozen=True)
class Impulse:
    """The argument-less `I` tag ("Infinitum" in OSC 1.0, "Impulse" in 1.1)."""


@dataclass(frozen=True)
class Char:
    """One ASCII character sent as the `c` tag."""

    value: str

    def __post_init__(self) -> None:
        if not (isinstance(self.value, str) and len(self.value) == 1 and ord(self.value) < 256):
            raise ProtocolError(f"a Char holds one 8-bit character, got {self.value!r}")


@dataclass(frozen=True)
class Rgba:
    """A 32-bit colour, the `r` tag."""

    red: int
    green: int
    blue: int
    alpha: int

    def __post_init__(self) -> None:
        for name in ("red", "green", "blue", "alpha"):
            value = getattr(self, name)
            if not (isinstance(value, int) and 0 <= value <= 255):
                raise ProtocolError(f"Rgba {name} must be 0..255, got {value!r}")


@dataclass(frozen=True)
class MidiBytes:
    """A 4-byte MIDI message, the `m` tag: port id, status byte, data1, data2."""

    port: int
    status: int
    data1: int
    data2: int

    def __post_init__(self) -> None:
        for name in ("port", "status", "data1", "data2"):
            value = getattr(self, name)
            if not (isinstance(value, int) and 0 <= value <= 255):
                raise ProtocolError(f"MidiBytes {name} must be 0..255, got {value!r}")


OscArg = int | float | str | bytes | bool | None | TimeTag | Impulse | Char | Rgba | MidiBytes


def _tag_for(value: object) -> str:
    # bool before int: True is an int in Python but a T tag on the wire.
    if value is True:
        return "T"
    if value is False:
        return "F"
    if value is None:
        return "N"
    if isinstance(value, int):
        return "i" if -(2**31) <= value < 2**31 else "h"
    if isinstance(value, float):
        return "f"
    if isinstance(value, str):
        return "s"
    if isinstance(value, (bytes, bytearray)):
        return "b"
    for kind, tag in ((TimeTag, "t"), (Impulse, "I"), (Char, "c"), (Rgba, "r"), (MidiBytes, "m")):
        if isinstance(value, kind):
            return tag
    raise ProtocolError(f"no OSC type for a {type(value).__name__} argument ({value!r})")


@dataclass(frozen=True)
class OscMessage:
    """An address and its arguments. `type_tags` (without the comma) is inferred when omitted."""

    address: str
    args: tuple[OscArg, ...] = ()
    type_tags: str = field(default="")

    def __post_init__(self) -> None:
        if not isinstance(self.address, str) or not self.address.startswith("/"):
            raise ProtocolError(f"an OSC address starts with '/', got {self.address!r}")
        object.__setattr__(self, "args", tuple(self.args))
        if not self.type_tags:
            object.__setattr__(self, "type_tags", "".join(_tag_for(a) for a in self.args))
        if len(self.type_tags) != len(self.args):
            raise ProtocolError(
                f"{self.address}: {len(self.type_tags)} type tags for {len(self.args)} arguments"
            )


@dataclass(frozen=True)
class OscBundle:
    """Messages and bundles to run together at `timetag`."""

    timetag: TimeTag
    elements: tuple[OscMessage | OscBundle, ...]

    def __post_init__(self) -> None:
        object.__setattr__(self, "elements", tuple(self.elements))


OscPacket = OscMessage | OscBundle


# ---------------------------------------------------------------------------- decoding


class _Reader:
    """Bounds-checked cursor over one datagram; every read names what it wanted."""

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pos = 0

    def take(self, size: int, what: str) -> bytes:
        end = self.pos + size
        if end > len(self.data):
            raise ProtocolError(
                f"truncated packet: {what} needs {size} bytes at offset {self.pos}, "
                f"only {len(self.data) - self.pos} left"
            )
        chunk = self.data[self.pos : end]
        self.pos = end
        return chunk

    def string(self, what: str) -> str:
        end = self.data.find(b"\x00", self.pos)
        if end < 0:
            raise ProtocolError(f"{what} at offset {self.pos} has no terminating zero byte")
        raw = self.data[self.pos : end]
        padded_end = (end + 4) & ~3
        if padded_end > len(self.data):
            raise ProtocolError(f"{what} at offset {self.pos} is not padded to 4 bytes")
        if any(self.data[end:padded_end]):
            raise ProtocolError(f"{what} at offset {self.pos} has non-zero padding")
        self.pos = padded_end
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise ProtocolError(
                f"{what} is not valid UTF-8 ({exc.reason} at byte {exc.start})"
            ) from None

    def blob(self) -> bytes:
        (size,) = struct.unpack(">i", self.take(4, "blob size"))
        if size < 0:
            raise ProtocolError(f"blob size {size} is negative")
        payload = self.take(size, "blob")
        padding = self.take(-size % 4, "blob padding")
        if any(padding):
            raise ProtocolError("blob has non-zero padding")
        return payload


_FIXED = {
    "i": (">i", 4),
    "f": (">f", 4),
    "h": (">q", 8),
    "d": (">d", 8),
}
_CONSTANTS: dict[str, OscArg] = {"T": True, "F": False, "N": None, "I": Impulse()}


def _read_arg(reader: _Reader, tag: str, address: str) -> OscArg:
    if tag in _FIXED:
        fmt, size = _FIXED[tag]
        return struct.unpack(fmt, reader.take(size, f"'{tag}' argument"))[0]
    if tag in _CONSTANTS:
        return _CONSTANTS[tag]
    if tag in ("s", "S"):
        return reader.string("string argument")
    if tag == "b":
        return reader.blob()
    if tag == "t":
        (bits,) = struct.unpack(">Q", reader.take(8, "time tag argument"))
        return TimeTag.from_bits(bits)
    if tag == "c":
        (code,) = struct.unpack(">I", reader.take(4, "char argument"))
        if code > 255:
            raise ProtocolError(f"{address}: char argument {code} is outside 0..255")
        return Char(chr(code))
    if tag == "r":
        return Rgba(*reader.take(4, "colour argument"))
    if tag == "m":
        return MidiBytes(*reader.take(4, "MIDI argument"))
    if tag in "[]":
        raise ProtocolError(
            f"{address}: OSC arrays ('[' ']') are not supported; send flat arguments"
        )
    raise ProtocolError(f"{address}: unknown type tag {tag!r}")


def _parse_message(data: bytes) -> OscMessage:
    reader = _Reader(data)
    address = reader.string("address")
    if not address.startswith("/"):
        raise ProtocolError(f"address {address[:64]!r} does not start with '/'")
    if reader.pos == len(data):
        # OSC 1.0 lets very old senders omit the type-tag string when there are no arguments.
        return OscMessage(address)
    tags = reader.string(f"{address}: type tags")
    if not tags.startswith(","):
        raise ProtocolError(f"{address}: type-tag string {tags[:64]!r} does not start with ','")
    args = tuple(_read_arg(reader, tag, address) for tag in tags[1:])
    if reader.pos != len(data):
        raise ProtocolError(
            f"{address}: {len(data) - reader.pos} bytes left over after the arguments '{tags}'"
        )
    return OscMessage(address, args, tags[1:].replace("S", "s"))


def _parse_bundle(data: bytes, depth: int) -> OscBundle:
    if depth > MAX_BUNDLE_DEPTH:
        raise ProtocolError(f"bundles nested deeper than {MAX_BUNDLE_DEPTH} levels")
    reader = _Reader(data)
    reader.take(len(_BUNDLE_HEADER), "bundle header")
    (bits,) = struct.unpack(">Q", reader.take(8, "bundle time tag"))
    elements: list[OscPacket] = []
    while reader.pos < len(data):
        (size,) = struct.unpack(">i", reader.take(4, "bundle element size"))
        if size <= 0 or size % 4:
            raise ProtocolError(f"bundle element size {size} is not a positive multiple of 4")
        elements.append(_parse(reader.take(size, "bundle element"), depth + 1))
    return OscBundle(TimeTag.from_bits(bits), tuple(elements))


def _parse(data: bytes, depth: int) -> OscPacket:
    if len(data) == 0 or len(data) % 4:
        raise ProtocolError(f"an OSC packet is a non-empty multiple of 4 bytes, got {len(data)}")
    if data.startswith(_BUNDLE_HEADER):
        return _parse_bundle(data, depth)
    if data[:1] != b"/":
        raise ProtocolError(f"a packet starts with '/' (message) or '#bundle', got {data[:8]!r}")
    return _parse_message(data)


def looks_like_osc(data: bytes) -> bool:
    """True when `data` starts as an OSC message or bundle does; anything else is not OSC at all
    (line noise, a port scan, another protocol) and deserves no reply."""
    return data[:1] == b"/" or data[:8] == _BUNDLE_HEADER


def parse_packet(data: bytes) -> OscPacket:
    """Decode one datagram (or one SLIP frame). Raises ProtocolError for anything malformed."""
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise ProtocolError(f"parse_packet takes bytes, got {type(data).__name__}")
    return _parse(bytes(data), 0)


# ---------------------------------------------------------------------------- encoding


def _pad(raw: bytes) -> bytes:
    return raw + b"\x00" * (-len(raw) % 4)


def _string(text: str) -> bytes:
    raw = text.encode("utf-8")
    if b"\x00" in raw:
        raise ProtocolError(f"OSC strings cannot contain a zero byte: {text[:64]!r}")
    return _pad(raw + b"\x00")


def _encode_arg(tag: str, value: OscArg) -> bytes:
    try:
        if tag in _FIXED:
            return struct.pack(_FIXED[tag][0], value)
        if tag in _CONSTANTS:
            return b""
        if tag == "s":
            return _string(str(value))
        if tag == "b":
            payload = bytes(value)  # type: ignore[arg-type]
            return struct.pack(">i", len(payload)) + _pad(payload)
        if tag == "t":
            return struct.pack(">Q", value.to_bits())  # type: ignore[union-attr]
        if tag == "c":
            return struct.pack(">I", ord(value.value))  # type: ignore[union-attr]
        if tag == "r":
            return bytes((value.red, value.green, value.blue, value.alpha))  # type: ignore[union-attr]
        if tag == "m":
            return bytes((value.port, value.status, value.data1, value.data2))  # type: ignore[union-attr]
    except (struct.error, AttributeError, TypeError) as exc:
        raise ProtocolError(f"cannot encode {value!r} as OSC type {tag!r}: {exc}") from None
    raise ProtocolError(f"cannot encode OSC type tag {tag!r}")


def encode_packet(packet: OscPacket) -> bytes:
    """The datagram for a message or bundle."""
    if isinstance(packet, OscMessage):
        body = b"".join(
            _encode_arg(t, a) for t, a in zip(packet.type_tags, packet.args, strict=True)
        )
        return _string(packet.address) + _string("," + packet.type_tags) + body
    if isinstance(packet, OscBundle):
        parts = [_BUNDLE_HEADER, struct.pack(">Q", packet.timetag.to_bits())]
        for element in packet.elements:
            encoded = encode_packet(element)
            parts.append(struct.pack(">i", len(encoded)) + encoded)
        return b"".join(parts)
    raise ProtocolError(
        f"encode_packet takes an OscMessage or OscBundle, got {type(packet).__name__}"
    )


def message(address: str, *args: OscArg) -> OscMessage:
    """Shorthand: `message("/jasco/tempo", 120.0, 4, 4)`."""
    return OscMessage(address, tuple(args))


# ---------------------------------------------------------------------------- SLIP (OSC 1.1 over TCP)

SLIP_END = 0xC0
SLIP_ESC = 0xDB
SLIP_ESC_END = 0xDC
SLIP_ESC_ESC = 0xDD


def slip_encode(packet: bytes) -> bytes:
    """Frame one packet for a stream: END, escaped bytes, END (the leading END flushes line noise)."""
    escaped = (
        bytes(packet)
        .replace(bytes([SLIP_ESC]), bytes([SLIP_ESC, SLIP_ESC_ESC]))
        .replace(bytes([SLIP_END]), bytes([SLIP_ESC, SLIP_ESC_END]))
    )
    return bytes([SLIP_END]) + escaped + bytes([SLIP_END])


class SlipDecoder:
    """Incremental SLIP decoder: feed it stream chunks of any size, get whole packets back.

    `feed` returns, in stream order, each complete packet as `bytes` and each malformed frame
    (bad escape, longer than `max_packet_bytes`) as a `ProtocolError` value, so one bad frame
    never hides the good packets around it. Empty frames (double END) are skipped.
    """

    def __init__(self, max_packet_bytes: int = 65536) -> None:
        if max_packet_bytes < 1:
            raise ProtocolError(f"max_packet_bytes must be positive, got {max_packet_bytes}")
        self.max_packet_bytes = max_packet_bytes
        self._frame = bytearray()
        self._escaped = False
        self._problem: str | None = None

    def feed(self, data: bytes) -> list[bytes | ProtocolError]:
        out: list[bytes | ProtocolError] = []
        for byte in data:
            if byte == SLIP_END:
                if self._problem is not None:
                    out.append(ProtocolError(f"SLIP frame dropped: {self._problem}"))
                elif self._escaped:
                    out.append(ProtocolError("SLIP frame dropped: ESC right before END"))
                elif self._frame:
                    out.append(bytes(self._frame))
                self._frame.clear()
                self._escaped = False
                self._problem = None
                continue
            if self._problem is not None:
                continue  # discard the rest of a bad frame up to its END
            if self._escaped:
                self._escaped = False
                if byte == SLIP_ESC_END:
                    byte = SLIP_END
                elif byte == SLIP_ESC_ESC:
                    byte = SLIP_ESC
                else:
                    self._fail(f"ESC followed by 0x{byte:02X} (expected 0xDC or 0xDD)")
                    continue
            elif byte == SLIP_ESC:
                self._escaped = True
                continue
            if len(self._frame) >= self.max_packet_bytes:
                self._fail(f"longer than {self.max_packet_bytes} bytes")
                continue
            self._frame.append(byte)
        return out

    @property
    def in_frame(self) -> bool:
        """True while part of a packet has arrived and its END has not (a slow or stalled frame)."""
        return bool(self._frame) or self._escaped or self._problem is not None

    def _fail(self, problem: str) -> None:
        self._problem = problem
        self._frame.clear()


# ---------------------------------------------------------------------------- size-prefixed (OSC 1.0 over TCP)


def size_prefix_encode(packet: bytes) -> bytes:
    """OSC 1.0 stream framing: a big-endian int32 byte count, then the packet (liblo's TCP default)."""
    return struct.pack(">i", len(packet)) + bytes(packet)


class SizePrefixDecoder:
    """Incremental decoder for OSC 1.0 size-prefixed streams, with the same `feed` as SlipDecoder.

    A frame whose size is positive and within `max_packet_bytes` but not a multiple of 4 (no OSC
    packet is) is skipped whole and reported, and the next frame decodes. A size that is zero,
    negative or over the limit cannot be skipped safely (the stream has lost its framing), so it
    is reported once and the rest of the stream is discarded.
    """

    def __init__(self, max_packet_bytes: int = 65536) -> None:
        if max_packet_bytes < 1:
            raise ProtocolError(f"max_packet_bytes must be positive, got {max_packet_bytes}")
        self.max_packet_bytes = max_packet_bytes
        self._buffer = bytearray()
        self._broken = False

    @property
    def in_frame(self) -> bool:
        """True while part of a frame (its size or its bytes) has arrived and the rest has not."""
        return bool(self._buffer) and not self._broken

    def feed(self, data: bytes) -> list[bytes | ProtocolError]:
        if self._broken:
            return []
        self._buffer += data
        out: list[bytes | ProtocolError] = []
        while len(self._buffer) >= 4:
            (size,) = struct.unpack(">i", self._buffer[:4])
            if size <= 0 or size > self.max_packet_bytes:
                self._broken = True
                self._buffer.clear()
                out.append(
                    ProtocolError(
                        f"stream framing lost: packet size {size} is not a positive multiple of 4 "
                        f"up to {self.max_packet_bytes}; reconnect"
                    )
                )
                break
            if len(self._buffer) < 4 + size:
                break
            if size % 4:
                out.append(
                    ProtocolError(
                        f"skipped a {size}-byte frame: OSC packets are a multiple of 4 bytes"
                    )
                )
            else:
                out.append(bytes(self._buffer[4 : 4 + size]))
            del self._buffer[: 4 + size]
        return out
