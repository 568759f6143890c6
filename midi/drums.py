"""Symbolic drums: the General MIDI percussion key map and drum hits read from a track.

    >>> GM_DRUMS[38]
    DrumSound(name='Acoustic Snare', role='snare')
    >>> [hit.role for hit in drum_hits(track)]           # doctest: +SKIP
    ['kick', 'hihat', 'snare', 'hihat']

On channel 10 a note's pitch picks a sound, not a pitch: 36 is a kick, 38 a snare, 42 a closed
hi-hat. Each sound also has a `role` (kick, snare, hihat, tom, crash, ride, percussion) so that a
synthesiser or an analysis can treat families alike.
"""

from __future__ import annotations

from dataclasses import dataclass

from midi.checks import is_finite_number, is_whole_number
from midi.errors import NoteError
from midi.notes import NoteTrack


@dataclass(frozen=True)
class DrumSound:
    name: str
    role: str


# General MIDI Level 1 percussion key map (channel 10), keys 35..81.
GM_DRUMS: dict[int, DrumSound] = {
    pitch: DrumSound(name, role)
    for pitch, name, role in (
        (35, "Acoustic Bass Drum", "kick"),
        (36, "Bass Drum 1", "kick"),
        (37, "Side Stick", "snare"),
        (38, "Acoustic Snare", "snare"),
        (39, "Hand Clap", "snare"),
        (40, "Electric Snare", "snare"),
        (41, "Low Floor Tom", "tom"),
        (42, "Closed Hi-Hat", "hihat"),
        (43, "High Floor Tom", "tom"),
        (44, "Pedal Hi-Hat", "hihat"),
        (45, "Low Tom", "tom"),
        (46, "Open Hi-Hat", "hihat"),
        (47, "Low-Mid Tom", "tom"),
        (48, "Hi-Mid Tom", "tom"),
        (49, "Crash Cymbal 1", "crash"),
        (50, "High Tom", "tom"),
        (51, "Ride Cymbal 1", "ride"),
        (52, "Chinese Cymbal", "crash"),
        (53, "Ride Bell", "ride"),
        (54, "Tambourine", "percussion"),
        (55, "Splash Cymbal", "crash"),
        (56, "Cowbell", "percussion"),
        (57, "Crash Cymbal 2", "crash"),
        (58, "Vibraslap", "percussion"),
        (59, "Ride Cymbal 2", "ride"),
        (60, "Hi Bongo", "percussion"),
        (61, "Low Bongo", "percussion"),
        (62, "Mute Hi Conga", "percussion"),
        (63, "Open Hi Conga", "percussion"),
        (64, "Low Conga", "percussion"),
        (65, "High Timbale", "percussion"),
        (66, "Low Timbale", "percussion"),
        (67, "High Agogo", "percussion"),
        (68, "Low Agogo", "percussion"),
        (69, "Cabasa", "percussion"),
        (70, "Maracas", "percussion"),
        (71, "Short Whistle", "percussion"),
        (72, "Long Whistle", "percussion"),
        (73, "Short Guiro", "percussion"),
        (74, "Long Guiro", "percussion"),
        (75, "Claves", "percussion"),
        (76, "Hi Wood Block", "percussion"),
        (77, "Low Wood Block", "percussion"),
        (78, "Mute Cuica", "percussion"),
        (79, "Open Cuica", "percussion"),
        (80, "Mute Triangle", "percussion"),
        (81, "Open Triangle", "percussion"),
    )
}
_UNMAPPED = DrumSound("Unmapped drum key", "percussion")


def drum_sound(pitch: int) -> DrumSound:
    """The GM sound of a drum key; keys outside 35..81 play as generic percussion."""
    return GM_DRUMS.get(pitch, _UNMAPPED)


@dataclass(frozen=True)
class DrumHit:
    """One drum stroke: key `pitch` (GM map) struck at `start_beat` with `velocity` 1..127."""

    start_beat: float
    pitch: int
    velocity: int = 100

    def __post_init__(self) -> None:
        start = self.start_beat
        if not is_finite_number(start) or start < 0:
            raise NoteError(f"drum hit start_beat must be a number >= 0, got {self.start_beat!r}")
        if not is_whole_number(self.pitch) or not 0 <= self.pitch <= 127:
            raise NoteError(f"drum hit pitch must be a MIDI key 0..127, got {self.pitch!r}")
        if not is_whole_number(self.velocity) or not 1 <= self.velocity <= 127:
            raise NoteError(f"drum hit velocity must be an integer 1..127, got {self.velocity!r}")
        object.__setattr__(self, "start_beat", float(start))
        object.__setattr__(self, "pitch", int(self.pitch))
        object.__setattr__(self, "velocity", int(self.velocity))

    @property
    def name(self) -> str:
        return drum_sound(self.pitch).name

    @property
    def role(self) -> str:
        return drum_sound(self.pitch).role


def drum_hits(track: NoteTrack) -> tuple[DrumHit, ...]:
    """The strokes of a drum track in time order; note lengths mean nothing on drums and are dropped.

    Any track is read as drums when asked, so a kit recorded on another channel works too.
    """
    return tuple(
        DrumHit(note.start_beat, note.pitch, max(note.velocity, 1)) for note in track.notes
    )
