"""The text condition: a frozen T5 encoder (not part of the checkpoint) and the checkpoint's
`output_proj` that maps its hidden states to the transformer width.

Batch semantics follow the reference exactly, because they change the numbers: all rows of the
CFG batch are tokenised together (pad to the longest row, `</s>` appended), rows with an empty
description get an all-zero mask, and the projected states are multiplied by the mask, so padded
positions and empty rows are exactly zero. Reference quirk (reproduced): the model later adds the
time embedding to *every* position, padding included, so the padded length S matters.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import torch
from torch import nn

from engine.cache import LruCache
from engine.errors import CheckpointError

logger = logging.getLogger(__name__)


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
    """The checkpoint's `description.output_proj` (T5 hidden size -> D), with the projected states
    of recent prompts kept (T5 is the costliest condition and a session reuses its prompts)."""

    def __init__(self, text_dim: int, dim: int, *, cached_prompts: int = 32) -> None:
        super().__init__()
        self.output_proj = nn.Linear(text_dim, dim)
        self._prompts: LruCache[str, torch.Tensor] = LruCache(cached_prompts)

    def forward(self, texts: list[str], encoder: T5Encoder) -> torch.Tensor:
        """Encode N descriptions ("" = no text) into [N, S, D], S = the longest row's tokens.

        T5 runs once per new non-empty description, on that description alone: the mask makes
        its padded positions irrelevant to the real ones, and the product with the mask makes
        padding and empty rows exactly zero, which is what the reference's batch gives.
        """
        device = self.output_proj.weight.device
        rows, length = encoder.tokenize(texts, device)[0].shape
        embeds = torch.zeros(
            rows, length, self.output_proj.out_features, device=device, dtype=torch.float32
        )
        for row, text in enumerate(texts):
            if text:
                states = self._projected(text, encoder)  # [S_text, D]
                embeds[row, : states.shape[0]] = states
        return embeds

    def _projected(self, text: str, encoder: T5Encoder) -> torch.Tensor:
        cached = self._prompts.get(text)
        if cached is None:
            input_ids, mask = encoder.tokenize([text], self.output_proj.weight.device)
            states = encoder.hidden_states(input_ids, mask)
            cached = self.output_proj(states.to(self.output_proj.weight.dtype))[0].float()
            self._prompts.put(text, cached)
        return cached
