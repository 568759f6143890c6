"""The request and result types every renderer shares, and the `Renderer` protocol.

A request describes one window of music (JASCO: 10 s, 500 frames at 50 Hz); a `LongRequest` is a
run of such windows, each overlapping the one before by whole frames, rendered as one piece. Conditions come
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

WindowFn = Callable[[int, int], None]
"""Called as on_window(index, count) when window `index` (0-based) of a long render starts."""

SAMPLER_NAMES = ("euler", "midpoint", "dopri5")

PRECISIONS = ("auto", "fp32", "bf16", "fp16", "int8")
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


def _window_columns(values: np.ndarray, start: int, end: int) -> np.ndarray:
    """Columns start..end of the last axis, zero-padded when the window supplied fewer."""
    values = np.asarray(values, dtype=np.float32)
    out = np.zeros((*values.shape[:-1], end - start), dtype=np.float32)
    part = values[..., start:end]
    out[..., : part.shape[-1]] = part
    return out


@dataclass(frozen=True)
class LongRequest:
    """Windows rendered as one piece: window k starts `overlap_frames[k]` frames before window
    k-1 ends (window 0 has no overlap), and its first `overlap_frames[k]` frames continue what
    window k-1 made there. Every window's `duration_seconds` is a whole number of frames.

    Each window carries its own conditions (framed from its own first frame), the seed of the
    whole render is window 0's, and the text, sampler, steps and guidance are the same in all.
    """

    windows: tuple[GenerationRequest, ...]
    overlap_frames: tuple[int, ...]

    def __post_init__(self) -> None:
        if not self.windows:
            raise ConditioningError("a long request needs at least one window")
        if len(self.overlap_frames) != len(self.windows):
            raise ConditioningError(
                f"overlap_frames has {len(self.overlap_frames)} entries for "
                f"{len(self.windows)} windows: give one per window (0 for the first)"
            )
        if self.overlap_frames[0] != 0:
            raise ConditioningError("the first window continues nothing: its overlap must be 0")
        first = self.windows[0]
        for index, window in enumerate(self.windows[1:], start=1):
            shared = ("text", "steps", "sampler", "cfg_all", "cfg_text", "drums_sample_rate")
            different = [n for n in shared if getattr(window, n) != getattr(first, n)]
            if different:
                raise ConditioningError(
                    f"window {index} differs from window 0 in {', '.join(different)}: a long "
                    "render has one prompt and one set of sampler settings"
                )

    def frames(self, frame_rate_hz: float) -> tuple[int, ...]:
        """Frames of each window (its duration at `frame_rate_hz`)."""
        counts = []
        for index, window in enumerate(self.windows):
            exact = window.duration_seconds * frame_rate_hz
            if abs(exact - round(exact)) > 1e-6:
                raise ConditioningError(
                    f"window {index} lasts {window.duration_seconds} s, not a whole number of "
                    f"{frame_rate_hz:g} Hz frames: windows of a long render are joined on frames"
                )
            counts.append(round(exact))
        return tuple(counts)

    def offsets(self, frame_rate_hz: float) -> tuple[tuple[int, ...], int]:
        """Each window's first frame in the joined piece, and the piece's length in frames."""
        frames = self.frames(frame_rate_hz)
        offsets = [0]
        for index in range(1, len(frames)):
            overlap = self.overlap_frames[index]
            if not (
                isinstance(overlap, int) and 0 < overlap < min(frames[index - 1], frames[index])
            ):
                raise ConditioningError(
                    f"window {index} overlaps by {overlap!r} frames: it must be a whole number "
                    "from 1 to one less than the frames of the shorter of it and the window before"
                )
            offsets.append(offsets[-1] + frames[index - 1] - overlap)
        return tuple(offsets), offsets[-1] + frames[-1]

    def joined(self, frame_rate_hz: float) -> GenerationRequest:
        """The whole piece as one request (for renderers that synthesise any length at once):
        each window contributes its frames after the overlap, beat times move to the piece's
        clock, drum stems and melody columns are laid end to end."""
        offsets, total = self.offsets(frame_rate_hz)
        frames = self.frames(frame_rate_hz)
        first = self.windows[0]
        spans = [
            (0 if k == 0 else self.overlap_frames[k], frames[k]) for k in range(len(self.windows))
        ]
        chords: list[int] | None = None
        if any(w.chord_indices is not None for w in self.windows):
            chords = []
            for window, (start, end) in zip(self.windows, spans, strict=True):
                own = list(window.chord_indices or ())[start:end]
                chords += own + [own[-1] if own else 0] * (end - start - len(own))
        beats: list[float] = []
        downbeats: list[float] = []
        for window, (start, end), offset in zip(self.windows, spans, offsets, strict=True):
            low, high = start / frame_rate_hz, end / frame_rate_hz
            shift = offset / frame_rate_hz
            beats += [b + shift for b in window.beat_seconds if low <= b < high]
            downbeats += [b + shift for b in window.downbeat_seconds if low <= b < high]
        drums = None
        if any(w.drums_wav is not None for w in self.windows):
            rate = first.drums_sample_rate
            parts = []
            for window, (start, end) in zip(self.windows, spans, strict=True):
                stem = np.zeros(0) if window.drums_wav is None else np.asarray(window.drums_wav)
                mono = stem if stem.ndim == 1 else stem.mean(axis=0)
                a, b = round(start / frame_rate_hz * rate), round(end / frame_rate_hz * rate)
                parts.append(_window_columns(mono, a, b))
            drums = np.concatenate(parts)
        melody = None
        if any(w.melody_salience is not None for w in self.windows):
            bins = max(
                np.shape(w.melody_salience)[0]
                for w in self.windows
                if w.melody_salience is not None
            )
            parts = []
            for window, (start, end) in zip(self.windows, spans, strict=True):
                given = window.melody_salience
                salience = np.zeros((bins, 0)) if given is None else np.asarray(given)
                parts.append(_window_columns(salience, start, end))
            melody = np.concatenate(parts, axis=1)
        return GenerationRequest(
            text=first.text,
            chord_indices=None if chords is None else tuple(chords),
            drums_wav=drums,
            drums_sample_rate=first.drums_sample_rate,
            melody_salience=melody,
            beat_seconds=tuple(beats),
            downbeat_seconds=tuple(downbeats),
            duration_seconds=total / frame_rate_hz,
            seed=first.seed,
            steps=first.steps,
            sampler=first.sampler,
            cfg_all=first.cfg_all,
            cfg_text=first.cfg_text,
            separate_drums=first.separate_drums,
        )


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

    def generate_long(
        self,
        request: LongRequest,
        progress: ProgressFn | None = None,
        should_cancel: CancelFn | None = None,
        on_window: WindowFn | None = None,
    ) -> GenerationResult:
        """The whole piece as one mono signal from the first window's first sample; `progress`
        counts the steps of every window against a total known before the first."""
        ...
