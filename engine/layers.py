"""Building blocks of the flow-matching transformer: attention, one layer, the layer stack,
and the two sinusoidal embeddings (time and position).

Parameter names follow the released state dict (`self_attn.in_proj_weight`, `norm_cross`, ...)
so that checkpoints load without any renaming.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from engine.config import JascoConfig
from engine.quant import Int8Linear


class LayerScale(nn.Module):
    """Per-channel learned scale of a residual branch (used only when cfg `layer_scale` is set)."""

    def __init__(self, dim: int, init: float) -> None:
        super().__init__()
        self.scale = nn.Parameter(torch.full((dim,), init))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.scale * x


def _layer_scale(dim: int, init: float | None) -> nn.Module:
    return nn.Identity() if init is None else LayerScale(dim, init)


class Attention(nn.Module):
    """Multi-head attention with a packed q/k/v projection (`in_proj_weight`, rows q, k, v).

    No mask of any kind: self attention is bidirectional and cross attention attends to every
    text position, padding included (the model was trained that way).
    """

    def __init__(
        self,
        dim: int,
        num_heads: int,
        *,
        bias: bool,
        qk_layer_norm: bool,
        attention_as_float32: bool,
    ) -> None:
        super().__init__()
        self.num_heads = num_heads
        self.attention_as_float32 = attention_as_float32
        self.in_proj_weight = nn.Parameter(torch.empty(3 * dim, dim))
        self.in_proj_bias = nn.Parameter(torch.zeros(3 * dim)) if bias else None
        self.out_proj: nn.Module = nn.Linear(dim, dim, bias=bias)
        self.q_layer_norm: nn.Module | None = None
        self.k_layer_norm: nn.Module | None = None
        if qk_layer_norm:
            self.q_layer_norm = nn.LayerNorm(dim)
            self.k_layer_norm = nn.LayerNorm(dim)
        nn.init.xavier_uniform_(self.in_proj_weight)
        # Set by `use_int8_projections`: int8 stand-ins for the packed q/k/v projection (self
        # attention) and the query projection (cross attention).
        self.packed_int8: Int8Linear | None = None
        self.query_int8: Int8Linear | None = None

    def use_int8_projections(self, *, cross: bool) -> None:
        """Quantise the projections that see every frame (see engine.quant): q/k/v of self
        attention, the queries of cross attention (`cross`), whose keys and values over a few
        text positions keep their float weights; and the output projection."""
        weight, bias = self.in_proj_weight, self.in_proj_bias
        dim = weight.shape[1]
        if cross:
            self.query_int8 = Int8Linear(weight[:dim], None if bias is None else bias[:dim])
        else:
            self.packed_int8 = Int8Linear(weight, bias)
            weight.data = weight.data.new_empty(0, dim)  # the int8 copy is the one used now
        self.out_proj = Int8Linear.from_linear(self.out_proj)

    def _split_heads(self, x: torch.Tensor) -> torch.Tensor:
        batch, time, dim = x.shape
        # [B, T, D] -> [B, heads, T, head_dim]; head is the outer factor of D
        return x.view(batch, time, self.num_heads, dim // self.num_heads).transpose(1, 2)

    def forward(self, x: torch.Tensor, memory: torch.Tensor | None = None) -> torch.Tensor:
        """Self attention over `x` [B, T, D], or cross attention from `x` to `memory` [B, S, D]."""
        dim = x.shape[-1]
        weight, bias = self.in_proj_weight, self.in_proj_bias
        if memory is None:
            packed = F.linear(x, weight, bias) if self.packed_int8 is None else self.packed_int8(x)
            q, k, v = packed.chunk(3, dim=-1)  # 3 x [B, T, D]
        else:
            # Separate projections (not one packed matmul) because queries and keys differ.
            q_bias, k_bias, v_bias = (None, None, None) if bias is None else bias.chunk(3)
            if self.query_int8 is None:
                q = F.linear(x, weight[:dim], q_bias)  # [B, T, D]
            else:
                q = self.query_int8(x)
            k = F.linear(memory, weight[dim : 2 * dim], k_bias)  # [B, S, D]
            v = F.linear(memory, weight[2 * dim :], v_bias)  # [B, S, D]
        if self.q_layer_norm is not None and self.k_layer_norm is not None:
            q = self.q_layer_norm(q)
            k = self.k_layer_norm(k)
        q, k, v = (self._split_heads(t) for t in (q, k, v))  # [B, heads, T|S, head_dim]
        dtype = q.dtype
        if self.attention_as_float32:
            q, k, v = q.float(), k.float(), v.float()
        out = attend(q, k, v).to(dtype)  # [B, heads, T, head_dim]
        out = out.transpose(1, 2).reshape(x.shape[0], x.shape[1], dim)  # [B, T, D]
        return self.out_proj(out)


def attend(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """softmax(q k^T / sqrt(head_dim)) v over [B, heads, T|S, head_dim], unmasked.

    In bf16 on a CPU, two oneDNN matmuls and a softmax take 0.65x the time of torch's fused CPU
    kernel at 500 frames (benchmarks/bench_kernels.py); elsewhere (fp32 for parity, GPUs) the
    fused kernel is used.
    """
    if q.device.type != "cpu" or q.dtype != torch.bfloat16:
        return F.scaled_dot_product_attention(q, k, v)
    # Scaled on q (T x head_dim values), not on the T x S scores; exact for 64-wide heads.
    scores = (q * q.shape[-1] ** -0.5) @ k.transpose(-1, -2)
    return torch.softmax(scores, dim=-1) @ v


class TransformerLayer(nn.Module):
    """Self attention, cross attention to the text, feed-forward; pre- or post-norm."""

    def __init__(self, config: JascoConfig) -> None:
        super().__init__()
        dim = config.dim
        attention = {"bias": config.bias_attn, "attention_as_float32": config.attention_as_float32}
        self.norm_first = config.norm_first
        self.self_attn = Attention(
            dim, config.num_heads, qk_layer_norm=config.qk_layer_norm, **attention
        )
        self.cross_attention = Attention(
            dim, config.num_heads, qk_layer_norm=config.qk_layer_norm_cross, **attention
        )
        self.linear1: nn.Module = nn.Linear(dim, config.ffn_dim, bias=config.bias_ff)
        self.linear2: nn.Module = nn.Linear(config.ffn_dim, dim, bias=config.bias_ff)
        self.norm1 = nn.LayerNorm(dim, eps=1e-5)
        self.norm2 = nn.LayerNorm(dim, eps=1e-5)
        self.norm_cross = nn.LayerNorm(dim, eps=1e-5)
        self.layer_scale_1 = _layer_scale(dim, config.layer_scale)
        self.layer_scale_2 = _layer_scale(dim, config.layer_scale)
        self.layer_scale_cross = _layer_scale(dim, config.layer_scale)

    def _feed_forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear2(F.gelu(self.linear1(x)))

    def forward(self, x: torch.Tensor, memory: torch.Tensor) -> torch.Tensor:
        """x [B, T, D], memory (text + time embedding) [B, S, D] -> [B, T, D]."""
        if self.norm_first:
            x = x + self.layer_scale_1(self.self_attn(self.norm1(x)))
            x = x + self.layer_scale_cross(self.cross_attention(self.norm_cross(x), memory))
            return x + self.layer_scale_2(self._feed_forward(self.norm2(x)))
        layer_input = x
        x = self.norm1(x + self.layer_scale_1(self.self_attn(x)))
        # The reference queries the cross attention with the layer's *input* in post-norm mode.
        x = self.norm_cross(x + self.layer_scale_cross(self.cross_attention(layer_input, memory)))
        return self.norm2(x + self.layer_scale_2(self._feed_forward(x)))


class TransformerStack(nn.Module):
    """The layer stack with the sinusoidal positional embedding and optional U-net skips.

    With skip connections, the outputs of the first L/2 layers are kept and, before each of the
    last L/2 layers, the most recent one is concatenated to x and projected back to D.
    """

    def __init__(self, config: JascoConfig) -> None:
        super().__init__()
        self.max_period = config.max_period
        self.positional_scale = config.positional_scale
        self.layers = nn.ModuleList(TransformerLayer(config) for _ in range(config.num_layers))
        # The sinusoid depends only on the shape: computed once, not at every sampler step.
        self._positions: dict[tuple[int, int, torch.dtype, torch.device], torch.Tensor] = {}
        self.skip_projections: nn.ModuleList | None = None
        if config.skip_connections:
            self.skip_projections = nn.ModuleList(
                nn.Linear(2 * config.dim, config.dim) for _ in range(config.num_layers // 2)
            )

    def forward(self, x: torch.Tensor, memory: torch.Tensor) -> torch.Tensor:
        """x [B, T, D], memory [B, S, D] -> [B, T, D]."""
        key = (x.shape[1], x.shape[2], x.dtype, x.device)
        if key not in self._positions:
            self._positions[key] = self.positional_scale * positional_embedding(
                x.shape[1], x.shape[2], self.max_period, dtype=x.dtype, device=x.device
            )
        x = x + self._positions[key]
        half = len(self.layers) // 2
        skips: list[torch.Tensor] = []
        for index, layer in enumerate(self.layers):
            if self.skip_projections is not None and index >= half:
                x = self.skip_projections[index - half](torch.cat([x, skips.pop()], dim=-1))
            x = layer(x, memory)
            if self.skip_projections is not None and index < half:
                skips.append(x)
        return x


def positional_embedding(
    frames: int, dim: int, max_period: float, *, dtype: torch.dtype, device: torch.device
) -> torch.Tensor:
    """[1, frames, dim] sinusoid, cosine block first: phase = p / max_period^(i / (dim/2 - 1)).

    Computed in the activations' dtype, as the reference does (fp16 under autocast).
    """
    half = dim // 2
    positions = torch.arange(frames, device=device).view(1, -1, 1).to(dtype)
    channel = torch.arange(half, device=device, dtype=dtype).view(1, 1, -1)
    period = torch.full([], max_period, device=device, dtype=dtype)
    phase = positions / (period ** (channel / (half - 1)))
    return torch.cat([torch.cos(phase), torch.sin(phase)], dim=-1)


def time_sinusoid(t: torch.Tensor, dim: int) -> torch.Tensor:
    """[n, dim] sinusoid of the flow time t [n] in float32, sine block first.

    Frequencies exp(-j * ln(10000) / (dim/2 - 1)); t is the raw ODE time in [0, 1].
    """
    half = dim // 2
    rate = math.log(10000) / (half - 1)
    freqs = torch.exp(torch.arange(half, dtype=torch.float32) * -rate).to(t.device)
    phase = t.float()[:, None] * freqs[None, :]  # [n, half]
    return torch.cat([torch.sin(phase), torch.cos(phase)], dim=1)


class TimeMLP(nn.Module):
    """dense.0 -> swish -> dense.1: the time embedding before `temb_proj`."""

    def __init__(self, time_embedding_dim: int) -> None:
        super().__init__()
        hidden = 4 * time_embedding_dim
        self.time_embedding_dim = time_embedding_dim
        self.dense = nn.ModuleList(
            [nn.Linear(time_embedding_dim, hidden), nn.Linear(hidden, hidden)]
        )

    def forward(self, t: torch.Tensor) -> torch.Tensor:
        """t of any shape holding n times -> [n, 4 * time_embedding_dim]."""
        h = self.dense[0](time_sinusoid(t.flatten(), self.time_embedding_dim))
        h = h * torch.sigmoid(h)
        return self.dense[1](h)
