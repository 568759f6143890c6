"""The preview renderer plays the request's chords in tune and on its beat grid."""

import numpy as np
import pytest

from engine.errors import ConditioningError, GenerationCancelled
from engine.preview import PreviewEngine, chord_spans, synthesize_drums, voice_chord
from engine.request import GenerationRequest, Renderer

SR = 32000
# Indices as in the released vocabulary: 2 = C, 8 = Am, 1 = F, 14 = G; 0 = N.
TONES = {2: (0, 4, 7), 8: (9, 0, 4), 1: (5, 9, 0), 14: (7, 11, 2), 0: ()}
PROGRESSION = [2, 8, 1, 14]
BEAT = 0.6  # 100 bpm
FRAMES_PER_CHORD = 120  # 2.4 s = one 4/4 bar at 100 bpm


def progression_request(**overrides) -> GenerationRequest:
    frames = tuple(i for i in PROGRESSION for _ in range(FRAMES_PER_CHORD))
    values = dict(
        chord_indices=frames,
        beat_seconds=tuple(k * BEAT for k in range(16)),
        downbeat_seconds=tuple(k * 4 * BEAT for k in range(4)),
        duration_seconds=9.6,
        seed=3,
    )
    values.update(overrides)
    return GenerationRequest(**values)


def chroma(audio: np.ndarray) -> np.ndarray:
    """Energy per pitch class between 60 Hz and 2 kHz."""
    spectrum = np.abs(np.fft.rfft(audio * np.hanning(len(audio)))) ** 2
    hz = np.fft.rfftfreq(len(audio), 1 / SR)
    band = (hz > 60) & (hz < 2000)
    pitch_class = np.round(69 + 12 * np.log2(hz[band] / 440.0)).astype(int) % 12
    return np.bincount(pitch_class, weights=spectrum[band], minlength=12)


def onset_strength(audio: np.ndarray, hop: int = 320, size: int = 1024) -> np.ndarray:
    """Spectral flux: how much louder each 10 ms frame is than the one before, per bin."""
    padded = np.pad(audio, (size // 2, size // 2))
    frames = np.lib.stride_tricks.sliding_window_view(padded, size)[::hop] * np.hanning(size)
    magnitude = np.log1p(100 * np.abs(np.fft.rfft(frames, axis=1)))
    flux = np.maximum(np.diff(magnitude, axis=0), 0).sum(axis=1)
    return np.concatenate([[0.0], flux])


@pytest.fixture(scope="module")
def engine():
    return PreviewEngine(TONES)


def test_it_is_a_renderer_labelled_as_preview(engine):
    assert isinstance(engine, Renderer)
    assert (engine.name, engine.is_preview, engine.model_id) == ("preview", True, "preview")
    result = engine.generate(progression_request())
    assert result.engine == "preview"
    assert result.sample_rate == SR
    assert result.audio.dtype == np.float32
    assert len(result.audio) == round(9.6 * SR)


@pytest.mark.parametrize("seed", [0, 7])
def test_each_chord_segment_sounds_its_chord(engine, seed):
    audio = engine.generate(progression_request(seed=seed)).audio
    for n, index in enumerate(PROGRESSION):
        start = int((n * 2.4 + 0.3) * SR)
        segment = audio[start : start + int(1.8 * SR)]
        strongest = set(np.argsort(chroma(segment))[-3:].tolist())
        assert strongest == set(TONES[index]), f"chord {n} (index {index}): got {strongest}"


def test_tuning_is_a440_equal_temperament():
    engine = PreviewEngine({5: (9,)})  # a lone A
    request = GenerationRequest(chord_indices=(5,) * 100, duration_seconds=2.0)
    audio = engine.generate(request).audio
    spectrum = np.abs(np.fft.rfft(audio[8000:56000] * np.hanning(48000)))
    hz = np.fft.rfftfreq(48000, 1 / SR)
    peaks = hz[np.argsort(spectrum)[-40:]]
    a_peaks = peaks[(peaks > 400) & (peaks < 480)]
    assert a_peaks.size, f"no energy near A4 in {sorted(peaks)}"
    assert np.all(np.abs(1200 * np.log2(a_peaks / 440.0)) < 12), sorted(a_peaks)


def test_onsets_fall_on_the_beat_grid(engine):
    request = progression_request()
    strength = onset_strength(engine.generate(request).audio)
    hop_seconds = 320 / SR
    beats = np.array(request.beat_seconds[1:])  # the first one has no frame before it
    # Peaks: frames that are the largest within +-50 ms, so one onset counts once.
    window = 5
    padded = np.pad(strength, window)
    neighbourhood = np.lib.stride_tricks.sliding_window_view(padded, 2 * window + 1).max(axis=1)
    peaks = np.flatnonzero((strength == neighbourhood) & (strength > 0))
    strongest = peaks[np.argsort(strength[peaks])[-len(beats) :]] * hop_seconds
    distance = np.abs(strongest[:, None] - beats[None, :]).min(axis=1)
    assert distance.max() < 0.02, f"onsets off the grid by up to {distance.max():.3f} s"
    found = np.abs(beats[:, None] - strongest[None, :]).min(axis=1)
    assert found.max() < 0.02, f"a beat has no onset within {found.max():.3f} s"


def test_same_seed_same_audio_other_seed_other_timbre(engine):
    first = engine.generate(progression_request(seed=11)).audio
    again = engine.generate(progression_request(seed=11)).audio
    other = engine.generate(progression_request(seed=12)).audio
    np.testing.assert_array_equal(first, again)
    assert not np.allclose(first, other)


def test_output_is_peak_normalised_below_full_scale(engine):
    audio = engine.generate(progression_request()).audio
    assert 0.8 < np.max(np.abs(audio)) < 1.0


def test_no_chord_frames_are_silent_in_the_pad():
    engine = PreviewEngine(TONES)
    request = GenerationRequest(chord_indices=(0,) * 100 + (2,) * 100, duration_seconds=4.0)
    audio = engine.generate(request).audio
    assert np.max(np.abs(audio[: int(1.9 * SR)])) == 0.0
    assert np.max(np.abs(audio[int(2.1 * SR) :])) > 0.1


def test_progress_has_a_fixed_total_and_reaches_it(engine):
    calls = []
    engine.generate(progression_request(), progress=lambda step, total: calls.append((step, total)))
    assert calls == [(1, 4), (2, 4), (3, 4), (4, 4)]


def test_cancellation_stops_between_stages(engine):
    calls = []
    polls = iter([False, False, True])
    with pytest.raises(GenerationCancelled, match="cancelled"):
        engine.generate(
            progression_request(),
            progress=lambda step, total: calls.append(step),
            should_cancel=lambda: next(polls),
        )
    assert calls == [1, 2]


def test_a_drum_stem_is_mixed_in_at_any_rate(engine):
    stem = np.zeros(44100 * 2, dtype=np.float32)
    stem[22050] = 1.0  # one click at 0.5 s
    request = GenerationRequest(
        drums_wav=np.stack([stem, stem]), drums_sample_rate=44100, duration_seconds=2.0
    )
    audio = engine.generate(request).audio
    assert len(audio) == 2 * SR
    assert abs(int(np.argmax(np.abs(audio))) - SR // 2) < 64


def test_melody_salience_plays_its_pitch(engine):
    salience = np.zeros((53, 100), dtype=np.float32)
    salience[69 - 43, :] = 1.0  # A4 throughout
    audio = engine.generate(GenerationRequest(melody_salience=salience, duration_seconds=2.0)).audio
    spectrum = np.abs(np.fft.rfft(audio[8000:56000]))
    hz = np.fft.rfftfreq(48000, 1 / SR)
    assert abs(hz[np.argmax(spectrum)] - 440.0) < 2.0


@pytest.mark.parametrize("shape", [(53, 0), (0, 480)])
def test_an_empty_melody_plays_nothing_instead_of_failing(engine, shape):
    # A salience with no frames (or no bins) used to crash the melody stage with an IndexError.
    without = engine.generate(progression_request())
    empty = engine.generate(progression_request(melody_salience=np.zeros(shape, np.float32)))
    np.testing.assert_array_equal(empty.audio, without.audio)


def test_chord_spans_follow_frame_times():
    spans = chord_spans([2, 2, 2, 8, 8], frame_rate_hz=50.0, duration_seconds=0.09)
    assert [(s.start_seconds, s.end_seconds, s.index) for s in spans] == [
        (0.0, 0.06, 2),
        (0.06, 0.09, 8),
    ]


def test_voicing_stays_in_the_pad_register_and_moves_little():
    c_major = voice_chord((0, 4, 7), 62.0)
    a_minor = voice_chord((9, 0, 4), float(np.mean(c_major)))
    assert all(52 <= n <= 76 for n in c_major + a_minor)
    assert {n % 12 for n in a_minor} == {9, 0, 4}
    assert len(set(c_major) & set(a_minor)) == 2  # C and E are kept


def test_synthesize_drums_places_each_hit():
    stem = synthesize_drums([(0.25, 36, 127), (0.75, 42, 100), (5.0, 38, 100)], 1.0, SR)
    assert stem.dtype == np.float32 and len(stem) == SR
    assert np.max(np.abs(stem[: int(0.249 * SR)])) == 0.0
    assert np.max(np.abs(stem[int(0.25 * SR) : int(0.3 * SR)])) > 0.5
    assert np.max(np.abs(stem[int(0.75 * SR) : int(0.77 * SR)])) > 0.05
    assert np.max(np.abs(stem)) <= 1.0
    np.testing.assert_array_equal(
        stem, synthesize_drums([(0.25, 36, 127), (0.75, 42, 100)], 1.0, SR)
    )


def test_synthesize_drums_rejects_a_bad_duration():
    with pytest.raises(ConditioningError, match="duration_seconds"):
        synthesize_drums([], 0.0, SR)
