"""The OSC codec against exact datagrams, written out as annotated hex."""

import math
import struct

import pytest

from jasco_bridge.errors import ProtocolError
from jasco_bridge.osc import (
    IMMEDIATELY,
    Char,
    Impulse,
    MidiBytes,
    OscBundle,
    OscMessage,
    Rgba,
    SizePrefixDecoder,
    SlipDecoder,
    TimeTag,
    encode_packet,
    message,
    parse_packet,
    size_prefix_encode,
    slip_encode,
)


def hexdump(text: str) -> bytes:
    """Hex bytes with `#` comments, whitespace ignored."""
    return bytes.fromhex("".join(line.split("#")[0] for line in text.splitlines()))


TEMPO_MESSAGE = hexdump(
    """
    2f 6a 61 73  # /jas
    63 6f 2f 74  # co/t
    65 6d 70 6f  # empo
    00 00 00 00  # terminator + padding to 16 bytes
    2c 66 69 69  # ,fii
    00 00 00 00  # terminator + padding
    42 b8 00 00  # f 92.0
    00 00 00 03  # i 3
    00 00 00 04  # i 4
    """
)


def test_a_message_encodes_to_the_exact_datagram():
    assert encode_packet(message("/jasco/tempo", 92.0, 3, 4)) == TEMPO_MESSAGE


def test_the_exact_datagram_parses_back():
    parsed = parse_packet(TEMPO_MESSAGE)
    assert parsed == OscMessage("/jasco/tempo", (92.0, 3, 4), "fii")


STRING_AND_BLOB = hexdump(
    """
    2f 70 00 00  # /p + padding
    2c 73 62 00  # ,sb
    68 69 00 00  # s "hi"
    00 00 00 05  # blob size 5
    01 02 03 04  # blob bytes
    05 00 00 00  # last blob byte + padding
    """
)


def test_strings_and_blobs_are_padded_to_four_bytes():
    assert encode_packet(message("/p", "hi", b"\x01\x02\x03\x04\x05")) == STRING_AND_BLOB
    assert parse_packet(STRING_AND_BLOB).args == ("hi", b"\x01\x02\x03\x04\x05")


BUNDLE = hexdump(
    """
    23 62 75 6e 64 6c 65 00  # #bundle
    00 00 00 00 00 00 00 01  # time tag: immediately
    00 00 00 0c              # element size 12
    2f 61 00 00              # /a
    2c 69 00 00              # ,i
    00 00 00 07              # i 7
    """
)


def test_a_bundle_encodes_and_parses_exactly():
    bundle = OscBundle(IMMEDIATELY, (message("/a", 7),))
    assert encode_packet(bundle) == BUNDLE
    parsed = parse_packet(BUNDLE)
    assert parsed == bundle
    assert parsed.timetag.is_immediate


def test_every_supported_type_round_trips():
    args = (
        1,
        -(2**40),
        1.5,
        "ümlaut",
        b"",
        True,
        False,
        None,
        Impulse(),
        TimeTag(3_900_000_000, 2**31),
        Char("x"),
        Rgba(1, 2, 3, 4),
        MidiBytes(0, 0x90, 60, 100),
    )
    sent = message("/all", *args)
    assert sent.type_tags == "ihfsbTFNItcrm"
    assert parse_packet(encode_packet(sent)) == sent


def test_explicit_double_and_int64_tags():
    sent = OscMessage("/d", (0.1, 5), "dh")
    datagram = encode_packet(sent)
    assert datagram[-16:] == struct.pack(">dq", 0.1, 5)
    assert parse_packet(datagram).args == (0.1, 5)


def test_symbol_tag_reads_as_a_string():
    datagram = hexdump("2f 73 00 00  2c 53 00 00  61 62 00 00")  # /s ,S "ab"
    assert parse_packet(datagram) == OscMessage("/s", ("ab",), "s")


def test_a_message_without_type_tags_is_accepted():
    assert parse_packet(hexdump("2f 61 00 00")) == OscMessage("/a")  # OSC 1.0 legacy senders


def test_time_tags_convert_to_and_from_unix_seconds():
    tag = TimeTag.from_unix_seconds(1_700_000_000.25)
    assert tag.seconds == 1_700_000_000 + 2_208_988_800
    assert tag.fraction == 2**30
    assert math.isclose(tag.to_unix_seconds(), 1_700_000_000.25)


@pytest.mark.parametrize(
    ("datagram", "problem"),
    [
        (b"", "non-empty multiple of 4"),
        (b"/ab", "multiple of 4"),
        (b"/abc", "no terminating zero"),
        (hexdump("2f 61 00 00  69 00 00 00"), "does not start with ','"),
        (hexdump("2f 61 00 00  2c 69 00 00  00 00"), "multiple of 4"),
        (hexdump("2f 61 00 00  2c 69 00 00"), "truncated"),
        (hexdump("2f 61 00 00  2c 69 00 00  00 00 00 01  00 00 00 00"), "left over"),
        (hexdump("2f 61 00 00  2c 78 00 00"), "unknown type tag"),
        (hexdump("2f 61 00 00  2c 5b 5d 00"), "arrays"),
        (hexdump("2f 61 00 00  2c 62 00 00  ff ff ff ff"), "negative"),
        (hexdump("2f 61 00 00  2c 62 00 00  00 00 00 09  00 00 00 00"), "truncated"),
        (hexdump("2f 61 00 01  2c 00 00 00"), "non-zero padding"),
        (hexdump("2f ff 00 00  2c 00 00 00"), "UTF-8"),
        (hexdump("61 62 00 00"), "starts with '/'"),
        (hexdump("23 62 75 6e 64 6c 65 00  00 00 00 00"), "truncated"),
        (hexdump("23 62 75 6e 64 6c 65 00  00 00 00 00 00 00 00 01  00 00 00 03"), "multiple of 4"),
        (hexdump("23 62 75 6e 64 6c 65 00  00 00 00 00 00 00 00 01  00 00 00 40"), "truncated"),
        (hexdump("2f 61 00 00  2c 63 00 00  00 00 01 00"), "outside 0..255"),
    ],
)
def test_malformed_datagrams_raise_protocol_errors_that_say_why(datagram, problem):
    with pytest.raises(ProtocolError, match=problem):
        parse_packet(datagram)


def test_deeply_nested_bundles_are_refused():
    packet = encode_packet(message("/a"))
    for _ in range(20):
        packet = (
            encode_packet(OscBundle(IMMEDIATELY, ()))[:16] + struct.pack(">i", len(packet)) + packet
        )
    with pytest.raises(ProtocolError, match="nested deeper"):
        parse_packet(packet)


def test_unencodable_values_raise_protocol_errors():
    with pytest.raises(ProtocolError, match="no OSC type"):
        message("/a", object())
    with pytest.raises(ProtocolError, match="zero byte"):
        encode_packet(message("/a", "x\x00y"))
    with pytest.raises(ProtocolError, match="starts with '/'"):
        OscMessage("jasco")


# ---------------------------------------------------------------- SLIP

END, ESC = 0xC0, 0xDB


def test_slip_escapes_end_and_esc_and_frames_with_double_end():
    framed = slip_encode(bytes([1, END, 2, ESC, 3]))
    assert framed == hexdump("c0  01  db dc  02  db dd  03  c0")


def test_slip_decoder_reassembles_packets_split_anywhere():
    packets = [encode_packet(message("/jasco/tempo", 92.0)), bytes([END, ESC, 0, 0]), b"/x\x00\x00"]
    stream = b"".join(slip_encode(p) for p in packets)
    for cut in range(1, len(stream)):
        decoder = SlipDecoder()
        assert decoder.feed(stream[:cut]) + decoder.feed(stream[cut:]) == packets


def test_slip_decoder_tolerates_single_end_framing_and_empty_frames():
    decoder = SlipDecoder()
    assert decoder.feed(b"ab" + bytes([END, END, END]) + b"cd" + bytes([END])) == [b"ab", b"cd"]


def test_a_bad_slip_frame_is_reported_and_the_next_one_still_decodes():
    decoder = SlipDecoder(max_packet_bytes=8)
    out = decoder.feed(
        bytes([END, ESC, 0x01, 9, END])
        + b"123456789"
        + bytes([END])
        + bytes([ESC, END])
        + b"ok"
        + bytes([END])
    )
    assert [type(item) for item in out] == [ProtocolError, ProtocolError, ProtocolError, bytes]
    assert "0x01" in str(out[0])
    assert "longer than 8" in str(out[1])
    assert out[3] == b"ok"


# ---------------------------------------------------------------- size-prefixed streams (OSC 1.0)


def test_size_prefix_framing_is_an_int32_count_then_the_packet():
    assert size_prefix_encode(b"/a\x00\x00") == hexdump("00 00 00 04  2f 61 00 00")


def test_size_prefix_decoder_reassembles_packets_split_anywhere():
    packets = [encode_packet(message("/jasco/ping", 1)), encode_packet(message("/jasco/status"))]
    stream = b"".join(size_prefix_encode(p) for p in packets)
    for cut in range(len(stream) + 1):
        decoder = SizePrefixDecoder()
        assert decoder.feed(stream[:cut]) + decoder.feed(stream[cut:]) == packets


def test_size_prefix_decoder_reports_lost_framing_once_and_stops():
    decoder = SizePrefixDecoder(max_packet_bytes=64)
    out = decoder.feed(hexdump("00 00 10 00") + b"x" * 16)
    assert len(out) == 1 and isinstance(out[0], ProtocolError)
    assert "framing lost" in str(out[0])
    assert decoder.feed(size_prefix_encode(b"/a\x00\x00")) == []
