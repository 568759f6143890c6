"""Broadcast WAVE bytes: chunk layout, bext fields and 24-bit PCM, checked by an independent reader
(support.read_riff_chunks, written from EBU Tech 3285, sharing no code with the writer) and by
soundfile."""

from __future__ import annotations

import io
import struct
from datetime import datetime, timezone

import numpy as np
import pytest
import soundfile

from jasco_bridge.errors import ClipError
from jasco_bridge.wav import encode_bwf_wav
from tests.bridge.support import TIME_REFERENCE_OFFSET, bext_time_reference, read_riff_chunks

RATE = 32000
STAMP = datetime(2026, 11, 25, 17, 5, 9, tzinfo=timezone.utc)
VERSION_OFFSET = TIME_REFERENCE_OFFSET + 8
BEXT_FIXED_BYTES = 602


def sine(seconds: float, amplitude: float = 0.5, rate: int = RATE) -> np.ndarray:
    t = np.arange(round(seconds * rate)) / rate
    return (amplitude * np.sin(2 * np.pi * 220.0 * t)).astype(np.float32)


def encode(audio: np.ndarray, time_reference_samples: int = 0, **kwargs) -> bytes:
    return encode_bwf_wav(
        audio, RATE, time_reference_samples=time_reference_samples, origination=STAMP, **kwargs
    )


def test_a_mono_file_has_fmt_bext_and_data_in_that_order():
    data = encode(sine(0.1), time_reference_samples=96_000)
    chunks = read_riff_chunks(data)
    assert list(chunks) == ["fmt ", "bext", "data"]
    audio_format, channels, rate, byte_rate, block_align, bits = struct.unpack(
        "<HHIIHH", chunks["fmt "]
    )
    assert (audio_format, channels, rate, bits) == (1, 1, RATE, 24)
    assert (byte_rate, block_align) == (RATE * 3, 3)
    bext = chunks["bext"]
    assert len(bext) > BEXT_FIXED_BYTES
    assert bext_time_reference(bext) == 96_000
    assert struct.unpack_from("<H", bext, VERSION_OFFSET)[0] == 1
    assert bext[BEXT_FIXED_BYTES:] == b"A=PCM,F=32000,W=24,M=mono,T=jasco-bridge\r\n"
    assert len(chunks["data"]) == 3 * round(0.1 * RATE)


@pytest.mark.parametrize("samples", [0, 2**32 - 1, 2**32, 5_000_000_123, 2**64 - 1])
def test_time_references_use_both_32_bit_words(samples):
    bext = read_riff_chunks(encode(sine(0.01), time_reference_samples=samples))["bext"]
    assert bext_time_reference(bext) == samples


@pytest.mark.parametrize("samples", [-1, 2**64])
def test_a_time_reference_outside_64_bits_is_refused(samples):
    with pytest.raises(ClipError, match="does not fit in 64 bits"):
        encode(sine(0.01), time_reference_samples=samples)


def test_text_fields_are_fixed_width_ascii():
    bext = read_riff_chunks(encode(sine(0.01), description="lofi – rhodes"))["bext"]
    assert bext[:256].rstrip(b"\x00") == b"lofi ? rhodes"
    assert bext[256:288].rstrip(b"\x00") == b"jasco-bridge"
    assert bext[320:330] == b"2026-11-25"
    assert bext[330:338] == b"17:05:09"
    long = read_riff_chunks(encode(sine(0.01), description="x" * 400))["bext"]
    assert long[:256] == b"x" * 256 and bext_time_reference(long) == 0


def test_stereo_audio_is_interleaved_and_read_back_by_soundfile():
    left, right = sine(0.2, 0.5), -sine(0.2, 0.25)
    data = encode(np.stack([left, right]))
    fmt = read_riff_chunks(data)["fmt "]
    assert struct.unpack_from("<HH", fmt, 0) == (1, 2)
    assert struct.unpack_from("<H", fmt, 12)[0] == 6  # block align: 2 channels x 3 bytes
    back, rate = soundfile.read(io.BytesIO(data), dtype="float32")
    assert rate == RATE and back.shape == (len(left), 2)
    assert np.max(np.abs(back[:, 0] - left)) < 2.0 / 2**23
    assert np.max(np.abs(back[:, 1] - right)) < 2.0 / 2**23


def test_audio_survives_the_24_bit_round_trip_and_clips_instead_of_wrapping():
    audio = sine(0.5, amplitude=0.9)
    audio[10], audio[11], audio[12] = 1.7, -3.0, np.nan
    back, _ = soundfile.read(io.BytesIO(encode(audio)), dtype="float32")
    expected = np.clip(np.nan_to_num(audio, nan=0.0), -1.0, 1.0)
    assert np.max(np.abs(back - expected)) < 2.0 / 2**23
    assert back[11] == pytest.approx(-1.0, abs=2.0 / 2**23)


def test_an_odd_sized_data_chunk_is_padded_to_a_word():
    data = encode(np.full(7, 0.25, np.float32))  # 7 mono 24-bit samples: 21 bytes
    assert len(data) % 2 == 0
    chunks = read_riff_chunks(data)  # the reader skips the pad byte; its size excludes it
    assert len(chunks["data"]) == 21
    back, _ = soundfile.read(io.BytesIO(data), dtype="float32")
    assert back.tolist() == pytest.approx([0.25] * 7, abs=2.0 / 2**23)
