"""A stand-in for exactly the parts of Ableton Live that the JascoBridge script uses.

Written from the Live Object Model documentation (Song, Song.View, Track, Clip, ClipSlot,
MidiNote, the `c_instance` a control surface receives, `Live.MidiMap.forward_midi_cc`), not
from Live itself, which cannot run here. Classes use slots, so reading or setting anything the
real objects do not have fails loudly instead of passing silently.

It behaves as Live does where the script depends on it: an imported audio clip starts with
warping on (Live's default auto-warp), `create_audio_clip` refuses non-audio tracks and full
slots, `get_notes_extended` selects by pitch and start time, and `create_scene` adds a slot to
every track.
"""

from __future__ import annotations

import types
from dataclasses import dataclass, field


@dataclass(slots=True)
class MidiNote:
    pitch: int
    start_time: float
    duration: float
    velocity: float = 100.0
    mute: bool = False
    probability: float = 1.0
    velocity_deviation: float = 0.0
    release_velocity: float = 64.0
    note_id: int = 0


@dataclass(slots=True, eq=False)
class Clip:
    name: str = ""
    is_midi_clip: bool = True
    is_arrangement_clip: bool = False
    start_time: float = 0.0  # arrangement position in beats (session clips: 0)
    end_time: float = 4.0
    length: float = 4.0
    start_marker: float = 0.0
    notes: list[MidiNote] = field(default_factory=list)
    file_path: str = ""
    warping: bool = True

    @property
    def is_audio_clip(self) -> bool:
        return not self.is_midi_clip

    def get_notes_extended(
        self, from_pitch: int, pitch_span: int, from_time: float, time_span: float
    ) -> tuple[MidiNote, ...]:
        if not self.is_midi_clip:
            raise RuntimeError("get_notes_extended is only available for MIDI clips")
        return tuple(
            n
            for n in self.notes
            if from_pitch <= n.pitch < from_pitch + pitch_span
            and from_time <= n.start_time < from_time + time_span
        )


@dataclass(slots=True, eq=False)
class ClipSlot:
    track: Track
    clip: Clip | None = None

    @property
    def has_clip(self) -> bool:
        return self.clip is not None

    def create_audio_clip(self, file_path: str) -> None:
        if not self.track.has_audio_input:
            raise RuntimeError("ClipSlot.create_audio_clip: not an audio track")
        if self.clip is not None:
            raise RuntimeError("ClipSlot.create_audio_clip: the slot already has a clip")
        self.clip = Clip(is_midi_clip=False, file_path=file_path, name=file_path)
        self.track.created.append(("slot", file_path, self.track.clip_slots.index(self)))


@dataclass(slots=True, eq=False)
class Track:
    name: str
    has_audio_input: bool
    clip_slots: list[ClipSlot] = field(default_factory=list)
    arrangement_clips: list[Clip] = field(default_factory=list)
    returns_created_clip: bool = True  # test knob: Live versions that return nothing
    created: list[tuple] = field(default_factory=list)  # what the script asked for, in order

    @property
    def has_midi_input(self) -> bool:
        return not self.has_audio_input

    def create_audio_clip(self, file_path: str, position: float) -> Clip | None:
        if not self.has_audio_input:
            raise RuntimeError("Track.create_audio_clip: not an audio track")
        clip = Clip(
            is_midi_clip=False,
            is_arrangement_clip=True,
            start_time=position,
            file_path=file_path,
            name=file_path,
        )
        self.arrangement_clips.append(clip)
        self.created.append(("arrangement", file_path, position))
        return clip if self.returns_created_clip else None


@dataclass(slots=True)
class SongView:
    detail_clip: Clip | None = None


@dataclass(slots=True)
class Song:
    tempo: float = 120.0
    signature_numerator: int = 4
    signature_denominator: int = 4
    tracks: list[Track] = field(default_factory=list)
    view: SongView = field(default_factory=SongView)
    scene_count: int = 8
    undo_steps_begun: int = 0
    undo_steps_ended: int = 0
    changes_outside_undo: int = 0

    def add_track(self, name: str, audio: bool) -> Track:
        track = Track(name, audio)
        track.clip_slots = [ClipSlot(track) for _ in range(self.scene_count)]
        self.tracks.append(track)
        return track

    def create_audio_track(self, index: int = -1) -> Track:
        if self.undo_steps_begun == self.undo_steps_ended:
            self.changes_outside_undo += 1
        track = Track("Audio", True)
        track.clip_slots = [ClipSlot(track) for _ in range(self.scene_count)]
        if index == -1:
            self.tracks.append(track)
        else:
            self.tracks.insert(index, track)
        return track

    def create_scene(self, index: int = -1) -> None:
        self.scene_count += 1
        for track in self.tracks:
            slot = ClipSlot(track)
            if index == -1:
                track.clip_slots.append(slot)
            else:
                track.clip_slots.insert(index, slot)

    def begin_undo_step(self) -> None:
        self.undo_steps_begun += 1

    def end_undo_step(self) -> None:
        self.undo_steps_ended += 1


@dataclass(slots=True)
class CInstance:
    """What Live hands `create_instance`: the song, the status bar, the log, a MIDI handle."""

    the_song: Song
    messages: list[str] = field(default_factory=list)
    log: list[str] = field(default_factory=list)

    def song(self) -> Song:
        return self.the_song

    def show_message(self, text: str) -> None:
        self.messages.append(text)

    def log_message(self, text: str) -> None:
        self.log.append(text)

    def handle(self) -> int:
        return 4242


def live_module() -> tuple[types.ModuleType, list[tuple]]:
    """A `Live` module with `MidiMap.forward_midi_cc`, and the list its calls go to."""
    forwarded: list[tuple] = []
    live = types.ModuleType("Live")
    live.MidiMap = types.SimpleNamespace(  # type: ignore[attr-defined]
        forward_midi_cc=lambda handle, midi_map, channel, cc: forwarded.append(
            (handle, midi_map, channel, cc)
        )
    )
    return live, forwarded
