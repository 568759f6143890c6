"""Conditions: what one CFG row carries, how each guidance term nulls it, and the provider that
turns the rows of every term into the tensors the flow model consumes (once per render), kept
with the terms' weights as `PreparedConditions`: all the guided velocity needs.

Null values, as the model was trained on them:

* text   -> "" (zero embedding);
* chords -> every frame the null chord index (= vocabulary size, 194);
* drums  -> no stem (projection bias, or encoded silence when other rows have drums);
* melody -> all-zero salience (projection bias).

Reference quirk (reproduced): when a row has *no chords at all* the symbolic nulling does
nothing, so a melody given without chords is kept in the text and null terms.

The provider computes only what the flow model consumes. Intermediate tensors (chord frames,
drum codes, ...) are for inspection: register forward hooks on `provider.conditioners[name]`
(`engine.parity` does) instead of asking the render path to keep them.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace

import torch
from torch import nn

from engine.codec import CompressionModel
from engine.config import (
    CHORDS_CONDITION,
    DRUMS_CONDITION,
    MELODY_BINS,
    MELODY_CONDITION,
    TEXT_CONDITION,
    JascoConfig,
)
from engine.drums import DrumsConditioner
from engine.errors import ConditioningError
from engine.guidance import TERM_KINDS, TermKind
from engine.text import T5Encoder, TextConditioner


@dataclass(frozen=True)
class ConditionInputs:
    """The raw conditions of one batch row (None = not given)."""

    text: str = ""
    chords: torch.Tensor | None = field(default=None, repr=False)  # [T] int64 indices
    drums: torch.Tensor | None = field(default=None, repr=False)  # [samples] mono, model rate
    melody: torch.Tensor | None = field(default=None, repr=False)  # [53, T] salience

    def __post_init__(self) -> None:
        if self.chords is not None and (self.chords.dim() != 1 or self.chords.is_floating_point()):
            raise ConditioningError(
                f"chords must be a 1-d integer tensor of per-frame indices, got "
                f"{self.chords.dtype} {tuple(self.chords.shape)}"
            )
        if self.drums is not None and self.drums.dim() != 1:
            raise ConditioningError(
                f"drums must be a mono [samples] tensor at the model rate (see "
                f"prepare_drum_stem), got shape {tuple(self.drums.shape)}"
            )
        if self.melody is not None and (
            self.melody.dim() != 2 or self.melody.shape[0] != MELODY_BINS
        ):
            raise ConditioningError(
                f"melody must be [{MELODY_BINS}, frames] salience, got {tuple(self.melody.shape)}"
            )


@dataclass(frozen=True)
class PreparedConditions:
    """Condition tensors for the N = terms x B rows of one render's CFG batch (term-major: the
    B rows of the first term, then of the next), ready for every velocity evaluation, and each
    term's weight in the guided sum (in batch order)."""

    text: torch.Tensor  # [N, S, D]
    temporal: tuple[torch.Tensor, ...]  # chords [N, T, 16], drums [N, T, 2], (melody [N, T, 16])
    weights: tuple[float, ...]


def null_conditions(
    row: ConditionInputs, names: Sequence[str], null_chord_index: int
) -> ConditionInputs:
    """`row` with the named conditions replaced by their null values."""
    changes: dict[str, object] = {}
    if TEXT_CONDITION in names:
        changes["text"] = ""
    if DRUMS_CONDITION in names:
        changes["drums"] = None
    # Reference quirk (reproduced): the symbolic nulling looks at the chords first and does
    # nothing when the row has none — melody included.
    if row.chords is not None:
        if CHORDS_CONDITION in names:
            changes["chords"] = torch.full_like(row.chords, null_chord_index)
        if MELODY_CONDITION in names and row.melody is not None:
            changes["melody"] = torch.zeros_like(row.melody)
    return replace(row, **changes)


def rows_for_terms(
    inputs: Sequence[ConditionInputs], kinds: Iterable[TermKind], config: JascoConfig
) -> list[ConditionInputs]:
    """Term-major CFG batch: [term 1 rows 1..B, term 2 rows 1..B, ...]; `kinds` may be the
    kind -> weight plan of `plan_cfg_terms`."""
    everything = (TEXT_CONDITION, CHORDS_CONDITION, DRUMS_CONDITION, MELODY_CONDITION)
    dropped = {"all": (), "text": config.text_cfg_drops, "null": everything}
    rows = []
    for kind in kinds:
        if kind not in dropped:
            raise ConditioningError(
                f"guidance term kind must be one of {', '.join(TERM_KINDS)}, got {kind!r}"
            )
        rows += [null_conditions(row, dropped[kind], config.null_chord_index) for row in inputs]
    return rows


class ChordsConditioner(nn.Module):
    """`chords.emb`: one learned vector per chord index, row `card` = null chord."""

    def __init__(self, card: int, out_dim: int) -> None:
        super().__init__()
        self.emb = nn.Embedding(card + 1, out_dim)

    def forward(self, frame_chords: torch.Tensor) -> torch.Tensor:
        """[N, T] indices -> [N, T, out_dim]."""
        return self.emb(frame_chords)


class MelodyConditioner(nn.Module):
    """`melody.output_proj`: 53 salience bins -> out_dim per frame."""

    def __init__(self, out_dim: int) -> None:
        super().__init__()
        self.output_proj = nn.Linear(MELODY_BINS, out_dim)

    def forward(self, salience: torch.Tensor) -> torch.Tensor:
        """[N, 53, T] -> [N, T, out_dim]."""
        return self.output_proj(salience.transpose(1, 2).to(self.output_proj.weight.dtype))


class ConditionProvider(nn.Module):
    """`condition_provider.conditioners.*` of the checkpoint, and the batch collation."""

    def __init__(self, config: JascoConfig, compression_model: CompressionModel) -> None:
        super().__init__()
        self.config = config
        conditioners: dict[str, nn.Module] = {
            TEXT_CONDITION: TextConditioner(config.text_dim, config.dim)
        }
        if config.has_chords:
            conditioners[CHORDS_CONDITION] = ChordsConditioner(
                config.chords_card, config.chords_dim
            )
        if config.has_drums:
            conditioners[DRUMS_CONDITION] = DrumsConditioner(
                compression_model, config.drums_dim, config.drums_blur_factor
            )
        if config.has_melody:
            conditioners[MELODY_CONDITION] = MelodyConditioner(config.melody_dim)
        self.conditioners = nn.ModuleDict(conditioners)

    def forward(
        self,
        inputs: Sequence[ConditionInputs],
        terms: Mapping[TermKind, float],
        text_encoder: T5Encoder,
    ) -> PreparedConditions:
        """Run every conditioner once on the whole CFG batch: the B rows of `inputs` under each
        guidance term of `terms` (kind -> weight, in batch order)."""
        rows = rows_for_terms(inputs, terms, self.config)
        frames = self.config.frames
        device = next(self.parameters()).device
        text = self.conditioners[TEXT_CONDITION]([row.text for row in rows], text_encoder)
        temporal: list[torch.Tensor] = []
        if CHORDS_CONDITION in self.conditioners:
            frame_chords = _collate_chords(rows, frames, self.config.null_chord_index, device)
            temporal.append(self.conditioners[CHORDS_CONDITION](frame_chords))
        if DRUMS_CONDITION in self.conditioners:
            drums = self.conditioners[DRUMS_CONDITION]([row.drums for row in rows], frames)
            temporal.append(drums.row_embeds())
        if MELODY_CONDITION in self.conditioners:
            salience = _collate_melody(rows, frames, device)
            temporal.append(self.conditioners[MELODY_CONDITION](salience))
        return PreparedConditions(
            text=text, temporal=tuple(temporal), weights=tuple(terms.values())
        )


def _collate_chords(
    rows: Sequence[ConditionInputs], frames: int, null_index: int, device: torch.device
) -> torch.Tensor:
    """[N, T] chord indices; rows without chords get the null chord, short rows are null-padded."""
    length = max([frames] + [row.chords.shape[-1] for row in rows if row.chords is not None])
    out = torch.full((len(rows), length), null_index, dtype=torch.long, device=device)
    for index, row in enumerate(rows):
        if row.chords is not None:
            out[index, : row.chords.shape[-1]] = row.chords.to(device)
    return out


def _collate_melody(
    rows: Sequence[ConditionInputs], frames: int, device: torch.device
) -> torch.Tensor:
    """[N, 53, T] salience; rows without melody get zeros [53, frames], and so do rows whose
    melody has at most one frame (reference quirk, reproduced: its collation replaces those)."""
    return torch.stack(
        [
            torch.zeros(MELODY_BINS, frames, device=device)
            if row.melody is None or row.melody.shape[-1] <= 1
            else row.melody.to(device=device, dtype=torch.float32)
            for row in rows
        ]
    )
