"""Every call this script makes into Live, in one place (and nothing else here touches Live).

The rest of the script sees plain values: `SelectedClip` for the MIDI clip the user selected,
and three verbs: show a status-bar message, place an audio file on the JASCO track, forward the
trigger controls' MIDI to the script. Names and signatures follow the Live Object Model
(Live 12.0.5 or newer for `Track.create_audio_clip` and `ClipSlot.create_audio_clip`).
"""

from dataclasses import dataclass


@dataclass(frozen=True)
class Note:
    """A note of the selected clip, in beats from the clip's start marker."""

    pitch: int
    start_beat: float
    length_beats: float
    velocity: int


@dataclass(frozen=True)
class SelectedClip:
    """The selected MIDI clip. `start_beat` is its arrangement position (0 in session view)."""

    name: str
    in_arrangement: bool
    start_beat: float
    length_beats: float
    notes: tuple[Note, ...]


@dataclass(frozen=True)
class SongTime:
    tempo: float
    numerator: int
    denominator: int


class LiveAdapter:
    """Live as the script uses it, reached through the `c_instance` Live hands the script."""

    def __init__(self, c_instance: object) -> None:
        self._c = c_instance

    @property
    def _song(self):
        return self._c.song()

    def show(self, text: str) -> None:
        """A message in Live's status bar."""
        self._c.show_message(text)

    def log(self, text: str) -> None:
        """A line in Live's Log.txt."""
        self._c.log_message("JascoBridge: " + text)

    def song_time(self) -> SongTime:
        song = self._song
        return SongTime(
            float(song.tempo), int(song.signature_numerator), int(song.signature_denominator)
        )

    def selected_clip(self) -> SelectedClip | None:
        """The MIDI clip shown in the detail view (the one the user clicked), or None."""
        clip = self._song.view.detail_clip
        if clip is None or not clip.is_midi_clip:
            return None
        in_arrangement = bool(clip.is_arrangement_clip)
        if in_arrangement:
            start = float(clip.start_time)
            length = float(clip.end_time) - start
        else:
            start = 0.0
            length = float(clip.length)
        first = float(clip.start_marker)
        notes = tuple(
            Note(int(n.pitch), float(n.start_time) - first, float(n.duration), int(n.velocity))
            for n in clip.get_notes_extended(0, 128, first, length)
            if not n.mute
        )
        return SelectedClip(str(clip.name), in_arrangement, start, length, notes)

    def place_audio(self, path: str, start_beat: float, in_arrangement: bool, name: str) -> str:
        """Put the file on the JASCO track as one undo step; returns where it went, in words.

        Arrangement: at `start_beat`. Session view: in the track's first empty slot (a new
        scene when all are full). Warping is off: the file is already at the song's tempo.
        """
        song = self._song
        song.begin_undo_step()
        try:
            track = self._jasco_track(song)
            if in_arrangement:
                clip = track.create_audio_clip(path, start_beat) or _clip_at(track, start_beat)
                where = "arrangement"
            else:
                index = self._free_slot(song, track)
                slot = track.clip_slots[index]
                slot.create_audio_clip(path)
                clip = slot.clip
                where = f"slot {index + 1}"
            clip.warping = False
            clip.name = name
        finally:
            song.end_undo_step()
        return where

    @staticmethod
    def _jasco_track(song):
        from . import settings

        for track in song.tracks:
            if track.name == settings.TRACK_NAME and track.has_audio_input:
                return track
        track = song.create_audio_track(-1)
        track.name = settings.TRACK_NAME
        return track

    @staticmethod
    def _free_slot(song, track) -> int:
        for index, slot in enumerate(track.clip_slots):
            if not slot.has_clip:
                return index
        song.create_scene(-1)
        return len(track.clip_slots) - 1

    def forward_control_change(self, midi_map_handle: object, channel: int, cc: int) -> None:
        """Have Live pass this control change to `receive_midi` (inside `build_midi_map`)."""
        import Live

        Live.MidiMap.forward_midi_cc(self._c.handle(), midi_map_handle, channel, cc)


def _clip_at(track, start_beat: float):
    """The arrangement clip starting at `start_beat` (for Live versions whose
    create_audio_clip returns nothing)."""
    for clip in track.arrangement_clips:
        if abs(float(clip.start_time) - start_beat) < 1e-6:
            return clip
    raise RuntimeError(f"Live created no clip at beat {start_beat:g} on the JASCO track")
