"""The address table: coercion, errors that say what to send, replies, and the generated docs."""

import inspect
from pathlib import Path

import pytest

from jasco_bridge import controller, protocol
from jasco_bridge.clips import ClipInfo
from jasco_bridge.errors import ProtocolError
from jasco_bridge.osc import Impulse, OscMessage, encode_packet, message, parse_packet
from jasco_bridge.session import Session

DOCS = Path(__file__).resolve().parents[2] / "docs" / "osc.md"


def test_tempo_with_defaults_fills_the_meter():
    request = protocol.parse_request(message("/jasco/tempo", 92.0))
    assert request.command.handler == "set_tempo"
    assert request.session == "default"
    assert dict(request.values) == {"bpm": 92.0, "numerator": 4, "denominator": 4}


def test_whole_floats_are_accepted_where_integers_are_needed():
    # Pure Data and REAPER send every number as a float.
    request = protocol.parse_request(message("/jasco/render", 5.0, 4.0))
    assert request["start_bar"] == 5 and isinstance(request["start_bar"], int)
    assert request["bars"] == 4 and isinstance(request["bars"], int)


def test_integers_are_accepted_where_floats_are_needed():
    request = protocol.parse_request(message("/jasco/tempo/change", 16, 140))
    assert request["at_beat"] == 16.0 and isinstance(request["at_beat"], float)


@pytest.mark.parametrize(
    ("sent", "expected"),
    [
        (message("/jasco/tempo", "fast"), r"/jasco/tempo: bpm must be a number, got string 'fast'"),
        (message("/jasco/tempo", 120.0, 3.5), r"numerator must be a whole number, got 3.5"),
        (message("/jasco/tempo", float("nan")), r"bpm must be a finite number"),
        (message("/jasco/tempo", 0.0), r"bpm must be at least 1"),
        (message("/jasco/tempo"), r"expected bpm f \(1..1000\), \[numerator"),
        (message("/jasco/tempo", 1.0, 4, 4, 4), r"got 4 argument"),
        (message("/jasco/chords/note", 0.0, 1.0, 128), r"pitch must be at most 127, got 128"),
        (message("/jasco/prompt", 5), r"/jasco/prompt: text must be a string, got number 5"),
        (message("/jasco/prompt", Impulse()), r"text must be a string, got Impulse"),
        (message("/jasco/prompt", "x" * 5000), r"5000 characters long; the limit is 4096"),
        (message("/jasco/tempoo", 1.0), r"unknown address; did you mean /jasco/tempo\?"),
        (message("/other/thing"), r"not a jasco-bridge address"),
        (message("/jasco/session//tempo", 1.0), r"/jasco/session/<name>/<command>"),
        (message("/jasco/session/v/ping"), r"not per session"),
        (message("/jasco/chords/notes", 0.0, 1.0, 60), r"groups of 4 .*got 3"),
        (
            message("/jasco/chords/notes", 0.0, 1.0, 60, 90, 1.0, 1.0, "E", 90),
            r"pitch .*\(group 2\)",
        ),
        (message("/jasco/chords/file", "/x.mid", 1.5), r"track must be a whole number, got 1.5"),
    ],
)
def test_bad_arguments_name_the_address_the_argument_and_the_problem(sent, expected):
    with pytest.raises(ProtocolError, match=expected):
        protocol.parse_request(sent)


def test_named_sessions_use_the_address_prefix():
    request = protocol.parse_request(message("/jasco/session/verse-2/prompt", "dreamy"))
    assert request.session == "verse-2"
    assert request["text"] == "dreamy"


def test_bulk_notes_arrive_as_typed_groups():
    request = protocol.parse_request(
        message("/jasco/melody/notes", 0, 1.5, 60.0, 100, 2.0, 0.5, 64, 90.0)
    )
    assert request.groups == ((0.0, 1.5, 60, 100), (2.0, 0.5, 64, 90))


def test_bulk_messages_are_capped():
    args = (0.0, 1.0, 60, 100) * (protocol.MAX_GROUPS + 1)
    with pytest.raises(ProtocolError, match="send at most 4096"):
        protocol.parse_request(OscMessage("/jasco/chords/notes", args))


def test_a_setting_value_may_be_a_number_or_a_word():
    assert protocol.parse_request(message("/jasco/set", "steps", 20.0))["value"] == 20.0
    assert (
        protocol.parse_request(message("/jasco/set", "sampler", "midpoint"))["value"] == "midpoint"
    )


def test_chord_file_track_may_be_a_name_or_an_index():
    assert (
        protocol.parse_request(message("/jasco/chords/file", "/a.mid", "Keys"))["track"] == "Keys"
    )
    assert protocol.parse_request(message("/jasco/chords/file", "/a.mid", 2.0))["track"] == 2
    assert protocol.parse_request(message("/jasco/chords/file", "/a.mid"))["track"] is None


def test_requests_are_read_only():
    request = protocol.parse_request(message("/jasco/tempo", 92.0))
    with pytest.raises(TypeError):
        request.values["bpm"] = 1.0  # type: ignore[index]


def test_every_reply_builder_matches_its_table_row():
    clip = ClipInfo(
        path=Path("/c/a.wav"),
        sidecar_path=Path("/c/a.json"),
        start_beat=16.0,
        length_beats=16.0,
        start_seconds=9.6,
        duration_seconds=9.6,
        sample_rate=32000,
        time_reference_samples=307200,
    )
    built = {
        "pong": protocol.pong(7),
        "ack": protocol.ack(3, 1234, 0, 5, 4, "t"),
        "progress": protocol.progress(3, 0.5, 5, 10, 1, 2, "t"),
        "done": protocol.done(3, clip, 5, 4, "t"),
        "notice": protocol.notice(3, "no prompt was set", "t"),
        "error": protocol.error(-1, "nope", "t"),
        "cancelled": protocol.cancelled(3, "t"),
        "status": protocol.status("idle", 0, "preview", None),
        "ctl/progress": controller.progress(0.5),
        "ctl/state": controller.state("rendering"),
        "ctl/clip": controller.clip("bars001-004.wav"),
        "playing": protocol.playing("/c/a.wav", 1.5, False),
        "stopped": protocol.stopped("/c/a.wav"),
        "drums/recorded": protocol.drums_recorded("/c/d.wav", 16.0, 8.0, -12.5),
        "link/tempo": protocol.link_tempo(124.0, 120.0),
    }
    assert set(built) == {reply.name for reply in protocol.REPLIES}
    for reply in protocol.REPLIES:
        sent = parse_packet(encode_packet(built[reply.name]))
        assert sent.address == reply.address
        assert len(sent.args) == len(reply.args), reply.name
    assert built["status"].args == ("idle", 0, "preview", -1)
    assert built["done"].type_tags == "isffffsiis"
    assert built["done"].args[1] == "/c/a.wav" and built["done"].args[6] == "/c/a.json"
    # Without a token the replies end before it: no empty placeholder.
    assert protocol.done(3, clip, 5, 4).type_tags == "isffffsii"
    assert protocol.progress(3, 0.5, 5, 10, 1, 2).args == (3, 0.5, 5, 10, 1, 2)


def test_error_replies_stay_small_enough_for_one_datagram():
    assert len(encode_packet(protocol.error(-1, "x" * 100_000))) < 4096


def test_every_command_has_a_summary_and_unique_name():
    names = [command.name for command in protocol.COMMANDS]
    assert len(names) == len(set(names))
    assert all(command.summary.endswith(".") for command in protocol.COMMANDS)


def test_docs_osc_md_is_generated_from_the_table():
    document = DOCS.read_text(encoding="utf-8")
    assert document == protocol.with_generated_tables(document), (
        "docs/osc.md is out of date with jasco_bridge/protocol.py; run: python -c "
        "\"from jasco_bridge.protocol import regenerate_docs; regenerate_docs('docs/osc.md')\""
    )
    for command in protocol.COMMANDS:
        assert f"`{command.address}`" in document


def test_docs_check_notices_a_stale_table():
    document = DOCS.read_text(encoding="utf-8").replace("| `/jasco/ping` |", "| `/jasco/pingg` |")
    assert document != protocol.with_generated_tables(document)


def test_session_commands_bind_to_the_session_methods_by_argument_name():
    for command in protocol.COMMANDS:
        if command.runs_on != "session":
            continue
        signature = inspect.signature(getattr(Session, command.handler))
        if command.repeat:
            signature.bind(None, [])  # bulk: one flat list
        else:
            signature.bind(None, **{arg.name: arg.default for arg in command.args})


def test_the_table_takes_its_limits_from_the_value_objects():
    from midi.notes import MAX_VELOCITY, Note
    from midi.tempo import MAX_BPM, MAX_NUMERATOR, TempoMap

    # The largest values the table lets through are ones the session accepts, and no more.
    request = protocol.parse_request(message("/jasco/tempo", MAX_BPM, MAX_NUMERATOR, 4))
    Session().set_tempo(**request.values)
    assert TempoMap.constant(MAX_BPM, MAX_NUMERATOR).bpm_at(0.0) == MAX_BPM
    with pytest.raises(ProtocolError, match="at most 1000"):
        protocol.parse_request(message("/jasco/tempo", MAX_BPM + 1))
    with pytest.raises(ProtocolError, match="at most 255"):
        protocol.parse_request(message("/jasco/tempo", 120.0, MAX_NUMERATOR + 1))
    quiet = protocol.parse_request(message("/jasco/chords/notes", 0.0, 1.0, 60, 0))
    Session().add_chord_notes(quiet.groups)
    assert Note(60, 0.0, 1.0, 0).velocity == 0 and MAX_VELOCITY == 127


def test_nil_keeps_an_optional_arguments_default_so_a_later_one_can_be_sent():
    request = protocol.parse_request(OscMessage("/jasco/render", (5, None, "tok"), "iNs"))
    assert (request["start_bar"], request["bars"], request["token"]) == (5, None, "tok")
    with pytest.raises(ProtocolError, match="bpm"):
        protocol.parse_request(OscMessage("/jasco/tempo", (None,), "N"))  # required: no default
