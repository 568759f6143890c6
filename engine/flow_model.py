"""The flow-matching transformer: one evaluation of the velocity field v(z, t | conditions).

Data path (shapes for N rows, T frames, F latent channels, D width, S text positions)::

    z [N, T, F] ++ chords [N, T, 16] ++ drums [N, T, 2] (++ melody [N, T, 16])   feature concat
      -> emb (no bias) -> [N, T, D] -> + positional sinusoid -> L layers -> out_norm -> linear
      -> v [N, T, F]
    memory = text embedding [N, S, D] + temb_proj(time MLP(t)) at every position

Time only enters through the cross-attention memory. Module names match the released state dict
(`emb`, `transformer.layers.<i>`, `out_norm`, `linear`, `temb.dense.<j>`, `temb_proj`).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from engine.config import JascoConfig
from engine.layers import TimeMLP, TransformerStack
from engine.quant import Int8Linear


class FlowMatchingTransformer(nn.Module):
    """Predicts the flow velocity of normalised EnCodec latents, given prepared conditions."""

    def __init__(self, config: JascoConfig) -> None:
        super().__init__()
        self.config = config
        self.emb = nn.Linear(config.input_dim, config.dim, bias=False)
        self.transformer = TransformerStack(config)
        self.out_norm = nn.LayerNorm(config.dim, eps=1e-5) if config.norm_first else None
        self.linear = nn.Linear(config.dim, config.flow_dim, bias=config.bias_proj)
        self.temb = TimeMLP(config.time_embedding_dim)
        self.temb_proj = nn.Linear(4 * config.time_embedding_dim, config.dim)

    def time_embedding(self, t: torch.Tensor) -> torch.Tensor:
        """t (one time, shape [1] or []) -> [1, D], the vector added to every memory position."""
        return self.temb_proj(self.temb(t))

    def forward(
        self,
        z: torch.Tensor,
        t: torch.Tensor,
        temporal: Sequence[torch.Tensor],
        text: torch.Tensor,
    ) -> torch.Tensor:
        """Velocity for latents z [N, T, F] at time t (shared by all rows).

        temporal: the per-frame condition embeddings in concatenation order (chords, drums,
        melody — those the model has), each [N, T_c, C_c]; text: [N, S, D] projected T5 states.
        """
        frames = z.shape[1]
        features = [z] + [_fit_frames(c, frames) for c in temporal]
        # The residual stream stays float32 under reduced precision (a no-op in fp32).
        x = self.emb(torch.cat(features, dim=-1)).float()  # [N, T, D]
        memory = text + self.time_embedding(t)[:, None, :]  # [N, S, D]
        x = self.transformer(x, memory)
        if self.out_norm is not None:
            x = self.out_norm(x)
        return self.linear(x)  # [N, T, F]


def _fit_frames(condition: torch.Tensor, frames: int) -> torch.Tensor:
    """Cut [N, T_c, C] to `frames`, or append zero frames (zeros after projection, as trained)."""
    condition = condition[:, :frames]
    missing = frames - condition.shape[1]
    if missing > 0:
        pad = condition.new_zeros(condition.shape[0], missing, condition.shape[2])
        condition = torch.cat([condition, pad], dim=1)
    return condition


def use_reduced_weights(network: FlowMatchingTransformer, dtype: torch.dtype) -> None:
    """Store the weights of the layers' matrix multiplications in `dtype` (bf16 / fp16), in place.

    Under autocast they would be cast on every call otherwise; layer norms, the embeddings in
    and out and the time MLP stay float32 (they are small, and precision matters there).
    """
    for layer in network.transformer.layers:
        for attention in (layer.self_attn, layer.cross_attention):
            for param in (attention.in_proj_weight, attention.in_proj_bias):
                if param is not None:
                    param.data = param.data.to(dtype)
            attention.out_proj.to(dtype)
        layer.linear1.to(dtype)
        layer.linear2.to(dtype)


def use_int8_weights(network: FlowMatchingTransformer) -> None:
    """Quantise the layers' projections to int8 (engine.quant), in place; as in
    `use_reduced_weights`, everything else keeps its float32 weights."""
    for layer in network.transformer.layers:
        layer.self_attn.use_int8_projections(cross=False)
        layer.cross_attention.use_int8_projections(cross=True)
        layer.linear1 = Int8Linear.from_linear(layer.linear1)
        layer.linear2 = Int8Linear.from_linear(layer.linear2)
