"""Musical time -> engine input: the one place where bars become seconds and frames.

Both the `render` command and the daemon go through here:

    window = plan_window(song.tempo_map, start_bar=5, bars=4, segment_seconds=10.0)
    conditioned = build_request(window, chords, vocabulary, renderer, prompt="funk, clavinet",
                                seed=1, steps=10, sampler="euler", cfg_all=1.25, cfg_text=2.5)
    result = renderer.generate(conditioned.request)

A window is a whole number of bars that starts on a bar line and fits in one engine segment
(JASCO: 10 s). Every time handed to the engine is in seconds from the window's start; chord
frames after the window's end (up to the segment's end) carry the song's next chords, so the
music runs on through the bar line instead of stopping before the cut.
"""

from __future__ import annotations

import math
import platform
import sys
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field

import numpy as np

from engine.request import GenerationRequest, GenerationResult, Renderer
from jasco_bridge import __version__
from jasco_bridge.errors import RenderError
from midi.chords import TimedChord
from midi.frames import chord_frames, melody_salience
from midi.notes import Note
from midi.tempo import TempoMap
from midi.vocabulary import ChordVocabulary

DEFAULT_MAX_BARS = 4
_FIT_TOLERANCE_SECONDS = 1e-9


@dataclass(frozen=True)
class BarWindow:
    """`bars` whole bars from 1-based `start_bar`, in beats and in seconds from the song's start."""

    start_bar: int
    bars: int
    start_beat: float
    end_beat: float
    start_seconds: float
    end_seconds: float
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

    def seconds_from_start(self, beat: float) -> float:
        """Seconds from the window's first sample to `beat` (a song position)."""
        return self.tempo_map.seconds_at(beat) - self.start_seconds

    def horizon_beat(self, segment_seconds: float) -> float:
        """The song beat where an engine segment that starts with this window ends.

        The engine hears a whole segment, past the window's last bar line: chords and melody
        up to here keep the music going through the cut.
        """
        return self.tempo_map.beat_at(self.start_seconds + segment_seconds)


def _window(tempo_map: TempoMap, start_bar: int, bars: int) -> BarWindow:
    start_beat, end_beat = tempo_map.bar_window(start_bar, bars)
    return BarWindow(
        start_bar=start_bar,
        bars=bars,
        start_beat=start_beat,
        end_beat=end_beat,
        start_seconds=tempo_map.seconds_at(start_beat),
        end_seconds=tempo_map.seconds_at(end_beat),
        tempo_map=tempo_map,
    )


def bars_that_fit(tempo_map: TempoMap, start_bar: int, segment_seconds: float) -> int:
    """How many whole bars from `start_bar` last at most `segment_seconds` (0 if not even one)."""
    bars = 0
    while _window(tempo_map, start_bar, bars + 1).duration_seconds <= (
        segment_seconds + _FIT_TOLERANCE_SECONDS
    ):
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
    window = _window(tempo_map, start_bar, bars)
    if window.duration_seconds <= segment_seconds + _FIT_TOLERANCE_SECONDS:
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

    def __str__(self) -> str:
        arrow = "=" if self.exact else "->"
        return f"beats {self.start_beat:g}-{self.end_beat:g}: {self.given} {arrow} {self.label}"


@dataclass(frozen=True)
class ConditionedRequest:
    request: GenerationRequest
    window: BarWindow
    chord_report: tuple[ChordUse, ...]

    def describe_render(self, result: GenerationResult) -> dict[str, object]:
        """What a clip's sidecar says about how it was rendered (the same for CLI and daemon)."""
        request = self.request
        return {
            "preview": result.engine == "preview",
            "engine": result.engine,
            "model": result.model,
            "prompt": request.text,
            "seed": result.seed,
            "steps": result.steps,
            "sampler": result.sampler,
            "precision": result.precision,
            "cfg_all": request.cfg_all,
            "cfg_text": request.cfg_text,
            "chords": [asdict(use) for use in self.chord_report],
            "melody_used": request.melody_salience is not None,
            "drums_used": request.drums_wav is not None,
            "versions": library_versions(),
        }


def library_versions() -> dict[str, str]:
    """The versions that decide what a clip sounds like, for its sidecar."""
    versions = {
        "jasco_bridge": __version__,
        "python": platform.python_version(),
        "numpy": np.__version__,
    }
    torch = sys.modules.get("torch")  # only loaded (and only relevant) when JASCO rendered
    if torch is not None:
        versions["torch"] = str(torch.__version__)
    return versions


def _chord_segments(
    window: BarWindow,
    chords: Sequence[TimedChord],
    vocabulary: ChordVocabulary,
    horizon_beat: float,
) -> tuple[list[tuple[float, float, int]], list[ChordUse]]:
    segments: list[tuple[float, float, int]] = []
    report: list[ChordUse] = []
    for timed in sorted(chords, key=lambda c: c.start_beat):
        start = max(timed.start_beat, window.start_beat)
        end = min(timed.end_beat, horizon_beat)
        if end <= start:
            continue
        match = vocabulary.map_chord(timed.chord)
        segments.append(
            (window.seconds_from_start(start), window.seconds_from_start(end), match.index)
        )
        if start < window.end_beat:
            report.append(
                ChordUse(
                    start_beat=start,
                    end_beat=min(end, window.end_beat),
                    given=timed.chord.harte if timed.chord is not None else "N",
                    label=match.label,
                    index=match.index,
                    exact=match.exact,
                )
            )
    return segments, report


def _cut_stem(
    stem: np.ndarray, sample_rate: int, start_seconds: float, seconds: float
) -> np.ndarray:
    """The part of a song-long stem (sample 0 = beat 0) that the window's segment covers."""
    audio = np.asarray(stem, dtype=np.float32)
    first = int(round(start_seconds * sample_rate))
    last = first + int(math.ceil(seconds * sample_rate))
    return audio[..., first:last]


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
    melody_notes: Sequence[Note] | None = None,
) -> ConditionedRequest:
    """The engine request for `window`: chords as vocabulary indices per frame (no chord where
    none is given), the beat grid in window seconds, and the window's part of a song-long drum
    stem (sample 0 = beat 0 of the song) and melody."""
    segment = renderer.segment_seconds
    n_frames = int(round(segment * renderer.frame_rate_hz))
    horizon_beat = window.horizon_beat(segment)
    segments, report = _chord_segments(window, chords, vocabulary, horizon_beat)
    frames = chord_frames(
        segments,
        0.0,
        n_frames=n_frames,
        frame_rate_hz=renderer.frame_rate_hz,
        fill_index=vocabulary.no_chord_index,
    )
    salience = None
    if melody_notes:
        notes_in_seconds = [
            (
                window.seconds_from_start(n.start_beat),
                window.seconds_from_start(n.end_beat),
                n.pitch,
            )
            for n in melody_notes
            if n.end_beat > window.start_beat and n.start_beat < horizon_beat
        ]
        salience = melody_salience(
            notes_in_seconds, 0.0, n_frames=n_frames, frame_rate_hz=renderer.frame_rate_hz
        )
    beats = window.tempo_map.beat_grid(window.start_beat, window.end_beat)
    downbeats = window.tempo_map.downbeats(window.start_beat, window.end_beat)
    request = GenerationRequest(
        text=prompt,
        chord_indices=tuple(int(i) for i in frames),
        drums_wav=(
            _cut_stem(drums_wav, drums_sample_rate, window.start_seconds, segment)
            if drums_wav is not None
            else None
        ),
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
    return ConditionedRequest(request, window, tuple(report))
