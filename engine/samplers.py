"""ODE samplers for flow matching: integrate dz/dt = v(z, t) from t = 0 (noise) to t = 1 (data).

Every sampler has the signature `(velocity_fn, z0, *, steps, progress=None, should_cancel=None)
-> z1`, calls `progress(step, total)` with a total known before the first step, and polls
`should_cancel()` between steps (raising GenerationCancelled). `velocity_fn(z, t)` gets t as a
one-element tensor.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import torch

from engine.errors import ConditioningError, GenerationCancelled
from engine.request import CancelFn, ProgressFn

VelocityFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]

DOPRI5_END_TIME = 1.0 - 1e-5
"""The reference stops the adaptive solver just short of t = 1."""

DOPRI5_PROGRESS_UNITS = 1000
"""dopri5 reports progress in thousandths of the flow time (its step count is not known ahead)."""


def _check_cancel(should_cancel: CancelFn | None) -> None:
    if should_cancel is not None and should_cancel():
        raise GenerationCancelled("generation cancelled between sampler steps")


def _check_steps(steps: int) -> None:
    if not (isinstance(steps, int) and steps >= 1):
        raise ConditioningError(f"steps must be a whole number >= 1, got {steps!r}")


def _fixed_steps(
    steps: int, progress: ProgressFn | None, should_cancel: CancelFn | None
) -> Iterator[int]:
    """Step indices 0..steps-1 of a fixed-step sampler, with the bookkeeping every such sampler
    shares: cancellation polled before each step, progress reported once its body has run."""
    for step in range(steps):
        _check_cancel(should_cancel)
        yield step
        if progress is not None:
            progress(step + 1, steps)


def sample_euler(
    velocity_fn: VelocityFn,
    z0: torch.Tensor,
    *,
    steps: int = 10,
    progress: ProgressFn | None = None,
    should_cancel: CancelFn | None = None,
) -> torch.Tensor:
    """z_{k+1} = z_k + dt·v(z_k, t_k), dt = 1/steps; `steps` model calls.

    t is accumulated in float32 (t_k = t_{k-1} + dt), not computed as k/steps, exactly like the
    reference — so t takes values such as 0.3000000119 and the model sees the same times.
    """
    _check_steps(steps)
    dt = 1 / steps
    z = z0
    t = torch.zeros(1, device=z0.device)
    for _ in _fixed_steps(steps, progress, should_cancel):
        z = z + dt * velocity_fn(z, t)
        t = t + dt
    return z


def sample_midpoint(
    velocity_fn: VelocityFn,
    z0: torch.Tensor,
    *,
    steps: int = 10,
    progress: ProgressFn | None = None,
    should_cancel: CancelFn | None = None,
) -> torch.Tensor:
    """Explicit midpoint (2nd order): z_{k+1} = z_k + dt·v(z_k + dt/2·v(z_k, t_k), t_k + dt/2).

    2·steps model calls; exact for fields linear in t.
    """
    _check_steps(steps)
    dt = 1 / steps
    z = z0
    for step in _fixed_steps(steps, progress, should_cancel):
        t = torch.full((1,), step * dt, device=z0.device)
        half = z + (dt / 2) * velocity_fn(z, t)
        z = z + dt * velocity_fn(half, t + dt / 2)
    return z


def sample_dopri5(
    velocity_fn: VelocityFn,
    z0: torch.Tensor,
    *,
    steps: int = 10,
    progress: ProgressFn | None = None,
    should_cancel: CancelFn | None = None,
    rtol: float = 1e-5,
    atol: float = 1e-5,
) -> torch.Tensor:
    """Adaptive Dormand–Prince 5(4) via `torchdiffeq.odeint`, t from 0 to 1 − 1e-5 (reference).

    `steps` is accepted for the shared signature and not used: the step size follows `rtol` /
    `atol`. Progress: the total is DOPRI5_PROGRESS_UNITS (thousandths of flow time); each field
    evaluation reports the furthest time evaluated so far, capped one unit short of the total
    (trial evaluations may reach past the accepted end), and the finished solve reports
    (total, total). Cancellation is polled at every field evaluation.
    """
    from torchdiffeq import odeint

    total = DOPRI5_PROGRESS_UNITS
    reached = 0

    def field(t: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        nonlocal reached
        _check_cancel(should_cancel)
        if progress is not None:
            units = min(total - 1, max(reached, round(float(t) / DOPRI5_END_TIME * total)))
            reached = units
            progress(units, total)
        return velocity_fn(z, t.reshape(1))

    times = torch.tensor([0.0, DOPRI5_END_TIME], device=z0.device)
    trajectory = odeint(field, z0, times, rtol=rtol, atol=atol, method="dopri5")
    if progress is not None:
        progress(total, total)
    return trajectory[-1]


SAMPLERS: dict[str, Callable[..., torch.Tensor]] = {
    "euler": sample_euler,
    "midpoint": sample_midpoint,
    "dopri5": sample_dopri5,
}
