import sys

import mido
import pytest

from midi.errors import LiveInputError
from midi.live import ClockedRecorder, LiveInput, MidiTransport, open_live_input
from midi.notes import Note


def on(note, velocity=90, channel=0):
    return mido.Message("note_on", note=note, velocity=velocity, channel=channel)


def off(note, channel=0):
    return mido.Message("note_off", note=note, channel=channel)


def pedal(value, channel=0):
    return mido.Message("control_change", control=64, value=value, channel=channel)


def test_note_on_then_off_completes_a_note_and_velocity_zero_is_an_off():
    live = LiveInput()
    assert live.feed(on(60), 0.0) == ()
    assert live.held_pitches() == {60}
    assert live.feed(off(60), 1.0) == (Note(60, 0.0, 1.0, 90, 0),)
    live.feed(on(64, 70), 1.0)
    assert live.feed(on(64, 0), 1.5) == (Note(64, 1.0, 1.5, 70, 0),)
    assert live.held_pitches() == frozenset()


def test_sustain_pedal_holds_released_notes_until_it_lifts():
    live = LiveInput()
    live.feed(pedal(127), 0.0)
    live.feed(on(48), 0.0)
    live.feed(on(52), 0.0)
    assert live.feed(off(48), 0.5) == ()
    assert live.feed(off(52), 0.5) == ()
    assert live.held_pitches() == {48, 52}
    live.feed(on(55), 1.0)  # still down on the key when the pedal lifts
    ended = live.feed(pedal(0), 2.0)
    assert ended == (Note(48, 0.0, 2.0, 90), Note(52, 0.0, 2.0, 90))
    assert live.held_pitches() == {55}
    assert live.feed(off(55), 3.0) == (Note(55, 1.0, 3.0, 90),)


def test_restriking_a_held_pitch_ends_its_previous_note():
    live = LiveInput()
    live.feed(pedal(100), 0.0)
    live.feed(on(60), 0.0)
    live.feed(off(60), 0.25)
    assert live.feed(on(60, 50), 1.0) == (Note(60, 0.0, 1.0, 90),)
    assert live.held_pitches() == {60}


def test_pedal_is_per_channel_and_all_notes_off_ends_a_channel():
    live = LiveInput()
    live.feed(pedal(127, channel=1), 0.0)
    live.feed(on(60, channel=0), 0.0)
    live.feed(on(72, channel=1), 0.0)
    assert live.feed(off(60, channel=0), 1.0) == (Note(60, 0.0, 1.0, 90, 0),)
    assert live.feed(off(72, channel=1), 1.0) == ()
    all_off = mido.Message("control_change", control=123, value=0, channel=1)
    assert live.feed(all_off, 2.0) == (Note(72, 0.0, 2.0, 90, 1),)


def test_take_track_holds_everything_with_open_notes_cut_at_the_latest_beat():
    live = LiveInput()
    live.feed(on(60), 0.0)
    live.feed(off(60), 1.0)
    live.feed(on(67), 2.0)
    live.feed(mido.Message("clock"), 3.5)
    take = live.take_track("keys take")
    assert take.name == "keys take"
    assert take.notes == (Note(60, 0.0, 1.0, 90), Note(67, 2.0, 3.5, 90))
    assert live.held_pitches() == {67}
    live.clear()
    assert live.take_track().notes == ()


def test_notes_of_no_length_are_dropped():
    live = LiveInput()
    live.feed(on(60), 4.0)
    assert live.feed(off(60), 4.0) == ()
    live.feed(on(62), 8.0)
    assert live.feed(off(62), 2.0) == ()  # the transport jumped back


def test_a_note_struck_in_the_count_in_sounds_from_beat_0():
    live = LiveInput()
    live.feed(on(48), -1.0)
    live.feed(on(60), -0.5)
    assert live.feed(off(60), -0.25) == ()  # over before the song starts
    assert live.feed(off(48), 2.0) == (Note(48, 0.0, 2.0, 90),)
    live.feed(on(52), -0.5)
    assert live.take_track().notes == (Note(48, 0.0, 2.0, 90), Note(52, 0.0, 2.0, 90))


def test_bad_input_is_refused():
    with pytest.raises(LiveInputError, match="at_beat"):
        LiveInput().feed(on(60), float("nan"))
    with pytest.raises(LiveInputError, match="mido.Message"):
        LiveInput().feed("note_on 60", 0.0)


def test_open_live_input_explains_how_to_install_the_backend(monkeypatch):
    monkeypatch.setitem(sys.modules, "rtmidi", None)  # makes `import rtmidi` fail
    with pytest.raises(LiveInputError, match=r"pip install 'jasco-bridge\[live\]'"):
        open_live_input("IAC Driver Bus 1")


# ---------------------------------------------------------------- recording against MIDI clock


def clocks(count):
    return [mido.Message("clock")] * count


def record(messages):
    recorder = ClockedRecorder()
    notes = []
    for message in messages:
        notes += recorder.feed(message)
    return recorder, notes


def test_the_transport_counts_24_clocks_a_beat_only_while_running():
    transport = MidiTransport()
    for message in clocks(48):
        transport.feed(message)
    assert transport.beat == 0.0 and not transport.running
    transport.feed(mido.Message("start"))
    for message in clocks(36):
        transport.feed(message)
    assert transport.running and transport.beat == 1.5
    transport.feed(mido.Message("stop"))
    transport.feed(mido.Message("songpos", pos=32))  # 32 sixteenths = beat 8
    assert transport.beat == 8.0
    transport.feed(mido.Message("continue"))
    for message in clocks(12):
        transport.feed(message)
    assert transport.beat == 8.5
    assert transport.feed(on(60)) is False


def test_notes_are_recorded_at_the_clock_beat_and_stop_ends_held_notes():
    _, notes = record(
        [mido.Message("start"), *clocks(24), on(60), on(64), *clocks(48), off(60), *clocks(24)]
        + [mido.Message("stop")]
    )
    assert notes == [Note(60, 1.0, 3.0, 90), Note(64, 1.0, 4.0, 90)]


def test_notes_played_while_stopped_are_not_recorded_and_a_song_position_is_honoured():
    recorder, notes = record(
        [on(48), *clocks(24), off(48), mido.Message("songpos", pos=16), mido.Message("continue")]
        + [on(50), *clocks(12), off(50)]
    )
    assert notes == [Note(50, 4.0, 4.5, 90)]
    assert recorder.input.take_track().notes == (Note(50, 4.0, 4.5, 90),)
