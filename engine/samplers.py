"""ODE samplers for flow matching: integrate dz/dt = v(z, t) from t = 0 (noise) to t = 1 (data).

Every sampler has the signature `(velocity_fn, z0, *, steps, progress=None, should_cancel=None,
known=None) -> z1`, calls `progress(step, total)` with a total known before the first step, and
polls `should_cancel()` between steps (raising GenerationCancelled). `velocity_fn(z, t)` gets t as
a one-element tensor.

`known` (a `KnownFrames`) makes the solve a continuation: the frames it marks are held on the
flow-matching path towards given latents, z_t = (1 - (1 - sigma) t) z0 + t z_known with the same
noise z0, at the start and after every step (and at a midpoint's half step), so only the other
frames integrate freely and the marked ones end on z_known (within sigma |z0|). The network sees
the known frames exactly where training put clean data at time t.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

import torch

from engine.errors import ConditioningError, GenerationCancelled
from engine.request import CancelFn, ProgressFn

VelocityFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]

DOPRI5_END_TIME = 1.0 - 1e-5
"""The reference stops the adaptive solver just short of t = 1."""

DOPRI5_PROGRESS_UNITS = 1000
"""dopri5 reports progress in thousandths of the flow time (its step count is not known ahead)."""


FLOW_SIGMA = 1e-5
"""sigma of the training path z_t = (1 - (1 - sigma) t) z0 + t z1."""


@dataclass(frozen=True)
class KnownFrames:
    """Frames whose end state is given: `mask` [T] (True = known) and `latents` [B, T, F] (only
    the masked frames are read), both on the sampler's device."""

    mask: torch.Tensor
    latents: torch.Tensor

    def hold(self, z: torch.Tensor, t: torch.Tensor | float, z0: torch.Tensor) -> torch.Tensor:
        """z with the known frames put on their path at time t."""
        on_path = (1 - (1 - FLOW_SIGMA) * t) * z0 + t * self.latents.to(z.dtype)
        return torch.where(self.mask[None, :, None], on_path, z)

    def velocity(self, v: torch.Tensor, z0: torch.Tensor) -> torch.Tensor:
        """v with the known frames moving along their path (its constant time derivative)."""
        along = self.latents.to(v.dtype) - (1 - FLOW_SIGMA) * z0
        return torch.where(self.mask[None, :, None], along, v)


def _hold(
    known: KnownFrames | None, z: torch.Tensor, t: torch.Tensor | float, z0: torch.Tensor
) -> torch.Tensor:
    return z if known is None else known.hold(z, t, z0)


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
    known: KnownFrames | None = None,
) -> torch.Tensor:
    """z_{k+1} = z_k + dt·v(z_k, t_k), dt = 1/steps; `steps` model calls.

    t is accumulated in float32 (t_k = t_{k-1} + dt), not computed as k/steps, exactly like the
    reference — so t takes values such as 0.3000000119 and the model sees the same times.
    """
    _check_steps(steps)
    dt = 1 / steps
    t = torch.zeros(1, device=z0.device)
    z = _hold(known, z0, t, z0)
    for _ in _fixed_steps(steps, progress, should_cancel):
        z = z + dt * velocity_fn(z, t)
        t = t + dt
        z = _hold(known, z, t, z0)
    return z


def sample_midpoint(
    velocity_fn: VelocityFn,
    z0: torch.Tensor,
    *,
    steps: int = 10,
    progress: ProgressFn | None = None,
    should_cancel: CancelFn | None = None,
    known: KnownFrames | None = None,
) -> torch.Tensor:
    """Explicit midpoint (2nd order): z_{k+1} = z_k + dt·v(z_k + dt/2·v(z_k, t_k), t_k + dt/2).

    2·steps model calls; exact for fields linear in t.
    """
    _check_steps(steps)
    dt = 1 / steps
    z = _hold(known, z0, 0.0, z0)
    for step in _fixed_steps(steps, progress, should_cancel):
        t = torch.full((1,), step * dt, device=z0.device)
        half = _hold(known, z + (dt / 2) * velocity_fn(z, t), t + dt / 2, z0)
        z = _hold(known, z + dt * velocity_fn(half, t + dt / 2), t + dt, z0)
    return z


def sample_dopri5(
    velocity_fn: VelocityFn,
    z0: torch.Tensor,
    *,
    steps: int = 10,
    progress: ProgressFn | None = None,
    should_cancel: CancelFn | None = None,
    known: KnownFrames | None = None,
    rtol: float = 1e-5,
    atol: float = 1e-5,
) -> torch.Tensor:
    """Adaptive Dormand–Prince 5(4) via `torchdiffeq.odeint`, t from 0 to 1 − 1e-5 (reference).

    `steps` is accepted for the shared signature and not used: the step size follows `rtol` /
    `atol`. Progress: the total is DOPRI5_PROGRESS_UNITS (thousandths of flow time); each field
    evaluation reports the furthest time evaluated so far, capped one unit short of the total
    (trial evaluations may reach past the accepted end), and the finished solve reports
    (total, total). Cancellation is polled at every field evaluation.

    With `known`, the solver cannot be stopped after each step, so the known frames get the
    path's own velocity instead: their trajectory is linear in t, which every Runge-Kutta stage
    integrates exactly, and the end state is put on the path once more.
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
        if known is None:
            return velocity_fn(z, t.reshape(1))
        return known.velocity(velocity_fn(known.hold(z, t, z0), t.reshape(1)), z0)

    times = torch.tensor([0.0, DOPRI5_END_TIME], device=z0.device)
    trajectory = odeint(
        field, _hold(known, z0, 0.0, z0), times, rtol=rtol, atol=atol, method="dopri5"
    )
    if progress is not None:
        progress(total, total)
    return _hold(known, trajectory[-1], DOPRI5_END_TIME, z0)


SAMPLERS: dict[str, Callable[..., torch.Tensor]] = {
    "euler": sample_euler,
    "midpoint": sample_midpoint,
    "dopri5": sample_dopri5,
}
