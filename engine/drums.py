"""The drum condition: a drum stem -> EnCodec encoder -> nearest codeword of the coarsest
codebook -> that codeword's vector -> temporal blur (groups of 3 frames) -> 2-d projection.

Keeping only the first codebook and blurring over 60 ms leaves the groove (onsets, accents, rough
timbre) and throws away detail the model should invent. Example::

    stem = prepare_drum_stem(wav, 44100, sample_rate=32000, samples=320000)   # [320000]
    encoding = drums_conditioner([stem, None], frames=500)                    # embeds [2, 500, 2]

Batch quirk reproduced from the reference: the "no drums" decision is taken for the whole CFG
batch. If any row has drums, the rows without are encoded as digital silence (not a zero
condition); only when no row has drums does every row get the projection bias.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from engine.codec import CompressionModel
from engine.errors import ConditioningError
from engine.resample import resample

DEMUCS_RATE = 44100


@dataclass(frozen=True)
class DrumEncoding:
    """Drum condition of N rows. Codes and latents are None when no row had drums."""

    embeds: torch.Tensor  # [N, T, drums_dim]
    lengths: torch.Tensor  # [N] samples of real drums per row (0 = none)
    codes: torch.Tensor | None = None  # [N, T] first-codebook indices
    latents: torch.Tensor | None = None  # [N, T, C] codebook vectors before the blur
    blurred: torch.Tensor | None = None  # [N, T, C] after the blur


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

    def __init__(self, compression_model: CompressionModel, out_dim: int, blur_factor: int) -> None:
        super().__init__()
        self.output_proj = nn.Linear(compression_model.latent_dim, out_dim)
        self.compression_model = compression_model
        self.blur_factor = blur_factor

    def forward(self, stems: list[torch.Tensor | None], frames: int) -> DrumEncoding:
        """One prepared stem (mono, segment length) or None per row -> DrumEncoding."""
        weight = self.output_proj.weight
        lengths = torch.tensor([0 if s is None else s.shape[-1] for s in stems])
        if all(stem is None for stem in stems):
            zeros = weight.new_zeros(len(stems), frames, self.compression_model.latent_dim)
            return DrumEncoding(embeds=self.output_proj(zeros), lengths=lengths)
        samples = int(lengths.max())
        # Encode each distinct stem once (the CFG batch repeats the same one); None rows are
        # digital silence at the batch length, as the reference's zero-padding collation makes them.
        distinct: list[torch.Tensor] = []
        slot_of: dict[object, int] = {}  # "silence" or id(stem) -> its index in `distinct`
        row_source: list[int] = []
        for stem in stems:
            key = "silence" if stem is None else id(stem)
            if key not in slot_of:
                slot_of[key] = len(distinct)
                distinct.append(torch.zeros(samples) if stem is None else stem)
            row_source.append(slot_of[key])
        batch = torch.stack([F.pad(s, (0, samples - s.shape[-1])) for s in distinct])
        batch = batch.to(weight.device)[:, None, :]  # [U, 1, samples]
        codes = self.compression_model.first_codebook_codes(batch)  # [U, T]
        vectors = self.compression_model.codebook_vectors(codes).transpose(1, 2)  # [U, T, C]
        blurred = temporal_blur(vectors, self.blur_factor)
        embeds = self.output_proj(blurred.to(weight.dtype))  # [U, T, drums_dim]
        index = torch.tensor(row_source, device=weight.device)
        return DrumEncoding(
            embeds=embeds[index],
            lengths=lengths,
            codes=codes[index],
            latents=vectors[index],
            blurred=blurred[index],
        )
