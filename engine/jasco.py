"""`JascoEngine`: load a released JASCO package and render requests with it.

Pipeline of one render (B = 1 description)::

    request -> ConditionInputs -> CFG rows (term-major, one block per term of plan_cfg_terms)
            -> PreparedConditions (T5, chord embedding, drum codes, melody, once per render;
               with the terms' weights)
            -> z0 ~ N(0, 1) [1, T, F] from the request's seed
            -> sampler over the guided velocity (all CFG terms in one batch per step)
            -> z1 * latent_std + latent_mean -> EnCodec decoder -> 32 kHz mono

Example::

    engine = JascoEngine.from_pretrained("~/models/jasco-chords-drums-400M")
    result = engine.generate(GenerationRequest(text="funky bass", chord_indices=(2,) * 500))

The network runs in the precision chosen at load (`precision="auto"`: bf16 where the device
executes it natively, see engine.precision); `generate_variations` renders several seeds of one
request in one batch. The lower-level methods (`request_inputs`, `prepare_conditions`,
`velocity_field`, `sample`, `decode`) are public for research and for the parity check.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping, Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from engine.checkpoint import load_compression_file, load_state_dict_file, load_strict
from engine.codec import CompressionModel, encodec_config
from engine.conditions import ConditionInputs, ConditionProvider, PreparedConditions
from engine.config import MELODY_BINS, JascoConfig, parse_xp_cfg
from engine.drums import DrumSeparator, prepare_drum_stem
from engine.errors import CheckpointError, ConditioningError, DeviceError, GenerationCancelled
from engine.flow_model import FlowMatchingTransformer, use_int8_weights, use_reduced_weights
from engine.guidance import TermKind, guided, plan_cfg_terms
from engine.precision import Precision, resolve_precision
from engine.request import (
    CancelFn,
    GenerationRequest,
    GenerationResult,
    LongRequest,
    ProgressFn,
    WindowFn,
)
from engine.samplers import DOPRI5_PROGRESS_UNITS, SAMPLERS, KnownFrames, VelocityFn
from engine.text import T5Encoder
from engine.weights import COMPRESSION_FILE, STATE_DICT_FILE

logger = logging.getLogger(__name__)

DECODE_CHUNK_SECONDS = 30.0
"""Latents longer than this are decoded in chunks, so a 10-minute render's decoder activations
stay those of 30 s (a 60 s pass peaked at 3.2 GiB on the tiny model, benchmarks/bench_engine.py
--long; a chunk costs 2 s of decoding more)."""

DECODE_OVERLAP_SECONDS = 2.0
"""Neighbouring decode chunks share this much audio, cross-faded linearly (the decoder's edges,
with their reflection padding and a fresh LSTM state, fall where the fade hides them)."""


def available_devices() -> list[str]:
    """The torch devices this machine can run on, e.g. ['cpu', 'cuda:0', 'mps']."""
    devices = ["cpu"]
    if torch.cuda.is_available():
        devices += [f"cuda:{index}" for index in range(torch.cuda.device_count())]
    if torch.backends.mps.is_available():
        devices.append("mps")
    return devices


def resolve_device(device: str | torch.device | None) -> torch.device:
    """None -> CUDA when available, then MPS, else CPU; an unavailable device raises
    DeviceError naming the devices that exist."""
    if device is None:
        if torch.cuda.is_available():
            return torch.device("cuda")
        return torch.device("mps" if torch.backends.mps.is_available() else "cpu")
    here = ", ".join(available_devices())
    try:
        resolved = torch.device(device)
    except RuntimeError as exc:
        raise DeviceError(f"unknown device {device!r}: this machine has {here}") from exc
    if resolved.type == "cuda" and not torch.cuda.is_available():
        raise DeviceError(f"device {device!r} requested but no CUDA GPU is available; use {here}")
    if resolved.type == "cuda" and (resolved.index or 0) >= torch.cuda.device_count():
        count = torch.cuda.device_count()
        raise DeviceError(
            f"device {device!r} requested but this machine has {count} CUDA GPU(s): "
            f"use 'cuda' or one of cuda:0..cuda:{count - 1}"
        )
    if resolved.type == "mps" and not torch.backends.mps.is_available():
        raise DeviceError(f"device {device!r} requested but torch has no MPS here; use {here}")
    if resolved.type not in ("cpu", "cuda", "mps"):
        raise DeviceError(f"device {device!r} is not supported; use {here}")
    return resolved


@dataclass(frozen=True)
class LongLatents:
    """What `sample_long` made: the joined latents [1, frames, F] of the whole piece and each
    window's own latents [1, window frames, F] (normalised)."""

    joined: torch.Tensor
    windows: tuple[torch.Tensor, ...]


class JascoEngine:
    """The JASCO renderer (implements engine.request.Renderer)."""

    name = "jasco"
    is_preview = False

    @property
    def accepts_melody(self) -> bool:
        """Only the chords-drums-melody checkpoints have a melody conditioner."""
        return self.config.has_melody

    def __init__(
        self,
        config: JascoConfig,
        network: FlowMatchingTransformer,
        provider: ConditionProvider,
        text_encoder: T5Encoder,
        codec: CompressionModel,
        *,
        device: torch.device,
        precision: Precision,
        model_id: str,
    ) -> None:
        self.config = config
        self.network = network.to(device).eval().requires_grad_(False)
        if precision.name == "int8":
            use_int8_weights(self.network)
        elif precision.is_reduced:
            use_reduced_weights(self.network, precision.dtype)
        self.provider = provider.to(device).eval().requires_grad_(False)
        self.codec = codec.to(device).eval().requires_grad_(False)
        self.text_encoder = text_encoder
        self.device = device
        self.precision = precision
        self.model_id = model_id
        self.sample_rate = config.sample_rate
        self.frame_rate_hz = config.frame_rate_hz
        self.segment_seconds = config.segment_seconds
        self.separator = DrumSeparator(device)  # loads demucs on first use only
        self._forward: nn.Module | Callable[..., torch.Tensor] = self.network
        self.decode_chunk_frames = round(DECODE_CHUNK_SECONDS * config.frame_rate_hz)
        self.decode_overlap_frames = round(DECODE_OVERLAP_SECONDS * config.frame_rate_hz)

    @classmethod
    def from_pretrained(
        cls,
        model_dir: str | Path,
        *,
        t5: str | Path | None = None,
        device: str | torch.device | None = None,
        precision: str = "auto",
    ) -> JascoEngine:
        """Load `state_dict.bin` + `compression_state_dict.bin` from `model_dir`.

        t5: a folder or hub id (resolved in the local HF cache only); by default a folder named
        after the cfg's T5 model beside the checkpoint, else that id in the HF cache.
        precision: auto | fp32 | bf16 | fp16 (see engine.precision); auto is bf16 where the
        device executes it natively, fp32 elsewhere.
        """
        model_dir = Path(model_dir).expanduser()
        if not model_dir.is_dir():
            raise CheckpointError(
                f"model folder {model_dir} does not exist; `jasco-bridge weights download` "
                "fetches a JASCO model"
            )
        resolved = resolve_device(device)
        chosen = resolve_precision(precision, resolved)
        package = load_state_dict_file(model_dir / STATE_DICT_FILE)
        config = parse_xp_cfg(package.xp_cfg)
        pointer = load_compression_file(model_dir / COMPRESSION_FILE)
        compression = CompressionModel(encodec_config(pointer, model_dir))
        provider = ConditionProvider(config, compression)
        network = FlowMatchingTransformer(config)
        load_strict(
            {"": network, "condition_provider.": provider},
            package.best_state,
            source=str(model_dir / STATE_DICT_FILE),
        )
        sibling = model_dir / config.text_model
        text_source = t5 if t5 is not None else (sibling if sibling.is_dir() else config.text_model)
        text_encoder = T5Encoder.load(text_source, resolved)
        if text_encoder.hidden_size != config.text_dim:
            raise CheckpointError(
                f"text encoder {text_source} has hidden size {text_encoder.hidden_size} but the "
                f"checkpoint expects {config.text_model} ({config.text_dim}); pass the right T5"
            )
        logger.info(
            "loaded JASCO %s (%s) on %s in %s (%s)",
            model_dir.name, package.version, resolved, chosen.name, chosen.reason,
        )  # fmt: skip
        return cls(
            config,
            network,
            provider,
            text_encoder,
            compression,
            device=resolved,
            precision=chosen,
            model_id=str(model_dir),
        )

    def compile_network(self) -> None:
        """Run the flow model through `torch.compile` from now on (on CUDA with CUDA graphs).

        Shapes are static within a render (rows x frames x prompt tokens), so every new
        combination of guidance rows and prompt length compiles once: call `warm_up` after, and
        expect the first render with a prompt of a new length to pay for one compilation.
        """
        mode = "reduce-overhead" if self.device.type == "cuda" else None
        self._forward = torch.compile(self.network, mode=mode, dynamic=False)

    def warm_up(self) -> float:
        """Render one 1-step window shaped like the authors' demo (prompt, chords, drums, three
        guidance rows), so the first real trigger does not pay for kernel choice, compilation,
        the encoded silence or first-touch memory. Returns the seconds it took."""
        began = time.perf_counter()
        frames = self.config.frames
        self.generate(
            GenerationRequest(
                text="warm-up",
                chord_indices=(0,) * frames,
                drums_wav=np.zeros(self.config.segment_samples, dtype=np.float32),
                drums_sample_rate=self.sample_rate,
                duration_seconds=self.segment_seconds,
                steps=1,
            )
        )
        return time.perf_counter() - began

    # -- lower-level API -------------------------------------------------------------------

    def _autocast(self) -> AbstractContextManager[object]:
        if not self.precision.is_reduced:
            return nullcontext()
        return torch.autocast(device_type=self.device.type, dtype=self.precision.dtype)

    def prepare_conditions(
        self, inputs: Sequence[ConditionInputs], terms: Mapping[TermKind, float]
    ) -> PreparedConditions:
        """Run every conditioner once over the CFG batch of B rows of inputs under `terms`
        (`plan_cfg_terms`), float32 in every precision: it runs once per render, and the drum
        codes are a nearest-neighbour choice."""
        with torch.inference_mode():
            return self.provider(inputs, terms, self.text_encoder)

    def model_velocity(self, prepared: PreparedConditions) -> VelocityFn:
        """The raw batched field v(z [N, T, F], t) -> [N, T, F] under these conditions."""

        def velocity(z: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
            # The network's precision travels with the field, wherever it is called from.
            with self._autocast():
                return self._forward(z, t, prepared.temporal, prepared.text)

        return velocity

    def velocity_field(self, prepared: PreparedConditions) -> VelocityFn:
        """The guided field v(z [B, T, F], t) -> [B, T, F]."""
        return guided(self.model_velocity(prepared), prepared.weights)

    def sample(
        self,
        velocity_fn: VelocityFn,
        z0: torch.Tensor,
        *,
        sampler: str = "euler",
        steps: int = 10,
        progress: ProgressFn | None = None,
        should_cancel: CancelFn | None = None,
        known: KnownFrames | None = None,
    ) -> torch.Tensor:
        """Integrate from noise z0 [B, T, F] to latents z1 (normalised); `known` holds frames on
        their path to given latents (a continuation, see engine.samplers)."""
        if sampler not in SAMPLERS:
            raise ConditioningError(
                f"unknown sampler {sampler!r}: choose one of {', '.join(SAMPLERS)}"
            )
        with torch.inference_mode():
            z1 = SAMPLERS[sampler](
                velocity_fn,
                z0,
                steps=steps,
                progress=progress,
                should_cancel=should_cancel,
                known=known,
            )
        return z1.float()

    def unnormalise(self, latents: torch.Tensor) -> torch.Tensor:
        """Normalised latents -> EnCodec latent scale (cfg std, then mean)."""
        return latents * self.config.latent_std + self.config.latent_mean

    def decode(self, latents: torch.Tensor) -> torch.Tensor:
        """Normalised latents [B, T, F] -> audio [B, samples], float32.

        Under bf16 (and int8) the decoder's convolutions run in bf16 too (0.64x the fp32 time on
        a CPU with native bf16, 49 dB SNR: benchmarks/bench_decode.py); fp16 keeps it in fp32,
        where its narrow range could overflow the decoder's activations.
        """
        bf16 = self.precision.dtype == torch.bfloat16
        autocast = self._autocast() if bf16 else nullcontext()
        with torch.inference_mode(), autocast:
            return self.codec.decode(self.unnormalise(latents.float()))[:, 0].float()

    def decode_long(self, latents: torch.Tensor) -> torch.Tensor:
        """`decode` for latents of any length: one pass up to `decode_chunk_frames`, else
        chunks of that many frames sharing `decode_overlap_frames`, cross-faded linearly."""
        frames = latents.shape[1]
        chunk, overlap = self.decode_chunk_frames, self.decode_overlap_frames
        if frames <= chunk:
            return self.decode(latents)
        hop = round(self.sample_rate / self.frame_rate_hz)
        with torch.inference_mode():
            audio = torch.zeros(latents.shape[0], frames * hop, device=latents.device)
            fade = torch.linspace(0.0, 1.0, overlap * hop + 2, device=latents.device)[1:-1]
            start = 0
            while True:
                end = min(start + chunk, frames)
                part = self.decode(latents[:, start:end])
                if start > 0:
                    part[:, : overlap * hop] *= fade
                if end < frames:
                    part[:, -overlap * hop :] *= fade.flip(0)
                audio[:, start * hop : end * hop] += part
                if end == frames:
                    return audio
                start = end - overlap

    def initial_noise(self, seed: int, batch: int = 1) -> torch.Tensor:
        """z0 [batch, T, F] from a per-request CPU generator (same noise on every device).

        Deviation from the reference, which draws from the global RNG of the model's device:
        concurrent renders stay independent and a seed reproduces across machines.
        """
        generator = torch.Generator(device="cpu").manual_seed(seed)
        shape = (batch, self.config.frames, self.config.flow_dim)
        return torch.randn(shape, generator=generator).to(self.device)

    # -- Renderer --------------------------------------------------------------------------

    def request_inputs(self, request: GenerationRequest) -> ConditionInputs:
        """Validate a request against this model and turn it into one row of inputs."""
        if request.duration_seconds > self.segment_seconds + 1e-9:
            raise ConditioningError(
                f"duration_seconds={request.duration_seconds} is longer than the model's "
                f"{self.segment_seconds} s window; render longer spans window by window"
            )
        chords = None
        if request.chord_indices is not None:
            chords = self._chord_tensor(request.chord_indices)
        drums = None
        if request.drums_wav is not None:
            drums = prepare_drum_stem(
                request.drums_wav,
                request.drums_sample_rate,
                sample_rate=self.sample_rate,
                samples=self.config.segment_samples,
            )
            if request.separate_drums:
                drums = self.separator(drums, self.sample_rate)
        melody = None
        if request.melody_salience is not None:
            melody = self._melody_tensor(request.melody_salience)
        return ConditionInputs(text=request.text, chords=chords, drums=drums, melody=melody)

    def _chord_tensor(self, indices: Sequence[int]) -> torch.Tensor:
        """Per-frame chord indices; a shorter sequence is padded with the null chord (no chord
        information for the tail), a longer one is refused."""
        frames, null = self.config.frames, self.config.null_chord_index
        if len(indices) > frames:
            raise ConditioningError(
                f"chord_indices has {len(indices)} frames but the model takes {frames} "
                f"({self.segment_seconds} s at {self.frame_rate_hz} Hz)"
            )
        values = np.asarray(indices)
        bad = np.flatnonzero((values < 0) | (values > null) | (values != np.round(values)))
        if bad.size:
            frame = int(bad[0])
            raise ConditioningError(
                f"chord index {indices[frame]!r} at frame {frame} is outside 0..{null} "
                f"(the vocabulary has {null} labels, {null} = no chord information)"
            )
        padded = np.full(frames, null, dtype=np.int64)
        padded[: len(values)] = values
        return torch.from_numpy(padded)

    def _melody_tensor(self, salience: np.ndarray) -> torch.Tensor:
        if not self.config.has_melody:
            raise ConditioningError(
                f"this model ({Path(self.model_id).name}) has no melody input; use a "
                "chords-drums-melody model or leave the melody out"
            )
        values = np.asarray(salience, dtype=np.float32)
        if values.shape[0] != MELODY_BINS:
            raise ConditioningError(
                f"melody_salience must have {MELODY_BINS} pitch bins, got shape {values.shape}"
            )
        if not np.isfinite(values).all():
            raise ConditioningError("melody_salience contains NaN or infinite values")
        return torch.from_numpy(values.copy())

    def generate(
        self,
        request: GenerationRequest,
        progress: ProgressFn | None = None,
        should_cancel: CancelFn | None = None,
    ) -> GenerationResult:
        """Render one window: mono float32 audio of request.duration_seconds at 32 kHz."""
        return self.generate_variations(request, (request.seed,), progress, should_cancel)[0]

    def generate_variations(
        self,
        request: GenerationRequest,
        seeds: Sequence[int],
        progress: ProgressFn | None = None,
        should_cancel: CancelFn | None = None,
    ) -> list[GenerationResult]:
        """Render the request once per seed, all variations in one batch: every network call
        evaluates B = len(seeds) rows per guidance term, and the conditions are computed once."""
        if not seeds:
            raise ConditioningError("generate_variations needs at least one seed")
        started = time.perf_counter()
        inputs = self.request_inputs(request)
        if should_cancel is not None and should_cancel():
            # before the conditioners: T5 and drum encoding cost as much as a few steps
            raise GenerationCancelled("generation cancelled before it started")
        terms = plan_cfg_terms(request.cfg_all, request.cfg_text)
        prepared = self.prepare_conditions([inputs] * len(seeds), terms)
        conditioned = time.perf_counter()
        z0 = torch.cat([self.initial_noise(seed) for seed in seeds])  # [B, T, F]
        z1 = self.sample(
            self.velocity_field(prepared),
            z0,
            sampler=request.sampler,
            steps=request.steps,
            progress=progress,
            should_cancel=should_cancel,
        )
        sampled = time.perf_counter()
        samples = round(request.duration_seconds * self.sample_rate)
        audio = self._to_host(self.decode(z1)[:, :samples])  # [B, samples]
        finished = time.perf_counter()
        timings = {
            "conditions_seconds": conditioned - started,
            "sampling_seconds": sampled - conditioned,
            "decoding_seconds": finished - sampled,
            "total_seconds": finished - started,
        }
        return [
            GenerationResult(
                audio=audio[row],
                sample_rate=self.sample_rate,
                engine=self.name,
                model=self.model_id,
                timings=dict(timings),
                precision=self.precision.name,
            )
            for row, seed in enumerate(seeds)
        ]

    def sample_long(
        self,
        request: LongRequest,
        progress: ProgressFn | None = None,
        should_cancel: CancelFn | None = None,
        on_window: WindowFn | None = None,
    ) -> LongLatents:
        """Sample the windows one after the other, each a continuation of the one before.

        Window k is sampled with its first `overlap_frames[k]` frames held on the path to window
        k-1's latents there (`KnownFrames`), under its own conditions; the overlap is then
        cross-faded into the joined latents. The noise of window k is the k-th draw of one
        generator seeded with window 0's seed, so window 0 is exactly a one-window render of
        that seed. `progress` counts steps over all windows (dopri5: thousandths of flow time
        per window), `should_cancel` is polled at every step of every window.
        """
        offsets, total_frames = request.offsets(self.frame_rate_hz)
        frames = request.frames(self.frame_rate_hz)
        first = request.windows[0]
        inputs = [self.request_inputs(window) for window in request.windows]
        per_window = DOPRI5_PROGRESS_UNITS if first.sampler == "dopri5" else first.steps
        total_steps = per_window * len(request.windows)
        generator = torch.Generator(device="cpu").manual_seed(first.seed)
        shape = (1, self.config.frames, self.config.flow_dim)
        joined = torch.zeros(1, total_frames, self.config.flow_dim, device=self.device)
        sampled: list[torch.Tensor] = []
        for index, (window, row) in enumerate(zip(request.windows, inputs, strict=True)):
            if should_cancel is not None and should_cancel():
                raise GenerationCancelled(f"generation cancelled before window {index + 1}")
            if on_window is not None:
                on_window(index, len(request.windows))
            terms = plan_cfg_terms(window.cfg_all, window.cfg_text)
            prepared = self.prepare_conditions([row], terms)
            z0 = torch.randn(shape, generator=generator).to(self.device)
            overlap = request.overlap_frames[index]
            known = None
            if sampled:
                shift = offsets[index] - offsets[index - 1]
                mask = torch.zeros(self.config.frames, dtype=torch.bool, device=self.device)
                mask[:overlap] = True
                latents = torch.zeros_like(z0)
                latents[:, :overlap] = sampled[-1][:, shift : shift + overlap]
                known = KnownFrames(mask, latents)

            def window_progress(step: int, _total: int, done: int = index * per_window) -> None:
                if progress is not None:
                    progress(done + step, total_steps)

            z1 = self.sample(
                self.velocity_field(prepared),
                z0,
                sampler=window.sampler,
                steps=window.steps,
                progress=window_progress,
                should_cancel=should_cancel,
                known=known,
            )
            at, own = offsets[index], frames[index]
            if overlap:
                ramp = torch.arange(1, overlap + 1, device=self.device)[None, :, None] / (
                    overlap + 1
                )
                blended = (1 - ramp) * joined[:, at : at + overlap] + ramp * z1[:, :overlap]
                joined[:, at : at + overlap] = blended
            joined[:, at + overlap : at + own] = z1[:, overlap:own]
            sampled.append(z1[:, :own])
        return LongLatents(joined=joined, windows=tuple(sampled))

    def generate_long(
        self,
        request: LongRequest,
        progress: ProgressFn | None = None,
        should_cancel: CancelFn | None = None,
        on_window: WindowFn | None = None,
    ) -> GenerationResult:
        """`sample_long`, then one decode of the joined latents (`decode_long`): mono float32
        audio of the whole piece. Cost: the windows' sampling plus one decode; memory: one
        window's network state, the latents (about 30 MB for 10 minutes: the joined piece and each
        window's) and one decode chunk (30 s)."""
        started = time.perf_counter()
        latents = self.sample_long(request, progress, should_cancel, on_window)
        sampled = time.perf_counter()
        audio = self._to_host(self.decode_long(latents.joined))[0]
        finished = time.perf_counter()
        return GenerationResult(
            audio=audio,
            sample_rate=self.sample_rate,
            engine=self.name,
            model=self.model_id,
            timings={
                "sampling_seconds": sampled - started,
                "decoding_seconds": finished - sampled,
                "total_seconds": finished - started,
            },
            precision=self.precision.name,
        )

    def _to_host(self, audio: torch.Tensor) -> np.ndarray:
        """[B, samples] on the device -> float32 numpy; from a GPU through pinned memory."""
        if self.device.type != "cuda":
            return audio.cpu().numpy().astype(np.float32, copy=False)
        host = torch.empty(audio.shape, dtype=torch.float32, pin_memory=True)
        host.copy_(audio, non_blocking=True)
        torch.cuda.current_stream(self.device).synchronize()
        return host.numpy()
