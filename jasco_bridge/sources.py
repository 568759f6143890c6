"""Chord and drum sources named by a file path: checked, opened, and cut into window stems.

A DAW sends paths over OSC (`/jasco/chords/file`, `/jasco/drums/file`), so every path is
treated as untrusted input: it must be absolute, exist, be a regular readable file with an
expected extension, stay under a size limit and actually open as its kind. Anything else is a
`SessionError` naming the path and what to do about it.

    chords = open_chord_file("/songs/verse.mid", track="Keys")   # ChordFile, notes in beats
    drums = open_drums("/songs/drums.wav", start_beat=16.0)      # AudioDrums or MidiDrums
    stem, rate = drums.timeline_audio(tempo_map, 8.0, 18.0)      # AudioDrums
    stem, rate = drums.timeline_audio(tempo_map, 8.0, 18.0, 32000)  # MidiDrums: synthesised

The values returned are frozen, so a session snapshot can hold them while the daemon goes on
taking messages. A drum stem is read from disk again for each render window, and only the part
that window needs.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, TypeAlias

import numpy as np

from jasco_bridge.errors import SessionError
from midi.drums import DrumHit, drum_hits
from midi.errors import MidiError
from midi.notes import NoteTrack
from midi.smf import MidiSong, read_midi_file
from midi.tempo import TempoMap
from midi.tracks import choose_chord_track

MAX_AUDIO_BYTES = 200 * 1024 * 1024
MAX_MIDI_BYTES = 16 * 1024 * 1024
AUDIO_SUFFIXES = (".wav", ".wave", ".flac", ".aif", ".aiff", ".ogg")
MIDI_SUFFIXES = (".mid", ".midi", ".smf")


def checked_file(path: object, suffixes: Sequence[str], max_bytes: int, kind: str) -> Path:
    """An existing, readable regular file of an expected extension and size, or SessionError.

    `kind` names the file in messages ("chord MIDI", "drum"). Relative paths are refused: the
    daemon's working folder is not the DAW's, so they would name some other file.
    """
    if not isinstance(path, (str, os.PathLike)) or not str(path).strip():
        raise SessionError(f"{kind} path must be a non-empty string, got {path!r}")
    text = str(path)
    if "\x00" in text:
        raise SessionError(f"{kind} path {text!r} contains a NUL character; send the plain path")
    candidate = Path(text).expanduser()
    if not candidate.is_absolute():
        raise SessionError(
            f"{kind} path {text!r} is relative; send an absolute path "
            "(the daemon's working folder is not your DAW's)"
        )
    if not candidate.exists():
        raise SessionError(f"{kind} file {candidate} does not exist; check the path")
    if candidate.is_dir():
        raise SessionError(f"{kind} path {candidate} is a folder; give the path of a file in it")
    if not candidate.is_file():
        raise SessionError(f"{kind} path {candidate} is not a regular file (device or pipe?)")
    if candidate.suffix.lower() not in suffixes:
        raise SessionError(
            f"{kind} file {candidate} has the wrong kind of name; expected one of "
            f"{', '.join(suffixes)}"
        )
    size = candidate.stat().st_size
    if size > max_bytes:
        raise SessionError(
            f"{kind} file {candidate} is {size / 2**20:.0f} MB; the limit is "
            f"{max_bytes / 2**20:.0f} MB: export a shorter or lower-rate file"
        )
    if not os.access(candidate, os.R_OK):
        raise SessionError(f"{kind} file {candidate} cannot be read: permission denied")
    return candidate


# ---------------------------------------------------------------------------------------------
# Chords


@dataclass(frozen=True)
class ChordFile:
    """A chord MIDI file and the track chosen from it (notes in beats)."""

    path: Path
    requested_track: str | int | None
    track: NoteTrack = field(repr=False)
    reason: str

    def describe(self) -> dict[str, Any]:
        """Plain JSON values for a clip's sidecar."""
        return {"path": str(self.path), "track": self.track.label, "reason": self.reason}


def open_chord_file(path: object, track: str | int | None = None) -> ChordFile:
    """Check and read a chord MIDI file and choose its chord track (by name, 0-based index, or
    automatically when `track` is None)."""
    checked = checked_file(path, MIDI_SUFFIXES, MAX_MIDI_BYTES, "chord MIDI")
    song = _read_song(checked, "chord MIDI")
    try:
        choice = choose_chord_track(song, track)
    except MidiError as error:
        raise SessionError(f"chord MIDI file {checked}: {error}") from error
    return ChordFile(checked, track, choice.track, choice.reason)


# ---------------------------------------------------------------------------------------------
# Drums


@dataclass(frozen=True)
class AudioDrums:
    """A drum stem on disk whose first sample sounds at `start_beat` on the DAW timeline."""

    path: Path
    sample_rate: int
    frames: int
    channels: int
    start_beat: float = 0.0

    def timeline_audio(
        self, tempo_map: TempoMap, from_seconds: float, to_seconds: float
    ) -> tuple[np.ndarray, int]:
        """`[channels, samples]` at the file's rate, sample 0 = beat 0 of the song, holding the
        stem between `from_seconds` and `to_seconds` and silence everywhere else.

        Only that span is read from disk; the silence before it is never written to, so the
        operating system does not even back it with memory.
        """
        import soundfile

        rate = self.sample_rate
        stem_first = round(tempo_map.seconds_at(self.start_beat) * rate)
        first, last = round(from_seconds * rate), round(to_seconds * rate)
        out = np.zeros((self.channels, last), dtype=np.float32)
        begin, end = max(first - stem_first, 0), min(last - stem_first, self.frames)
        if begin < end:
            try:
                data, _ = soundfile.read(
                    self.path, start=begin, stop=end, dtype="float32", always_2d=True
                )
            except (OSError, RuntimeError) as error:
                raise SessionError(f"drum stem {self.path} cannot be read now: {error}") from error
            out[:, stem_first + begin : stem_first + begin + len(data)] = data.T
        return out, rate

    def describe(self) -> dict[str, Any]:
        """Plain JSON values for a clip's sidecar."""
        return {"kind": "audio", "path": str(self.path), "start_beat": self.start_beat}


@dataclass(frozen=True)
class MidiDrums:
    """Drum hits from a MIDI file, in song beats; synthesised into a stem for each window."""

    path: Path
    hits: tuple[DrumHit, ...] = field(repr=False)

    def timeline_audio(
        self, tempo_map: TempoMap, from_seconds: float, to_seconds: float, sample_rate: int
    ) -> tuple[np.ndarray, int]:
        """Mono `[samples]`, sample 0 = beat 0 of the song, with the hits between `from_seconds`
        and `to_seconds` synthesised and silence before."""
        from engine.preview import synthesize_drums

        first, last = round(from_seconds * sample_rate), round(to_seconds * sample_rate)
        out = np.zeros(last, dtype=np.float32)
        if last <= first:
            return out, sample_rate
        hits = [
            (tempo_map.seconds_at(hit.start_beat) - first / sample_rate, hit.pitch, hit.velocity)
            for hit in self.hits
        ]
        span = synthesize_drums(hits, (last - first) / sample_rate, sample_rate)
        out[first : first + len(span)] = span[: last - first]
        return out, sample_rate

    def describe(self) -> dict[str, Any]:
        """Plain JSON values for a clip's sidecar."""
        return {"kind": "midi", "path": str(self.path), "hits": len(self.hits)}


Drums: TypeAlias = AudioDrums | MidiDrums


def open_drums(path: object, start_beat: float = 0.0) -> Drums:
    """A drum stem (wav/flac/aiff/ogg) or a drum MIDI file, chosen by the file's extension,
    whose start sits at `start_beat` on the DAW timeline (0 = exported from the song's start)."""
    if Path(str(path)).suffix.lower() in MIDI_SUFFIXES:
        checked = checked_file(path, MIDI_SUFFIXES, MAX_MIDI_BYTES, "drum MIDI")
        return _open_midi_drums(checked, start_beat)
    checked = checked_file(path, AUDIO_SUFFIXES + MIDI_SUFFIXES, MAX_AUDIO_BYTES, "drum")
    return _open_audio_drums(checked, start_beat)


def _open_audio_drums(path: Path, start_beat: float) -> AudioDrums:
    import soundfile

    try:
        info = soundfile.info(str(path))
    except (OSError, RuntimeError) as error:
        raise SessionError(
            f"drum stem {path} is not a readable audio file ({error}); "
            "export it as WAV, FLAC, AIFF or OGG"
        ) from error
    if info.frames == 0:
        raise SessionError(f"drum stem {path} holds no audio; export the drum track again")
    return AudioDrums(path, info.samplerate, info.frames, info.channels, start_beat)


def _open_midi_drums(path: Path, start_beat: float) -> MidiDrums:
    song = _read_song(path, "drum MIDI")
    # DAWs often export a drum part on channel 1; when no track is marked as GM percussion,
    # every note counts as a drum hit.
    tracks = [t for t in song.tracks if t.is_drum] or list(song.tracks)
    hits = sorted(
        (
            replace(hit, start_beat=start_beat + hit.start_beat)
            for t in tracks
            for hit in drum_hits(t)
        ),
        key=lambda hit: (hit.start_beat, hit.pitch),
    )
    if not hits:
        raise SessionError(f"drum MIDI file {path} has no notes; export the drum track again")
    return MidiDrums(path, tuple(hits))


def _read_song(path: Path, kind: str) -> MidiSong:
    try:
        return read_midi_file(path)
    except MidiError as error:
        raise SessionError(f"{kind} file {path} cannot be used: {error}") from error
