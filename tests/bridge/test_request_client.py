"""`jasco-bridge request`: a JSON request in, the daemon's replies out as JSON lines, over TCP."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import soundfile as sf

from jasco_bridge import protocol
from jasco_bridge.client import MAX_MESSAGE_BYTES, RenderSpec, ReplyTracker
from jasco_bridge.errors import UsageError
from jasco_bridge.osc import encode_packet, message, parse_packet
from tests.bridge.support import REPO, WAIT_SECONDS, running_daemon


def request(document: object, *options: str) -> tuple[int, list[dict]]:
    """Run `python -m jasco_bridge request -` with `document` on stdin; (exit status, events)."""
    done = subprocess.run(
        [sys.executable, "-m", "jasco_bridge", "request", "-", *options],
        input=json.dumps(document),
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        timeout=WAIT_SECONDS,
        check=False,
    )
    return done.returncode, [json.loads(line) for line in done.stdout.splitlines()]


def triads(start_beat: float, roots: list[int]) -> list[dict]:
    """One major triad per bar of 4/4 from `start_beat`, as request notes."""
    return [
        {"start_beat": start_beat + 4 * i, "length_beats": 4, "pitch": 48 + root + step}
        for i, root in enumerate(roots)
        for step in (0, 4, 7)
    ]


def test_a_request_renders_its_bars_and_reports_each_reply_as_a_json_line(tmp_path):
    document = {
        "tempo": {"bpm": 120},
        "tempo_changes": [{"beat": 8, "bpm": 90}],
        "notes": triads(4, [0, 5]),  # C in bar 2, F in bar 3
        "prompt": "warm rhodes",
        "start_bar": 2,
        "bars": 2,
        "settings": {"seed": 77, "sample_rate": 48000},
    }
    with running_daemon(tmp_path) as daemon:
        status, events = request(document, "--port", str(daemon.server.tcp_port))
    assert status == 0, events
    kinds = [e["event"] for e in events]
    assert kinds[0] == "ack" and kinds[-1] == "done" and "progress" in kinds
    ack, done = events[0], events[-1]
    assert (ack["seed"], ack["start_bar"], ack["bars"]) == (77, 2, 2)
    assert len({e["token"] for e in events}) == 1 and ack["token"]
    assert (done["start_beat"], done["length_beats"]) == (4.0, 8.0)
    audio, rate = sf.read(done["path"])
    # Bars 2-3: 4 beats at 120 bpm, then 4 beats at 90 bpm = 2 + 8/3 s, at the asked rate.
    assert rate == 48000 and len(audio) == 2 * 48000 + 128000
    sidecar = json.loads(Path(done["sidecar"]).read_text())
    assert [c["given"] for c in sidecar["chords"]][:2] == ["C:maj", "F:maj"]


def test_each_run_draws_a_new_seed_unless_one_is_fixed(tmp_path):
    document = {"symbols": [{"start_beat": 0, "label": "Am7"}], "start_bar": 1, "bars": 1}
    with running_daemon(tmp_path) as daemon:
        port = ("--port", str(daemon.server.tcp_port))
        seeds = [request(document, *port)[1][0]["seed"] for _ in range(2)]
        fixed = [
            request({**document, "settings": {"seed": 5}}, *port)[1][0]["seed"] for _ in range(2)
        ]
    assert seeds[0] != seeds[1]
    assert fixed == [5, 5]


def test_a_big_item_is_split_into_datagram_sized_messages_and_renders(tmp_path):
    # 6000 chord notes (far beyond one datagram) over 200 bars; only bars 3-4 are rendered.
    notes = [
        {"start_beat": beat * 0.125, "length_beats": 0.125, "pitch": 48 + beat % 24}
        for beat in range(6000)
    ]
    spec = RenderSpec.from_json({"notes": notes, "start_bar": 3, "bars": 2})
    bulk = [m for m in spec.messages("t") if m.address == "/jasco/chords/notes"]
    assert len(bulk) > 1
    assert all(len(encode_packet(m)) <= MAX_MESSAGE_BYTES for m in bulk)
    sent = [protocol.parse_request(parse_packet(encode_packet(m))).groups for m in bulk]
    starts = [group[0] for groups in sent for group in groups]
    assert starts == [n["start_beat"] for n in notes]  # every note, in order, once
    with running_daemon(tmp_path) as daemon:
        status, events = request(
            {"notes": notes, "start_bar": 3, "bars": 2}, "--port", str(daemon.server.tcp_port)
        )
    assert status == 0, events[-1]
    assert events[-1]["event"] == "done" and events[-1]["start_bar"] == 3


def test_a_refused_message_fails_the_request_and_cancels_its_job(tmp_path):
    document = {"symbols": [{"start_beat": 0, "label": "Hmaj99"}], "start_bar": 1, "bars": 1}
    with running_daemon(tmp_path, gated=True) as daemon:  # the job waits until cancelled
        status, events = request(document, "--port", str(daemon.server.tcp_port))
    assert status == 1
    assert events[0]["event"] == "error" and "Hmaj99" in events[0]["message"]
    assert [e["event"] for e in events[1:]] == ["ack", "cancelled"]


def test_a_render_refused_at_once_ends_the_request_with_its_error(tmp_path):
    with running_daemon(tmp_path) as daemon:
        status, events = request(
            {"start_bar": 1, "bars": 400, "token": "mine"}, "--port", str(daemon.server.tcp_port)
        )
    assert status == 1
    assert events == [
        {"event": "error", "job": -1, "message": events[0]["message"], "token": "mine"}
    ]
    assert "bars" in events[0]["message"]


def test_no_daemon_is_a_clear_error_and_status_1(tmp_path):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        free_port = probe.getsockname()[1]
    status, events = request({"start_bar": 1}, "--port", str(free_port))
    assert status == 1
    assert "jasco-bridge serve" in events[-1]["message"]


@pytest.mark.parametrize(
    ("document", "named"),
    [
        ([], "JSON object"),
        ({"bar": 3}, "unknown field 'bar'"),
        ({"tempo": {"bpm": "fast"}}, "tempo.bpm must be a number"),
        ({"notes": [{"start_beat": 0, "pitch": 60}]}, "notes[0] needs 'length_beats'"),
        ({"notes": [{"start_beat": 0, "length_beats": 1, "pitch": 300}]}, "notes[0].pitch"),
        ({"settings": {"temperature": 1}}, "unknown field 'temperature'"),
        ({"notes": triads(0, [0]), "symbols": [{"start_beat": 0, "label": "C"}]}, "one way"),
        ({"start_bar": 0}, "start_bar must be"),
    ],
)
def test_bad_requests_name_the_field(document, named):
    with pytest.raises(UsageError) as caught:
        RenderSpec.from_json(document)
    assert named in str(caught.value)


def test_bad_json_on_the_command_line_exits_2_with_a_json_error_line():
    status, events = request({"tempo": {"bpm": -3}})
    assert status == 2
    assert events == [{"event": "error", "job": -1, "message": events[0]["message"]}]
    assert "tempo.bpm" in events[0]["message"]


def test_the_tracker_ignores_replies_without_its_token():
    tracker = ReplyTracker("me")
    assert tracker.feed(message("/jasco/ack", 1, 9, 0, 1, 2, "someone-else")) == []
    assert tracker.feed(message("/jasco/progress", 1, 0.5)) == []
    [ack] = tracker.feed(message("/jasco/ack", 2, 9, 0, 1, 2, "me"))
    assert ack == {
        "event": "ack",
        "job": 2,
        "seed": 9,
        "variation": 0,
        "start_bar": 1,
        "bars": 2,
        "token": "me",
    }
    assert not tracker.finished
    tracker.feed(message("/jasco/done", 2, "/a.wav", 0.0, 8.0, 0.0, 4.0, "/a.json", 1, 2, "me"))
    assert tracker.finished and tracker.exit_status == 0


def test_a_cancel_file_stops_the_running_job(tmp_path):
    stop = tmp_path / "stop"
    document = {"symbols": [{"start_beat": 0, "label": "C"}], "start_bar": 1, "bars": 1}
    with running_daemon(tmp_path, gated=True) as daemon:  # the job runs until cancelled
        command = [sys.executable, "-m", "jasco_bridge", "request", "-", "--cancel-file", str(stop)]
        command += ["--port", str(daemon.server.tcp_port)]
        process = subprocess.Popen(
            command,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            env={**os.environ, "PYTHONPATH": str(REPO)},
        )
        process.stdin.write(json.dumps(document))
        process.stdin.close()
        first = json.loads(process.stdout.readline())
        assert first["event"] == "ack"
        daemon.renderer.started.wait(WAIT_SECONDS)
        stop.touch()
        rest = [json.loads(line) for line in process.stdout]
        assert process.wait(WAIT_SECONDS) == 1
    assert "cancelled" in rest[0]["message"] and str(first["job"]) in rest[0]["message"]


def test_the_request_takes_the_same_limits_as_the_osc_table():
    from midi.notes import MAX_VELOCITY
    from midi.tempo import MAX_BPM, MAX_NUMERATOR

    # The largest values the daemon accepts pass the client too, and one more is refused by both.
    edge = {"tempo": {"bpm": MAX_BPM, "numerator": MAX_NUMERATOR}, "symbols": []}
    for sent in RenderSpec.from_json(edge).messages("t"):
        if sent.address == "/jasco/tempo":
            protocol.parse_request(sent)
    quiet = [{"start_beat": 0, "length_beats": 1, "pitch": 60, "velocity": 0}]
    assert RenderSpec.from_json({"notes": quiet})
    with pytest.raises(UsageError, match="tempo.bpm"):
        RenderSpec.from_json({"tempo": {"bpm": MAX_BPM + 1}})
    with pytest.raises(UsageError, match="velocity"):
        RenderSpec.from_json({"notes": [{**quiet[0], "velocity": MAX_VELOCITY + 1}]})
