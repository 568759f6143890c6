"""What the DAW has told the bridge so far: tempo map, chords, drums, melody, prompt, settings.

A `Session` is mutable and lives on the daemon's event loop; each OSC message changes it through
one method that validates its input and raises `SessionError` with a message for the user. A
render takes an immutable `SessionSnapshot`, so later messages never change a queued job.

    store = SessionStore()
    session = store.get("verse")
    session.set_tempo(92, 4, 4)
    session.add_chord_symbol(0.0, "Am7")
    session.add_chord_symbol(8.0, "Fmaj7")
    session.set_prompt("dusty lofi hip hop, rhodes")
    snapshot = session.snapshot()          # what a job renders
    snapshot.chord_timeline(until_beat=16.0)

Chords come from one source, the latest kind sent: chord symbols, chord notes (recognised into
chords with the session's tempo map) or the chosen track of a chord MIDI file. Sending another
kind replaces the chords held so far, and the method says so in the notices it returns (the
daemon sends them as `/jasco/notice`). A chord file's notes are taken in beats; the file also
brings its tempo map and meters, unless the session has an explicit one (sent as tempo, tempo
change or meter change): `tempo_source` says which ("session", "chord file" or "default").

Beat 0 is the start of the DAW timeline. A drum stem starts at beat 0 unless told otherwise.
Chord and drum files named by path are checked and opened by `jasco_bridge.sources`.
"""

from __future__ import annotations

import difflib
import logging
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from jasco_bridge.errors import SessionError, session_input
from jasco_bridge.settings import SETTING_NAMES, RenderSettings, setting_value
from jasco_bridge.sources import ChordFile, Drums, MidiDrums, open_chord_file, open_drums
from midi.checks import is_finite_number
from midi.chords import Chord, TimedChord
from midi.notes import Note, NoteTrack
from midi.recognize import recognize_chords
from midi.symbols import parse_chord_symbol
from midi.tempo import TempoChange, TempoMap, TimeSignature

logger = logging.getLogger(__name__)

DEFAULT_SESSION = "default"
MAX_SESSION_NAME_CHARS = 64
_SESSION_NAME = re.compile(rf"[A-Za-z0-9_-]{{1,{MAX_SESSION_NAME_CHARS}}}")
MAX_SESSIONS = 256
MAX_NOTES = 20_000  # per note list: about 100 minutes of four-note chords on every beat
MAX_CHORD_SYMBOLS = 4096
MAX_PROMPT_CHARS = 2000
TEMPO_SOURCES = ("session", "chord file", "default")


# ---------------------------------------------------------------------------------------------
# Snapshot and session


@dataclass(frozen=True)
class ChordSymbol:
    """A chord symbol as the DAW sent it, from `start_beat` until the next one."""

    start_beat: float
    label: str
    chord: Chord | None  # None = N.C.

    def __post_init__(self) -> None:
        if not (is_finite_number(self.start_beat) and self.start_beat >= 0):
            raise SessionError(
                f"chord symbol start_beat must be a number >= 0, got {self.start_beat!r}"
            )
        object.__setattr__(self, "start_beat", float(self.start_beat))


@dataclass(frozen=True)
class SessionSnapshot:
    """Everything a render needs from a session, frozen at the moment the render was asked for.

    `tempo_source` is "session" for a tempo map the DAW sent, "chord file" for the chord MIDI
    file's own, "default" for the 120 bpm 4/4 nobody chose.
    """

    name: str
    tempo_map: TempoMap
    prompt: str
    settings: RenderSettings
    chord_symbols: tuple[ChordSymbol, ...] = ()
    chord_notes: tuple[Note, ...] = field(default=(), repr=False)
    chord_file: ChordFile | None = None
    drums: Drums | None = None
    melody_notes: tuple[Note, ...] = field(default=(), repr=False)
    tempo_source: str = "session"

    @property
    def tempo_given(self) -> bool:
        """False while the tempo map is the default nobody chose."""
        return self.tempo_source != "default"

    @property
    def chord_source(self) -> str:
        """Where the chords come from: "symbols", "notes", "file" or "none" (a `Session` holds
        one kind at a time)."""
        if self.chord_symbols:
            return "symbols"
        if self.chord_notes:
            return "notes"
        if self.chord_file is not None:
            return "file"
        return "none"

    def chord_timeline(self, until_beat: float | None = None) -> list[TimedChord]:
        """The chords to render, in beats, from the chord source.

        The last chord symbol lasts until `until_beat` (the end of the render window); without
        one it lasts one bar.
        """
        source = self.chord_source
        if source == "symbols":
            return self._symbol_timeline(until_beat)
        if source == "notes":
            track = NoteTrack("OSC chord notes", self.chord_notes)
            return list(recognize_chords(track, self.tempo_map))
        if source == "file" and self.chord_file is not None:
            return list(recognize_chords(self.chord_file.track, self.tempo_map))
        return []

    def last_beat(self) -> float:
        """Where the last chord note, melody note or drum hit ends (0 when there is none).

        Chord symbols do not count: the last one lasts to the end of whatever is rendered."""
        ends = [n.end_beat for n in self.chord_notes + self.melody_notes]
        if self.chord_file is not None:
            ends.append(self.chord_file.track.end_beat)
        if isinstance(self.drums, MidiDrums):
            ends += [hit.start_beat for hit in self.drums.hits]
        return max(ends, default=0.0)

    def _symbol_timeline(self, until_beat: float | None) -> list[TimedChord]:
        symbols = self.chord_symbols
        timeline = []
        for i, symbol in enumerate(symbols):
            if i + 1 < len(symbols):
                end = symbols[i + 1].start_beat
            elif until_beat is not None and until_beat > symbol.start_beat:
                end = until_beat
            else:
                end = symbol.start_beat + self.tempo_map.beats_per_bar_at(symbol.start_beat)
            timeline.append(TimedChord(symbol.start_beat, end, symbol.chord, symbol.label))
        return timeline

    def describe(self) -> dict[str, Any]:
        """The session as plain JSON values, for a clip's sidecar (`session_from_sidecar`
        reads it back)."""
        return {
            "session": self.name,
            "prompt": self.prompt,
            "tempo_map": {
                "text": str(self.tempo_map),
                "tempos": [[t.beat, t.bpm] for t in self.tempo_map.tempos],
                "meters": [[m.beat, m.numerator, m.denominator] for m in self.tempo_map.meters],
            },
            "tempo_source": self.tempo_source,
            "chord_source": self.chord_source,
            "chord_symbols": [[s.start_beat, s.label] for s in self.chord_symbols],
            "chord_notes": [
                [n.start_beat, n.duration_beats, n.pitch, n.velocity] for n in self.chord_notes
            ],
            "chord_file": None if self.chord_file is None else self.chord_file.describe(),
            "drums": None if self.drums is None else self.drums.describe(),
            "melody_notes": [
                [n.start_beat, n.duration_beats, n.pitch, n.velocity] for n in self.melody_notes
            ],
            "settings": self.settings.describe(),
        }


NoteGroup = Sequence[object]  # (start_beat, length_beats, pitch, velocity)
SymbolGroup = Sequence[object]  # (start_beat, label)


def _notes(groups: Sequence[NoteGroup], what: str) -> list[Note]:
    notes = []
    for number, group in enumerate(groups, start=1):
        if len(group) != 4:
            raise SessionError(
                f"{what} come in groups of 4 (start_beat, length_beats, pitch, velocity); "
                f"group {number} has {len(group)} values"
            )
        start, length, pitch, velocity = group
        # The DAW sends a length; a Note knows only its end, so the length is checked here.
        if not (is_finite_number(length) and length > 0):
            raise SessionError(f"{what}: length_beats must be above 0, got {length!r}")
        with session_input(what):
            notes.append(Note(pitch, start, start + length, velocity))  # type: ignore[operator]
    return notes


class Session:
    """One DAW project's state. Every method validates and raises SessionError for the user."""

    def __init__(self, name: str = DEFAULT_SESSION) -> None:
        self.name = check_session_name(name)
        self.reset()

    def reset(self) -> None:
        """Back to 120 bpm 4/4, no chords, drums or melody, an empty prompt, default settings."""
        self.tempo_map = TempoMap.constant(120.0)
        self._tempo_source = "default"
        self.prompt = ""
        self.settings = RenderSettings()
        self._chord_symbols: dict[float, ChordSymbol] = {}
        self._chord_notes: list[Note] = []
        self._chord_file: ChordFile | None = None
        self._drums: Drums | None = None
        self._melody_notes: list[Note] = []

    # -- tempo

    def set_tempo(self, bpm: float, numerator: int = 4, denominator: int = 4) -> None:
        """One tempo and meter for the whole song; earlier tempo and meter changes are dropped."""
        with session_input("tempo"):
            self.set_tempo_map(TempoMap.constant(bpm, numerator, denominator))

    def set_tempo_map(self, tempo_map: TempoMap, source: str = "session") -> None:
        """A whole tempo map at once. `source` is where it came from (`TEMPO_SOURCES`): a
        sidecar read back keeps the one it recorded; anything else is the session's own."""
        if source not in TEMPO_SOURCES:
            raise SessionError(
                f"tempo source must be one of {', '.join(TEMPO_SOURCES)}, got {source!r}"
            )
        self.tempo_map = tempo_map
        self._tempo_source = source

    def add_tempo_change(self, at_beat: float, bpm: float) -> None:
        with session_input("tempo change"):
            self.set_tempo_map(self.tempo_map.with_tempo_change(at_beat, bpm))

    def add_meter_change(self, at_beat: float, numerator: int, denominator: int) -> None:
        with session_input("meter change"):
            self.set_tempo_map(self.tempo_map.with_time_signature(at_beat, numerator, denominator))

    # -- chords

    def clear_chords(self) -> None:
        """Forget chord symbols, chord notes and the chord file (a tempo map the file brought
        stays: bars do not move under the producer's feet)."""
        self._chord_symbols.clear()
        self._chord_notes.clear()
        self._chord_file = None

    def _switch_chords_to(self, kind: str) -> list[str]:
        """Make room for chords of `kind`: the latest kind sent wins, so chords of another kind
        are dropped, and a notice says what was dropped."""
        held = self._chord_kind()
        if held in ("none", kind):
            return []
        dropped = {
            "symbols": f"the {len(self._chord_symbols)} chord symbols sent before are",
            "notes": f"the {len(self._chord_notes)} chord notes sent before are",
            "file": f"the chord file {self._chord_file.path if self._chord_file else ''} is",
        }[held]
        self.clear_chords()
        return [
            f"the chords now come from the chord {kind}; {dropped} dropped "
            "(the latest kind of chords sent wins)"
        ]

    def _chord_kind(self) -> str:
        """The kind of chords held: "symbols", "notes", "file" or "none" (one at a time)."""
        if self._chord_symbols:
            return "symbols"
        if self._chord_notes:
            return "notes"
        return "none" if self._chord_file is None else "file"

    def add_chord_note(
        self, start_beat: float, length_beats: float, pitch: int, velocity: int = 100
    ) -> list[str]:
        return self.add_chord_notes([(start_beat, length_beats, pitch, velocity)])

    def add_chord_notes(self, groups: Sequence[NoteGroup]) -> list[str]:
        """Add (start_beat, length_beats, pitch, velocity) groups; all or nothing. Returns the
        notices for the producer (chords of another kind dropped)."""
        notes = _notes(groups, "chord notes")
        # Checked before anything is dropped: a refused list changes nothing.
        held = len(self._chord_notes) if self._chord_kind() == "notes" else 0
        self._check_room(held + len(notes), "chord notes")
        notices = self._switch_chords_to("notes")
        self._chord_notes.extend(notes)
        return notices

    def add_chord_symbol(self, start_beat: float, label: str) -> list[str]:
        """A chord symbol (`Cmaj7`, `F#m7b5`, `C/E`, `N.C.`); one at the same beat is replaced."""
        return self.add_chord_symbols([(start_beat, label)])

    def add_chord_symbols(self, groups: Sequence[SymbolGroup]) -> list[str]:
        """Add (start_beat, label) groups; all or nothing. Returns the notices for the producer
        (chords of another kind dropped)."""
        parsed = []
        for number, group in enumerate(groups, start=1):
            if len(group) != 2:
                raise SessionError(
                    "chord symbols come in pairs (start_beat, label); "
                    f"group {number} has {len(group)} values"
                )
            start, label = group
            placed = ChordSymbol(start, "", None)  # type: ignore[arg-type]  # checks the beat
            if not isinstance(label, str):
                raise SessionError(
                    f"chord symbol at beat {placed.start_beat:g} must be text, got {label!r}"
                )
            with session_input(f"chord symbol {label!r} at beat {placed.start_beat:g}"):
                chord = parse_chord_symbol(label)
            parsed.append(replace(placed, label=label.strip(), chord=chord))
        merged = dict(self._chord_symbols)
        merged.update((symbol.start_beat, symbol) for symbol in parsed)
        if len(merged) > MAX_CHORD_SYMBOLS:
            raise SessionError(
                f"a session holds at most {MAX_CHORD_SYMBOLS} chord symbols; "
                "send /jasco/chords/clear first"
            )
        notices = self._switch_chords_to("symbols")  # only drops other kinds than symbols
        self._chord_symbols = merged
        return notices

    def set_chord_file(
        self, path: str | os.PathLike[str], track: str | int | None = None
    ) -> list[str]:
        """Take chords from a MIDI file's track (by name or 0-based index; None = choose), and
        its tempo map and meters unless the session has its own. Returns the notices for the
        producer: which tempo map the bars follow, and chords of another kind dropped."""
        chord_file = open_chord_file(path, track)
        notices = self._switch_chords_to("file")
        self._chord_file = chord_file
        logger.info("session %s: chords from %s, %s", self.name, chord_file.path, chord_file.reason)
        if self._tempo_source != "session":
            self.set_tempo_map(chord_file.tempo_map, source="chord file")
            notices.append(f"the bars follow the chord file's tempo map: {chord_file.tempo_map}")
        # As a musician reads them: a file stores tempos in microseconds per beat (92.00001).
        elif str(chord_file.tempo_map) != str(self.tempo_map):
            notices.append(
                f"the bars follow the session's tempo map ({self.tempo_map}), not the chord "
                f"file's ({chord_file.tempo_map}); to use the file's, send /jasco/reset "
                "before the file"
            )
        return notices

    # -- drums and melody

    def set_drums_file(self, path: str | os.PathLike[str], start_beat: float = 0.0) -> None:
        """A drum stem (wav/flac/aiff/ogg) or a drum MIDI file whose start sits at `start_beat`
        on the DAW timeline (0 = the file was exported from the song's start)."""
        self._drums = open_drums(path, start_beat)

    def set_drums(self, drums: Drums | None) -> None:
        """Drums already opened (a MIDI file's own drum track)."""
        self._drums = drums

    def clear_drums(self) -> None:
        self._drums = None

    def add_melody_note(
        self, start_beat: float, length_beats: float, pitch: int, velocity: int = 100
    ) -> None:
        self.add_melody_notes([(start_beat, length_beats, pitch, velocity)])

    def add_melody_notes(self, groups: Sequence[NoteGroup]) -> None:
        """Add (start_beat, length_beats, pitch, velocity) groups; all or nothing."""
        self._add_notes(self._melody_notes, _notes(groups, "melody notes"), "melody notes")

    def set_melody_track(self, track: NoteTrack) -> None:
        """The melody from a MIDI file's track, replacing the melody notes."""
        self._melody_notes = []
        self._add_notes(self._melody_notes, list(track.notes), "melody notes")

    def clear_melody(self) -> None:
        self._melody_notes.clear()

    @classmethod
    def _add_notes(cls, target: list[Note], notes: list[Note], what: str) -> None:
        cls._check_room(len(target) + len(notes), what)
        target.extend(notes)

    @staticmethod
    def _check_room(count: int, what: str) -> None:
        if count > MAX_NOTES:
            raise SessionError(
                f"a session holds at most {MAX_NOTES} {what}; send the matching clear message "
                "first or send fewer notes"
            )

    # -- prompt and settings

    def set_prompt(self, text: str) -> None:
        if not isinstance(text, str):
            raise SessionError(f"the prompt must be text, got {text!r}")
        if len(text) > MAX_PROMPT_CHARS:
            raise SessionError(
                f"the prompt is {len(text)} characters; keep it under {MAX_PROMPT_CHARS} "
                "(a sentence or two describes the music best)"
            )
        self.prompt = text.strip()

    def set_setting(self, name: str, value: object) -> None:
        """Change one of seed, steps, sampler, cfg_all, cfg_text, variations, sample_rate,
        target_lufs. Seed -1 (or "random") draws a new seed per render; sample_rate 0 and
        target_lufs 0 mean "the engine's rate" and "no loudness change"."""
        key = name.strip().lower() if isinstance(name, str) else name
        if key not in SETTING_NAMES:
            close = difflib.get_close_matches(str(key), SETTING_NAMES, n=1)
            hint = f"did you mean {close[0]}? " if close else ""
            raise SessionError(
                f"unknown setting {name!r}; {hint}settings are {', '.join(SETTING_NAMES)}"
            )
        self.settings = replace(self.settings, **{key: setting_value(key, value)})

    # -- reading

    def chord_timeline(self, until_beat: float | None = None) -> list[TimedChord]:
        return self.snapshot().chord_timeline(until_beat)

    def snapshot(self) -> SessionSnapshot:
        return SessionSnapshot(
            name=self.name,
            tempo_map=self.tempo_map,
            prompt=self.prompt,
            settings=self.settings,
            chord_symbols=tuple(self._chord_symbols[b] for b in sorted(self._chord_symbols)),
            chord_notes=tuple(self._chord_notes),
            chord_file=self._chord_file,
            drums=self._drums,
            melody_notes=tuple(self._melody_notes),
            tempo_source=self._tempo_source,
        )


def session_from_sidecar(document: Mapping[str, Any]) -> Session:
    """The session a clip was rendered from, read back from its sidecar (`describe()` plus the
    `seed` it rendered with): files named in it are opened again, checked as on the first time."""
    try:
        session = Session(document["session"])
        session.set_prompt(document["prompt"])
        # Only the chords that were rendered (sidecars from before "the latest kind wins" may
        # list other kinds too), and the tempo map after them: the one recorded, from where
        # it came, even if a chord file has changed since.
        source = document["chord_source"]
        if source == "symbols":
            session.add_chord_symbols(document["chord_symbols"])
        if source == "notes":
            session.add_chord_notes(document["chord_notes"])
        chord_file = document["chord_file"]
        if source == "file" and chord_file is not None:
            session.set_chord_file(chord_file["path"], chord_file["requested_track"])
        tempo = document["tempo_map"]
        with session_input("the sidecar's tempo map"):
            session.set_tempo_map(
                TempoMap(
                    tuple(TempoChange(beat, bpm) for beat, bpm in tempo["tempos"]),
                    tuple(TimeSignature(b, n, d) for b, n, d in tempo["meters"]),
                ),
                source=document.get("tempo_source", "session"),
            )
        drums = document["drums"]
        if drums is not None:
            session.set_drums_file(drums["path"], drums["start_beat"])
        session.add_melody_notes(document["melody_notes"])
        settings = {**document["settings"], "seed": document["seed"], "variations": 1}
        session.settings = RenderSettings(**settings)
    except (KeyError, TypeError, ValueError) as error:
        raise SessionError(
            f"the sidecar does not describe a session ({type(error).__name__}: {error}); "
            "was it written by jasco-bridge?"
        ) from error
    return session


def check_session_name(name: object) -> str:
    """A session name: 1-64 letters, digits, `-` or `_` (it becomes a folder name)."""
    # fullmatch: `$` would let a trailing newline through into a second, invisible session.
    if not isinstance(name, str) or not _SESSION_NAME.fullmatch(name):
        shown = repr(name)[:80]
        raise SessionError(
            f"session name {shown} is not allowed; use 1-{MAX_SESSION_NAME_CHARS} letters, "
            "digits, '-' or '_' (e.g. verse-2)"
        )
    return name


class SessionStore:
    """The daemon's sessions by name, created on first use."""

    def __init__(self, max_sessions: int = MAX_SESSIONS) -> None:
        self._sessions: dict[str, Session] = {}
        self._max_sessions = max_sessions

    def get(self, name: str = DEFAULT_SESSION) -> Session:
        name = check_session_name(name)
        session = self._sessions.get(name)
        if session is None:
            if len(self._sessions) >= self._max_sessions:
                raise SessionError(
                    f"the daemon already holds {self._max_sessions} sessions; reuse a name "
                    "or restart the daemon"
                )
            session = self._sessions[name] = Session(name)
        return session

    def names(self) -> list[str]:
        return sorted(self._sessions)
