"""Live MIDI input: turn a stream of note and pedal messages into notes, without doing any I/O.

`LiveInput` is fed one message at a time with the beat at which it arrived (the caller owns the
clock, usually the DAW transport); it returns the notes that message completed:

    >>> live = LiveInput()
    >>> live.feed(mido.Message("note_on", note=60, velocity=90), at_beat=0.0)
    ()
    >>> live.feed(mido.Message("note_off", note=60), at_beat=1.0)
    (Note(pitch=60, start_beat=0.0, end_beat=1.0, velocity=90, channel=0),)

The sustain pedal (CC 64, value 64 or more = down) keeps released notes sounding until it comes
up, as on a piano; striking a held pitch again ends its previous note. CC 123 (all notes off)
ends every note of its channel.

`MidiTransport` follows a sequencer's MIDI clock: Start (beat 0), Continue, Stop, Song Position
Pointer (in sixteenths) and 24 clock ticks per beat. `ClockedRecorder` puts the two together: it
records notes at the transport's beat while the transport runs, and ignores them while it is
stopped. Only `open_live_input` touches a real MIDI port; it needs the optional python-rtmidi
backend.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

import mido

from midi.checks import is_finite_number
from midi.errors import LiveInputError
from midi.notes import Note, NoteTrack

logger = logging.getLogger(__name__)

SUSTAIN_PEDAL = 64
ALL_NOTES_OFF = 123
_PEDAL_DOWN_FROM = 64


class LiveInput:
    """Pairs note-ons with their ends, per channel, honouring the sustain pedal.

    A note struck before beat 0 (in a count-in) starts at beat 0; one that would end on or before
    its start (the transport jumped back, on and off arrived on one beat, or it ended within the
    count-in) is dropped, since it never sounded on the timeline.
    """

    def __init__(self) -> None:
        self.clear()

    def feed(self, message: mido.Message, at_beat: float) -> tuple[Note, ...]:
        """Apply one message received at `at_beat`; return the notes it completed."""
        if not is_finite_number(at_beat):
            raise LiveInputError(f"at_beat must be a finite number of beats, got {at_beat!r}")
        if isinstance(message, mido.MetaMessage):
            return ()
        if not isinstance(message, mido.Message):
            raise LiveInputError(f"expected a mido.Message, got {message!r}")
        self._latest_beat = max(self._latest_beat, float(at_beat))
        if message.type == "note_on" and message.velocity > 0:
            return self._strike(message.channel, message.note, message.velocity, at_beat)
        if message.type in ("note_on", "note_off"):
            return self._release(message.channel, message.note, at_beat)
        if message.type == "control_change" and message.control == SUSTAIN_PEDAL:
            return self._pedal(message.channel, message.value >= _PEDAL_DOWN_FROM, at_beat)
        if message.type == "control_change" and message.control == ALL_NOTES_OFF:
            keys = [key for key in self._sounding if key[0] == message.channel]
            return self._end(keys, at_beat)
        return ()

    def release_all(self, at_beat: float) -> tuple[Note, ...]:
        """End every sounding note at `at_beat` (the transport stopped), pedal or not."""
        return self._end(sorted(self._sounding), at_beat)

    def held_pitches(self) -> frozenset[int]:
        """Pitches sounding now: keys down, or released while the pedal holds them."""
        return frozenset(pitch for _, pitch in self._sounding)

    def take_track(self, name: str = "live input") -> NoteTrack:
        """Everything received so far as a track; notes still sounding end at the latest beat seen.

        The input keeps its state, so a take can be read again later with more notes in it.
        """
        open_notes = [
            note
            for (channel, pitch), (start, velocity) in self._sounding.items()
            if (note := _note(pitch, start, self._latest_beat, velocity, channel)) is not None
        ]
        return NoteTrack(name, tuple(self._completed) + tuple(open_notes))

    def clear(self) -> None:
        """Forget every note, held key and pedal state (a new take)."""
        # (channel, pitch) -> (start_beat, velocity) for keys down or held by the pedal.
        self._sounding: dict[tuple[int, int], tuple[float, int]] = {}
        self._released_under_pedal: set[tuple[int, int]] = set()
        self._pedal_down: set[int] = set()
        self._completed: list[Note] = []
        self._latest_beat = 0.0

    def _strike(self, channel: int, pitch: int, velocity: int, beat: float) -> tuple[Note, ...]:
        key = (channel, pitch)
        ended = self._end([key], beat) if key in self._sounding else ()
        self._sounding[key] = (beat, velocity)
        return ended

    def _release(self, channel: int, pitch: int, beat: float) -> tuple[Note, ...]:
        key = (channel, pitch)
        if key not in self._sounding:
            logger.debug("note-off without a sounding note: channel %d pitch %d", channel, pitch)
            return ()
        if channel in self._pedal_down:
            self._released_under_pedal.add(key)
            return ()
        return self._end([key], beat)

    def _pedal(self, channel: int, down: bool, beat: float) -> tuple[Note, ...]:
        if down:
            self._pedal_down.add(channel)
            return ()
        self._pedal_down.discard(channel)
        held = [key for key in self._released_under_pedal if key[0] == channel]
        return self._end(sorted(held), beat)

    def _end(self, keys: list[tuple[int, int]], beat: float) -> tuple[Note, ...]:
        ended = []
        for key in keys:
            start, velocity = self._sounding.pop(key)
            self._released_under_pedal.discard(key)
            note = _note(key[1], start, beat, velocity, key[0])
            if note is not None:
                ended.append(note)
        self._completed.extend(ended)
        return tuple(ended)


def _note(pitch: int, start: float, end: float, velocity: int, channel: int) -> Note | None:
    start = max(start, 0.0)
    if end <= start:
        logger.debug("dropped a live note that never sounded after beat 0: pitch %d", pitch)
        return None
    return Note(pitch, start, end, velocity, channel)


CLOCKS_PER_BEAT = 24  # MIDI timing clock: 24 pulses per quarter note
_SIXTEENTHS_PER_BEAT = 4  # the Song Position Pointer counts sixteenth notes


class MidiTransport:
    """Where a sequencer's MIDI clock says the song is, in beats.

    Start sets beat 0 and runs; Continue runs from the current position; Stop halts; a Song
    Position Pointer moves the position (sent while stopped, before Continue); each clock tick
    while running advances 1/24 of a beat. Without any clock the transport never runs.
    """

    def __init__(self) -> None:
        self.running = False
        self._ticks = 0

    @property
    def beat(self) -> float:
        return self._ticks / CLOCKS_PER_BEAT

    def feed(self, message: mido.Message) -> bool:
        """Apply a transport message; True when it was one (the caller records nothing else)."""
        kind = message.type
        if kind == "clock":
            if self.running:
                self._ticks += 1
        elif kind == "start":
            self._ticks = 0
            self.running = True
        elif kind == "continue":
            self.running = True
        elif kind == "stop":
            self.running = False
        elif kind == "songpos":
            self._ticks = message.pos * (CLOCKS_PER_BEAT // _SIXTEENTHS_PER_BEAT)
        else:
            return False
        return True


class ClockedRecorder:
    """Records live notes against a MIDI-clock transport: `feed` returns the notes completed.

    Notes are recorded only while the transport runs; Stop ends every sounding note at the stop
    position. The beats are the sequencer's own, so they line up with its bars whatever the tempo.
    """

    def __init__(self) -> None:
        self.transport = MidiTransport()
        self.input = LiveInput()

    def feed(self, message: mido.Message) -> tuple[Note, ...]:
        was_running = self.transport.running
        if self.transport.feed(message):
            if was_running and not self.transport.running:
                return self.input.release_all(self.transport.beat)
            return ()
        if not self.transport.running:
            return ()
        return self.input.feed(message, self.transport.beat)


def open_live_input(
    port_name: str | None = None, callback: Callable[[mido.Message], None] | None = None
) -> mido.ports.BaseInput:
    """Open a MIDI input port by name (None = the system default) through python-rtmidi.

    Read it with ``for message in port.iter_pending(): live.feed(message, beat_now)``, or pass a
    `callback`, which the backend calls on its own thread for each message.
    """
    try:
        import rtmidi  # noqa: F401  (checked here so the message can say how to install it)
    except ImportError:
        raise LiveInputError(
            "live MIDI input needs the python-rtmidi backend: pip install 'jasco-bridge[live]'"
        ) from None
    backend = mido.Backend("mido.backends.rtmidi")
    try:
        names = backend.get_input_names()
    except (OSError, SystemError, RuntimeError) as error:
        # rtmidi raises SystemError when there is no MIDI system at all (no ALSA sequencer).
        raise LiveInputError(
            f"cannot list MIDI inputs ({error}); is a MIDI system running (on Linux, ALSA's "
            "/dev/snd/seq)?"
        ) from None
    try:
        return backend.open_input(port_name, callback=callback)
    except (OSError, ValueError, SystemError, RuntimeError) as error:
        shown = ", ".join(repr(name) for name in names) or "none found"
        raise LiveInputError(
            f"cannot open MIDI input {port_name!r} ({error}); available inputs: {shown}"
        ) from None
