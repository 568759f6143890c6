"""The transport model: beats, bar lines and take starts against an injected clock."""

import pytest

from jasco_bridge.errors import SessionError
from jasco_bridge.transport import (
    NOT_PLAYING,
    Transport,
    TransportReading,
    beat_at,
    next_bar,
    take_start,
    time_of_beat,
)
from midi.tempo import TempoMap


class FakeClock:
    def __init__(self, now: float = 100.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


class FakeLink:
    def __init__(self, peers: int, beat: float, bpm: float) -> None:
        self.peers, self.beat, self.bpm = peers, beat, bpm
        self.bar_beats: list[float] = []
        self.closed = False

    def close(self) -> None:
        self.closed = True

    def reading(self, clock, bar_beats):
        self.bar_beats.append(bar_beats)
        if not self.peers:
            return None
        return TransportReading("link", True, self.beat, clock(), self.bpm)


TEMPO_120 = TempoMap.constant(120.0)


def test_osc_reading_gives_the_beat_at_any_time_and_back():
    reading = TransportReading("osc", True, beat=6.0, at_seconds=100.0)
    assert beat_at(reading, TEMPO_120, 101.5) == pytest.approx(9.0)
    assert time_of_beat(reading, TEMPO_120, 8.0) == pytest.approx(101.0)


def test_osc_reading_follows_tempo_changes_of_the_session():
    tempo = TempoMap.constant(120.0).with_tempo_change(8.0, 60.0)
    reading = TransportReading("osc", True, beat=6.0, at_seconds=0.0)
    # 2 beats at 120 (1 s), then 2 beats at 60 (2 s)
    assert time_of_beat(reading, tempo, 10.0) == pytest.approx(3.0)
    assert beat_at(reading, tempo, 3.0) == pytest.approx(10.0)


def test_next_bar_of_a_playing_daw_is_the_coming_bar_line():
    reading = TransportReading("osc", True, beat=5.0, at_seconds=10.0)  # bar 2, beat 2
    when, bar = next_bar(reading, TEMPO_120, now=10.0)
    assert bar == 3
    assert when == pytest.approx(10.0 + 3 * 0.5)


def test_next_bar_on_a_bar_line_is_now():
    reading = TransportReading("osc", True, beat=8.0, at_seconds=10.0)
    assert next_bar(reading, TEMPO_120, now=10.0) == (pytest.approx(10.0), 3)


def test_next_bar_in_three_four():
    tempo = TempoMap.constant(120.0, 3, 4)
    reading = TransportReading("osc", True, beat=4.0, at_seconds=0.0)  # bar 2, beat 2
    when, bar = next_bar(reading, tempo, now=0.0)
    assert (bar, when) == (3, pytest.approx(1.0))


def test_stopped_transport_plays_at_once():
    assert next_bar(NOT_PLAYING, TEMPO_120, now=42.0) == (42.0, None)


def test_link_bar_phase_uses_links_tempo():
    reading = TransportReading("link", True, beat=13.0, at_seconds=0.0, bpm=60.0)
    when, bar = next_bar(reading, TEMPO_120, now=0.0)
    assert bar is None
    assert when == pytest.approx(3.0)  # beat 16 is three beats of 1 s away


def test_transport_prefers_link_with_peers_then_a_playing_daw():
    clock = FakeClock(50.0)
    link = FakeLink(peers=0, beat=0.0, bpm=100.0)
    transport = Transport(clock, link)
    assert transport.reading(TEMPO_120) == NOT_PLAYING
    transport.report_osc(True, 4.0)
    assert transport.reading(TEMPO_120).source == "osc"
    link.peers = 1
    reading = transport.reading(TempoMap.constant(120.0, 3, 4))
    assert reading.source == "link"
    assert reading.bpm == 100.0
    assert link.bar_beats[-1] == 3.0


def test_osc_latency_dates_the_beat_back():
    clock = FakeClock(20.0)
    transport = Transport(clock)
    transport.report_osc(True, 4.0, age_seconds=0.25)
    assert transport.reading(TEMPO_120).at_seconds == pytest.approx(19.75)


def test_a_stopped_daw_is_no_transport():
    transport = Transport(FakeClock())
    transport.report_osc(False, 12.0)
    assert transport.reading(TEMPO_120) == NOT_PLAYING


def test_bad_transport_values_are_refused():
    transport = Transport(FakeClock())
    with pytest.raises(SessionError, match="beat"):
        transport.report_osc(True, float("nan"))
    with pytest.raises(SessionError, match="latency"):
        transport.report_osc(True, 1.0, age_seconds=60.0)


def test_take_start_with_a_song_position_is_the_bars_own_time():
    reading = TransportReading("osc", True, beat=0.0, at_seconds=10.0)
    assert take_start(reading, TEMPO_120, 3, 1, now=10.0, lead_seconds=0.25) == pytest.approx(14.0)


def test_take_start_for_a_bar_already_passing_is_refused():
    reading = TransportReading("osc", True, beat=9.0, at_seconds=10.0)  # bar 3, beat 2
    with pytest.raises(SessionError, match="bar 3 is already passing.*bar 3"):
        take_start(reading, TEMPO_120, 3, 0, now=10.0, lead_seconds=0.25)


def test_take_start_without_a_transport_waits_for_the_count_in():
    assert take_start(NOT_PLAYING, TEMPO_120, 5, 2, now=10.0, lead_seconds=0.25) == pytest.approx(
        10.0 + 0.25 + 2 * 2.0
    )


def test_take_start_with_link_lands_on_a_link_bar_after_the_count_in():
    reading = TransportReading("link", True, beat=1.0, at_seconds=0.0, bpm=120.0)
    when = take_start(reading, TEMPO_120, 1, 1, now=0.0, lead_seconds=0.25)
    # count-in ends at 2.25 s = Link beat 5.5; the next bar line is beat 8, 3.5 s away
    assert when == pytest.approx(3.5)


class Collected:
    def __init__(self) -> None:
        self.tempos: list[tuple[float, float]] = []
        self.failures: list[str] = []

    def link_tempo(self, link_bpm, session_bpm):
        self.tempos.append((link_bpm, session_bpm))

    def failed(self, message):
        self.failures.append(message)


def test_the_desk_reports_links_tempo_when_it_differs_from_the_session(tmp_path):
    from jasco_bridge.audition import AudioDesk, AudioSettings

    # A device no machine has: the take itself fails (reported); the tempo note comes first.
    desk = AudioDesk(
        AudioSettings(input_device="no-such-device"),
        link=FakeLink(1, 0.0, 100.0),
        clock=FakeClock(),
    )
    report = Collected()
    desk.record_drums(
        "default",
        TEMPO_120,
        start_bar=1,
        bars=1,
        count_in_bars=0,
        click_through=False,
        out_dir=tmp_path,
        report=report,
    )
    desk.close()
    assert report.tempos == [(100.0, 120.0)]
    assert len(report.failures) == 1 and "audio" in report.failures[0]  # a message, no crash
