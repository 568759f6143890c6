"""The text condition: a frozen T5 encoder (not part of the checkpoint) and the checkpoint's
`output_proj` that maps its hidden states to the transformer width.

Batch semantics follow the reference exactly, because they change the numbers: all rows of the
CFG batch are tokenised together (pad to the longest row, `</s>` appended), rows with an empty
description get an all-zero mask, and the projected states are multiplied by the mask, so padded
positions and empty rows are exactly zero. The model later adds the time embedding to *every*
position, padding included, so the padded length S matters.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from engine.errors import CheckpointError

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class TextEncoding:
    """Projected text states for N rows: embeds [N, S, D], and the tokens that produced them."""

    embeds: torch.Tensor
    input_ids: torch.Tensor  # [N, S] int64
    mask: torch.Tensor  # [N, S] int64, all-zero rows for empty descriptions


class T5Encoder:
    """Tokenizer + frozen T5 encoder, loaded from a local folder or the Hugging Face cache."""

    def __init__(self, tokenizer: Any, model: nn.Module, source: str) -> None:
        self.tokenizer = tokenizer
        self.model = model
        self.source = source

    @classmethod
    def load(cls, name_or_folder: str | Path, device: torch.device) -> T5Encoder:
        """Load without network access; a missing model raises CheckpointError."""
        from transformers import AutoTokenizer, T5EncoderModel

        source = str(name_or_folder)
        local = Path(source).is_dir()
        try:
            tokenizer = AutoTokenizer.from_pretrained(source, local_files_only=True)
            # Eager attention: fully masked rows stay finite (they are zeroed afterwards).
            model = T5EncoderModel.from_pretrained(
                source, local_files_only=True, attn_implementation="eager"
            )
        except (OSError, ValueError) as exc:
            where = "folder" if local else "Hugging Face cache entry"
            raise CheckpointError(
                f"text encoder {source!r} not found ({where}): {exc}. "
                "Run `jasco-bridge weights download` to fetch T5, or pass the folder that holds it"
            ) from exc
        model = model.to(device).eval().requires_grad_(False)
        logger.info("loaded T5 text encoder from %s", source)
        return cls(tokenizer, model, source)

    @property
    def hidden_size(self) -> int:
        return int(self.model.config.d_model)

    def tokenize(self, texts: list[str], device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
        """All rows at once -> (input_ids [N, S], mask [N, S]); empty rows get a zero mask."""
        tokens = self.tokenizer(texts, return_tensors="pt", padding=True)
        input_ids = tokens["input_ids"].to(device)
        mask = tokens["attention_mask"].to(device)
        empty = torch.tensor([text == "" for text in texts], device=device)
        mask = mask.masked_fill(empty[:, None], 0)
        return input_ids, mask

    def hidden_states(self, input_ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """[N, S] tokens -> [N, S, hidden] last hidden states, computed in float32."""
        device_type = input_ids.device.type
        with torch.autocast(device_type=device_type, enabled=False):
            return self.model(input_ids=input_ids, attention_mask=mask).last_hidden_state.float()


class TextConditioner(nn.Module):
    """The checkpoint's `description.output_proj` (T5 hidden size -> D)."""

    def __init__(self, text_dim: int, dim: int) -> None:
        super().__init__()
        self.output_proj = nn.Linear(text_dim, dim)

    def forward(self, texts: list[str], encoder: T5Encoder) -> TextEncoding:
        """Encode N descriptions ("" = no text) into [N, S, D].

        T5 runs once per distinct non-empty description (the CFG batch repeats them); empty rows
        are zero by construction, which is exactly what the reference's mask product gives.
        """
        device = self.output_proj.weight.device
        input_ids, mask = encoder.tokenize(texts, device)
        rows, length = input_ids.shape
        embeds = torch.zeros(
            rows, length, self.output_proj.out_features, device=device, dtype=torch.float32
        )
        distinct = list(dict.fromkeys(text for text in texts if text))
        if distinct:
            first_row = [texts.index(text) for text in distinct]
            states = encoder.hidden_states(input_ids[first_row], mask[first_row])
            projected = self.output_proj(states.to(self.output_proj.weight.dtype))
            projected = projected * mask[first_row].unsqueeze(-1)  # [U, S, D]
            filled = [row for row, text in enumerate(texts) if text]
            source = [distinct.index(texts[row]) for row in filled]
            embeds[filled] = projected[source].to(embeds.dtype)
        return TextEncoding(embeds=embeds, input_ids=input_ids, mask=mask)
