"""Musical time -> engine input: the one place where bars become seconds and frames.

    window = plan_window(snapshot.tempo_map, start_bar=5, bars=4, segment_seconds=10.0)
    conditioned = condition(snapshot, window, renderer, vocabulary, seed=1)
    result = renderer.generate(conditioned.request)

A `BarWindow` is a whole number of bars that starts on a bar line and fits in one engine segment
(JASCO: 10 s). It is the one description of "which part of the song" from planning to the clip's
sidecar: conditioning reads the segment it spans, `clips.save_clip` trims to its bars, and the
sidecar records it. A long render will be a list of such windows, overlapping by a bar or two,
each conditioned and rendered on its own; nothing here assumes a window is alone in its song.

Chords and melody are placed on the song clock and framed from the window's start (the engine
gets frames, and beat times in seconds from the window's start); chord frames after the
window's end (up to the segment's end, the window's horizon) carry the song's next chords, so
the music runs on through the bar line instead of stopping before the cut.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

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
_FIT_TOLERANCE_SECONDS = 1e-9


@dataclass(frozen=True)
class BarWindow:
    """`bars` whole bars from 1-based `start_bar`, placed in an engine segment of
    `segment_seconds` that starts with the window; beats and seconds count from the song start.

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
        cls, tempo_map: TempoMap, start_bar: int, bars: int, segment_seconds: float
    ) -> BarWindow:
        """The window of these bars, without checking that they fit in the segment."""
        start_beat, end_beat = tempo_map.bar_window(start_bar, bars)
        start_seconds = tempo_map.seconds_at(start_beat)
        return cls(
            start_bar=start_bar,
            bars=bars,
            start_beat=start_beat,
            end_beat=end_beat,
            start_seconds=start_seconds,
            end_seconds=tempo_map.seconds_at(end_beat),
            segment_seconds=segment_seconds,
            horizon_beat=tempo_map.beat_at(start_seconds + segment_seconds),
            tempo_map=tempo_map,
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
    def fits(self) -> bool:
        """True when the bars last no longer than the segment."""
        return self.duration_seconds <= self.segment_seconds + _FIT_TOLERANCE_SECONDS

    def seconds_from_start(self, beat: float) -> float:
        """Seconds from the window's first sample to `beat` (a song position)."""
        return self.tempo_map.seconds_at(beat) - self.start_seconds

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


@dataclass(frozen=True)
class ChordUse:
    """One chord inside the window: as given and as the engine will see it."""

    start_beat: float
    end_beat: float
    given: str  # Harte label of the chord as written or recognised, `N` for no chord
    label: str  # the vocabulary's label
    index: int
    exact: bool
    written: str | None = None  # the chord symbol as the user wrote it; None when recognised
    spelled: str = ""  # the label with root and bass named as written (Dbmaj7 for C#maj7)

    def __post_init__(self) -> None:
        if not self.spelled:
            object.__setattr__(self, "spelled", self.label)

    def __str__(self) -> str:
        arrow = "=" if self.exact else "->"
        given = self.given if self.written is None else self.written
        label = self.label if self.spelled == self.label else f"{self.label} ({self.spelled})"
        return f"beats {self.start_beat:g}-{self.end_beat:g}: {given} {arrow} {label}"


@dataclass(frozen=True)
class ConditionedRequest:
    """The engine request for a window, and how its chords were mapped (for the user)."""

    request: GenerationRequest
    chord_report: tuple[ChordUse, ...]


def _chord_segments(
    window: BarWindow, chords: Sequence[TimedChord], vocabulary: ChordVocabulary
) -> tuple[list[tuple[float, float, int]], list[ChordUse]]:
    segments: list[tuple[float, float, int]] = []
    report: list[ChordUse] = []
    for timed in sorted(chords, key=lambda c: c.start_beat):
        start = max(timed.start_beat, window.start_beat)
        end = min(timed.end_beat, window.horizon_beat)
        if end <= start:
            continue
        match = (
            vocabulary.map_chord(timed.chord)
            if timed.written is None
            else vocabulary.map_symbol(timed.written)  # keeps the user's spelling
        )
        tempo_map = window.tempo_map
        segments.append((tempo_map.seconds_at(start), tempo_map.seconds_at(end), match.index))
        if start < window.end_beat:
            report.append(
                ChordUse(
                    start_beat=start,
                    end_beat=min(end, window.end_beat),
                    given=timed.chord.harte if timed.chord is not None else "N",
                    label=match.label,
                    index=match.index,
                    exact=match.exact,
                    written=timed.written,
                    spelled=match.spelled,
                )
            )
    return segments, report


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
) -> ConditionedRequest:
    """The engine request for `window`: chords as vocabulary indices per frame (no chord where
    none is given), the beat grid in window seconds, the melody, and `drums_wav`: the window's
    drums, sample 0 = the window's first sample."""
    n_frames = int(round(window.segment_seconds * renderer.frame_rate_hz))
    segments, report = _chord_segments(window, chords, vocabulary)
    frames = chord_frames(
        segments,
        window.start_seconds,
        n_frames=n_frames,
        frame_rate_hz=renderer.frame_rate_hz,
        fill_index=vocabulary.no_chord_index,
    )
    salience = None
    if melody_notes:
        seconds_at = window.tempo_map.seconds_at
        notes_in_seconds = [
            (seconds_at(n.start_beat), seconds_at(n.end_beat), n.pitch)
            for n in melody_notes
            if n.end_beat > window.start_beat and n.start_beat < window.horizon_beat
        ]
        salience = melody_salience(
            notes_in_seconds,
            window.start_seconds,
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
        duration_seconds=window.duration_seconds,
        seed=seed,
        steps=steps,
        sampler=sampler,
        cfg_all=cfg_all,
        cfg_text=cfg_text,
    )
    return ConditionedRequest(request, tuple(report))


def condition(
    snapshot: SessionSnapshot,
    window: BarWindow,
    renderer: Renderer,
    vocabulary: ChordVocabulary,
    *,
    seed: int,
    chords: Sequence[TimedChord] | None = None,
) -> ConditionedRequest:
    """The engine request for `window` of a session: its chords, drums, melody and settings.

    `chords`: the window's chord timeline when the caller has recognised it already (the
    render queue does, within a time limit); by default it is taken from the snapshot."""
    settings = snapshot.settings
    drums_wav, drums_rate = None, renderer.sample_rate
    if snapshot.drums is not None:
        drums_wav, drums_rate = snapshot.drums.window_audio(
            snapshot.tempo_map, window.start_seconds, window.segment_seconds, renderer.sample_rate
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
    )
