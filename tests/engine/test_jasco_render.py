"""End-to-end renders through the tiny golden checkpoint with JascoEngine.generate."""

import importlib.util

import numpy as np
import pytest
import torch

from engine.errors import ConditioningError, DeviceError, GenerationCancelled
from engine.jasco import JascoEngine, resolve_device
from engine.request import GenerationRequest, Renderer


@pytest.fixture(scope="module")
def engine(golden_dir):
    return JascoEngine.from_pretrained(golden_dir, device="cpu")


def drum_loop(seconds=2.0, rate=32000):
    audio = np.zeros(int(seconds * rate), dtype=np.float32)
    for beat in range(int(seconds * 2)):
        start = int(beat * 0.5 * rate)
        audio[start : start + 800] = np.hanning(800).astype(np.float32)
    return audio


def request(**changes):
    base = dict(
        text="lofi hip hop groove",
        chord_indices=tuple([2] * 250 + [8] * 250),
        drums_wav=drum_loop(),
        duration_seconds=4.0,
        steps=2,
    )
    return GenerationRequest(**{**base, **changes})


def test_engine_is_a_renderer_with_the_checkpoint_timing(engine):
    assert isinstance(engine, Renderer)
    assert (engine.name, engine.is_preview, engine.sample_rate) == ("jasco", False, 32000)
    assert (engine.frame_rate_hz, engine.segment_seconds) == (50.0, 10.0)
    assert engine.config.null_chord_index == 194


@pytest.fixture(scope="module")
def seven(engine):
    return engine.generate(request(seed=7))


def test_render_has_the_requested_length_and_is_finite(seven):
    assert seven.audio.dtype == np.float32
    assert seven.audio.shape == (4 * 32000,)
    assert np.isfinite(seven.audio).all() and seven.audio.std() > 0
    assert (seven.engine, seven.sample_rate) == ("jasco", 32000)
    assert seven.timings["total_seconds"] >= seven.timings["sampling_seconds"] > 0


def test_same_seed_same_audio_other_seed_other_audio(engine, seven):
    again = engine.generate(request(seed=7)).audio
    other = engine.generate(request(seed=8)).audio
    assert np.array_equal(seven.audio, again)
    assert np.abs(seven.audio - other).max() > 1e-3


def test_conditions_change_the_result(engine, seven):
    other_chords = engine.generate(request(seed=7, chord_indices=tuple([20] * 500))).audio
    assert np.abs(seven.audio - other_chords).max() > 1e-4


def test_progress_reports_every_step_with_its_total(engine):
    reports = []
    engine.generate(
        request(steps=2, sampler="midpoint"), progress=lambda s, n: reports.append((s, n))
    )
    assert reports == [(1, 2), (2, 2)]


def test_cancellation_raises(engine):
    with pytest.raises(GenerationCancelled):
        engine.generate(request(steps=5), should_cancel=lambda: True)


def test_cancellation_after_two_steps_stops_the_sampler(engine):
    polls, reports = [], []

    def cancel_after_two_steps():
        polls.append(1)
        return len(reports) >= 2

    with pytest.raises(GenerationCancelled):
        engine.generate(
            request(steps=6, duration_seconds=1.0),
            progress=lambda s, n: reports.append(s),
            should_cancel=cancel_after_two_steps,
        )
    assert reports == [1, 2]


def test_a_render_without_any_condition_works(engine):
    nothing = engine.generate(
        request(text="", chord_indices=None, drums_wav=None, duration_seconds=1.0, steps=1)
    )
    assert nothing.audio.shape == (32000,)
    assert np.isfinite(nothing.audio).all()


def test_short_chord_sequences_are_padded_with_the_null_chord(engine):
    chords = engine.request_inputs(request(chord_indices=(2,) * 100)).chords
    assert chords.tolist() == [2] * 100 + [194] * 400


@pytest.mark.parametrize(
    ("indices", "frame", "value"), [((2,) * 10 + (195,), 10, 195), ((-1,), 0, -1)]
)
def test_out_of_range_chord_names_frame_and_value(engine, indices, frame, value):
    with pytest.raises(ConditioningError, match=f"chord index {value} at frame {frame}"):
        engine.generate(request(chord_indices=indices))


def test_too_many_chord_frames_are_refused(engine):
    with pytest.raises(ConditioningError, match="501 frames"):
        engine.generate(request(chord_indices=(2,) * 501))


def test_melody_on_a_model_without_melody_is_refused(engine):
    with pytest.raises(ConditioningError, match="no melody input"):
        engine.generate(request(melody_salience=np.zeros((53, 500), dtype=np.float32)))


def test_window_longer_than_the_model_is_refused(engine):
    with pytest.raises(ConditioningError, match="longer than the model"):
        engine.generate(request(duration_seconds=12.0))


def test_drums_at_another_rate_and_in_stereo_become_a_mono_32k_segment(engine):
    stereo = np.stack([drum_loop(rate=44100), drum_loop(rate=44100)])
    stem = engine.request_inputs(request(drums_wav=stereo, drums_sample_rate=44100)).drums
    assert stem.shape == (320000,)
    # 2 s of drums resampled to 32 kHz, then zero padding to the 10 s window
    assert stem[:64000].abs().max() > 0.5 and not stem[64100:].any()
    # the second hit starts at 0.5 s: 16000 samples at 32 kHz
    second = int(np.argmax(stem.numpy()[8000:] > 0.01)) + 8000
    assert abs(second - 16000) < 100


@pytest.mark.skipif(importlib.util.find_spec("demucs") is not None, reason="demucs installed")
def test_separation_without_demucs_says_what_to_install(engine):
    with pytest.raises(ConditioningError, match=r"pip install 'jasco-bridge\[separation\]'"):
        engine.generate(request(separate_drums=True))


class FakeSeparator(torch.nn.Module):
    """Stands in for htdemucs: 'drums' is the mix halved, the other stems are silence."""

    sources = ["bass", "drums", "other", "vocals"]

    def forward(self, mix):
        stems = torch.zeros(mix.shape[0], 4, *mix.shape[1:])
        stems[:, 1] = mix / 2
        return stems


def test_separation_takes_the_drum_stem_back_to_the_model_rate(monkeypatch):
    import sys
    import types

    from engine.drums import DrumSeparator

    seen = {}

    def apply_model(model, mix, shifts, device):
        seen.update(shape=tuple(mix.shape), shifts=shifts)
        return model(mix)

    fake_apply = types.SimpleNamespace(apply_model=apply_model)
    loads = []
    fake_pretrained = types.SimpleNamespace(
        get_model=lambda name: loads.append(name) or FakeSeparator()
    )
    monkeypatch.setitem(sys.modules, "demucs", types.ModuleType("demucs"))
    monkeypatch.setitem(sys.modules, "demucs.apply", fake_apply)
    monkeypatch.setitem(sys.modules, "demucs.pretrained", fake_pretrained)
    stem = torch.from_numpy(drum_loop(seconds=1.0))
    separator = DrumSeparator(torch.device("cpu"))
    drums = separator(stem, 32000)
    separator(stem, 32000)
    assert seen == {"shape": (1, 2, 44100), "shifts": 0}
    assert loads == ["htdemucs"]  # loaded once, kept for later renders
    assert drums.shape == stem.shape
    torch.testing.assert_close(drums, stem / 2, atol=2e-3, rtol=0)


@pytest.mark.parametrize(
    ("device", "gpus", "named"),
    [("tpu:0", 0, "unknown device"), ("cuda", 0, "no CUDA GPU"), ("cuda:2", 2, "cuda:0..cuda:1")],
)
def test_an_unusable_device_is_a_device_error(monkeypatch, device, gpus, named):
    # cuda:N past the last GPU used to pass and fail later inside torch with a raw error.
    monkeypatch.setattr(torch.cuda, "is_available", lambda: gpus > 0)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: gpus)
    with pytest.raises(DeviceError, match=named):
        resolve_device(device)
