"""Broadcast WAVE files written by hand: RIFF with `fmt `, `bext` and `data` chunks, 24-bit PCM.

soundfile (libsndfile) cannot write a `bext` chunk, and the `bext` TimeReference is what lets a
DAW drop a clip on its bar: the clip's first sample as a sample count from the start of the DAW
timeline. This module only builds bytes; writing them safely to disk is `jasco_bridge.clips`.

    data = encode_bwf_wav(audio, 32000, time_reference_samples=96000, description="verse take 1")
    Path("verse.wav").write_bytes(data)   # starts 3 s into the session, at 32 kHz

Layout (EBU Tech 3285 version 1): `RIFF <size> WAVE`, then `fmt ` (PCM, channels, rate, 24 bits),
`bext` (602 fixed bytes + a coding history line), `data` (interleaved little-endian samples).
"""

from __future__ import annotations

import struct
from datetime import datetime, timezone

import numpy as np

from jasco_bridge.errors import ClipError

BITS_PER_SAMPLE = 24
DEFAULT_DESCRIPTION = "jasco-bridge clip"
_RIFF_LIMIT_BYTES = 2**32 - 1


def _chunk(tag: bytes, payload: bytes) -> bytes:
    # RIFF chunks are word-aligned: an odd payload is followed by one pad byte not counted in size.
    pad = b"\x00" if len(payload) % 2 else b""
    return tag + struct.pack("<I", len(payload)) + payload + pad


def _fixed_ascii(text: str, size: int) -> bytes:
    encoded = text.encode("ascii", "replace")[:size]
    return encoded.ljust(size, b"\x00")


def bext_payload(
    *,
    description: str,
    originator: str,
    time_reference_samples: int,
    origination: datetime,
    coding_history: str,
) -> bytes:
    """The `bext` chunk body, EBU Tech 3285 version 1 (602 fixed bytes + coding history).

    Fields in order: Description 256, Originator 32, OriginatorReference 32, OriginationDate 10,
    OriginationTime 8, TimeReference low/high 2 x uint32, Version uint16, UMID 64, 190 reserved.
    """
    if not 0 <= time_reference_samples < 2**64:
        raise ClipError(f"time reference {time_reference_samples} does not fit in 64 bits")
    low = time_reference_samples & 0xFFFFFFFF
    high = time_reference_samples >> 32
    return (
        _fixed_ascii(description, 256)
        + _fixed_ascii(originator, 32)
        + _fixed_ascii("", 32)
        + _fixed_ascii(origination.strftime("%Y-%m-%d"), 10)
        + _fixed_ascii(origination.strftime("%H:%M:%S"), 8)
        + struct.pack("<IIH", low, high, 1)
        + bytes(64)  # UMID: none
        + bytes(190)  # version 1 leaves the loudness fields and the rest reserved (zero)
        + coding_history.encode("ascii", "replace")
    )


def pcm24_bytes(audio: np.ndarray) -> bytes:
    """Interleaved little-endian 24-bit PCM from float audio in [-1, 1] (clipped beyond)."""
    frames_first = audio.T if audio.ndim == 2 else audio[:, None]
    scaled = np.clip(np.nan_to_num(frames_first, nan=0.0), -1.0, 1.0) * 8388607.0
    # C order makes the bytes frame-interleaved (and lets the uint8 view below work on stereo,
    # whose transpose is not contiguous).
    as_int = np.ascontiguousarray(np.rint(scaled), dtype="<i4")
    # Keep the low three bytes of each little-endian int32: that is the 24-bit sample.
    return as_int.view(np.uint8).reshape(-1, 4)[:, :3].tobytes()


def encode_bwf_wav(
    audio: np.ndarray,
    sample_rate: int,
    *,
    time_reference_samples: int,
    description: str = DEFAULT_DESCRIPTION,
    origination: datetime | None = None,
) -> bytes:
    """A complete RIFF/WAVE file (fmt, bext, data) holding 24-bit PCM `audio`."""
    channels = 1 if audio.ndim == 1 else audio.shape[0]
    block_align = channels * BITS_PER_SAMPLE // 8
    fmt = struct.pack(
        "<HHIIHH",
        1,  # WAVE_FORMAT_PCM
        channels,
        sample_rate,
        sample_rate * block_align,
        block_align,
        BITS_PER_SAMPLE,
    )
    mode = "mono" if channels == 1 else "stereo" if channels == 2 else "multichannel"
    bext = bext_payload(
        description=description,
        originator="jasco-bridge",
        time_reference_samples=time_reference_samples,
        origination=origination or datetime.now(timezone.utc),
        coding_history=f"A=PCM,F={sample_rate},W={BITS_PER_SAMPLE},M={mode},T=jasco-bridge\r\n",
    )
    body = (
        b"WAVE" + _chunk(b"fmt ", fmt) + _chunk(b"bext", bext) + _chunk(b"data", pcm24_bytes(audio))
    )
    if len(body) > _RIFF_LIMIT_BYTES:
        raise ClipError(
            f"a clip of {audio.shape[-1]} samples exceeds the 4 GB WAV limit: render fewer bars"
        )
    return b"RIFF" + struct.pack("<I", len(body)) + body
