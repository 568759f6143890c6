"""Per-frame rows for the engine: chord indices and melody salience on a fixed frame clock.

JASCO reads conditions at 50 frames per second: frame ``k`` of a window describes the moment
``window_start_seconds + k / frame_rate_hz``. Every time here is turned into a position in
frames once, ``(seconds - window_start_seconds) * frame_rate_hz``, and compared with the whole
number ``k``, so no rounding error builds up along a window and a chord that changes exactly on
a frame's moment is heard from that frame on, however the seconds were computed.

    >>> chord_frames([(0.0, 0.1, 7), (0.1, 0.2, 3)], 0.0, n_frames=12, fill_index=0)
    [7, 7, 7, 7, 7, 3, 3, 3, 3, 3, 0, 0]
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

from midi.checks import is_finite_number, is_whole_number
from midi.errors import TempoMapError
from midi.tempo import TempoMap

MELODY_BINS = 53
MELODY_LOWEST_PITCH = 43  # G2: bin 0 of JASCO's salience rows; bin 52 is B6 (MIDI 95)
MELODY_HIGHEST_PITCH = MELODY_LOWEST_PITCH + MELODY_BINS - 1
# Positions this close to a whole frame count as on it (float noise from beats -> seconds).
_ON_FRAME = 1e-6


def _check_clock(window_start_seconds: float, n_frames: int, frame_rate_hz: float) -> None:
    if not is_finite_number(window_start_seconds):
        raise TempoMapError(
            f"window_start_seconds must be a finite number, got {window_start_seconds!r}"
        )
    if not is_whole_number(n_frames) or n_frames < 0:
        raise TempoMapError(f"n_frames must be a whole number >= 0, got {n_frames!r}")
    if not is_finite_number(frame_rate_hz) or frame_rate_hz <= 0:
        raise TempoMapError(f"frame_rate_hz must be a positive number, got {frame_rate_hz!r}")


def _positions(
    seconds: np.ndarray, window_start_seconds: float, frame_rate_hz: float
) -> np.ndarray:
    return (seconds - window_start_seconds) * frame_rate_hz


def _spans(
    spans_in_seconds: Iterable[tuple[float, float, int]], what: str
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rows = list(spans_in_seconds)
    starts = np.array([row[0] for row in rows], dtype=np.float64)
    ends = np.array([row[1] for row in rows], dtype=np.float64)
    values = np.array([row[2] for row in rows], dtype=np.int64)
    bad = ~(np.isfinite(starts) & np.isfinite(ends) & (ends > starts))
    if bad.any():
        first = rows[int(np.argmax(bad))]
        raise TempoMapError(
            f"{what} {first!r} must be (start_seconds, end_seconds, value) with finite times "
            "and end after start"
        )
    return starts, ends, values


def chord_frames(
    segments_in_seconds: Iterable[tuple[float, float, int]],
    window_start_seconds: float,
    n_frames: int = 500,
    frame_rate_hz: float = 50.0,
    *,
    fill_index: int,
) -> list[int]:
    """The chord index sounding at each frame's moment; `fill_index` where no segment sounds.

    Segments are ``(start_seconds, end_seconds, index)`` on the song clock, half-open
    ``[start, end)``. They should not overlap; where they do, the one that started last wins,
    as a new chord replaces the sounding one.
    """
    _check_clock(window_start_seconds, n_frames, frame_rate_hz)
    starts, ends, indices = _spans(segments_in_seconds, "chord segment")
    frames = np.full(n_frames, fill_index, dtype=np.int64)
    if starts.size and n_frames:
        order = np.argsort(starts, kind="stable")
        start_pos = _positions(starts[order], window_start_seconds, frame_rate_hz)
        end_pos = _positions(ends[order], window_start_seconds, frame_rate_hz)
        k = np.arange(n_frames, dtype=np.float64) + _ON_FRAME
        latest = np.searchsorted(start_pos, k, side="right") - 1
        started = latest >= 0
        safe = np.where(started, latest, 0)
        sounding = started & (k < end_pos[safe])
        frames[sounding] = indices[order][safe[sounding]]
    return frames.tolist()


def fold_into_melody_range(pitches: np.ndarray) -> np.ndarray:
    """Move pitches by whole octaves into G2..B6 (MIDI 43..95), the range of JASCO's salience rows."""
    pitches = np.asarray(pitches, dtype=np.int64)
    octaves_up = np.where(
        pitches < MELODY_LOWEST_PITCH, -((pitches - MELODY_LOWEST_PITCH) // 12), 0
    )
    octaves_down = np.where(
        pitches > MELODY_HIGHEST_PITCH, -((MELODY_HIGHEST_PITCH - pitches) // 12), 0
    )
    return pitches + 12 * (octaves_up - octaves_down)


def melody_salience(
    notes_in_seconds: Iterable[tuple[float, float, int]],
    window_start_seconds: float,
    n_frames: int = 500,
    frame_rate_hz: float = 50.0,
) -> np.ndarray:
    """Rows ``[53, n_frames]`` float32: per frame, 1.0 at bin ``pitch - 43`` of the highest note.

    Notes are ``(start_seconds, end_seconds, pitch)``. The highest sounding note is chosen first,
    then folded by octaves into 43..95 when it lies outside; silent frames stay all zero.
    """
    _check_clock(window_start_seconds, n_frames, frame_rate_hz)
    starts, ends, pitches = _spans(notes_in_seconds, "melody note")
    top = np.full(n_frames, -1, dtype=np.int64)
    if pitches.size and n_frames:
        first = np.ceil(_positions(starts, window_start_seconds, frame_rate_hz) - _ON_FRAME)
        stop = np.ceil(_positions(ends, window_start_seconds, frame_rate_hz) - _ON_FRAME)
        first = np.clip(first, 0, n_frames).astype(np.int64)
        stop = np.clip(stop, 0, n_frames).astype(np.int64)
        inside = np.flatnonzero(stop > first)
        # Writing notes from low to high leaves the highest sounding pitch in each frame.
        for i in inside[np.argsort(pitches[inside], kind="stable")]:
            top[first[i] : stop[i]] = pitches[i]
    salience = np.zeros((MELODY_BINS, n_frames), dtype=np.float32)
    voiced = np.flatnonzero(top >= 0)
    salience[fold_into_melody_range(top[voiced]) - MELODY_LOWEST_PITCH, voiced] = 1.0
    return salience


def beat_seconds_in_window(
    tempo_map: TempoMap, window_start_seconds: float, duration_seconds: float
) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """(beat onsets, bar starts) inside the window, in seconds from the window's start."""
    if not is_finite_number(duration_seconds) or duration_seconds <= 0:
        raise TempoMapError(f"duration_seconds must be positive, got {duration_seconds!r}")
    start_beat = tempo_map.beat_at(window_start_seconds)
    end_beat = tempo_map.beat_at(window_start_seconds + duration_seconds)

    def window_seconds(beats: tuple[float, ...]) -> tuple[float, ...]:
        return tuple(tempo_map.seconds_at(beat) - window_start_seconds for beat in beats)

    return (
        window_seconds(tempo_map.beat_grid(start_beat, end_beat)),
        window_seconds(tempo_map.downbeats(start_beat, end_beat)),
    )
