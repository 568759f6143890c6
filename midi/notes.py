"""Notes and note tracks: the musical content of a MIDI track as immutable values.

Times are in beats (quarter notes from the start of the song, 0-based floats); a `TempoMap`
turns them into seconds. Pitch 60 is middle C, named ``C4``.

    >>> Note(60, 0.0, 1.0)
    Note(pitch=60, start_beat=0.0, end_beat=1.0, velocity=100, channel=0)
    >>> pitch_name(61), pitch_number("Bb3")
    ('C#4', 58)
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from midi.checks import is_finite_number, is_whole_number
from midi.errors import NoteError

# The spelling of JASCO's chord vocabulary, so that note names and chord roots agree.
PITCH_CLASS_NAMES = ("C", "C#", "D", "Eb", "E", "F", "F#", "G", "Ab", "A", "Bb", "B")

MAX_PITCH = 127
MAX_VELOCITY = 127

LETTER_PITCH_CLASS = {"C": 0, "D": 2, "E": 4, "F": 5, "G": 7, "A": 9, "B": 11}
_NOTE_NAME = re.compile(r"^\s*([A-Ga-g])([#b♯♭]*)(-?\d+)\s*$")


def pitch_name(pitch: int) -> str:
    """Name a MIDI note number, middle C (60) = ``C4``; 0 = ``C-1``, 127 = ``G9``."""
    _check_pitch(pitch)
    octave, pitch_class = divmod(pitch, 12)
    return f"{PITCH_CLASS_NAMES[pitch_class]}{octave - 1}"


def pitch_number(name: str) -> int:
    """The MIDI note number of a name like ``C4`` (60), ``F#2``, ``Bb-1`` or ``E♭5``."""
    match = _NOTE_NAME.match(name) if isinstance(name, str) else None
    if match is None:
        raise NoteError(
            f"note name {name!r} is not a letter A-G, optional #/b, and an octave "
            "(middle C is 'C4')"
        )
    letter, accidentals, octave = match.groups()
    shift = sum(1 if a in "#♯" else -1 for a in accidentals)
    pitch = (int(octave) + 1) * 12 + LETTER_PITCH_CLASS[letter.upper()] + shift
    if not 0 <= pitch <= 127:
        raise NoteError(f"note name {name!r} is MIDI note {pitch}, outside 0..127 (C-1..G9)")
    return pitch


def _check_pitch(pitch: int) -> None:
    if not is_whole_number(pitch) or not 0 <= pitch <= MAX_PITCH:
        raise NoteError(f"pitch must be an integer MIDI note number 0..127, got {pitch!r}")


@dataclass(frozen=True)
class Note:
    """One sounding note: `pitch` 0..127 from `start_beat` up to (not including) `end_beat`."""

    pitch: int
    start_beat: float
    end_beat: float
    velocity: int = 100
    channel: int = 0

    def __post_init__(self) -> None:
        _check_pitch(self.pitch)
        for label, value in (("start_beat", self.start_beat), ("end_beat", self.end_beat)):
            if not is_finite_number(value):
                raise NoteError(f"note {label} must be a finite number of beats, got {value!r}")
        if self.start_beat < 0:
            raise NoteError(
                f"note start_beat must be >= 0 (beats count from the start of the song), "
                f"got {self.start_beat!r}"
            )
        if self.end_beat <= self.start_beat:
            raise NoteError(
                f"note {pitch_name(self.pitch)} ends at beat {self.end_beat!r}, not after its "
                f"start at beat {self.start_beat!r}; give it a positive length"
            )
        if not is_whole_number(self.velocity) or not 0 <= self.velocity <= MAX_VELOCITY:
            raise NoteError(f"note velocity must be an integer 0..127, got {self.velocity!r}")
        if not is_whole_number(self.channel) or not 0 <= self.channel <= 15:
            raise NoteError(
                f"note channel must be an integer 0..15 (MIDI channel 1..16), got {self.channel!r}"
            )
        # Values from numpy arrays are stored as plain Python numbers, for repr and JSON.
        object.__setattr__(self, "pitch", int(self.pitch))
        object.__setattr__(self, "start_beat", float(self.start_beat))
        object.__setattr__(self, "end_beat", float(self.end_beat))
        object.__setattr__(self, "velocity", int(self.velocity))
        object.__setattr__(self, "channel", int(self.channel))

    @property
    def duration_beats(self) -> float:
        return self.end_beat - self.start_beat

    @property
    def pitch_class(self) -> int:
        """0 = C, 1 = C#, ... 11 = B."""
        return self.pitch % 12

    @property
    def name(self) -> str:
        return pitch_name(self.pitch)

    def __str__(self) -> str:
        return f"{self.name} beats {self.start_beat:g}-{self.end_beat:g} vel {self.velocity}"


def _note_order(note: Note) -> tuple[float, int, float]:
    return (note.start_beat, note.pitch, note.end_beat)


@dataclass(frozen=True)
class NoteTrack:
    """The notes of one part: a MIDI track (or one channel of it), a live take, or OSC input.

    `notes` is always a tuple sorted by start (then pitch); any iterable of `Note` is accepted.
    `index` is the track's 0-based position in its MIDI file (None when it came from elsewhere),
    `channel` its MIDI channel 0..15 when it has a single one, `is_drum` marks GM percussion.
    """

    name: str
    notes: tuple[Note, ...] = field(default=())
    index: int | None = None
    channel: int | None = None
    is_drum: bool = False

    def __post_init__(self) -> None:
        if not isinstance(self.name, str):
            raise NoteError(f"track name must be a string, got {self.name!r}")
        notes = tuple(self.notes)
        for note in notes:
            if not isinstance(note, Note):
                raise NoteError(f"track {self.name!r}: expected Note objects, got {note!r}")
        object.__setattr__(self, "notes", tuple(sorted(notes, key=_note_order)))
        if self.index is not None and (not is_whole_number(self.index) or self.index < 0):
            raise NoteError(f"track index must be a 0-based integer or None, got {self.index!r}")
        if self.channel is not None and (
            not is_whole_number(self.channel) or not 0 <= self.channel <= 15
        ):
            raise NoteError(f"track channel must be 0..15 or None, got {self.channel!r}")
        if self.index is not None:
            object.__setattr__(self, "index", int(self.index))
        if self.channel is not None:
            object.__setattr__(self, "channel", int(self.channel))
        object.__setattr__(self, "is_drum", bool(self.is_drum))

    def __len__(self) -> int:
        return len(self.notes)

    @property
    def label(self) -> str:
        """How a user recognises the track: ``track 3 'PIANO'`` or ``track 2 (unnamed)``."""
        where = "live/OSC track" if self.index is None else f"track {self.index}"
        name = f"'{self.name}'" if self.name else "(unnamed)"
        parts = [where, name]
        if self.channel is not None:
            parts.append(f"channel {self.channel + 1}")
        if self.is_drum:
            parts.append("drums")
        return " ".join(parts)

    @property
    def start_beat(self) -> float:
        """Start of the first note (0.0 for an empty track)."""
        return self.notes[0].start_beat if self.notes else 0.0

    @property
    def end_beat(self) -> float:
        """End of the last sounding note (0.0 for an empty track)."""
        return max((note.end_beat for note in self.notes), default=0.0)

    @property
    def duration_beats(self) -> float:
        """From the first note's start to the last note's end."""
        return self.end_beat - self.start_beat

    def pitch_classes(self) -> frozenset[int]:
        """Every pitch class (0 = C ... 11 = B) the track plays."""
        return frozenset(note.pitch_class for note in self.notes)

    def pitch_range(self) -> tuple[int, int] | None:
        """Lowest and highest pitch, or None when the track is empty."""
        if not self.notes:
            return None
        pitches = [note.pitch for note in self.notes]
        return min(pitches), max(pitches)

    def notes_between(self, start_beat: float, end_beat: float) -> tuple[Note, ...]:
        """Notes sounding at some moment of [start_beat, end_beat)."""
        return tuple(
            note for note in self.notes if note.start_beat < end_beat and note.end_beat > start_beat
        )
