"""Where the DAW's transport is: the bar phase that auditions and drum takes line up with.

Pure timing, no audio and no network. All times are seconds on one monotonic clock (the daemon's
`time.monotonic`, injected for tests). A `TransportReading` is one observation "beat B was
sounding at time T"; from it and the session's tempo map the functions here answer what a
player needs: the beat at any time, the time of any beat, and when the next bar starts.

Three sources, in this order of precedence (docs/osc.md says the same):

1. Ableton Link, when the daemon joined a Link session that has at least one other peer. Link
   knows tempo and bar phase (its quantum is the session's bar) but not the song position.
2. `/jasco/transport` from a DAW script: playing state and the song beat at the moment it was
   sent. It knows the song position, so a drum take can start on the very bar asked for.
3. None: nothing is known, so an audition starts at once and a take starts after its count-in.

    transport = Transport(clock=time.monotonic)
    transport.report_osc(playing=True, beat=14.5)
    reading = transport.reading()
    when, bar = next_bar(reading, tempo_map, now=time.monotonic())
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal, Protocol

from jasco_bridge.errors import SessionError
from midi.tempo import TempoMap

Source = Literal["link", "osc", "none"]


@dataclass(frozen=True)
class TransportReading:
    """One observation of the transport: `beat` was sounding at `at_seconds`.

    For "osc" `beat` is the song position (0 = bar 1) and the session's tempo map times it;
    for "link" it is Link's beat, timed by Link's own `bpm`, and only its phase within a bar
    counts. "none" readings are never playing.
    """

    source: Source
    playing: bool
    beat: float = 0.0
    at_seconds: float = 0.0
    bpm: float | None = None

    def __post_init__(self) -> None:
        if not (math.isfinite(self.beat) and math.isfinite(self.at_seconds)):
            raise SessionError(f"transport beat and time must be finite, got {self!r}")
        if self.source == "link" and not (self.bpm is not None and self.bpm > 0):
            raise SessionError(f"a Link reading needs a positive tempo, got {self.bpm!r}")

    @property
    def knows_song_position(self) -> bool:
        return self.source == "osc" and self.playing


NOT_PLAYING = TransportReading("none", False)


def beat_at(reading: TransportReading, tempo_map: TempoMap, seconds: float) -> float:
    """The beat sounding at clock time `seconds` (the reading's beat when it is stopped)."""
    if not reading.playing:
        return reading.beat
    elapsed = seconds - reading.at_seconds
    if reading.source == "link":
        return reading.beat + elapsed * reading.bpm / 60.0  # type: ignore[operator]
    return tempo_map.beat_at(tempo_map.seconds_at(reading.beat) + elapsed)


def time_of_beat(reading: TransportReading, tempo_map: TempoMap, beat: float) -> float:
    """The clock time at which `beat` sounds while the transport keeps playing."""
    if not reading.playing:
        raise SessionError("the transport is stopped: no beat has a time")
    if reading.source == "link":
        return reading.at_seconds + (beat - reading.beat) * 60.0 / reading.bpm  # type: ignore[operator]
    return reading.at_seconds + tempo_map.seconds_at(beat) - tempo_map.seconds_at(reading.beat)


def link_bar_beats(tempo_map: TempoMap) -> float:
    """Link's quantum: one bar of the session's first meter, in quarter notes."""
    return tempo_map.beats_per_bar_at(0.0)


def next_bar(
    reading: TransportReading, tempo_map: TempoMap, now: float
) -> tuple[float, int | None]:
    """(clock time, 1-based bar) of the first bar line at or after `now`.

    Stopped or unknown transport: `(now, None)`, play at once. Link: the next multiple of the
    bar in Link's beats (bar None: Link has no song position). A bar line less than a
    millisecond ago counts as now.
    """
    if not reading.playing:
        return now, None
    beat = beat_at(reading, tempo_map, now)
    if reading.source == "link":
        quantum = link_bar_beats(tempo_map)
        target = math.ceil((beat - _EPSILON_BEATS) / quantum) * quantum
        return time_of_beat(reading, tempo_map, target), None
    if beat < 0:
        return time_of_beat(reading, tempo_map, 0.0), 1
    position = tempo_map.position_at(beat)
    bar = position.bar
    if tempo_map.bar_start_beat(bar) < beat - _EPSILON_BEATS:
        bar += 1
    return time_of_beat(reading, tempo_map, tempo_map.bar_start_beat(bar)), bar


_EPSILON_BEATS = 1e-3


def take_start(
    reading: TransportReading,
    tempo_map: TempoMap,
    start_bar: int,
    count_in_bars: int,
    now: float,
    lead_seconds: float,
) -> float:
    """When a take of `start_bar` must start recording, on the clock.

    With the song position known (OSC, playing) it is the bar's own time, which must still be
    `lead_seconds` away (devices take a moment to open). Otherwise the take starts on the first
    bar line (Link) or moment (none) after `lead_seconds` plus the count-in, so the click is
    heard in full before it.
    """
    count_in = count_in_bars * bar_seconds(tempo_map, start_bar)
    if reading.knows_song_position:
        begins = time_of_beat(reading, tempo_map, tempo_map.bar_start_beat(start_bar))
        if begins < now + lead_seconds:
            position = tempo_map.position_at(max(beat_at(reading, tempo_map, now), 0.0))
            raise SessionError(
                f"bar {start_bar} is already passing (the DAW is at bar {position.bar}); "
                "record a later bar, or start the transport earlier"
            )
        return begins
    earliest = now + lead_seconds + count_in
    when, _ = next_bar(reading, tempo_map, earliest)
    return when


def bar_seconds(tempo_map: TempoMap, bar: int) -> float:
    """How long 1-based `bar` lasts in seconds."""
    start, end = tempo_map.bar_window(bar, 1)
    return tempo_map.seconds_at(end) - tempo_map.seconds_at(start)


class LinkSource(Protocol):
    """What the transport needs from an Ableton Link session (`jasco_bridge.link` gives one)."""

    def reading(self, clock: Callable[[], float], bar_beats: float) -> TransportReading | None:
        """A reading stamped with `clock` (bars of `bar_beats` quarter notes), or None when no
        other Link peer is there."""


class Transport:
    """The transport of one session: the latest `/jasco/transport` and, optionally, Link."""

    def __init__(
        self, clock: Callable[[], float] = time.monotonic, link: LinkSource | None = None
    ) -> None:
        self._clock = clock
        self._link = link
        self._osc = NOT_PLAYING

    def report_osc(self, playing: bool, beat: float, age_seconds: float = 0.0) -> None:
        """The DAW says: `beat` was sounding `age_seconds` ago, and the transport is (not)
        playing."""
        if not (math.isfinite(beat) and beat >= 0):
            raise SessionError(f"transport beat must be a number >= 0, got {beat!r}")
        if not (math.isfinite(age_seconds) and 0 <= age_seconds <= 10):
            raise SessionError(
                f"transport latency must be 0..10000 ms, got {age_seconds * 1000:g} ms"
            )
        self._osc = TransportReading("osc", bool(playing), beat, self._clock() - age_seconds)

    def reading(self, tempo_map: TempoMap) -> TransportReading:
        """The reading of the source that wins now: Link with peers, a playing DAW, or none."""
        if self._link is not None:
            linked = self._link.reading(self._clock, link_bar_beats(tempo_map))
            if linked is not None:
                return linked
        if self._osc.playing:
            return self._osc
        return NOT_PLAYING

    def use_link(self, link: LinkSource) -> None:
        self._link = link

    def now(self) -> float:
        return self._clock()
