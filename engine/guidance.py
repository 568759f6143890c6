"""Multi-source classifier-free guidance, as JASCO's reference runs it.

Three terms, each a copy of the conditions with some of them nulled:

* `all`  — every condition, weight `cfg_all`;
* `text` — text kept, the temporal conditions of cfg `attribute_dropout` nulled, weight `cfg_text`;
* `null` — everything nulled, weight 1 - (cfg_all + cfg_text).

The guided velocity is  v = w_all·v_all + w_text·v_text + w_null·v_null
                          = v_null + cfg_all·(v_all − v_null) + cfg_text·(v_text − v_null).

All surviving terms run as one batch (term-major rows), so one model call per solver step.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Literal

import torch

TermKind = Literal["all", "text", "null"]
TERM_KINDS: tuple[TermKind, ...] = ("all", "text", "null")
"""Every guidance term, in the reference's (and the batch's) order."""
MIN_WEIGHT = 1e-6


def plan_cfg_terms(cfg_all: float, cfg_text: float) -> dict[TermKind, float]:
    """The terms the reference evaluates for these coefficients, kind -> weight, in batch order.

    Terms with |weight| < 1e-6 are dropped — but the reference removes them from the list while
    iterating over it, so the term right after a removed one is never examined and survives
    even with weight 0. Reproduced on purpose: a surviving term changes the batch (T5 padding
    length, the drums path), hence the numbers. Examples::

        (5.0, 0.0)  -> all(5), null(-4)             text pruned
        (0.0, 0.0)  -> text(0), null(1)             all pruned, text skipped by the quirk
        (1.0, 0.0)  -> all(1), null(0)              text pruned, null skipped by the quirk
        (0.0, 1.0)  -> text(1)                      all pruned, null pruned
    """
    weights = (cfg_all, cfg_text, 1 - (cfg_all + cfg_text))
    kept: dict[TermKind, float] = {}
    skip_next = False
    for kind, weight in zip(TERM_KINDS, weights, strict=True):
        if skip_next:
            kept[kind] = weight
            skip_next = False
        elif abs(weight) < MIN_WEIGHT:
            skip_next = True
        else:
            kept[kind] = weight
    return kept


def combine_terms(v_batched: torch.Tensor, weights: Sequence[float]) -> torch.Tensor:
    """[n_terms * B, T, F] term-major velocities -> [B, T, F] weighted sum (left to right).

    A single term is returned as is (unweighted), like the reference.
    """
    if len(weights) <= 1:
        return v_batched
    chunks = v_batched.chunk(len(weights))  # term-major rows
    combined = weights[0] * chunks[0]
    for weight, v in zip(weights[1:], chunks[1:], strict=True):
        combined = combined + weight * v
    return combined


def guided(
    model_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor], weights: Sequence[float]
) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
    """Wrap a batched model call v(z_batch, t) into the guided velocity v(z, t) of B rows, the
    batch holding one block of B rows per term of `weights` (in order)."""
    repeats = len(weights)

    def velocity(z: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        batch = z.repeat(repeats, 1, 1) if repeats > 1 else z  # [n_terms * B, T, F]
        # Under fp16 autocast the sum is fp16 like the reference's; handing it back in z's
        # dtype is exact and keeps adaptive solvers from mixing dtypes.
        return combine_terms(model_fn(batch, t), weights).to(z.dtype)

    return velocity
