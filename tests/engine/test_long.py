"""Long renders in the engine: the continuation constraint of the samplers, `LongRequest`, and
`generate_long` on the tiny golden checkpoint and the preview."""

import numpy as np
import pytest
import torch

from engine.errors import ConditioningError, GenerationCancelled
from engine.guidance import plan_cfg_terms
from engine.jasco import JascoEngine
from engine.preview import PreviewEngine
from engine.request import GenerationRequest, LongRequest
from engine.samplers import FLOW_SIGMA, SAMPLERS, KnownFrames

FRAMES, WIDTH = 12, 3


def noise(seed: int = 0) -> torch.Tensor:
    return torch.randn(2, FRAMES, WIDTH, generator=torch.Generator().manual_seed(seed))


def known_frames(count: int = 4) -> KnownFrames:
    mask = torch.zeros(FRAMES, dtype=torch.bool)
    mask[:count] = True
    return KnownFrames(mask, noise(1) * 3)


def field(z: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """Frame-wise (no frame sees another), so free frames must not notice the constraint."""
    return torch.sin(z) - 0.5 * z + t


@pytest.mark.parametrize("sampler", sorted(SAMPLERS))
def test_known_frames_end_on_their_latents_and_free_frames_integrate_freely(sampler):
    known = known_frames()
    start = noise()
    held = SAMPLERS[sampler](field, start, steps=6, known=known)
    free = SAMPLERS[sampler](field, start, steps=6)
    torch.testing.assert_close(held[:, :4], known.latents[:, :4], rtol=0, atol=1e-4)
    # dopri5 chooses its steps from the error of all frames: the free ones land within its
    # tolerance of the unconstrained solve rather than on it
    tolerance = 1e-3 if sampler == "dopri5" else 1e-5
    torch.testing.assert_close(held[:, 4:], free[:, 4:], rtol=0, atol=tolerance)


def test_the_known_frames_follow_the_training_path_at_every_step():
    known = known_frames()
    start = noise()
    seen: list[tuple[float, torch.Tensor]] = []

    def recording(z, t):
        seen.append((float(t), z[:, :4].clone()))
        return field(z, t)

    SAMPLERS["midpoint"](recording, start, steps=3, known=known)
    assert len(seen) == 6  # the half steps are held too
    for t, frames in seen:
        path = (1 - (1 - FLOW_SIGMA) * t) * start[:, :4] + t * known.latents[:, :4]
        torch.testing.assert_close(frames, path, rtol=0, atol=1e-6)


def window(frames: int, chord: int, **changes) -> GenerationRequest:
    base = dict(
        text="lofi",
        chord_indices=(chord,) * 500,
        duration_seconds=frames / 50,
        beat_seconds=tuple(0.5 * k for k in range(int(frames / 25))),
        steps=2,
        seed=11,
    )
    return GenerationRequest(**{**base, **changes})


def test_a_long_request_lays_its_windows_end_to_end_on_frames():
    request = LongRequest((window(500, 2), window(400, 8), window(300, 20)), (0, 100, 50))
    assert request.offsets(50.0) == ((0, 400, 750), 1050)
    joined = request.joined(50.0)
    assert joined.duration_seconds == pytest.approx(21.0)
    assert joined.chord_indices == (2,) * 500 + (8,) * 300 + (20,) * 250
    beats = joined.beat_seconds
    assert beats == tuple(sorted(beats)) and len(set(beats)) == len(beats)
    assert beats[-1] < 21.0 and 10.0 in beats  # window 2's beats move to the piece's clock


@pytest.mark.parametrize(
    ("windows", "overlaps", "message"),
    [
        ((window(500, 2), window(500, 2)), (0,), "one per window"),
        ((window(500, 2), window(500, 2)), (5, 100), "overlap must be 0"),
        ((window(500, 2), window(500, 2, text="rock")), (0, 100), "differs from window 0"),
    ],
)
def test_a_long_request_refuses_what_it_cannot_join(windows, overlaps, message):
    with pytest.raises(ConditioningError, match=message):
        LongRequest(windows, overlaps)


def test_overlaps_and_durations_must_be_whole_frames_inside_the_windows():
    with pytest.raises(ConditioningError, match="overlaps by 500 frames"):
        LongRequest((window(500, 2), window(500, 2)), (0, 500)).offsets(50.0)
    odd = window(500, 2, duration_seconds=9.991)
    with pytest.raises(ConditioningError, match="not a whole number"):
        LongRequest((odd, window(500, 2)), (0, 100)).offsets(50.0)


@pytest.fixture(scope="module")
def engine(golden_dir):
    return JascoEngine.from_pretrained(golden_dir, device="cpu", precision="fp32")


THREE = LongRequest((window(200, 2), window(200, 8), window(150, 20)), (0, 60, 40))


def test_each_window_continues_the_last_frames_of_the_window_before(engine):
    latents = engine.sample_long(THREE)
    offsets, total = THREE.offsets(50.0)
    assert latents.joined.shape == (1, total, engine.config.flow_dim)
    for k in (1, 2):
        overlap, shift = THREE.overlap_frames[k], offsets[k] - offsets[k - 1]
        before = latents.windows[k - 1][:, shift : shift + overlap]
        torch.testing.assert_close(latents.windows[k][:, :overlap], before, rtol=0, atol=1e-4)
        # the new frames are not a copy of anything: they were integrated freely
        assert (latents.windows[k][:, overlap:] - latents.windows[k - 1][:, :1]).abs().max() > 0.1
    # the joined latents are the windows', the overlaps blended between (nearly) equal values
    assert offsets == (0, 140, 300) and total == 450
    torch.testing.assert_close(latents.joined[:, :200], latents.windows[0], rtol=0, atol=1e-4)
    assert torch.equal(latents.joined[:, 200:300], latents.windows[1][:, 60:160])
    assert torch.equal(latents.joined[:, 340:450], latents.windows[2][:, 40:150])


def test_window_zero_is_a_one_window_render_and_the_whole_is_deterministic(engine):
    first = engine.sample_long(THREE)
    again = engine.sample_long(THREE)
    assert torch.equal(first.joined, again.joined)
    request = THREE.windows[0]
    terms = plan_cfg_terms(request.cfg_all, request.cfg_text)
    prepared = engine.prepare_conditions([engine.request_inputs(request)], terms)
    velocity = engine.velocity_field(prepared)
    alone = engine.sample(velocity, engine.initial_noise(request.seed), steps=request.steps)
    torch.testing.assert_close(first.windows[0], alone[:, :200], rtol=0, atol=1e-6)


def test_generate_long_counts_every_step_of_every_window_and_decodes_once(engine):
    steps, windows = [], []
    result = engine.generate_long(
        THREE,
        progress=lambda s, n: steps.append((s, n)),
        on_window=lambda i, n: windows.append((i, n)),
    )
    assert steps == [(s, 6) for s in range(1, 7)]
    assert windows == [(0, 3), (1, 3), (2, 3)]
    assert result.audio.shape == (450 * 640,) and np.isfinite(result.audio).all()
    assert set(result.timings) >= {"sampling_seconds", "decoding_seconds"}


def test_cancel_in_the_third_window_stops_within_one_step(engine):
    steps = []
    with pytest.raises(GenerationCancelled):
        engine.generate_long(
            THREE,
            progress=lambda s, n: steps.append(s),
            should_cancel=lambda: bool(steps) and steps[-1] >= 5,  # the third window's first step
        )
    assert steps == [1, 2, 3, 4, 5]


def test_a_long_decode_in_chunks_matches_one_pass_away_from_the_seams(engine):
    latents = torch.randn(
        1, 450, engine.config.flow_dim, generator=torch.Generator().manual_seed(4)
    )
    whole = engine.decode(latents)
    saved = engine.decode_chunk_frames, engine.decode_overlap_frames
    engine.decode_chunk_frames, engine.decode_overlap_frames = 200, 20
    try:
        chunked = engine.decode_long(latents)
    finally:
        engine.decode_chunk_frames, engine.decode_overlap_frames = saved
    assert chunked.shape == whole.shape == (1, 450 * 640)
    # inside the first chunk, before its fade, both passes have seen the same frames
    torch.testing.assert_close(chunked[:, : 150 * 640], whole[:, : 150 * 640], rtol=0, atol=1e-3)
    assert torch.isfinite(chunked).all()


def test_the_preview_renders_a_long_request_in_one_synthesis():
    preview = PreviewEngine({2: (0, 4, 7), 8: (9, 0, 4), 20: (5, 9, 0)})
    windows = []
    result = preview.generate_long(THREE, on_window=lambda i, n: windows.append((i, n)))
    one = preview.generate(THREE.joined(50.0))
    assert windows == [(0, 1)]
    assert result.audio.shape == (round(9.0 * 32000),)
    assert np.array_equal(result.audio, one.audio)
