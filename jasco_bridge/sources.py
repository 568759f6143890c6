"""Chord and drum sources named by a file path: checked, opened, and cut into window stems.

A DAW sends paths over OSC (`/jasco/chords/file`, `/jasco/drums/file`), so every path is
treated as untrusted input: it must be absolute, exist, be a regular readable file with an
expected extension, stay under a size limit and actually open as its kind. Anything else is a
`SessionError` naming the path and what to do about it.

    chords = open_chord_file("/songs/verse.mid", track="Keys")   # ChordFile, notes in beats
    drums = open_drums("/songs/drums.wav", start_beat=16.0)      # AudioDrums or MidiDrums
    stem, rate = drums.window_audio(tempo_map, 8.0, 10.0, 32000)  # 10 s from 8 s

The values returned are frozen, so a session snapshot can hold them while the daemon goes on
taking messages. A drum stem is read from disk again for each render window, and only the part
that window needs; drum MIDI is synthesised for that window only.
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, TypeAlias

import numpy as np

from jasco_bridge.errors import SessionError, session_input
from midi.checks import is_finite_number
from midi.drums import DrumHit, drum_hits
from midi.notes import NoteTrack
from midi.smf import MidiSong, read_midi_file
from midi.tempo import TempoMap
from midi.tracks import TrackChoice, choose_chord_track

MAX_AUDIO_BYTES = 200 * 1024 * 1024
# A header's claims are checked before anything is allocated for them: a window buffer is
# channels x rate x seconds, so a header claiming 2**31-1 Hz would ask for 80 GiB.
MAX_AUDIO_SAMPLE_RATE = 384_000
MAX_AUDIO_CHANNELS = 8
MAX_MIDI_BYTES = 16 * 1024 * 1024
AUDIO_SUFFIXES = (".wav", ".wave", ".flac", ".aif", ".aiff", ".ogg")
MIDI_SUFFIXES = (".mid", ".midi", ".smf")
_DRUM_NAME = re.compile(r"drum|beat|kit|perc", re.IGNORECASE)


ReadRoots: TypeAlias = tuple[Path, ...] | None


def not_allowed(kind: str, text: str) -> SessionError:
    """The one answer for a path outside the read roots: it says nothing about the path (whether
    it exists, is a folder, how big it is), so a client cannot explore the machine with it."""
    return SessionError(
        f"{kind} path {text[:200]!r}: not allowed (the daemon reads files only under its "
        "read roots: your home folder, the clip folder and each serve --read-root)"
    )


def confine(candidate: Path, roots: ReadRoots, kind: str, text: str) -> Path:
    """`candidate` with every link resolved, when it lies under one of `roots` (None = anywhere,
    for the command line); SessionError "not allowed" otherwise, before anything is looked up."""
    if roots is None:
        return candidate
    try:
        resolved = Path(os.path.realpath(candidate))
    except (OSError, ValueError):
        raise not_allowed(kind, text) from None
    if not any(resolved.is_relative_to(root) for root in roots):
        raise not_allowed(kind, text)
    return resolved


def checked_file(
    path: object,
    suffixes: Sequence[str],
    max_bytes: int,
    kind: str,
    roots: ReadRoots = None,
) -> Path:
    """An existing, readable regular file of an expected extension and size, or SessionError.

    `kind` names the file in messages ("chord MIDI", "drum"). Relative paths are refused: the
    daemon's working folder is not the DAW's, so they would name some other file. With `roots`
    (the daemon's read roots, already resolved) a path whose real location is outside all of
    them is refused as "not allowed" and nothing else about it is said.
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
    candidate = confine(candidate, roots, kind, text)
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
    """A chord MIDI file, the part (or parts combined as one harmony) chosen from it, and the
    file's own tempo map and meters (the session decides whether to use them)."""

    path: Path
    requested_track: str | int | None
    choice: TrackChoice = field(repr=False)
    tempo_map: TempoMap = field(repr=False)

    @property
    def track(self) -> NoteTrack:
        """The notes to recognise: the chosen part, or the union of the combined parts."""
        return self.choice.track

    @property
    def reason(self) -> str:
        return self.choice.reason

    def describe(self) -> dict[str, Any]:
        """Plain JSON values for a clip's sidecar: `track` names the chosen part, or every
        combined part (``tracks 1 'RH' + 2 'LH'``), and `parts` lists them one by one."""
        return {
            "path": str(self.path),
            "requested_track": self.requested_track,
            "track": self.choice.label,
            "parts": [part.label for part in self.choice.parts],
            "reason": self.reason,
        }


def open_chord_file(
    path: object, track: str | int | None = None, roots: ReadRoots = None
) -> ChordFile:
    """Check and read a chord MIDI file and choose its chord track (by name, 0-based index, or
    automatically when `track` is None); `roots` as in `checked_file`."""
    checked = checked_file(path, MIDI_SUFFIXES, MAX_MIDI_BYTES, "chord MIDI", roots)
    song = _read_song(checked, "chord MIDI")
    with session_input(f"chord MIDI file {checked}"):
        choice = choose_chord_track(song, track)
    return ChordFile(checked, track, choice, song.tempo_map)


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
    # Where `path` led when it was checked; a read that finds it leading elsewhere refuses.
    real_path: str | None = field(default=None, repr=False, compare=False)

    def window_audio(
        self, tempo_map: TempoMap, start_seconds: float, seconds: float, sample_rate: int
    ) -> tuple[np.ndarray, int]:
        """`([channels, samples], rate)` at the file's own rate (the engine resamples, as the
        reference does): the stem from `start_seconds` (a song time) for `seconds`, sample 0 =
        `start_seconds`, silence where the stem does not play. `sample_rate` is not used: a
        stem is never synthesised. Only that span is read from disk.
        """
        import soundfile

        rate = self.sample_rate
        stem_first = round(tempo_map.seconds_at(self.start_beat) * rate)
        first = round(start_seconds * rate)
        length = round(seconds * rate)
        out = np.zeros((self.channels, length), dtype=np.float32)
        begin, end = max(first - stem_first, 0), min(first + length - stem_first, self.frames)
        if begin < end:
            if self.real_path is not None and os.path.realpath(self.path) != self.real_path:
                # Checked (and confined to the read roots) when it was sent: a link put in its
                # place since then could point anywhere.
                raise SessionError(
                    f"drum stem {self.path} now leads to another file than the one checked when "
                    "it was sent (a link changed); send /jasco/drums/file again"
                )
            try:
                data, _ = soundfile.read(
                    self.path, start=begin, stop=end, dtype="float32", always_2d=True
                )
            except (OSError, RuntimeError) as error:
                raise SessionError(f"drum stem {self.path} cannot be read now: {error}") from error
            if not np.isfinite(data).all():
                raise SessionError(
                    f"drum stem {self.path} holds NaN or infinite samples between "
                    f"{begin / rate:.2f} s and {end / rate:.2f} s of the file; a silent clip "
                    "would come out: export the drums again (fixed-point PCM cannot hold them)"
                )
            offset = stem_first + begin - first
            out[:, offset : offset + len(data)] = data.T
        return out, rate

    def describe(self) -> dict[str, Any]:
        """Plain JSON values for a clip's sidecar."""
        return {"kind": "audio", "path": str(self.path), "start_beat": self.start_beat}


@dataclass(frozen=True)
class MidiDrums:
    """Drum hits from a MIDI file, in song beats; synthesised into a stem for each window."""

    path: Path | None  # None: a song built in memory
    hits: tuple[DrumHit, ...] = field(repr=False)
    start_beat: float = 0.0

    def window_audio(
        self, tempo_map: TempoMap, start_seconds: float, seconds: float, sample_rate: int
    ) -> tuple[np.ndarray, int]:
        """`(mono [samples], sample_rate)`: the hits from `start_seconds` (a song time) for
        `seconds` synthesised, sample 0 = `start_seconds`."""
        from engine.preview import synthesize_drums

        hits = [
            (tempo_map.seconds_at(hit.start_beat) - start_seconds, hit.pitch, hit.velocity)
            for hit in self.hits
        ]
        # synthesize_drums gives exactly round(seconds * sample_rate) samples.
        return synthesize_drums(hits, seconds, sample_rate).astype(np.float32), sample_rate

    def describe(self) -> dict[str, Any]:
        """Plain JSON values for a clip's sidecar."""
        return {
            "kind": "midi",
            "path": None if self.path is None else str(self.path),
            "start_beat": self.start_beat,
            "hits": len(self.hits),
        }


Drums: TypeAlias = AudioDrums | MidiDrums


def open_drums(path: object, start_beat: float = 0.0, roots: ReadRoots = None) -> Drums:
    """A drum stem (wav/flac/aiff/ogg) or a drum MIDI file, chosen by the file's extension,
    whose start sits at `start_beat` on the DAW timeline (0 = exported from the song's start);
    `roots` as in `checked_file`."""
    if not (is_finite_number(start_beat) and start_beat >= 0):
        raise SessionError(f"drums start_beat must be a number >= 0, got {start_beat!r}")
    if Path(str(path)).suffix.lower() in MIDI_SUFFIXES:
        checked = checked_file(path, MIDI_SUFFIXES, MAX_MIDI_BYTES, "drum MIDI", roots)
        return _open_midi_drums(checked, start_beat)
    checked = checked_file(path, AUDIO_SUFFIXES + MIDI_SUFFIXES, MAX_AUDIO_BYTES, "drum", roots)
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
    if not 1 <= info.samplerate <= MAX_AUDIO_SAMPLE_RATE:
        raise SessionError(
            f"drum stem {path} claims a sample rate of {info.samplerate} Hz; the limit is "
            f"{MAX_AUDIO_SAMPLE_RATE} Hz (MAX_AUDIO_SAMPLE_RATE): the header is damaged or the "
            "file is not audio; export it again at 44.1 or 48 kHz"
        )
    if not 1 <= info.channels <= MAX_AUDIO_CHANNELS:
        raise SessionError(
            f"drum stem {path} claims {info.channels} channels; the limit is "
            f"{MAX_AUDIO_CHANNELS} (MAX_AUDIO_CHANNELS): export the drums as a mono or stereo stem"
        )
    return AudioDrums(
        path, info.samplerate, info.frames, info.channels, start_beat, os.path.realpath(path)
    )


def _open_midi_drums(path: Path, start_beat: float) -> MidiDrums:
    return midi_drums(_read_song(path, "drum MIDI"), start_beat)


def midi_drums(song: MidiSong, start_beat: float = 0.0) -> MidiDrums:
    """The drum tracks of a song as drum hits placed from `start_beat`; SessionError without one.

    A drum track is GM percussion (channel 10) or a track named as drums ("Drums", "Beat",
    "Kit", "Percussion"): DAWs often export a drum part on channel 1 under such a name. Pitched
    tracks are never played as drums.
    """
    if not any(t.notes for t in song.tracks):
        raise SessionError(f"drum MIDI file {song.name} has no notes; export the drum track again")
    tracks = [t for t in song.tracks if is_drum_track(t)]
    if not tracks:
        names = ", ".join(repr(t.label) for t in song.tracks) or "none"
        raise SessionError(
            f"drum MIDI file {song.name} has no drum track (tracks: {names}); put the drums "
            "on MIDI channel 10 or name their track 'Drums'"
        )
    hits = sorted(
        (
            replace(hit, start_beat=start_beat + hit.start_beat)
            for t in tracks
            for hit in drum_hits(t)
        ),
        key=lambda hit: (hit.start_beat, hit.pitch),
    )
    if not hits:
        raise SessionError(f"drum MIDI file {song.name}: its drum track has no notes")
    return MidiDrums(song.path, tuple(hits), start_beat)


def is_drum_track(track: NoteTrack) -> bool:
    """GM percussion, or a track whose name says it holds drums."""
    return track.is_drum or bool(_DRUM_NAME.search(track.name or ""))


def _read_song(path: Path, kind: str) -> MidiSong:
    with session_input(f"{kind} file {path} cannot be used"):
        return read_midi_file(path)
