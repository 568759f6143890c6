"""The drum condition: a drum stem -> EnCodec encoder -> nearest codeword of the coarsest
codebook -> that codeword's vector -> temporal blur (groups of 3 frames) -> 2-d projection.

Keeping only the first codebook and blurring over 60 ms leaves the groove (onsets, accents, rough
timbre) and throws away detail the model should invent. Example::

    stem = prepare_drum_stem(wav, 44100, sample_rate=32000, samples=320000)   # [320000]
    encoding = drums_conditioner([stem, None], frames=500)    # stem + silence: embeds [2, 500, 2]

Reference quirk (reproduced): the "no drums" decision is taken for the whole CFG batch. If any
row has drums, the rows without are encoded as digital silence (not a zero condition); only when
no row has drums does every row get the projection bias.

Each distinct stem is encoded once: the conditioner keeps the encoded silence for the model's
life and the last few stems by content (a session renders variations of one drum take).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from engine.cache import LruCache
from engine.codec import CompressionModel
from engine.errors import ConditioningError
from engine.resample import resample

DEMUCS_RATE = 44100


@dataclass(frozen=True)
class EncodedStem:
    """One stem through the drum path (T frames, C codebook channels)."""

    codes: torch.Tensor  # [T] first-codebook indices
    latents: torch.Tensor  # [T, C] their codebook vectors, before the blur
    blurred: torch.Tensor  # [T, C] after the blur
    embeds: torch.Tensor  # [T, drums_dim] projected


@dataclass(frozen=True)
class DrumEncoding:
    """The drum condition of N rows, made from U distinct sources.

    `stems` is empty when no row had drums (then `embeds` is the projection bias, U = 1).
    """

    embeds: torch.Tensor  # [U, T, drums_dim]
    rows: torch.Tensor  # [N] int64: which source each row uses
    stems: tuple[EncodedStem, ...] = ()

    def row_embeds(self) -> torch.Tensor:
        """[N, T, drums_dim], the tensor the flow model consumes."""
        return self.embeds[self.rows]


def prepare_drum_stem(
    wav: np.ndarray, wav_rate: int, *, sample_rate: int, samples: int
) -> torch.Tensor:
    """A drum recording [samples] or [channels, samples] -> mono [samples] at `sample_rate`,
    trimmed or zero-padded on the right to the segment length.

    Resampled first, then downmixed by channel mean, in that order like the reference (which
    uses julius; soxr gives slightly different numbers for rates other than 32 kHz).
    """
    audio = np.asarray(wav, dtype=np.float32)
    if audio.ndim == 1:
        audio = audio[None]
    if audio.ndim != 2 or audio.shape[-1] == 0:
        raise ConditioningError(
            f"drums must be [samples] or [channels, samples] with samples > 0, got {audio.shape}"
        )
    if not np.isfinite(audio).all():
        raise ConditioningError("drums contain NaN or infinite samples; check the stem file")
    mono = resample(audio, wav_rate, sample_rate).mean(axis=0)
    stem = torch.zeros(samples, dtype=torch.float32)
    kept = min(samples, mono.shape[0])
    stem[:kept] = torch.from_numpy(mono[:kept].copy())
    return stem


class DrumSeparator:
    """Extracts the drum stem of a full mix with demucs htdemucs (optional dependency).

    The demucs model is loaded on the first call and kept. Differences from the reference, on
    purpose: only the user's recording is separated (the reference also runs the
    digital-silence rows of the CFG batch through demucs), and `shifts=0` replaces the
    reference's single random time shift drawn from Python's global `random`, so a seed
    reproduces the render. demucs loads htdemucs from its own cache (torch hub); on a machine
    without network access it must have been fetched beforehand.
    """

    def __init__(self, device: torch.device) -> None:
        self.device = device
        self._model: nn.Module | None = None

    def _load(self) -> nn.Module:
        try:
            from demucs.pretrained import get_model
        except ImportError as exc:
            raise ConditioningError(
                "separate_drums=True needs demucs: pip install 'jasco-bridge[separation]' "
                "(or pass a drum stem and leave separation off)"
            ) from exc
        return get_model("htdemucs").to(self.device).eval()

    def __call__(self, stem: torch.Tensor, sample_rate: int) -> torch.Tensor:
        """mono [samples] at `sample_rate` -> its drum stem, same length and rate."""
        if self._model is None:
            self._model = self._load()
        from demucs.apply import apply_model

        model = self._model
        stereo = resample(stem.numpy()[None].repeat(2, axis=0), sample_rate, DEMUCS_RATE)
        with torch.no_grad(), torch.autocast(device_type=self.device.type, enabled=False):
            mix = torch.from_numpy(stereo)[None].to(self.device)  # [1, 2, samples at 44.1 kHz]
            sources = apply_model(model, mix, shifts=0, device=self.device)  # [1, stems, 2, n]
        drums = sources[0, model.sources.index("drums")].mean(dim=0, keepdim=True)  # [1, n]
        back = resample(drums.cpu().numpy(), DEMUCS_RATE, sample_rate)[0]
        out = torch.zeros_like(stem)
        kept = min(out.shape[0], back.shape[0])
        out[:kept] = torch.from_numpy(back[:kept].copy())
        return out


def temporal_blur(latents: torch.Tensor, factor: int) -> torch.Tensor:
    """[N, T, C] -> [N, T, C] where each group of `factor` frames holds the group's mean.

    T not a multiple of `factor`: the tail is reflect-padded first (T=500 -> frame 500 copies
    frame 498), then the result is cut back to T.
    """
    frames = latents.shape[1]
    remainder = frames % factor
    padded = latents
    if remainder:
        # reflect-pad the time axis: F.pad wants [N, C, T]
        padded = F.pad(latents.transpose(1, 2), (0, factor - remainder), mode="reflect")
        padded = padded.transpose(1, 2)
    rows, length, channels = padded.shape
    means = padded.reshape(rows, length // factor, factor, channels).mean(dim=2)  # [N, G, C]
    return means.repeat_interleave(factor, dim=1)[:, :frames]


class DrumsConditioner(nn.Module):
    """`self_wav` in the checkpoint: `output_proj` and the embedded EnCodec (`compression_model`)."""

    def __init__(
        self,
        compression_model: CompressionModel,
        out_dim: int,
        blur_factor: int,
        *,
        cached_stems: int = 4,
    ) -> None:
        super().__init__()
        self.output_proj = nn.Linear(compression_model.latent_dim, out_dim)
        self.compression_model = compression_model
        self.blur_factor = blur_factor
        self._silence: dict[int, EncodedStem] = {}  # by length in samples
        self._stems: LruCache[tuple[int, bytes], EncodedStem] = LruCache(cached_stems)

    def forward(self, stems: list[torch.Tensor | None], frames: int) -> DrumEncoding:
        """One prepared stem (mono, segment length) or None per row -> DrumEncoding."""
        if all(stem is None for stem in stems):
            weight = self.output_proj.weight
            zeros = weight.new_zeros(1, frames, self.compression_model.latent_dim)
            rows = torch.zeros(len(stems), dtype=torch.long, device=weight.device)
            return DrumEncoding(embeds=self.output_proj(zeros), rows=rows)
        # None rows are digital silence at the batch length, as the reference's zero-padding
        # collation makes them.
        samples = max(stem.shape[-1] for stem in stems if stem is not None)
        encoded: list[EncodedStem] = []
        slot_of: dict[object, int] = {}  # "silence" or id(stem) -> index in `encoded`
        rows: list[int] = []
        for stem in stems:
            key = "silence" if stem is None else id(stem)
            if key not in slot_of:
                slot_of[key] = len(encoded)
                encoded.append(self._silent(samples) if stem is None else self._stem(stem, samples))
            rows.append(slot_of[key])
        embeds = torch.stack([e.embeds for e in encoded])  # [U, T, drums_dim]
        index = torch.tensor(rows, device=embeds.device)
        return DrumEncoding(embeds=embeds, rows=index, stems=tuple(encoded))

    def _silent(self, samples: int) -> EncodedStem:
        if samples not in self._silence:
            self._silence[samples] = self.encode(torch.zeros(samples))
        return self._silence[samples]

    def _stem(self, stem: torch.Tensor, samples: int) -> EncodedStem:
        padded = F.pad(stem.float(), (0, samples - stem.shape[-1]))
        key = (samples, hashlib.blake2b(padded.cpu().numpy().tobytes(), digest_size=16).digest())
        cached = self._stems.get(key)
        if cached is None:
            cached = self.encode(padded)
            self._stems.put(key, cached)
        return cached

    def encode(self, stem: torch.Tensor) -> EncodedStem:
        """Mono [samples] at the model rate -> codes, codebook vectors, blur and projection."""
        weight = self.output_proj.weight
        wav = stem.to(weight.device)[None, None, :]  # [1, 1, samples]
        codes = self.compression_model.first_codebook_codes(wav)  # [1, T]
        latents = self.compression_model.codebook_vectors(codes).transpose(1, 2)  # [1, T, C]
        blurred = temporal_blur(latents, self.blur_factor)
        embeds = self.output_proj(blurred.to(weight.dtype))  # [1, T, drums_dim]
        return EncodedStem(codes[0], latents[0], blurred[0], embeds[0])
