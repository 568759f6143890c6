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

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import torch

from engine.errors import ConditioningError

TermKind = Literal["all", "text", "null"]
MIN_WEIGHT = 1e-6


@dataclass(frozen=True)
class CfgTerm:
    """One guidance term: which conditions it keeps (`kind`) and its weight in the sum."""

    kind: TermKind
    weight: float

    def __post_init__(self) -> None:
        if self.kind not in ("all", "text", "null"):
            raise ConditioningError(
                f"CfgTerm kind must be 'all', 'text' or 'null', got {self.kind!r}"
            )


def plan_cfg_terms(cfg_all: float, cfg_text: float) -> list[CfgTerm]:
    """The terms the reference evaluates for these coefficients, in batch order.

    Terms with |weight| < 1e-6 are dropped — but the reference removes them from the list while
    iterating over it, so the term right after a removed one is never examined and survives
    even with weight 0. Reproduced on purpose: a surviving term changes the batch (T5 padding
    length, the drums path), hence the numbers. Examples::

        (5.0, 0.0)  -> all(5), null(-4)             text pruned
        (0.0, 0.0)  -> text(0), null(1)             all pruned, text skipped by the quirk
        (1.0, 0.0)  -> all(1), null(0)              text pruned, null skipped by the quirk
        (0.0, 1.0)  -> text(1)                      all pruned, null pruned
    """
    terms = [
        CfgTerm("all", cfg_all),
        CfgTerm("text", cfg_text),
        CfgTerm("null", 1 - (cfg_all + cfg_text)),
    ]
    kept: list[CfgTerm] = []
    skip_next = False
    for term in terms:
        if skip_next:
            kept.append(term)
            skip_next = False
        elif abs(term.weight) < MIN_WEIGHT:
            skip_next = True
        else:
            kept.append(term)
    return kept


def combine_terms(v_batched: torch.Tensor, terms: list[CfgTerm]) -> torch.Tensor:
    """[n_terms * B, T, F] term-major velocities -> [B, T, F] weighted sum (left to right).

    A single term is returned as is (unweighted), like the reference.
    """
    if len(terms) <= 1:
        return v_batched
    chunks = v_batched.chunk(len(terms))  # term-major rows
    combined = terms[0].weight * chunks[0]
    for term, v in zip(terms[1:], chunks[1:], strict=True):
        combined = combined + term.weight * v
    return combined


def guided(
    model_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor], terms: list[CfgTerm]
) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
    """Wrap a batched model call v(z_batch, t) into the guided velocity v(z, t) of B rows."""
    repeats = len(terms)

    def velocity(z: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        batch = z.repeat(repeats, 1, 1) if repeats > 1 else z  # [n_terms * B, T, F]
        # Under fp16 autocast the sum is fp16 like the reference's; handing it back in z's
        # dtype is exact and keeps adaptive solvers from mixing dtypes.
        return combine_terms(model_fn(batch, t), terms).to(z.dtype)

    return velocity
