"""Musical time -> engine input: the one place where bars become seconds and frames.

    window = plan_window(snapshot.tempo_map, start_bar=5, bars=4, segment_seconds=10.0)
    request, chords = condition(snapshot, window, renderer, vocabulary, seed=1)
    result = renderer.generate(request)

A `BarWindow` is a whole number of bars that starts on a bar line and fits in one engine segment
(JASCO: 10 s). It is the one description of "which part of the song" from planning to the clip's
sidecar: conditioning reads the segment it spans, `clips.save_clip` trims to its bars, and the
sidecar records it.

A longer render is a `RenderPlan`: the bars asked for (its `span`, what the clip is trimmed to)
and the windows that cover them, consecutive windows sharing `context_bars` whole bars. Windows
after the first start their engine segment on the render's frame grid, up to one frame before
their first bar line (`lead_seconds`), so the engine can join their latents frame on frame:

    plan = plan_render(tempo_map, start_bar=1, bars=32, segment_seconds=10.0, frame_rate_hz=50.0)
    requests = [condition(snapshot, w, renderer, vocabulary, seed=1,
                          duration_seconds=plan.engine_seconds(k))[0]
                for k, w in enumerate(plan.windows)]
    renderer.generate_long(LongRequest(tuple(requests), plan.overlap_frames))

Chords and melody are placed on the song clock and framed from the window's start (the engine
gets frames, and beat times in seconds from the window's start); chord frames after the
window's end (up to the segment's end, the window's horizon) carry the song's next chords, so
the music runs on through the bar line instead of stopping before the cut.

The chords come back as the `TimedChord`s of the window's bars, each carrying its vocabulary
match (`TimedChord.match`): what the user gave and what the engine hears, for reports and the
sidecar.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field, replace

import numpy as np

from engine.request import GenerationRequest, Renderer
from jasco_bridge.errors import RenderError
from jasco_bridge.session import SessionSnapshot
from midi.chords import TimedChord
from midi.frames import chord_frames, melody_salience
from midi.notes import Note
from midi.tempo import TempoMap
from midi.vocabulary import ChordVocabulary

DEFAULT_MAX_BARS = 4
MAX_RENDER_SECONDS = 600.0
"""The longest render: 10 minutes (about 60 JASCO windows)."""
MAX_RENDER_BARS = 4096
"""A bar count no render can reach within MAX_RENDER_SECONDS at any tempo the map takes."""
_FIT_TOLERANCE_SECONDS = 1e-9
_FRAME_TOLERANCE = 1e-6


@dataclass(frozen=True)
class BarWindow:
    """`bars` whole bars from 1-based `start_bar`, placed in an engine segment of
    `segment_seconds` that starts `lead_seconds` before the window (0 for a window alone, less
    than a frame inside a long render); beats and seconds count from the song start.

    `horizon_beat` is where that segment ends: the engine hears chords and melody up to there.
    """

    start_bar: int
    bars: int
    start_beat: float
    end_beat: float
    start_seconds: float
    end_seconds: float
    segment_seconds: float
    horizon_beat: float
    tempo_map: TempoMap = field(repr=False, compare=False)
    lead_seconds: float = 0.0

    def __post_init__(self) -> None:
        if self.start_bar < 1 or self.bars < 1:
            raise RenderError(
                f"a window needs start_bar >= 1 and bars >= 1, got {self.start_bar} and {self.bars}"
            )
        if not (self.end_beat > self.start_beat and self.end_seconds > self.start_seconds):
            raise RenderError(
                f"window end must come after its start, got beats {self.start_beat}-{self.end_beat}"
                f" and seconds {self.start_seconds}-{self.end_seconds}"
            )

    @classmethod
    def of_bars(
        cls,
        tempo_map: TempoMap,
        start_bar: int,
        bars: int,
        segment_seconds: float,
        lead_seconds: float = 0.0,
    ) -> BarWindow:
        """The window of these bars, without checking that they fit in the segment."""
        start_beat, end_beat = tempo_map.bar_window(start_bar, bars)
        start_seconds = tempo_map.seconds_at(start_beat)
        segment_end = start_seconds - lead_seconds + segment_seconds
        return cls(
            start_bar=start_bar,
            bars=bars,
            start_beat=start_beat,
            end_beat=end_beat,
            start_seconds=start_seconds,
            end_seconds=tempo_map.seconds_at(end_beat),
            segment_seconds=segment_seconds,
            horizon_beat=tempo_map.beat_at(segment_end),
            tempo_map=tempo_map,
            lead_seconds=lead_seconds,
        )

    @property
    def end_bar(self) -> int:
        """The last bar inside the window (inclusive, 1-based)."""
        return self.start_bar + self.bars - 1

    @property
    def duration_seconds(self) -> float:
        return self.end_seconds - self.start_seconds

    @property
    def length_beats(self) -> float:
        return self.end_beat - self.start_beat

    @property
    def segment_start_seconds(self) -> float:
        """Where the engine segment (its first frame and first sample) starts in the song."""
        return self.start_seconds - self.lead_seconds

    @property
    def fits(self) -> bool:
        """True when the bars (and the lead before them) last no longer than the segment."""
        used = self.end_seconds - self.segment_start_seconds
        return used <= self.segment_seconds + _FIT_TOLERANCE_SECONDS

    def seconds_from_start(self, beat: float) -> float:
        """Seconds from the engine segment's first sample to `beat` (a song position)."""
        return self.tempo_map.seconds_at(beat) - self.segment_start_seconds

    def describe(self) -> dict[str, float | int]:
        """The window as plain JSON values, for a clip's sidecar."""
        return {
            "start_bar": self.start_bar,
            "bars": self.bars,
            "start_beat": self.start_beat,
            "length_beats": self.length_beats,
            "start_seconds": self.start_seconds,
            "duration_seconds": self.duration_seconds,
            "segment_seconds": self.segment_seconds,
        }


def bars_that_fit(tempo_map: TempoMap, start_bar: int, segment_seconds: float) -> int:
    """How many whole bars from `start_bar` last at most `segment_seconds` (0 if not even one)."""
    bars = 0
    while BarWindow.of_bars(tempo_map, start_bar, bars + 1, segment_seconds).fits:
        bars += 1
    return bars


def _tempo_words(tempo_map: TempoMap, start_beat: float, end_beat: float) -> str:
    bpms = {tempo_map.bpm_at(start_beat)}
    bpms.update(c.bpm for c in tempo_map.tempos if start_beat <= c.beat < end_beat)
    low, high = min(bpms), max(bpms)
    return f"{low:g} bpm" if low == high else f"{low:g}-{high:g} bpm"


def plan_window(
    tempo_map: TempoMap, start_bar: int, bars: int | None, segment_seconds: float
) -> BarWindow:
    """The window of `bars` bars from `start_bar`; with `bars=None`, as many whole bars as fit
    in one segment, at most `DEFAULT_MAX_BARS`. Raises `RenderError` when they do not fit."""
    if not (isinstance(start_bar, int) and start_bar >= 1):
        raise RenderError(f"start bar must be a whole number >= 1, got {start_bar!r}")
    if bars is not None and not (isinstance(bars, int) and bars >= 1):
        raise RenderError(f"bars must be a whole number >= 1, got {bars!r}")
    if bars is None:
        bars = max(1, min(bars_that_fit(tempo_map, start_bar, segment_seconds), DEFAULT_MAX_BARS))
    window = BarWindow.of_bars(tempo_map, start_bar, bars, segment_seconds)
    if window.fits:
        return window
    # Counting what does fit is only needed for the advice, not on the daemon's hot path.
    fitting = bars_that_fit(tempo_map, start_bar, segment_seconds)
    tempo = _tempo_words(tempo_map, window.start_beat, window.end_beat)
    span = f"bar {start_bar}" if bars == 1 else f"bars {start_bar}-{window.end_bar}"
    advice = (
        f"ask for at most {fitting} bar{'s' if fitting != 1 else ''} here"
        if fitting
        else "a single bar is too long at this tempo; double the tempo in the DAW and halve the bars"
    )
    raise RenderError(
        f"{span} last {window.duration_seconds:.1f} s at {tempo}; "
        f"JASCO renders at most {segment_seconds:g} s per clip: {advice}"
    )


def bars_to_song_end(tempo_map: TempoMap, start_bar: int, last_beat: float) -> int:
    """Bars from `start_bar` to the bar holding the song's last note (`last_beat`, where it
    ends), for `--bars all`; a note ending on a bar line does not open the next bar."""
    if last_beat <= 0:
        raise RenderError(
            "the song has no notes to render to the end of: give a bar count instead of 'all'"
        )
    where = tempo_map.position_at(last_beat)
    last_bar = where.bar - 1 if where.beat == 1.0 else where.bar
    if last_bar < start_bar:
        raise RenderError(
            f"the song's last note ends in bar {last_bar}, before start bar {start_bar}: "
            "start earlier or give a bar count"
        )
    return last_bar - start_bar + 1


@dataclass(frozen=True)
class RenderPlan:
    """The bars of one render and the windows that cover them.

    `span` is all the bars asked for (the clip is trimmed to it); `windows` are engine segments
    of whole bars, window k sharing its first `overlap_bars(k)` bars with window k-1. One window
    is a plain render; more are rendered as a continuation (`engine.request.LongRequest`) on a
    frame grid from the span's start: window k's segment starts on frame `offset_frames[k]`,
    lasts `window_frames[k]` frames and repeats the last `overlap_frames[k]` frames of window k-1.
    """

    span: BarWindow
    windows: tuple[BarWindow, ...]
    frame_rate_hz: float
    offset_frames: tuple[int, ...]
    window_frames: tuple[int, ...]
    overlap_frames: tuple[int, ...]

    @property
    def is_long(self) -> bool:
        return len(self.windows) > 1

    def engine_seconds(self, index: int) -> float | None:
        """The duration window `index`'s request has: None (its bars) for a one-window plan,
        its whole frames in a long one."""
        return self.window_frames[index] / self.frame_rate_hz if self.is_long else None

    def overlap_bars(self, index: int) -> int:
        if index == 0:
            return 0
        return self.windows[index - 1].end_bar - self.windows[index].start_bar + 1

    def describe_window(self, index: int) -> dict[str, float | int]:
        """Window `index` as plain JSON values, for the sidecar's `windows` list."""
        window = self.windows[index]
        return {
            "index": index,
            "start_bar": window.start_bar,
            "bars": window.bars,
            "start_beat": window.start_beat,
            "length_beats": window.length_beats,
            "start_seconds": window.start_seconds,
            "duration_seconds": window.duration_seconds,
            "segment_start_seconds": window.segment_start_seconds,
            "overlap_bars": self.overlap_bars(index),
            "overlap_frames": self.overlap_frames[index],
            "overlap_seconds": self.overlap_frames[index] / self.frame_rate_hz,
        }


def _frames_used(
    tempo_map: TempoMap, start_bar: int, bars: int, origin: float, offset: int, frame_rate_hz: float
) -> int:
    end = tempo_map.seconds_at(tempo_map.bar_start_beat(start_bar + bars))
    return math.ceil((end - origin) * frame_rate_hz - offset - _FRAME_TOLERANCE)


def _window_at(
    tempo_map: TempoMap,
    start_bar: int,
    last_bar: int,
    origin: float,
    segment_seconds: float,
    frame_rate_hz: float,
) -> tuple[int, int, int, float]:
    """(bars, offset frame, frames, lead seconds) of the longest window from `start_bar` (not
    past `last_bar`) whose segment starts on the frame grid at or before the bar line."""
    bar_seconds = tempo_map.seconds_at(tempo_map.bar_start_beat(start_bar))
    offset = math.floor((bar_seconds - origin) * frame_rate_hz + _FRAME_TOLERANCE)
    lead = max(bar_seconds - (origin + offset / frame_rate_hz), 0.0)
    limit = round(segment_seconds * frame_rate_hz)
    bars = 0
    while (
        start_bar + bars <= last_bar
        and _frames_used(tempo_map, start_bar, bars + 1, origin, offset, frame_rate_hz) <= limit
    ):
        bars += 1
    frames = _frames_used(tempo_map, start_bar, max(bars, 1), origin, offset, frame_rate_hz)
    return bars, offset, frames, lead


def plan_render(
    tempo_map: TempoMap,
    start_bar: int,
    bars: int | None,
    segment_seconds: float,
    frame_rate_hz: float,
    *,
    context_bars: int = 1,
) -> RenderPlan:
    """The windows for `bars` bars from `start_bar` (None: one window, as `plan_window`).

    Bars that fit one segment are one window. Longer spans (up to MAX_RENDER_SECONDS) are cut
    greedily into windows of as many whole bars as fit, each next one starting `context_bars`
    bars before the previous one ends (fewer where slower bars leave no room for a new bar);
    tempo and meter changes anywhere, overlaps included, only change how many bars fit.
    Raises RenderError for a span past the cap or a bar that cannot share a window.
    """
    if not (isinstance(start_bar, int) and start_bar >= 1):
        raise RenderError(f"start bar must be a whole number >= 1, got {start_bar!r}")
    if bars is not None and not (isinstance(bars, int) and 1 <= bars <= MAX_RENDER_BARS):
        raise RenderError(f"bars must be a whole number 1..{MAX_RENDER_BARS}, got {bars!r}")
    if bars is None or BarWindow.of_bars(tempo_map, start_bar, bars, segment_seconds).fits:
        window = plan_window(tempo_map, start_bar, bars, segment_seconds)
        return RenderPlan(window, (window,), frame_rate_hz, (0,), (0,), (0,))
    if not (isinstance(context_bars, int) and context_bars >= 1):
        raise RenderError(f"context_bars must be a whole number >= 1, got {context_bars!r}")
    span = BarWindow.of_bars(tempo_map, start_bar, bars, segment_seconds)
    if span.duration_seconds > MAX_RENDER_SECONDS + _FIT_TOLERANCE_SECONDS:
        raise RenderError(
            f"bars {start_bar}-{span.end_bar} last {span.duration_seconds:.0f} s; one render "
            f"is at most {MAX_RENDER_SECONDS / 60:g} minutes: render the song in parts"
        )
    origin, last_bar = span.start_seconds, span.end_bar
    windows: list[BarWindow] = []
    offsets: list[int] = []
    frames: list[int] = []
    overlaps: list[int] = []
    bar = start_bar
    while True:
        count, offset, used, lead = _window_at(
            tempo_map, bar, last_bar, origin, segment_seconds, frame_rate_hz
        )
        if count == 0:
            raise _bar_too_long(tempo_map, bar, segment_seconds)
        overlaps.append(0 if not offsets else offsets[-1] + frames[-1] - offset)
        windows.append(BarWindow.of_bars(tempo_map, bar, count, segment_seconds, lead))
        offsets.append(offset)
        frames.append(used)
        end_bar = bar + count - 1
        if end_bar == last_bar:
            break
        bar = _next_start(
            tempo_map,
            end_bar,
            count,
            last_bar,
            origin,
            segment_seconds,
            frame_rate_hz,
            context_bars,
        )
    return RenderPlan(
        span, tuple(windows), frame_rate_hz, tuple(offsets), tuple(frames), tuple(overlaps)
    )


def _next_start(
    tempo_map: TempoMap,
    end_bar: int,
    count: int,
    last_bar: int,
    origin: float,
    segment_seconds: float,
    frame_rate_hz: float,
    context_bars: int,
) -> int:
    """The first bar of the window after one ending on `end_bar`: `context_bars` back, or as
    many as still leave the next window at least one new bar."""
    for context in range(min(context_bars, count - 1), 0, -1):
        start = end_bar + 1 - context
        fitting, *_ = _window_at(tempo_map, start, last_bar, origin, segment_seconds, frame_rate_hz)
        if fitting > context:
            return start
    if not BarWindow.of_bars(tempo_map, end_bar + 1, 1, segment_seconds).fits:
        raise _bar_too_long(tempo_map, end_bar + 1, segment_seconds)
    seconds = BarWindow.of_bars(tempo_map, end_bar, 2, segment_seconds).duration_seconds
    raise RenderError(
        f"bars {end_bar}-{end_bar + 1} last {seconds:.1f} s: a long render needs a bar of "
        f"context and a new bar in one {segment_seconds:g} s window; double the tempo in the "
        "DAW and the bars"
    )


def _bar_too_long(tempo_map: TempoMap, bar: int, segment_seconds: float) -> RenderError:
    seconds = BarWindow.of_bars(tempo_map, bar, 1, segment_seconds).duration_seconds
    return RenderError(
        f"bar {bar} lasts {seconds:.1f} s, longer than JASCO's {segment_seconds:g} s window: "
        "double the tempo in the DAW and the bars, or render from a later bar"
    )


def merged_chords(
    plan: RenderPlan, per_window: Sequence[Sequence[TimedChord]]
) -> tuple[TimedChord, ...]:
    """The chords of the whole span from each window's (placed in the vocabulary, as
    `condition` returns them): what a window shares with the one before is taken from the one
    before, a chord running across a window start is one."""
    merged: list[TimedChord] = []
    for index, chords in enumerate(per_window):
        from_beat = plan.windows[index - 1].end_beat if index else -math.inf
        for timed in chords:
            if timed.end_beat <= from_beat:
                continue
            if timed.start_beat < from_beat:
                timed = replace(timed, start_beat=from_beat)
            last = merged[-1] if merged else None
            if (
                last is not None
                and (last.match.index, last.harte) == (timed.match.index, timed.harte)
                and abs(last.end_beat - timed.start_beat) < 1e-9
            ):
                merged[-1] = replace(last, end_beat=timed.end_beat)
            else:
                merged.append(timed)
    return tuple(merged)


def _heard_chords(
    window: BarWindow, chords: Sequence[TimedChord], vocabulary: ChordVocabulary
) -> list[TimedChord]:
    """The chords the engine hears in the window's segment (from its first bar line to its
    horizon), cut to it, each with its vocabulary match."""
    heard: list[TimedChord] = []
    for timed in sorted(chords, key=lambda c: c.start_beat):
        start = max(timed.start_beat, window.start_beat)
        end = min(timed.end_beat, window.horizon_beat)
        if end > start:
            heard.append(vocabulary.map_timed(replace(timed, start_beat=start, end_beat=end)))
    return heard


def build_request(
    window: BarWindow,
    chords: Sequence[TimedChord],
    vocabulary: ChordVocabulary,
    renderer: Renderer,
    *,
    prompt: str,
    seed: int,
    steps: int,
    sampler: str,
    cfg_all: float,
    cfg_text: float,
    drums_wav: np.ndarray | None = None,
    drums_sample_rate: int = 32000,
    melody_notes: Sequence[Note] = (),
    duration_seconds: float | None = None,
) -> tuple[GenerationRequest, tuple[TimedChord, ...]]:
    """The engine request for `window`: chords as vocabulary indices per frame (no chord where
    none is given), the beat grid in segment seconds, the melody, and `drums_wav`: the window's
    drums, sample 0 = the segment's first sample. The request lasts the window's bars, or
    `duration_seconds` (a long render's windows last whole frames).

    Returned with the chords inside the window's bars, each with its vocabulary match."""
    n_frames = int(round(window.segment_seconds * renderer.frame_rate_hz))
    seconds_at = window.tempo_map.seconds_at
    heard = _heard_chords(window, chords, vocabulary)
    segments = [(seconds_at(c.start_beat), seconds_at(c.end_beat), c.match.index) for c in heard]
    frames = chord_frames(
        segments,
        window.segment_start_seconds,
        n_frames=n_frames,
        frame_rate_hz=renderer.frame_rate_hz,
        fill_index=vocabulary.no_chord_index,
    )
    salience = None
    if melody_notes:
        notes_in_seconds = [
            (seconds_at(n.start_beat), seconds_at(n.end_beat), n.pitch)
            for n in melody_notes
            if n.end_beat > window.start_beat and n.start_beat < window.horizon_beat
        ]
        salience = melody_salience(
            notes_in_seconds,
            window.segment_start_seconds,
            n_frames=n_frames,
            frame_rate_hz=renderer.frame_rate_hz,
        )
    beats = window.tempo_map.beat_grid(window.start_beat, window.end_beat)
    downbeats = window.tempo_map.downbeats(window.start_beat, window.end_beat)
    request = GenerationRequest(
        text=prompt,
        chord_indices=tuple(int(i) for i in frames),
        drums_wav=drums_wav,
        drums_sample_rate=drums_sample_rate,
        melody_salience=salience,
        beat_seconds=tuple(window.seconds_from_start(b) for b in beats),
        downbeat_seconds=tuple(window.seconds_from_start(b) for b in downbeats),
        duration_seconds=window.duration_seconds if duration_seconds is None else duration_seconds,
        seed=seed,
        steps=steps,
        sampler=sampler,
        cfg_all=cfg_all,
        cfg_text=cfg_text,
    )
    in_bars = tuple(
        replace(c, end_beat=min(c.end_beat, window.end_beat))
        for c in heard
        if c.start_beat < window.end_beat
    )
    return request, in_bars


def condition(
    snapshot: SessionSnapshot,
    window: BarWindow,
    renderer: Renderer,
    vocabulary: ChordVocabulary,
    *,
    seed: int,
    chords: Sequence[TimedChord] | None = None,
    duration_seconds: float | None = None,
) -> tuple[GenerationRequest, tuple[TimedChord, ...]]:
    """The engine request for `window` of a session: its chords, drums, melody and settings
    (exactly the window's own span of each; `duration_seconds` as in `build_request`), and the
    chords of the window's bars with their vocabulary matches.

    `chords`: the chord timeline when the caller has recognised it already (the render queue
    does, within a time limit, up to the end of a render's last window); by default it is taken
    from the snapshot."""
    settings = snapshot.settings
    drums_wav, drums_rate = None, renderer.sample_rate
    if snapshot.drums is not None:
        drums_wav, drums_rate = snapshot.drums.window_audio(
            snapshot.tempo_map,
            window.segment_start_seconds,
            window.segment_seconds,
            renderer.sample_rate,
        )
    return build_request(
        window,
        snapshot.chord_timeline(until_beat=window.horizon_beat) if chords is None else chords,
        vocabulary,
        renderer,
        prompt=snapshot.prompt,
        seed=seed,
        steps=settings.steps,
        sampler=settings.sampler,
        cfg_all=settings.cfg_all,
        cfg_text=settings.cfg_text,
        drums_wav=drums_wav,
        drums_sample_rate=drums_rate,
        # A chords-drums model has no melody input: the melody is left out (the sidecar says
        # so) rather than failing a render the producer asked for.
        melody_notes=snapshot.melody_notes if renderer.accepts_melody else (),
        duration_seconds=duration_seconds,
    )
