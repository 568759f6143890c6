"""Which track carries the chords: the user's choice, or the best harmony track by content.

    >>> choice = choose_chord_track(song)                       # doctest: +SKIP
    >>> choice.reason                                           # doctest: +SKIP
    "track 3 'PIANO': 2 or more notes sound together 84% of the time, 3 or more pitch classes
    16%, average pitch D4 (most polyphonic of 3 tracks; its name suggests chords)"
    >>> choose_chord_track(song, "piano").track.index           # doctest: +SKIP
    3

The automatic choice never takes a drum track. It scores what a track plays, so unnamed tracks
are judged as well as named ones: chords mean several notes at once (polyphony), several pitch
classes at once, for much of the song, usually below the melody. A track name such as "Piano" or
"Pad" adds a little, "Lead" or "Bass" takes a little away; content decides when names are absent.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass
from numbers import Integral

from midi.errors import TrackSelectionError
from midi.notes import NoteTrack, pitch_name
from midi.smf import MidiSong

CHORD_NAME_HINTS = ("chord", "piano", "pad", "keys", "comp", "harm", "accomp", "guitar", "organ")
NON_CHORD_NAME_HINTS = ("melody", "vocal", "voice", "lead", "bass", "drum", "solo", "perc")
_NAME_WEIGHT = 0.25
# A track sounding for less than this share of the song's span counts proportionally less.
_FULL_COVERAGE = 0.25
_REGISTER_CENTRE = 72  # C5: chord parts usually sit below it, melodies around or above it


@dataclass(frozen=True)
class TrackProfile:
    """What a track plays, as the fractions that decide whether it carries the harmony.

    Fractions are of the time during which the track sounds at all.
    """

    track: NoteTrack
    two_notes_fraction: float  # time with 2 or more notes sounding
    three_classes_fraction: float  # time with 3 or more distinct pitch classes sounding
    coverage: float  # sounding time / span from the song start to the last note end
    mean_pitch: float

    @property
    def polyphony(self) -> float:
        return (self.two_notes_fraction + self.three_classes_fraction) / 2.0

    @property
    def name_bonus(self) -> float:
        words = re.sub(r"[^a-z]+", " ", self.track.name.lower())
        bonus = 0.0
        if any(hint in words for hint in CHORD_NAME_HINTS):
            bonus += _NAME_WEIGHT
        if any(hint in words for hint in NON_CHORD_NAME_HINTS):
            bonus -= _NAME_WEIGHT
        return bonus

    @property
    def score(self) -> float:
        coverage_factor = min(1.0, self.coverage / _FULL_COVERAGE)
        register = max(-0.1, min(0.1, (_REGISTER_CENTRE - self.mean_pitch) / 120.0))
        return self.polyphony * coverage_factor + register + self.name_bonus

    def describe(self) -> str:
        return (
            f"2 or more notes sound together {self.two_notes_fraction:.0%} of the time, "
            f"3 or more pitch classes {self.three_classes_fraction:.0%}, "
            f"average pitch {pitch_name(round(self.mean_pitch))}"
        )


def profile_track(track: NoteTrack, song_end_beat: float | None = None) -> TrackProfile:
    """Measure a track's polyphony, coverage and register by sweeping its note starts and ends."""
    if not track.notes:
        raise TrackSelectionError(f"{track.label} has no notes to profile")
    events = sorted(
        [(note.start_beat, 1, note.pitch) for note in track.notes]
        + [(note.end_beat, -1, note.pitch) for note in track.notes],
        key=lambda event: (event[0], event[1]),
    )
    sounding: Counter[int] = Counter()
    sounding_time = two_notes = three_classes = 0.0
    previous = events[0][0]
    for beat, change, pitch in events:
        if beat > previous and sounding:
            span = beat - previous
            sounding_time += span
            if sum(sounding.values()) >= 2:
                two_notes += span
            if len({p % 12 for p in sounding}) >= 3:
                three_classes += span
        previous = beat
        sounding[pitch] += change
        if not sounding[pitch]:
            del sounding[pitch]
    song_end = max(song_end_beat or 0.0, track.end_beat)
    return TrackProfile(
        track=track,
        two_notes_fraction=two_notes / sounding_time,
        three_classes_fraction=three_classes / sounding_time,
        coverage=sounding_time / song_end,
        mean_pitch=sum(note.pitch for note in track.notes) / len(track.notes),
    )


@dataclass(frozen=True)
class TrackChoice:
    """The track chords will be read from, and a sentence saying why it was chosen."""

    track: NoteTrack
    reason: str


def choose_chord_track(song: MidiSong, track: str | int | None = None) -> TrackChoice:
    """The user's `track` (name, case-insensitive, or 0-based file track index), else the best one.

    Raises `TrackSelectionError` listing the song's tracks when the asked-for track does not
    exist or is a drum track, and when the song has no pitched notes at all.
    """
    if track is None:
        return _choose_automatically(song)
    if isinstance(track, bool) or not isinstance(track, (str, Integral)):
        raise TrackSelectionError(
            f"track must be a name or a 0-based track number, got {track!r}; {_listing(song)}"
        )
    wanted = track.strip() if isinstance(track, str) else track
    if isinstance(wanted, Integral) or wanted.isdigit():
        number = int(wanted)
        matches = [t for t in song.tracks if t.index == number]
        how = f"track {number}"
    else:
        matches = [t for t in song.tracks if t.name.strip().lower() == wanted.lower()]
        if not matches:
            matches = [t for t in song.tracks if wanted.lower() in t.name.lower()]
        how = f"track named {wanted!r}"
    pitched = [t for t in matches if not t.is_drum]
    if not matches:
        raise TrackSelectionError(f"{song.name}: no {how}; {_listing(song)}")
    if not pitched:
        raise TrackSelectionError(
            f"{song.name}: {how} is a drum track, which has no chords; {_listing(song)}"
        )
    if len(pitched) > 1:
        raise TrackSelectionError(
            f"{song.name}: {how} matches {len(pitched)} parts "
            f"({', '.join(_short(t) for t in pitched)}); name one of them"
        )
    return TrackChoice(pitched[0], f"{pitched[0].label}: chosen by request ({how})")


def _choose_automatically(song: MidiSong) -> TrackChoice:
    candidates = [t for t in song.tracks if not t.is_drum and t.notes]
    if not candidates:
        what = "only drum tracks" if song.tracks else "no notes at all"
        raise TrackSelectionError(
            f"{song.name}: has {what}, so there are no chords to read; "
            "use a MIDI file with a chord or piano part, or send chords as symbols"
        )
    end = song.end_beat
    profiles = [profile_track(t, end) for t in candidates]
    best = max(profiles, key=lambda p: p.score)
    if len(profiles) == 1:
        context = "the only pitched track"
    else:
        most_polyphonic = max(profiles, key=lambda p: p.polyphony) is best
        ranking = "most polyphonic" if most_polyphonic else "best chord score"
        context = f"{ranking} of {len(profiles)} tracks"
    if best.name_bonus > 0:
        context += "; its name suggests chords"
    return TrackChoice(best.track, f"{best.track.label}: {best.describe()} ({context})")


def _short(track: NoteTrack) -> str:
    name = f"'{track.name}'" if track.name else "(unnamed)"
    index = "?" if track.index is None else str(track.index)
    drums = " drums" if track.is_drum else ""
    return f"{index} {name}{drums}"


def _listing(song: MidiSong) -> str:
    if not song.tracks:
        return "the file has no tracks with notes"
    return "tracks with notes: " + ", ".join(_short(t) for t in song.tracks)
