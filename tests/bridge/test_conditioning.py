"""Bars -> seconds -> frames: windows, refusals, chord frames and the chord report."""

import numpy as np
import pytest

from engine.preview import PreviewEngine
from jasco_bridge.conditioning import BarWindow, bars_that_fit, build_request, plan_window
from jasco_bridge.errors import RenderError
from midi.chords import TimedChord
from midi.notes import Note
from midi.symbols import parse_chord_symbol
from midi.tempo import TempoChange, TempoMap, TimeSignature
from midi.vocabulary import ChordVocabulary

RENDERER = PreviewEngine({})  # 10 s segments of 500 frames at 50 Hz


@pytest.fixture(scope="module")
def vocabulary(chord_pkl):
    return ChordVocabulary.from_pickle(chord_pkl)


def timed(start_beat: float, end_beat: float, symbol: str) -> TimedChord:
    return TimedChord(start_beat, end_beat, parse_chord_symbol(symbol))


def request_for(window: BarWindow, chords, vocabulary, **extra):
    return build_request(
        window,
        chords,
        vocabulary,
        RENDERER,
        prompt="test",
        seed=1,
        steps=10,
        sampler="euler",
        cfg_all=1.25,
        cfg_text=2.5,
        **extra,
    )


def test_a_window_across_a_tempo_change_is_exact():
    # 120 bpm for two bars, then 60 bpm: bar 2 lasts 2 s, bar 3 lasts 4 s.
    tempo = TempoMap((TempoChange(0.0, 120.0), TempoChange(8.0, 60.0)), ())
    window = plan_window(tempo, start_bar=2, bars=2, segment_seconds=10.0)
    assert (window.start_beat, window.end_beat) == (4.0, 12.0)
    assert (window.start_seconds, window.end_seconds) == (2.0, 8.0)
    assert window.duration_seconds == 6.0
    assert window.end_bar == 3


def test_a_window_across_a_meter_change():
    # Bar 1 in 4/4 at 120 bpm (2 s), then 3/4 bars (1.5 s each).
    tempo = TempoMap((TempoChange(0.0, 120.0),), (TimeSignature(0, 4, 4), TimeSignature(4, 3, 4)))
    window = plan_window(tempo, start_bar=1, bars=3, segment_seconds=10.0)
    assert (window.end_beat, window.duration_seconds) == (10.0, 5.0)


def test_too_many_bars_are_refused_with_the_number_that_fits():
    tempo = TempoMap.constant(68.0)
    with pytest.raises(RenderError) as caught:
        plan_window(tempo, start_bar=5, bars=8, segment_seconds=10.0)
    assert str(caught.value) == (
        "bars 5-12 last 28.2 s at 68 bpm; JASCO renders at most 10 s per clip: "
        "ask for at most 2 bars here"
    )


def test_a_bar_longer_than_a_segment_says_so():
    with pytest.raises(RenderError, match="bar 1 last 12.0 s at 20 bpm.*single bar"):
        plan_window(TempoMap.constant(20.0), start_bar=1, bars=1, segment_seconds=10.0)


def test_exactly_ten_seconds_fits():
    window = plan_window(TempoMap.constant(96.0), start_bar=1, bars=4, segment_seconds=10.0)
    assert window.duration_seconds == pytest.approx(10.0)


@pytest.mark.parametrize(("bpm", "expected"), [(100.0, 4), (68.0, 2), (200.0, 4), (40.0, 1)])
def test_default_bars_are_what_fits_at_most_four(bpm, expected):
    window = plan_window(TempoMap.constant(bpm), start_bar=3, bars=None, segment_seconds=10.0)
    assert window.bars == expected


def test_bars_that_fit_counts_whole_bars():
    assert bars_that_fit(TempoMap.constant(120.0), 1, 10.0) == 5
    assert bars_that_fit(TempoMap.constant(120.0, 3, 4), 1, 10.0) == 6


@pytest.mark.parametrize("bad", [0, -2])
def test_bar_numbers_start_at_one(bad):
    with pytest.raises(RenderError, match="start bar"):
        plan_window(TempoMap.constant(120.0), start_bar=bad, bars=1, segment_seconds=10.0)


def test_chords_land_on_their_frames(vocabulary):
    tempo = TempoMap.constant(120.0)  # one beat = 0.5 s = 25 frames
    chords = [timed(0, 4, "C"), timed(4, 8, "Am"), timed(8, 12, "F"), timed(12, 16, "G")]
    window = plan_window(tempo, start_bar=2, bars=2, segment_seconds=10.0)
    frames = request_for(window, chords, vocabulary)[0].chord_indices
    am, f, g = (vocabulary.index_of(label) for label in ("Am", "F", "G"))
    assert len(frames) == 500
    assert frames[:100] == (am,) * 100
    assert frames[100:200] == (f,) * 100
    # After the window the song's next chord carries on, then no chord where the song ends.
    assert frames[200:300] == (g,) * 100
    assert set(frames[300:]) == {vocabulary.no_chord_index}


def test_a_chord_starting_before_the_window_is_cut_at_its_start(vocabulary):
    tempo = TempoMap.constant(120.0)
    window = plan_window(tempo, start_bar=2, bars=1, segment_seconds=10.0)
    request, chords = request_for(window, [timed(2, 6, "D")], vocabulary)
    assert request.chord_indices[:50] == (vocabulary.index_of("D"),) * 50
    (use,) = chords
    assert (use.start_beat, use.end_beat) == (4.0, 6.0)


def test_the_report_lists_only_chords_inside_the_window(vocabulary):
    tempo = TempoMap.constant(120.0)
    chords = [timed(0, 4, "C"), timed(4, 6, "Cmaj9"), timed(6, 8, "G7/B"), timed(8, 12, "F")]
    window = plan_window(tempo, start_bar=2, bars=1, segment_seconds=10.0)
    _, report = request_for(window, chords, vocabulary)
    assert [(u.start_beat, u.end_beat, u.harte) for u in report] == [
        (4.0, 6.0, "C:maj9"),
        (6.0, 8.0, "G:7/3"),
    ]
    assert report[0].match.exact is False
    assert report[0].match.index == vocabulary.index_of(report[0].match.label)
    assert (report[1].match.label, report[1].match.exact) == ("G7/B", True)
    assert "->" in str(report[0])


def test_the_beat_grid_is_in_window_seconds(vocabulary):
    tempo = TempoMap((TempoChange(0.0, 120.0), TempoChange(8.0, 60.0)), ())
    window = plan_window(tempo, start_bar=2, bars=2, segment_seconds=10.0)
    request = request_for(window, [], vocabulary)[0]
    assert request.beat_seconds == (0.0, 0.5, 1.0, 1.5, 2.0, 3.0, 4.0, 5.0)
    assert request.downbeat_seconds == (0.0, 2.0)
    assert request.duration_seconds == 6.0
    assert set(request.chord_indices) == {vocabulary.no_chord_index}


def test_the_windows_drums_reach_the_engine_as_they_are(vocabulary):
    # Drums arrive window-shaped (sample 0 = the window's start), cut by their source.
    tempo = TempoMap.constant(120.0)
    stem = np.arange(32000 * 10, dtype=np.float32)
    window = plan_window(tempo, start_bar=3, bars=1, segment_seconds=10.0)  # from 4 s
    request = request_for(window, [], vocabulary, drums_wav=stem, drums_sample_rate=32000)[0]
    assert request.drums_wav is stem and request.drums_sample_rate == 32000
    assert window.horizon_beat == tempo.beat_at(4.0 + 10.0)


def test_melody_notes_become_salience_rows(vocabulary):
    tempo = TempoMap.constant(120.0)
    window = plan_window(tempo, start_bar=2, bars=1, segment_seconds=10.0)
    melody = [Note(69, 4.0, 5.0), Note(72, 1.0, 2.0)]  # the second one is before the window
    salience = request_for(window, [], vocabulary, melody_notes=melody)[0].melody_salience
    assert salience.shape == (53, 500)
    assert np.all(salience[69 - 43, :25] == 1.0)
    assert salience[:, 25:].sum() == 0.0
