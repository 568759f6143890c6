"""Standard MIDI Files in and out: a file becomes a `MidiSong` (tempo map + note tracks).

    >>> song = read_midi_file("song.mid")                      # doctest: +SKIP
    >>> [track.label for track in song.tracks]                 # doctest: +SKIP
    ["track 1 'MELODY' channel 1", "track 3 'PIANO' channel 3"]

Reading rules, chosen to match what DAWs and notation programs write:

- Tempo and time-signature events count wherever they are (any track), in ticks / PPQ beats.
  No tempo event means 120 bpm, no time signature 4/4.
- Each (file track, channel) pair with notes becomes one `NoteTrack`: two tracks sharing a
  channel stay apart, and a type-0 file is split into one track per channel. Channel 10 (index 9)
  is General MIDI percussion and gives a drum track (`is_drum=True`).
- Note-on with velocity 0 ends a note. Overlapping notes of one pitch end first-in, first-out.
  A note never ended lasts until the end of its track.
- Type-2 files (independent patterns), SMPTE time codes, and PPQ 0 are refused with an
  explanation; so are tempos outside 1..1000 bpm, and songs beyond the sizes in `midi.limits`
  (length in beats and seconds, tempo and meter changes, notes), which are counted while
  reading, before anything is allocated for them.
"""

from __future__ import annotations

import logging
from collections import defaultdict, deque
from dataclasses import dataclass
from pathlib import Path

import mido

from midi import limits
from midi.checks import is_whole_number
from midi.errors import MidiFileError, TempoMapError
from midi.notes import Note, NoteTrack
from midi.tempo import TempoChange, TempoMap, TimeSignature

logger = logging.getLogger(__name__)

DRUM_CHANNEL = 9
MAX_TICKS_PER_BEAT = 0x7FFF


@dataclass(frozen=True)
class MidiSong:
    """A MIDI file's content: its tempo map and the note tracks that hold notes."""

    tempo_map: TempoMap
    tracks: tuple[NoteTrack, ...]
    ticks_per_beat: int = 480
    path: Path | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "tracks", tuple(self.tracks))
        if not isinstance(self.tempo_map, TempoMap):
            raise MidiFileError(f"tempo_map must be a TempoMap, got {self.tempo_map!r}")
        for track in self.tracks:
            if not isinstance(track, NoteTrack):
                raise MidiFileError(f"tracks must be NoteTrack values, got {track!r}")
        ppq = self.ticks_per_beat
        if not is_whole_number(ppq) or not 1 <= ppq <= MAX_TICKS_PER_BEAT:
            raise MidiFileError(
                f"ticks_per_beat must be an integer 1..{MAX_TICKS_PER_BEAT}, got {ppq!r}"
            )
        object.__setattr__(self, "ticks_per_beat", int(ppq))
        if self.path is not None:
            object.__setattr__(self, "path", Path(self.path))

    @property
    def end_beat(self) -> float:
        """End of the last note in any track (0.0 when there are none)."""
        return max((track.end_beat for track in self.tracks), default=0.0)

    @property
    def duration_seconds(self) -> float:
        return self.tempo_map.seconds_at(self.end_beat)

    @property
    def name(self) -> str:
        """The file name, or ``<song>`` for a song built in memory (used in messages)."""
        return str(self.path) if self.path is not None else "<song>"


def read_midi_file(path: str | Path) -> MidiSong:
    """Read a type 0 or 1 Standard MIDI File; every problem raises `MidiFileError` naming the file."""
    path = Path(path)
    if not path.exists():
        raise MidiFileError(
            f"{path}: no such file; check the path (it is relative to {Path.cwd()})"
        )
    if path.is_dir():
        raise MidiFileError(f"{path}: is a folder, not a MIDI file; give the path of a .mid file")
    if path.stat().st_size == 0:
        raise MidiFileError(f"{path}: the file is empty; export the MIDI again from your DAW")
    try:
        midi = mido.MidiFile(path, clip=True)
    except EOFError:
        raise MidiFileError(
            f"{path}: the file ends in the middle of a track (truncated or still being written); "
            "export it again from your DAW"
        ) from None
    except (OSError, ValueError, KeyError, IndexError) as error:
        raise MidiFileError(
            f"{path}: not a readable Standard MIDI File ({error}); export the part as a .mid file"
        ) from None
    return _song_from_mido(midi, path)


def _song_from_mido(midi: mido.MidiFile, path: Path) -> MidiSong:
    ppq = midi.ticks_per_beat
    if ppq < 0:
        raise MidiFileError(
            f"{path}: timed in SMPTE frames, not in beats, so it has no bars or tempo to follow; "
            "export it with musical (PPQ) timing"
        )
    if ppq == 0:
        raise MidiFileError(
            f"{path}: the header says 0 ticks per beat, so no note can be placed in time; "
            "the file is damaged, export it again"
        )
    if midi.type == 2:
        raise MidiFileError(
            f"{path}: a type-2 MIDI file (independent patterns) has no single timeline; "
            "save it as type 1 (or 0) and try again"
        )
    if midi.type not in (0, 1):
        raise MidiFileError(f"{path}: unknown MIDI file type {midi.type}; only types 0 and 1 exist")

    tempos: dict[int, TempoChange] = {}
    meters: dict[int, TimeSignature] = {}
    tracks: list[NoteTrack] = []
    note_count = 0
    max_tick = limits.MAX_SONG_BEATS * ppq
    for index, mido_track in enumerate(midi.tracks):
        tick = 0
        name = ""
        notes = _NoteCollector(ppq)
        for message in mido_track:
            tick += message.time
            if tick > max_tick and not message.is_meta:
                limits.check_song_beats(tick / ppq, f"{path}: track {index}")
            if message.type == "set_tempo":
                tempos[tick] = _tempo_change(message.tempo, tick, ppq, index, path)
                limits.check_tempo_changes(len(tempos), str(path))
            elif message.type == "time_signature":
                meters[tick] = _time_signature(message, tick, ppq, index, path)
                limits.check_meter_changes(len(meters), str(path))
            elif message.type == "track_name" and not name:
                name = message.name.strip()
            elif message.type in ("note_on", "note_off"):
                if notes.feed(message, tick):
                    note_count += 1
                    limits.check_notes(note_count, str(path))
        if notes.open_notes and tick > max_tick:
            # A note never ended lasts to the track's end, however far its last event is.
            limits.check_song_beats(tick / ppq, f"{path}: track {index} (a note left sounding)")
        tracks.extend(notes.tracks(name, index, end_tick=tick))

    try:
        # A later event on the same tick wins, as in a sequencer that applies them in order.
        tempo_map = TempoMap(tuple(tempos.values()), tuple(meters.values()))
    except TempoMapError as error:
        raise MidiFileError(f"{path}: {error}") from None
    song = MidiSong(tempo_map, tuple(tracks), ppq, path)
    limits.check_song_seconds(song.duration_seconds, str(path))
    return song


def _tempo_change(
    microseconds_per_beat: int, tick: int, ppq: int, index: int, path: Path
) -> TempoChange:
    where = f"{path}: track {index}, tick {tick}"
    if microseconds_per_beat <= 0:
        raise MidiFileError(
            f"{where}: set_tempo of {microseconds_per_beat} microseconds per beat is not a "
            "tempo; fix the tempo event in your DAW and export again"
        )
    try:
        return TempoChange(tick / ppq, 60_000_000 / microseconds_per_beat)
    except TempoMapError as error:
        raise MidiFileError(f"{where}: {error}; fix the tempo event and export again") from None


def _time_signature(
    message: mido.MetaMessage, tick: int, ppq: int, index: int, path: Path
) -> TimeSignature:
    try:
        return TimeSignature(tick / ppq, message.numerator, message.denominator)
    except TempoMapError as error:
        raise MidiFileError(f"{path}: track {index}, tick {tick}: {error}") from None


class _NoteCollector:
    """Pairs note-ons with note-offs of one file track, keeping channels apart."""

    def __init__(self, ppq: int) -> None:
        self._ppq = ppq
        self._open: dict[tuple[int, int], deque[tuple[int, int]]] = defaultdict(deque)
        self._closed: dict[int, list[tuple[int, int, int, int]]] = defaultdict(list)

    @property
    def open_notes(self) -> bool:
        return any(self._open.values())

    def feed(self, message: mido.Message, tick: int) -> bool:
        """Take a note-on or note-off; True when it starts a note."""
        key = (message.channel, message.note)
        if message.type == "note_on" and message.velocity > 0:
            self._open[key].append((tick, message.velocity))
            return True
        if self._open[key]:
            start, velocity = self._open[key].popleft()
            self._close(message.channel, message.note, start, tick, velocity)
        else:
            logger.debug("note-off without a note-on: channel %d pitch %d", *key)
        return False

    def _close(self, channel: int, pitch: int, start: int, end: int, velocity: int) -> None:
        # On and off on one tick is a zero-length note; drum programs write these for hits,
        # so it is kept as one tick long rather than dropped.
        self._closed[channel].append((pitch, start, max(end, start + 1), velocity))

    def tracks(self, name: str, index: int, end_tick: int) -> list[NoteTrack]:
        """One `NoteTrack` per channel; notes still sounding end at `end_tick`, the track's end."""
        for (channel, pitch), starts in self._open.items():
            for start, velocity in starts:
                self._close(channel, pitch, start, end_tick, velocity)
        self._open.clear()
        channels = sorted(self._closed)
        result = []
        for channel in channels:
            notes = tuple(
                Note(pitch, start / self._ppq, end / self._ppq, velocity, channel)
                for pitch, start, end, velocity in self._closed[channel]
            )
            is_drum = channel == DRUM_CHANNEL
            result.append(
                NoteTrack(
                    _part_name(name, channel, is_drum, several=len(channels) > 1),
                    notes,
                    index,
                    channel,
                    is_drum,
                )
            )
        return result


def _part_name(name: str, channel: int, is_drum: bool, several: bool) -> str:
    """A track split by channel is named after the track and the channel ('Band ch 10 drums')."""
    if not several:
        return name
    part = f"ch {channel + 1}" + (" drums" if is_drum else "")
    return f"{name} {part}" if name else part


def write_midi_file(song: MidiSong, path: str | Path) -> Path:
    """Write `song` as a type-1 file: a conductor track with tempo and meter, then one track each.

    Beats are rounded to the song's ticks; tempos to whole microseconds per beat (the file format's
    resolution), so a tempo reads back within a relative 1e-5 (0.0014 bpm at 140 bpm).
    """
    path = Path(path)
    ppq = song.ticks_per_beat
    midi = mido.MidiFile(type=1, ticks_per_beat=ppq)
    conductor: list[tuple[int, int, mido.MetaMessage]] = []
    for tempo in song.tempo_map.tempos:
        conductor.append(
            (
                _ticks(tempo.beat, ppq),
                0,
                mido.MetaMessage("set_tempo", tempo=round(6e7 / tempo.bpm)),
            )
        )
    for meter in song.tempo_map.meters:
        message = mido.MetaMessage(
            "time_signature", numerator=meter.numerator, denominator=meter.denominator
        )
        conductor.append((_ticks(meter.beat, ppq), 1, message))
    midi.tracks.append(_track_from_events(conductor))
    for track in song.tracks:
        channel = DRUM_CHANNEL if track.is_drum else (track.channel or 0)
        events: list[tuple[int, int, mido.Message | mido.MetaMessage]] = [
            (0, 0, mido.MetaMessage("track_name", name=track.name))
        ]
        for note in track.notes:
            note_channel = channel if track.channel is not None or track.is_drum else note.channel
            # Offs sort before ons on the same tick so a repeated pitch is not cut short.
            start_tick = _ticks(note.start_beat, ppq)
            end_tick = max(_ticks(note.end_beat, ppq), start_tick + 1)
            events.append(
                (end_tick, 1, mido.Message("note_off", channel=note_channel, note=note.pitch))
            )
            events.append(
                (
                    start_tick,
                    2,
                    mido.Message(
                        "note_on",
                        channel=note_channel,
                        note=note.pitch,
                        velocity=max(note.velocity, 1),
                    ),
                )
            )
        midi.tracks.append(_track_from_events(events))
    try:
        midi.save(path)
    except OSError as error:
        raise MidiFileError(f"{path}: cannot write the MIDI file ({error})") from None
    return path


def _ticks(beat: float, ppq: int) -> int:
    return round(beat * ppq)


def _track_from_events(
    events: list[tuple[int, int, mido.Message | mido.MetaMessage]],
) -> mido.MidiTrack:
    track = mido.MidiTrack()
    now = 0
    for tick, _, message in sorted(events, key=lambda event: (event[0], event[1])):
        track.append(message.copy(time=tick - now))
        now = tick
    return track
