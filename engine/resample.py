"""The one resampler of the project: soxr, high quality, channels first like the engine."""

from __future__ import annotations

import numpy as np


def resample(audio: np.ndarray, from_rate: int, to_rate: int) -> np.ndarray:
    """`[samples]` or `[channels, samples]` float audio at `from_rate` -> the same at `to_rate`.

    Returned unchanged when the rates agree; otherwise float32.
    """
    if from_rate == to_rate:
        return audio
    import soxr  # only needed when the rates differ

    # soxr wants [samples, channels].
    frames_last = np.ascontiguousarray(audio.T if audio.ndim == 2 else audio, dtype=np.float32)
    resampled = soxr.resample(frames_last, from_rate, to_rate, quality="HQ")
    return np.ascontiguousarray(resampled.T if audio.ndim == 2 else resampled, dtype=np.float32)
