"""8-bit integer matrix multiplications for the transformer on CPUs with VNNI (`--precision int8`).

    projection = Int8Linear.from_linear(linear)     # once, after loading
    y = projection(x)                               # y in autocast's dtype, else in x's

A projection y = x W^T becomes, with W quantised once per output channel and x per row (each
frame of each CFG row gets its own scale, taken from its largest value):

    W ~ Wq * w_scale[out]            Wq int8, symmetric, w_scale = max|W[out, :]| / 127
    x ~ xq * x_scale[row]            xq int8, recomputed at every call
    y = (xq @ Wq^T) * x_scale * w_scale      the product accumulated exactly in int32

On a Zen 4 core the int8 dot-product instructions do twice the work per cycle of the bf16 ones,
so the projections take about 0.6x their bf16 time, quantisation included
(benchmarks/bench_kernels.py). The price is accuracy: about 1% relative error per projection
against 0.3% for bf16, measured on random weights only (the README's "Speed and precision"
gives the figures and the caveat). It is therefore never chosen by `auto`.
"""

from __future__ import annotations

import torch
from torch import nn

_LEVELS = 127.0  # symmetric int8: -127..127, so that -x quantises to -(x quantised)


class Int8Linear(nn.Module):
    """y = x W^T (+ b) with W held as int8 values and one float32 scale per output channel."""

    def __init__(self, weight: torch.Tensor, bias: torch.Tensor | None = None) -> None:
        super().__init__()
        weight = weight.detach().float()
        scale = weight.abs().amax(dim=1).clamp_(min=torch.finfo(torch.float32).tiny) / _LEVELS
        values = torch.round(weight / scale[:, None]).clamp_(-_LEVELS, _LEVELS).to(torch.int8)
        self.out_features = weight.shape[0]
        self.register_buffer("values", values)  # [out, in]
        self.register_buffer("scale", scale)
        self.register_buffer("bias", None if bias is None else bias.detach().float())

    @classmethod
    def from_linear(cls, linear: nn.Linear) -> Int8Linear:
        return cls(linear.weight, linear.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x [..., in] in any float dtype -> [..., out] in autocast's dtype (as a float
        projection would give under autocast) or else in x's."""
        device = x.device.type
        dtype = torch.get_autocast_dtype(device) if torch.is_autocast_enabled(device) else x.dtype
        rows = x.reshape(-1, x.shape[-1])
        x_scale = rows.abs().amax(dim=1, keepdim=True).float().clamp_(min=1e-30) / _LEVELS
        # In float32, because in bf16 x / scale would land between int8 levels (8 significant
        # bits), and float32 times float32 (not bf16 times float32) because torch's mixed-dtype
        # path takes 4x longer.
        quantised = (rows.float() * x_scale.reciprocal()).round_().to(torch.int8)
        # The transposed view, not a transposed copy: oneDNN runs it 1.2x faster.
        acc = torch._int_mm(quantised, self.values.t())  # [rows, out] int32, exact
        # int32 times a bf16 (or float32) scale converts and rescales in one pass over [rows, out].
        y = torch.mul(acc, self.scale.to(dtype)).mul_(x_scale.to(dtype))
        if self.bias is not None:
            y = y.add_(self.bias.to(dtype))
        return y.view(*x.shape[:-1], self.out_features)
