"""OSC 1.0 messages in and out, with the standard library only (Live's Python has no packages).

Enough of the format for talking to jasco-bridge: int32 `i`, float32 `f`, string `s`, and on
reading also `d`, `h`, `T`, `F`, `N`. Bundles are not needed here and are skipped on reading.
"""

import struct

Arg = int | float | str | bool | None


def _padded(raw: bytes) -> bytes:
    return raw + b"\0" * (4 - len(raw) % 4)


def encode(address: str, *args: Arg) -> bytes:
    """One OSC message; bools become T/F, ints i, floats f, text s."""
    tags = ","
    payload = b""
    for value in args:
        if isinstance(value, bool):
            tags += "T" if value else "F"
        elif isinstance(value, int):
            tags += "i"
            payload += struct.pack(">i", value)
        elif isinstance(value, float):
            tags += "f"
            payload += struct.pack(">f", value)
        elif isinstance(value, str):
            tags += "s"
            payload += _padded(value.encode("utf-8"))
        else:
            raise TypeError(f"OSC argument of type {type(value).__name__} is not supported here")
    return _padded(address.encode("utf-8")) + _padded(tags.encode("ascii")) + payload


def _string(data: bytes, offset: int) -> tuple[str, int]:
    end = data.index(b"\0", offset)
    text = data[offset:end].decode("utf-8", errors="replace")
    return text, (end // 4 + 1) * 4


_FIXED = {"i": (">i", 4), "f": (">f", 4), "d": (">d", 8), "h": (">q", 8)}
_CONSTANT = {"T": True, "F": False, "N": None}


def decode(data: bytes) -> tuple[str, tuple[Arg, ...]] | None:
    """(address, args) of one message; None for a bundle or bytes that are not OSC."""
    try:
        if not data.startswith(b"/"):
            return None
        address, offset = _string(data, 0)
        if offset >= len(data):
            return address, ()
        tags, offset = _string(data, offset)
        if not tags.startswith(","):
            return None
        args: list[Arg] = []
        for tag in tags[1:]:
            if tag in _FIXED:
                fmt, size = _FIXED[tag]
                args.append(struct.unpack_from(fmt, data, offset)[0])
                offset += size
            elif tag == "s":
                text, offset = _string(data, offset)
                args.append(text)
            elif tag in _CONSTANT:
                args.append(_CONSTANT[tag])
            else:
                return None
        return address, tuple(args)
    except (ValueError, struct.error):
        return None
