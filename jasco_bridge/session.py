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
import math
import os
import re
from bisect import bisect_right, insort
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from jasco_bridge.errors import SessionError, session_input
from jasco_bridge.settings import SETTING_NAMES, RenderSettings, setting_value
from jasco_bridge.sources import (
    ChordFile,
    Drums,
    MidiDrums,
    ReadRoots,
    open_chord_file,
    open_drums,
)
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
MAX_SESSIONS = 256  # named sessions; the default session is always there besides them
MAX_NOTES = 20_000  # per note list: about 100 minutes of four-note chords on every beat
MAX_CHORD_SYMBOLS = 4096
MAX_TEMPO_CHANGES = 1024  # per session; a tempo map is rebuilt (O(n)) only when it is read
MAX_METER_CHANGES = 1024
MAX_PROMPT_CHARS = 2000
TEMPO_SOURCES = ("session", "chord file", "default")
# Memory budgets, in estimated bytes (what the objects below cost in CPython, measured): one
# session may not pass MAX_SESSION_BYTES, all of them together not MAX_TOTAL_BYTES. Past the
# total, least recently used sessions are forgotten first; the one being changed never is.
MAX_SESSION_BYTES = 32 * 2**20
MAX_TOTAL_BYTES = 256 * 2**20
NOTE_BYTES = 200  # a Note (frozen dataclass, two floats) in a list
SYMBOL_BYTES = 400  # a ChordSymbol with its parsed Chord and label
CHANGE_BYTES = 200  # a TempoChange or TimeSignature in the session and in its built map
HIT_BYTES = 150  # a DrumHit of drum MIDI
_ON_BAR_LINE = 1e-9


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

    def __init__(
        self,
        name: str = DEFAULT_SESSION,
        *,
        read_roots: ReadRoots = None,
        budget: Callable[[Session, int], None] | None = None,
    ) -> None:
        """`read_roots`: the folders files named by path may be read from (None = anywhere, for
        the command line). `budget(session, bytes)` is asked before the session grows to that
        estimated size (a `SessionStore` enforces the total budget with it)."""
        self.name = check_session_name(name)
        self.read_roots = read_roots
        self._budget = budget
        self.reset()

    def reset(self) -> None:
        """Back to 120 bpm 4/4, no chords, drums or melody, an empty prompt, default settings;
        nobody owns it any more (`jasco_bridge.ownership`)."""
        self.owner: str | None = None
        self._set_changes(TempoMap.constant(120.0))
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
        _check_count(len(tempo_map.tempos), MAX_TEMPO_CHANGES, "tempo changes", "MAX_TEMPO_CHANGES")
        _check_count(len(tempo_map.meters), MAX_METER_CHANGES, "meter changes", "MAX_METER_CHANGES")
        self._check_growth(
            CHANGE_BYTES
            * (
                len(tempo_map.tempos)
                + len(tempo_map.meters)
                - len(self._tempos)
                - len(self._meters)
            )
        )
        self._set_changes(tempo_map)
        self._tempo_source = source

    def _set_changes(self, tempo_map: TempoMap) -> None:
        self._tempos = {t.beat: t for t in tempo_map.tempos}
        self._meters = {m.beat: m for m in tempo_map.meters}
        self._meter_beats = sorted(self._meters)
        self._built_map: TempoMap | None = tempo_map

    @property
    def tempo_map(self) -> TempoMap:
        """The session's tempo map, built from its changes when first read after one (so a
        DAW sending a thousand tempo changes costs one build, not a thousand)."""
        if self._built_map is None:
            self._built_map = TempoMap(tuple(self._tempos.values()), tuple(self._meters.values()))
        return self._built_map

    def add_tempo_change(self, at_beat: float, bpm: float) -> None:
        """From `at_beat` on the tempo is `bpm` (a change already at that beat is replaced)."""
        with session_input("tempo change"):
            change = TempoChange(at_beat, bpm)
        if change.beat not in self._tempos:
            _check_count(
                len(self._tempos) + 1, MAX_TEMPO_CHANGES, "tempo changes", "MAX_TEMPO_CHANGES"
            )
            self._check_growth(CHANGE_BYTES)
        self._tempos[change.beat] = change
        self._built_map = None
        self._tempo_source = "session"

    def add_meter_change(self, at_beat: float, numerator: int, denominator: int) -> None:
        """From `at_beat`, which must be a bar line, bars are `numerator/denominator`."""
        with session_input("meter change"):
            meter = TimeSignature(at_beat, numerator, denominator)
        self._check_on_bar_line(meter)
        if meter.beat not in self._meters:
            _check_count(
                len(self._meters) + 1, MAX_METER_CHANGES, "meter changes", "MAX_METER_CHANGES"
            )
            self._check_growth(CHANGE_BYTES)
            insort(self._meter_beats, meter.beat)
        self._meters[meter.beat] = meter
        self._built_map = None
        self._tempo_source = "session"

    def _check_on_bar_line(self, meter: TimeSignature) -> None:
        """One bisect: bar lines after a meter change fall every bar of it, so only the change
        before `meter` decides (a change at the same beat is being replaced)."""
        i = bisect_right(self._meter_beats, meter.beat) - 1
        if i >= 0 and self._meter_beats[i] == meter.beat:
            i -= 1
        before = self._meters[self._meter_beats[i]] if i >= 0 else TimeSignature(0.0, 4, 4)
        bars = (meter.beat - before.beat) / before.beats_per_bar
        if abs(bars - round(bars)) * before.beats_per_bar <= _ON_BAR_LINE:
            return
        previous = before.beat + math.floor(bars) * before.beats_per_bar
        raise SessionError(
            f"meter change: time signature {meter} at beat {meter.beat:g} falls inside a bar; "
            f"put it on a bar line (beat {previous:g} or {previous + before.beats_per_bar:g})"
        )

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
        self._check_growth(NOTE_BYTES * len(notes))
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
                f"a session holds at most {MAX_CHORD_SYMBOLS} chord symbols "
                "(MAX_CHORD_SYMBOLS); send /jasco/chords/clear first"
            )
        self._check_growth(SYMBOL_BYTES * (len(merged) - len(self._chord_symbols)))
        notices = self._switch_chords_to("symbols")  # only drops other kinds than symbols
        self._chord_symbols = merged
        return notices

    def set_chord_file(
        self, path: str | os.PathLike[str], track: str | int | None = None
    ) -> list[str]:
        """Take chords from a MIDI file's track (by name or 0-based index; None = choose), and
        its tempo map and meters unless the session has its own. Returns the notices for the
        producer: which tempo map the bars follow, and chords of another kind dropped."""
        return self.read_file("set_chord_file", {"path": path, "track": track})() or []

    def read_file(self, command: str, values: Mapping[str, Any]) -> Callable[[], list[str] | None]:
        """The slow half of a file command (`set_chord_file`, `set_drums_file`): check and read
        the file, touching nothing of the session, so it may run on a worker thread and be
        abandoned after a time limit. Returns the quick half, which changes the session (and
        returns the command's notices, if any)."""
        if command == "set_chord_file":
            chord_file = open_chord_file(values["path"], values.get("track"), self.read_roots)
            return lambda: self._use_chord_file(chord_file)
        if command == "set_drums_file":
            drums = open_drums(values["path"], values.get("start_beat", 0.0), self.read_roots)
            return lambda: self.set_drums(drums)
        raise SessionError(f"{command} does not read a file")

    def _use_chord_file(self, chord_file: ChordFile) -> list[str]:
        self._check_growth(NOTE_BYTES * (len(chord_file.track.notes) - self._file_notes()))
        notices: list[str] = []
        # The tempo first: refused (too many changes), it leaves the chords as they were.
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
        notices[:0] = self._switch_chords_to("file")
        self._chord_file = chord_file
        logger.info("session %s: chords from %s, %s", self.name, chord_file.path, chord_file.reason)
        return notices

    # -- drums and melody

    def set_drums_file(self, path: str | os.PathLike[str], start_beat: float = 0.0) -> None:
        """A drum stem (wav/flac/aiff/ogg) or a drum MIDI file whose start sits at `start_beat`
        on the DAW timeline (0 = the file was exported from the song's start)."""
        self.read_file("set_drums_file", {"path": path, "start_beat": start_beat})()

    def set_drums(self, drums: Drums | None) -> None:
        """Drums already opened (a MIDI file's own drum track)."""
        self._check_growth(HIT_BYTES * (_hits(drums) - _hits(self._drums)))
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

    def _add_notes(self, target: list[Note], notes: list[Note], what: str) -> None:
        self._check_room(len(target) + len(notes), what)
        self._check_growth(NOTE_BYTES * len(notes))
        target.extend(notes)

    @staticmethod
    def _check_room(count: int, what: str) -> None:
        if count > MAX_NOTES:
            raise SessionError(
                f"a session holds at most {MAX_NOTES} {what} (MAX_NOTES); send the matching "
                "clear message first or send fewer notes"
            )

    # -- memory

    def estimated_bytes(self) -> int:
        """What this session's content costs in memory, estimated from its counts (O(1))."""
        return (
            NOTE_BYTES * (len(self._chord_notes) + len(self._melody_notes) + self._file_notes())
            + SYMBOL_BYTES * len(self._chord_symbols)
            + CHANGE_BYTES * (len(self._tempos) + len(self._meters))
            + HIT_BYTES * _hits(self._drums)
            + len(self.prompt)
        )

    def _file_notes(self) -> int:
        return 0 if self._chord_file is None else len(self._chord_file.track.notes)

    def _check_growth(self, added_bytes: int) -> None:
        """Refuse a change that would take the session past its budget (naming the cap), and
        let the store make room for it in the total budget."""
        if added_bytes <= 0:
            return
        projected = self.estimated_bytes() + added_bytes
        if projected > MAX_SESSION_BYTES:
            raise SessionError(
                f"session {self.name} would hold about {projected / 2**20:.1f} MiB of notes, "
                f"symbols and tempo changes; the limit is {MAX_SESSION_BYTES / 2**20:.0f} MiB a "
                "session (MAX_SESSION_BYTES): clear what it no longer needs or split the song"
            )
        if self._budget is not None:
            self._budget(self, projected)

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


def _hits(drums: Drums | None) -> int:
    return len(drums.hits) if isinstance(drums, MidiDrums) else 0


def _check_count(count: int, cap: int, what: str, name: str) -> None:
    if count > cap:
        raise SessionError(
            f"a session holds at most {cap} {what} ({name}); send /jasco/tempo to start the "
            "tempo map again, or thin out the tempo automation"
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
    """The daemon's sessions by name, created on first use, least recently used forgotten first.

    The default session is always there and never forgotten. Named sessions are kept up to
    `max_sessions`; one more forgets the one used longest ago (its queued renders are not
    affected: they hold a snapshot), so a flood of names never locks anyone out. The same
    happens when all sessions together would pass `max_total_bytes`.
    """

    def __init__(
        self,
        max_sessions: int = MAX_SESSIONS,
        *,
        max_total_bytes: int = MAX_TOTAL_BYTES,
        read_roots: ReadRoots = None,
    ) -> None:
        self._max_sessions = max_sessions
        self._max_total_bytes = max_total_bytes
        self._read_roots = read_roots
        self._default = self._new(DEFAULT_SESSION)
        self._sessions: OrderedDict[str, Session] = OrderedDict()
        self.forgotten = 0
        # Told the name of each session forgotten (whoever keeps more per session drops it).
        self.on_forget: Callable[[str], None] | None = None

    def _new(self, name: str) -> Session:
        return Session(name, read_roots=self._read_roots, budget=self._make_room)

    def get(self, name: str = DEFAULT_SESSION) -> Session:
        name = check_session_name(name)
        if name == DEFAULT_SESSION:
            return self._default
        session = self._sessions.get(name)
        if session is None:
            while len(self._sessions) >= self._max_sessions:
                self._forget_oldest("the session limit (MAX_SESSIONS)")
            session = self._sessions[name] = self._new(name)
        else:
            self._sessions.move_to_end(name)
        return session

    def names(self) -> list[str]:
        return sorted([DEFAULT_SESSION, *self._sessions])

    def __len__(self) -> int:
        return 1 + len(self._sessions)

    def estimated_bytes(self) -> int:
        """All sessions' content, estimated (what the total budget counts)."""
        return self._default.estimated_bytes() + sum(
            s.estimated_bytes() for s in self._sessions.values()
        )

    def _forget_oldest(self, reason: str) -> bool:
        if not self._sessions:
            return False
        name, _ = self._sessions.popitem(last=False)
        self.forgotten += 1
        if self.on_forget is not None:
            self.on_forget(name)
        logger.info("session %s forgotten (least recently used) to stay within %s", name, reason)
        return True

    def _make_room(self, growing: Session, projected_bytes: int) -> None:
        others = self.estimated_bytes() - growing.estimated_bytes()
        while others + projected_bytes > self._max_total_bytes:
            oldest = next(iter(self._sessions.values()), None)
            if oldest is growing:
                self._sessions.move_to_end(growing.name)
                oldest = next(iter(self._sessions.values()))
            if oldest is None or oldest is growing:
                raise SessionError(
                    f"the daemon's sessions would hold about {(others + projected_bytes) / 2**20:.0f}"
                    f" MiB; the limit is {self._max_total_bytes / 2**20:.0f} MiB in all "
                    "(MAX_TOTAL_BYTES): clear or reset sessions you no longer use"
                )
            others -= oldest.estimated_bytes()
            self._forget_oldest("the memory budget (MAX_TOTAL_BYTES)")
