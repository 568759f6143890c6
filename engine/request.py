"""The request and result types every renderer shares, and the `Renderer` protocol.

A request describes one window of music (JASCO: 10 s, 500 frames at 50 Hz). Conditions come
per frame: the engine never sees bars, beats or chord names, only chord *indices* of the
checkpoint's vocabulary. The beat grid is carried for the preview renderer, which plays on it;
JASCO has no tempo input and ignores it.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

import numpy as np

from engine.errors import ConditioningError

ProgressFn = Callable[[int, int], None]
"""Called as progress(step, total) after each sampler step; total is known before the first."""

CancelFn = Callable[[], bool]
"""Polled between sampler steps; returning True stops the render with GenerationCancelled."""

SAMPLER_NAMES = ("euler", "midpoint", "dopri5")

PRECISIONS = ("auto", "fp32", "bf16", "fp16")
"""The network's arithmetic a renderer can be opened with (engine.precision resolves `auto`)."""


@dataclass(frozen=True)
class GenerationRequest:
    """One window to render. Frames are at the renderer's `frame_rate_hz`."""

    text: str = ""
    chord_indices: tuple[int, ...] | None = None
    drums_wav: np.ndarray | None = field(default=None, compare=False, repr=False)
    drums_sample_rate: int = 32000
    melody_salience: np.ndarray | None = field(default=None, compare=False, repr=False)
    beat_seconds: tuple[float, ...] = ()
    downbeat_seconds: tuple[float, ...] = ()
    duration_seconds: float = 10.0
    seed: int = 0
    steps: int = 10
    sampler: str = "euler"
    cfg_all: float = 1.25
    cfg_text: float = 2.5
    separate_drums: bool = False

    def __post_init__(self) -> None:
        if not isinstance(self.text, str):
            raise ConditioningError(f"text must be a string, got {type(self.text).__name__}")
        if self.sampler not in SAMPLER_NAMES:
            raise ConditioningError(
                f"unknown sampler {self.sampler!r}: choose one of {', '.join(SAMPLER_NAMES)}"
            )
        if not (isinstance(self.seed, int) and 0 <= self.seed < 2**64):
            # the preview seeds numpy (no negatives) and JASCO a torch generator (64 bits)
            raise ConditioningError(
                f"seed must be a whole number from 0 to 2**64 - 1, got {self.seed!r}"
            )
        if not (isinstance(self.steps, int) and self.steps >= 1):
            raise ConditioningError(f"steps must be a whole number >= 1, got {self.steps!r}")
        if not (math.isfinite(self.duration_seconds) and self.duration_seconds > 0):
            raise ConditioningError(
                f"duration_seconds must be a positive number, got {self.duration_seconds!r}"
            )
        for name in ("cfg_all", "cfg_text"):
            value = getattr(self, name)
            if not math.isfinite(value):
                raise ConditioningError(f"{name} must be a finite number, got {value!r}")
        if self.drums_sample_rate <= 0:
            raise ConditioningError(
                f"drums_sample_rate must be positive, got {self.drums_sample_rate!r}"
            )
        if self.drums_wav is not None and np.asarray(self.drums_wav).ndim not in (1, 2):
            raise ConditioningError(
                "drums_wav must be [samples] or [channels, samples], "
                f"got shape {np.asarray(self.drums_wav).shape}"
            )
        if self.melody_salience is not None and np.asarray(self.melody_salience).ndim != 2:
            raise ConditioningError(
                "melody_salience must be [bins, frames], "
                f"got shape {np.asarray(self.melody_salience).shape}"
            )


@dataclass(frozen=True)
class GenerationResult:
    """Mono audio for one request, and what made it (the request itself says with what seed,
    steps and sampler: a result does not repeat it)."""

    audio: np.ndarray = field(repr=False)  # [samples] float32
    sample_rate: int
    engine: str  # "jasco" or "preview"
    model: str
    timings: dict[str, float] = field(default_factory=dict)
    precision: str = "fp32"  # arithmetic of the network: fp32 | bf16 | fp16

    @property
    def duration_seconds(self) -> float:
        return len(self.audio) / self.sample_rate


@runtime_checkable
class Renderer(Protocol):
    """What the daemon and the CLI need from an engine."""

    name: str
    is_preview: bool
    sample_rate: int
    frame_rate_hz: float
    segment_seconds: float
    model_id: str
    accepts_melody: bool  # only chords-drums-melody checkpoints (and the preview) use a melody

    def generate(
        self,
        request: GenerationRequest,
        progress: ProgressFn | None = None,
        should_cancel: CancelFn | None = None,
    ) -> GenerationResult: ...
