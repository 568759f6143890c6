"""Sessions: tempo, chord sources and their precedence, files by path, settings, names.

How a path is checked and a file opened is tested in test_sources.py."""

from __future__ import annotations

import json

import pytest

from jasco_bridge import session as session_module
from jasco_bridge.errors import SessionError
from jasco_bridge.session import Session, SessionStore
from jasco_bridge.settings import RenderSettings
from jasco_bridge.sources import AudioDrums
from midi.symbols import parse_chord_symbol
from midi.tempo import TempoMap
from tests.bridge.support import chord_track, write_song, write_wav


def triad(root: int, start: float, length: float = 4.0) -> list[tuple[float, float, int, int]]:
    """(start, length, pitch, velocity) groups of a root-position major triad."""
    return [(start, length, 48 + root + interval, 90) for interval in (0, 4, 7)]


def roots(timeline) -> list[int | None]:
    return [None if t.chord is None else t.chord.root for t in timeline]


# ---------------------------------------------------------------------------- tempo


def test_a_new_session_is_120_bpm_in_four_four_with_nothing_else():
    snapshot = Session("verse").snapshot()
    assert snapshot.tempo_map.seconds_at(4.0) == pytest.approx(2.0)
    assert snapshot.tempo_map.bar_window(2, 1) == (4.0, 8.0)
    assert snapshot.chord_source == "none"
    assert snapshot.chord_timeline() == []
    assert snapshot.prompt == "" and snapshot.drums is None
    assert snapshot.settings == RenderSettings()


def test_tempo_changes_and_meter_changes_shape_the_map():
    session = Session()
    session.set_tempo(100, 3, 4)
    session.add_tempo_change(6.0, 50)  # bar 3 at half speed
    session.add_meter_change(6.0, 6, 8)
    tempo_map = session.snapshot().tempo_map
    assert tempo_map.seconds_at(6.0) == pytest.approx(3.6)
    assert tempo_map.seconds_at(9.0) == pytest.approx(3.6 + 3.6)
    assert tempo_map.bar_window(3, 1) == (6.0, 9.0)
    session.set_tempo(140)  # a new constant tempo drops the changes
    assert session.snapshot().tempo_map.seconds_at(7.0) == pytest.approx(3.0)


def test_bad_tempo_input_is_a_session_error_naming_the_problem():
    session = Session()
    with pytest.raises(SessionError, match="tempo"):
        session.set_tempo(0)
    with pytest.raises(SessionError, match="bar line"):
        session.add_meter_change(5.0, 3, 4)
    assert session.snapshot().tempo_map.seconds_at(4.0) == pytest.approx(2.0)


# ---------------------------------------------------------------------------- chords


def test_chord_symbols_run_until_the_next_one_and_the_last_until_asked():
    session = Session()
    session.add_chord_symbols([(0.0, "C"), (4.0, "Am7"), (8.0, "N.C."), (10.0, "F/A")])
    timeline = session.chord_timeline(until_beat=16.0)
    assert [(t.start_beat, t.end_beat) for t in timeline] == [
        (0.0, 4.0),
        (4.0, 8.0),
        (8.0, 10.0),
        (10.0, 16.0),
    ]
    assert timeline[1].chord == parse_chord_symbol("Am7")
    assert timeline[2].chord is None
    assert timeline[3].chord.bass == 9
    # Without an end, the last chord lasts one bar (of 4/4 here).
    assert session.chord_timeline()[-1].end_beat == 14.0


def test_a_chord_symbol_on_the_same_beat_replaces_the_earlier_one():
    session = Session()
    session.add_chord_symbol(4.0, "G")
    session.add_chord_symbol(0.0, "C")
    session.add_chord_symbol(4.0, "D")
    assert roots(session.chord_timeline(8.0)) == [0, 2]


def test_a_bad_chord_symbol_names_itself_and_changes_nothing():
    session = Session()
    session.add_chord_symbol(0.0, "C")
    with pytest.raises(SessionError, match="'Hmaj7' at beat 4"):
        session.add_chord_symbols([(2.0, "D"), (4.0, "Hmaj7")])
    assert roots(session.chord_timeline(8.0)) == [0]
    with pytest.raises(SessionError, match="pairs"):
        session.add_chord_symbols([(0.0, "C"), (4.0,)])


def test_chord_notes_are_recognised_with_the_session_tempo_map():
    session = Session()
    session.set_tempo(95)
    session.add_chord_notes(triad(0, 0.0) + triad(5, 4.0) + triad(7, 8.0))
    snapshot = session.snapshot()
    assert snapshot.chord_source == "notes"
    timeline = snapshot.chord_timeline()
    assert [r for r in roots(timeline) if r is not None][:3] == [0, 5, 7]
    assert timeline[0].start_beat == pytest.approx(0.0)
    assert timeline[0].chord.pitch_classes == frozenset({0, 4, 7})


def test_the_latest_kind_of_chords_sent_wins_and_says_what_it_dropped(tmp_path):
    path = write_song(tmp_path / "chords.mid", [chord_track("Piano", [9, 9, 2, 2])])
    session = Session()
    assert session.add_chord_symbols([(0.0, "Eb"), (4.0, "Ab")]) == []
    assert session.add_chord_symbol(8.0, "Bb") == []  # more of the same kind add up
    assert roots(session.chord_timeline(12.0)) == [3, 8, 10]
    told = session.add_chord_note(0.0, 4.0, 55)
    assert len(told) == 1 and "chord notes" in told[0] and "3 chord symbols" in told[0]
    assert session.add_chord_notes(triad(7, 0.0)[1:]) == []  # G B D with the G already there
    snapshot = session.snapshot()
    assert snapshot.chord_source == "notes" and snapshot.chord_symbols == ()
    assert roots(session.chord_timeline())[0] == 7
    told = session.set_chord_file(str(path))
    assert any("chord file" in text and "3 chord notes" in text for text in told)
    assert session.snapshot().chord_source == "file" and session.snapshot().chord_notes == ()
    assert roots(session.chord_timeline())[0] == 9
    told = session.add_chord_symbol(0.0, "Eb")
    assert len(told) == 1 and str(path) in told[0]
    assert session.snapshot().chord_source == "symbols"
    assert session.snapshot().chord_file is None
    assert roots(session.chord_timeline(4.0)) == [3]
    session.clear_chords()
    assert session.snapshot().chord_source == "none"


def test_a_refused_chord_list_drops_nothing():
    session = Session()
    session.add_chord_symbol(0.0, "C")
    with pytest.raises(SessionError, match="pitch"):
        session.add_chord_notes([(0.0, 1.0, 60, 90), (1.0, 1.0, 200, 90)])
    with pytest.raises(SessionError, match="at most"):
        session.add_chord_notes([(0.0, 1.0, 60, 90)] * 20_001)
    assert session.snapshot().chord_source == "symbols"
    assert roots(session.chord_timeline(4.0)) == [0]


def test_a_chord_file_is_read_in_beats_whatever_its_own_tempo(tmp_path):
    # The file says 60 bpm; the session (the DAW) says 120. Beats stay where they are.
    path = write_song(
        tmp_path / "slow.mid", [chord_track("Keys", [0, 5])], tempo_map=TempoMap.constant(60)
    )
    session = Session()
    session.set_tempo(120)
    told = session.set_chord_file(str(path))
    assert told == [
        "the bars follow the session's tempo map (120 bpm 4/4), not the chord file's "
        "(60 bpm 4/4); to use the file's, send /jasco/reset before the file"
    ]
    assert session.snapshot().tempo_source == "session"
    timeline = [t for t in session.chord_timeline() if t.chord is not None]
    assert [t.chord.root for t in timeline][:2] == [0, 5]
    assert timeline[1].start_beat == pytest.approx(4.0)
    assert session.snapshot().tempo_map.seconds_at(4.0) == pytest.approx(2.0)


def waltz_file(tmp_path, name: str = "waltz.mid"):
    """Chords in 3/4 at 92 bpm with a meter change to 4/4 at bar 9 (beat 24)."""
    tempo_map = TempoMap.constant(92, 3, 4).with_time_signature(24.0, 4, 4)
    return write_song(tmp_path / name, [chord_track("Keys", [0, 5, 7, 0])], tempo_map=tempo_map)


def test_a_chord_file_brings_its_tempo_map_and_meters_when_the_session_has_none(tmp_path):
    path = waltz_file(tmp_path)
    session = Session()
    assert session.snapshot().tempo_source == "default"
    told = session.set_chord_file(str(path))
    assert told == ["the bars follow the chord file's tempo map: 92 bpm 3/4; 4/4 from bar 9"]
    snapshot = session.snapshot()
    assert snapshot.tempo_source == "chord file" and snapshot.tempo_given
    assert snapshot.tempo_map.bar_window(9, 2) == (24.0, 32.0)  # 3/4 before, 4/4 after
    assert snapshot.tempo_map.seconds_at(24.0) == pytest.approx(24 * 60 / 92)
    # A later file brings its own; clearing or replacing the chords keeps the map.
    other = write_song(
        tmp_path / "fast.mid", [chord_track("Keys", [0])], tempo_map=TempoMap.constant(140)
    )
    session.set_chord_file(str(other))
    assert session.snapshot().tempo_map.bpm_at(0.0) == pytest.approx(140, abs=0.01)
    session.add_chord_symbol(0.0, "C")
    session.clear_chords()
    assert session.snapshot().tempo_map.bpm_at(0.0) == pytest.approx(140, abs=0.01)
    assert session.snapshot().tempo_source == "chord file"


def test_an_explicit_tempo_wins_over_a_chord_file_before_or_after_it(tmp_path):
    path = waltz_file(tmp_path)
    before = Session()
    before.add_meter_change(0.0, 6, 8)  # any explicit tempo message counts
    before.set_chord_file(str(path))
    assert before.snapshot().tempo_map == TempoMap.constant(120, 6, 8)
    assert before.snapshot().tempo_source == "session"
    after = Session()
    after.set_chord_file(str(path))
    after.set_tempo(100)
    assert after.snapshot().tempo_map == TempoMap.constant(100)
    assert after.snapshot().tempo_source == "session"
    added = Session()
    added.set_chord_file(str(path))
    added.add_tempo_change(12.0, 60)  # a change is added to the file's map
    tempo_map = added.snapshot().tempo_map
    assert (tempo_map.bpm_at(0.0), tempo_map.bpm_at(12.0)) == pytest.approx((92, 60))
    assert tempo_map.beats_per_bar_at(0.0) == 3
    assert added.snapshot().tempo_source == "session"
    added.reset()
    added.set_chord_file(str(path))
    assert added.snapshot().tempo_source == "chord file"


def test_notes_with_bad_values_name_the_field():
    session = Session()
    with pytest.raises(SessionError, match="pitch"):
        session.add_chord_note(0.0, 1.0, 128)
    with pytest.raises(SessionError, match="length_beats"):
        session.add_chord_note(0.0, 0.0, 60)
    with pytest.raises(SessionError, match="start_beat"):
        session.add_melody_note(-1.0, 1.0, 60)
    with pytest.raises(SessionError, match="groups of 4"):
        session.add_chord_notes([(0.0, 1.0, 60)])
    assert session.snapshot().chord_notes == ()


def test_melody_notes_are_kept_in_beats_and_cleared():
    session = Session()
    session.add_melody_note(1.0, 0.5, 72, 80)
    session.add_melody_notes([(2.0, 1.0, 74, 100), (3.0, 1.0, 76, 100)])
    notes = session.snapshot().melody_notes
    assert [(n.start_beat, n.end_beat, n.pitch) for n in notes] == [
        (1.0, 1.5, 72),
        (2.0, 3.0, 74),
        (3.0, 4.0, 76),
    ]
    session.clear_melody()
    assert session.snapshot().melody_notes == ()


# ---------------------------------------------------------------------------- files by path


def test_files_are_opened_by_path_and_a_refused_one_changes_nothing(tmp_path):
    stem = write_wav(tmp_path / "drums.wav")
    chords = write_song(tmp_path / "chords.mid", [chord_track("Keys", [0, 5])])
    session = Session()
    session.set_drums_file(str(stem), start_beat=4.0)
    session.set_chord_file(str(chords), track="Keys")
    before = session.snapshot()
    assert isinstance(before.drums, AudioDrums) and before.drums.start_beat == 4.0
    assert before.chord_file.path == chords and "Keys" in before.chord_file.track.label
    with pytest.raises(SessionError, match="missing.wav does not exist"):
        session.set_drums_file(str(tmp_path / "missing.wav"))
    with pytest.raises(SessionError, match="drums start_beat must be a number"):
        session.set_drums_file(str(stem), start_beat=-1.0)
    with pytest.raises(SessionError, match="no track named 'Bass'"):
        session.set_chord_file(str(chords), track="Bass")
    after = session.snapshot()
    assert after.drums is before.drums and after.chord_file is before.chord_file
    session.clear_drums()
    assert session.snapshot().drums is None


# ---------------------------------------------------------------------------- settings


def test_settings_are_validated_and_reported():
    session = Session()
    session.set_setting("steps", 25.0)  # floats from REAPER / Pure Data
    session.set_setting("sampler", "Midpoint")
    session.set_setting("cfg_all", 2)
    session.set_setting("cfg_text", 0)
    session.set_setting("variations", 3)
    session.set_setting("seed", 1234)
    session.set_setting("sample_rate", 48000)
    session.set_setting("target_lufs", -14)
    assert session.settings == RenderSettings(1234, 25, "midpoint", 2.0, 0.0, 3, 48000, -14.0)
    assert isinstance(session.settings.steps, int)
    session.set_setting("seed", -1)
    session.set_setting("sample_rate", 0)
    session.set_setting("target_lufs", "off")
    assert session.settings.seed is None
    assert session.settings.sample_rate is None and session.settings.target_lufs is None


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("steps", 0, "steps must be a whole number 1..200"),
        ("steps", 2.5, "steps must be a whole number"),
        ("sampler", "ddim", "sampler must be one of euler, midpoint, dopri5"),
        ("cfg_all", float("nan"), "cfg_all must be a number"),
        ("variations", 17, "variations must be a whole number 1..16"),
        ("sample_rate", 1000, "sample_rate"),
        ("seed", "lucky", "seed must be a number"),
        ("seed", 2**31, "seed must be a whole number 0..2147483647"),
        ("seed", float("inf"), "seed must be a whole number"),
        ("stpes", 10, "did you mean steps"),
    ],
)
def test_bad_settings_are_refused_with_a_reason(name, value, message):
    session = Session()
    with pytest.raises(SessionError, match=message):
        session.set_setting(name, value)
    assert session.settings == RenderSettings()


def test_the_prompt_is_kept_and_limited():
    session = Session()
    session.set_prompt("  dusty lofi, rhodes  ")
    assert session.snapshot().prompt == "dusty lofi, rhodes"
    with pytest.raises(SessionError, match="characters"):
        session.set_prompt("x" * 5000)


def test_reset_forgets_everything():
    session = Session()
    session.set_tempo(90, 6, 8)
    session.add_chord_symbol(0.0, "C")
    session.add_melody_note(0.0, 1.0, 60)
    session.set_prompt("jazz")
    session.set_setting("steps", 3)
    session.reset()
    fresh = Session().snapshot()
    snapshot = session.snapshot()
    assert snapshot.tempo_map == fresh.tempo_map
    assert (snapshot.chord_source, snapshot.prompt, snapshot.settings) == (
        "none",
        "",
        RenderSettings(),
    )
    assert snapshot.melody_notes == ()


def test_a_snapshot_does_not_change_when_the_session_does():
    session = Session()
    session.add_chord_symbol(0.0, "C")
    session.set_prompt("before")
    snapshot = session.snapshot()
    session.add_chord_symbol(4.0, "F")
    session.set_prompt("after")
    session.set_tempo(60)
    assert [s.label for s in snapshot.chord_symbols] == ["C"]
    assert snapshot.prompt == "before"
    assert snapshot.tempo_map.seconds_at(4.0) == pytest.approx(2.0)


def test_describe_is_plain_json_for_the_sidecar(tmp_path):
    session = Session("chorus")
    session.set_tempo(133.7, 7, 8)
    session.add_chord_symbols([(0.0, "Dm7"), (3.5, "G7")])
    session.set_drums_file(str(write_wav(tmp_path / "d.wav")))
    session.set_prompt("odd-meter funk")
    session.add_melody_note(1.0, 0.5, 72, 80)
    document = json.loads(json.dumps(session.snapshot().describe()))
    assert document["session"] == "chorus"
    assert document["chord_symbols"] == [[0.0, "Dm7"], [3.5, "G7"]]
    assert document["tempo_map"]["tempos"] == [[0.0, 133.7]]
    assert document["tempo_map"]["meters"] == [[0.0, 7, 8]]
    assert document["drums"]["kind"] == "audio"
    assert document["melody_notes"] == [[1.0, 0.5, 72, 80]]
    assert document["settings"]["seed"] is None


# ---------------------------------------------------------------------------- store


def test_the_store_creates_sessions_once_and_lists_them():
    store = SessionStore()
    verse = store.get("verse")
    assert store.get("verse") is verse
    assert store.get().name == "default"
    store.get("Chorus_2")
    assert store.names() == ["Chorus_2", "default", "verse"]


@pytest.mark.parametrize(
    "name", ["", "../etc", "a b", "x" * 65, "verse/2", "ü", None, 3, "verse\n", "verse\r\n"]
)
def test_unsafe_session_names_are_refused(name):
    with pytest.raises(SessionError, match="letters, digits"):
        SessionStore().get(name)


def test_a_full_store_forgets_the_least_recently_used_session_instead_of_refusing():
    store = SessionStore(max_sessions=2)
    store.get("a").set_prompt("kept")
    store.get("b")
    store.get("a")  # a is now the most recently used
    store.get("default").set_prompt("always there")
    store.get("c")
    assert store.names() == ["a", "c", "default"]
    assert store.get("a").prompt == "kept"
    assert store.forgotten == 1
    for n in range(100):
        store.get(f"flood-{n}")
    assert store.get().prompt == "always there"  # the default session is never forgotten


def test_the_total_memory_budget_forgets_old_sessions_and_names_its_cap():
    # three sessions of 100 notes; every session (the default too) holds a tempo and a meter
    budget = 3 * 100 * session_module.NOTE_BYTES + 4 * 2 * session_module.CHANGE_BYTES
    store = SessionStore(max_total_bytes=budget)
    notes = [(float(i), 0.5, 60, 100) for i in range(100)]
    for name in ("a", "b", "c"):
        store.get(name).add_chord_notes(notes)
    store.get("d").add_chord_notes(notes)  # a, the oldest, makes room
    assert store.names() == ["b", "c", "d", "default"]
    assert store.estimated_bytes() <= budget
    with pytest.raises(SessionError, match="MAX_TOTAL_BYTES"):
        store.get("d").add_chord_notes([(float(i), 0.5, 62, 100) for i in range(400)])
    assert len(store.get("d").snapshot().chord_notes) == 100  # all or nothing


def test_each_session_cap_is_named_in_its_refusal(monkeypatch):
    session = Session()
    monkeypatch.setattr(session_module, "MAX_TEMPO_CHANGES", 3)
    monkeypatch.setattr(session_module, "MAX_METER_CHANGES", 2)
    for beat in (4.0, 8.0):
        session.add_tempo_change(beat, 100)
    session.add_tempo_change(8.0, 90)  # replacing a change costs nothing
    with pytest.raises(SessionError, match="MAX_TEMPO_CHANGES"):
        session.add_tempo_change(12.0, 100)
    session.add_meter_change(4.0, 3, 4)
    with pytest.raises(SessionError, match="MAX_METER_CHANGES"):
        session.add_meter_change(7.0, 3, 4)
    with pytest.raises(SessionError, match="MAX_NOTES"):
        session.add_chord_notes([(0.0, 1.0, 60, 100)] * (session_module.MAX_NOTES + 1))
    monkeypatch.setattr(session_module, "MAX_SESSION_BYTES", 10 * session_module.NOTE_BYTES)
    with pytest.raises(SessionError, match="MAX_SESSION_BYTES"):
        session.add_melody_notes([(float(i), 1.0, 60, 100) for i in range(20)])


def test_tempo_and_meter_changes_build_the_same_map_as_the_tempo_map_does():
    session = Session()
    expected = TempoMap.constant(120.0)
    changes = [(16.0, 90.0), (4.0, 100.0), (16.0, 95.0), (40.0, 70.0)]
    for beat, bpm in changes:
        session.add_tempo_change(beat, bpm)
        expected = expected.with_tempo_change(beat, bpm)
    for beat, num, den in [(8.0, 3, 4), (17.0, 6, 8), (8.0, 7, 8)]:
        session.add_meter_change(beat, num, den)
        expected = expected.with_time_signature(beat, num, den)
    built = session.tempo_map
    for beat in (0.0, 3.0, 9.5, 17.0, 30.0, 50.0):
        assert built.seconds_at(beat) == pytest.approx(expected.seconds_at(beat))
        assert built.position_at(beat) == expected.position_at(beat)
    with pytest.raises(SessionError, match=r"inside a bar.*beat 8 or 11\.5"):
        session.add_meter_change(9.0, 4, 4)
