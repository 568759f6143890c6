"""`serve --midi-in`: live chord notes against the MIDI clock, into the default session."""

from __future__ import annotations

import asyncio
import time

import mido
import pytest

from jasco_bridge.live_midi import LiveChordRecording
from jasco_bridge.session import SessionStore
from tests.bridge.support import run_cli


def chord_notes(sessions: SessionStore) -> list[list[float]]:
    notes = sessions.get().snapshot().chord_notes
    return [[n.start_beat, n.duration_beats, n.pitch, n.velocity] for n in notes]


def test_live_messages_become_chord_notes_of_the_default_session():
    sessions = SessionStore()
    loop = asyncio.new_event_loop()
    try:
        recording = LiveChordRecording(sessions, loop)
        messages = [mido.Message("start")] + [mido.Message("clock")] * 96
        messages += [mido.Message("note_on", note=57, velocity=80)]
        messages += [mido.Message("note_on", note=60, velocity=80)]
        messages += [mido.Message("clock")] * 96 + [mido.Message("stop")]
        for message in messages:
            recording.receive(message)
        assert chord_notes(sessions) == [[4.0, 4.0, 57, 80], [4.0, 4.0, 60, 80]]
        assert chord_notes(sessions) == sorted(chord_notes(sessions))
    finally:
        loop.close()


def test_serve_with_a_missing_midi_port_fails_with_a_clear_error():
    result = run_cli("serve", "--port", "0", "--engine", "preview", "--midi-in", "No Such Port")
    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    output = result.stdout + result.stderr
    # Without python-rtmidi the error says how to install it; with it, what inputs exist.
    assert "jasco-bridge[live]" in output or "MIDI input" in output


def test_a_virtual_rtmidi_port_records_into_a_running_daemon(tmp_path):
    rtmidi = pytest.importorskip("rtmidi", reason="python-rtmidi is not installed (extra 'live')")
    try:
        source = rtmidi.MidiOut()
        source.open_virtual_port("jasco test keys")
    except (SystemError, RuntimeError, OSError) as exc:
        pytest.skip(f"no MIDI system for a virtual port here: {exc}")
    from tests.bridge.support import running_daemon

    try:
        with running_daemon(tmp_path, midi_in="jasco test keys") as daemon:
            for data in ([0xFA], *[[0xF8]] * 24, [0x90, 62, 70], *[[0xF8]] * 24, [0xFC]):
                source.send_message(data)
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline:
                notes = daemon.call_in_loop(lambda: chord_notes(daemon.server.sessions))
                if notes:
                    break
                time.sleep(0.05)
            assert notes == [[1.0, 1.0, 62, 70]]
    finally:
        source.close_port()
