"""A render request as a DAW script writes it (JSON), and the OSC conversation that carries it out.

`jasco-bridge request` is the edge (a TCP socket and JSON lines); everything here is sans-IO:

    spec = RenderSpec.from_json(document)          # UsageError names the bad field
    messages = spec.messages(token)                # OSC messages, each under one datagram
    tracker = ReplyTracker(token)
    for reply in replies_from_the_daemon:
        for event in tracker.feed(reply):         # dicts, one JSON line each
            ...
        if tracker.finished: break
    tracker.exit_status                            # 0 = every job done, 1 = anything else

The request resets its session first, so it is self-contained: what the JSON says is what renders
(and a seed that is not given is drawn anew for every run). The schema is in docs/request.md.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from jasco_bridge import protocol
from jasco_bridge.conditioning import MAX_RENDER_BARS
from jasco_bridge.errors import UsageError
from jasco_bridge.osc import OscArg, OscMessage
from jasco_bridge.protocol_spec import PREFIX
from jasco_bridge.session import DEFAULT_SESSION
from jasco_bridge.settings import DEFAULT_START_BAR
from midi.notes import MAX_PITCH, MAX_VELOCITY
from midi.tempo import MAX_BPM, MAX_DENOMINATOR, MAX_NUMERATOR, MIN_BPM

# One bulk message stays under this many bytes, so that it also fits one UDP datagram (65507).
MAX_MESSAGE_BYTES = 60_000
SETTING_NAMES = (
    "seed",
    "steps",
    "sampler",
    "cfg_all",
    "cfg_text",
    "variations",
    "sample_rate",
    "target_lufs",
    "context_bars",
)
_TOP_LEVEL = (
    "session",
    "tempo",
    "tempo_changes",
    "meter_changes",
    "notes",
    "symbols",
    "chord_file",
    "melody",
    "drums",
    "prompt",
    "start_bar",
    "bars",
    "settings",
    "token",
)
_REPLIES = {reply.address: reply for reply in protocol.REPLIES}


# ---------------------------------------------------------------------------- reading the JSON


def _where(path: str) -> str:
    return path or "the request"


def _object(value: object, path: str, keys: Sequence[str]) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise UsageError(f"{_where(path)} must be a JSON object, got {type(value).__name__}")
    unknown = sorted(set(value) - set(keys))
    if unknown:
        raise UsageError(
            f"{_where(path)}: unknown field {unknown[0]!r}; the fields are {', '.join(keys)}"
        )
    return value


def _number(value: object, path: str, low: float | None = None, high: float | None = None) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise UsageError(f"{path} must be a number, got {value!r}")
    if (low is not None and value < low) or (high is not None and value > high):
        span = f"{low:g}..{high:g}" if high is not None else f">= {low:g}"
        raise UsageError(f"{path} must be {span}, got {value!r}")
    return float(value)


def _whole(value: object, path: str, low: int, high: int) -> int:
    number = _number(value, path, low, high)
    if number != int(number):
        raise UsageError(f"{path} must be a whole number, got {value!r}")
    return int(number)


def _text(value: object, path: str) -> str:
    if not isinstance(value, str):
        raise UsageError(f"{path} must be a string, got {value!r}")
    return value


def _list(value: object, path: str) -> list[Any]:
    if not isinstance(value, list):
        raise UsageError(f"{path} must be a JSON array, got {type(value).__name__}")
    return value


@dataclass(frozen=True)
class NoteSpec:
    start_beat: float
    length_beats: float
    pitch: int
    velocity: int = 100

    @classmethod
    def from_json(cls, value: object, path: str) -> NoteSpec:
        keys = ("start_beat", "length_beats", "pitch", "velocity")
        item = _object(value, path, keys)
        for key in keys[:3]:
            if key not in item:
                raise UsageError(f"{path} needs {key!r} (a note is {{{', '.join(keys)}}})")
        return cls(
            _number(item["start_beat"], f"{path}.start_beat", 0),
            _number(item["length_beats"], f"{path}.length_beats", 0),
            _whole(item["pitch"], f"{path}.pitch", 0, MAX_PITCH),
            _whole(item.get("velocity", 100), f"{path}.velocity", 0, MAX_VELOCITY),
        )


@dataclass(frozen=True)
class RenderSpec:
    """One self-contained render request: the song's time, its chords and what to render."""

    start_bar: int = DEFAULT_START_BAR
    bars: int | None = None
    tempo: tuple[float, int, int] | None = None  # (bpm, numerator, denominator); None = not sent
    tempo_changes: tuple[tuple[float, float], ...] = ()  # (at_beat, bpm)
    meter_changes: tuple[tuple[float, int, int], ...] = ()  # (at_beat, numerator, denominator)
    notes: tuple[NoteSpec, ...] = ()
    symbols: tuple[tuple[float, str], ...] = ()  # (start_beat, label)
    chord_file: tuple[str, str | int | None] | None = None  # (path, track)
    melody: tuple[NoteSpec, ...] = ()
    drums: tuple[str, float] | None = None  # (path, start_beat)
    prompt: str = ""
    settings: tuple[tuple[str, float | str], ...] = ()
    session: str = DEFAULT_SESSION
    token: str | None = None

    @classmethod
    def from_json(cls, document: object) -> RenderSpec:
        top = _object(document, "", _TOP_LEVEL)
        values: dict[str, Any] = {}
        if "session" in top:
            values["session"] = _text(top["session"], "session")
        if "tempo" in top:
            tempo = _object(top["tempo"], "tempo", ("bpm", "numerator", "denominator"))
            if "bpm" not in tempo:
                raise UsageError("tempo needs 'bpm' (quarter notes per minute)")
            values["tempo"] = (
                _number(tempo["bpm"], "tempo.bpm", MIN_BPM, MAX_BPM),
                _whole(tempo.get("numerator", 4), "tempo.numerator", 1, MAX_NUMERATOR),
                _whole(tempo.get("denominator", 4), "tempo.denominator", 1, MAX_DENOMINATOR),
            )
        changes = []
        for i, item in enumerate(_list(top.get("tempo_changes", []), "tempo_changes")):
            where = f"tempo_changes[{i}]"
            change = _object(item, where, ("beat", "bpm"))
            changes.append(
                (
                    _number(change.get("beat"), f"{where}.beat", 0),
                    _number(change.get("bpm"), f"{where}.bpm", MIN_BPM, MAX_BPM),
                )
            )
        values["tempo_changes"] = tuple(changes)
        meters = []
        for i, item in enumerate(_list(top.get("meter_changes", []), "meter_changes")):
            where = f"meter_changes[{i}]"
            meter = _object(item, where, ("beat", "numerator", "denominator"))
            meters.append(
                (
                    _number(meter.get("beat"), f"{where}.beat", 0),
                    _whole(meter.get("numerator"), f"{where}.numerator", 1, MAX_NUMERATOR),
                    _whole(meter.get("denominator"), f"{where}.denominator", 1, MAX_DENOMINATOR),
                )
            )
        values["meter_changes"] = tuple(meters)
        for name in ("notes", "melody"):
            items = _list(top.get(name, []), name)
            values[name] = tuple(NoteSpec.from_json(v, f"{name}[{i}]") for i, v in enumerate(items))
        symbols = []
        for i, item in enumerate(_list(top.get("symbols", []), "symbols")):
            where = f"symbols[{i}]"
            symbol = _object(item, where, ("start_beat", "label"))
            symbols.append(
                (
                    _number(symbol.get("start_beat"), f"{where}.start_beat", 0),
                    _text(symbol.get("label"), f"{where}.label"),
                )
            )
        values["symbols"] = tuple(symbols)
        if "chord_file" in top:
            chord_file = _object(top["chord_file"], "chord_file", ("path", "track"))
            track = chord_file.get("track")
            if track is not None and not isinstance(track, str):
                track = _whole(track, "chord_file.track", 0, 10_000)
            values["chord_file"] = (_text(chord_file.get("path"), "chord_file.path"), track)
        if "drums" in top:
            drums = _object(top["drums"], "drums", ("path", "start_beat"))
            values["drums"] = (
                _text(drums.get("path"), "drums.path"),
                _number(drums.get("start_beat", 0.0), "drums.start_beat", 0),
            )
        sources = [name for name in ("notes", "symbols", "chord_file") if top.get(name)]
        if len(sources) > 1:
            raise UsageError(
                f"give the chords one way: {' and '.join(sources)} were both given "
                "(notes, symbols or chord_file)"
            )
        if "prompt" in top:
            values["prompt"] = _text(top["prompt"], "prompt")
        if "start_bar" in top:
            values["start_bar"] = _whole(top["start_bar"], "start_bar", 1, 100_000)
        if top.get("bars") is not None:
            # 0: to the song's last note, as in /jasco/render
            values["bars"] = _whole(top["bars"], "bars", 0, MAX_RENDER_BARS)
        settings = _object(top.get("settings", {}), "settings", SETTING_NAMES)
        checked_settings = []
        for name, value in settings.items():
            if not isinstance(value, str):
                value = _number(value, f"settings.{name}")
            checked_settings.append((name, value))
        values["settings"] = tuple(checked_settings)
        if top.get("token") is not None:
            values["token"] = _text(top["token"], "token")
        return cls(**values)

    # ------------------------------------------------------------------------ as OSC

    def messages(self, token: str) -> list[OscMessage]:
        """Everything to send, in order: reset, time, chords, drums, melody, prompt, settings,
        render (with `token`). Bulk lists are split so that every message fits one datagram."""
        base = PREFIX if self.session == DEFAULT_SESSION else f"{PREFIX}session/{self.session}/"

        def send(name: str, tags: str, *args: OscArg) -> OscMessage:
            return OscMessage(base + name, args, tags)

        out = [send("reset", "")]
        # Without a tempo the session keeps none of its own, so a chord file brings its tempo
        # map (else the daemon's 120 bpm 4/4 applies).
        if self.tempo is not None:
            out.append(send("tempo", "dii", *self.tempo))
        out += [send("meter/change", "dii", *change) for change in self.meter_changes]
        out += [send("tempo/change", "dd", *change) for change in self.tempo_changes]
        out += _bulk(base + "chords/notes", "ddii", _note_groups(self.notes))
        out += _bulk(base + "chords/symbols", "ds", self.symbols)
        if self.chord_file is not None:
            path, track = self.chord_file
            track_tag = "N" if track is None else ("s" if isinstance(track, str) else "i")
            out.append(send("chords/file", "s" + track_tag, path, track))
        if self.drums is not None:
            out.append(send("drums/file", "sd", *self.drums))
        out += _bulk(base + "melody/notes", "ddii", _note_groups(self.melody))
        out.append(send("prompt", "s", self.prompt))
        for name, value in self.settings:
            tag = "s" if isinstance(value, str) else ("i" if value == int(value) else "d")
            out.append(send("set", "s" + tag, name, int(value) if tag == "i" else value))
        # Nil (N) for bars: the daemon's default (as many whole bars as fit in one clip).
        bars_tag = "N" if self.bars is None else "i"
        out.append(send("render", f"i{bars_tag}s", self.start_bar, self.bars, token))
        return out


def _note_groups(notes: Iterable[NoteSpec]) -> Iterator[tuple[OscArg, ...]]:
    for note in notes:
        yield (note.start_beat, note.length_beats, note.pitch, note.velocity)


def _padded(size: int) -> int:
    return (size + 3) // 4 * 4


def _arg_bytes(tag: str, value: OscArg) -> int:
    if tag == "s":
        return _padded(len(str(value).encode("utf-8")) + 1)
    return {"i": 4, "f": 4, "d": 8, "h": 8}.get(tag, 0)


def _bulk(address: str, group_tags: str, groups: Iterable[tuple[OscArg, ...]]) -> list[OscMessage]:
    """Flat bulk messages of whole groups, each at most MAX_MESSAGE_BYTES and MAX_GROUPS groups."""
    out: list[OscMessage] = []
    args: list[OscArg] = []
    count = 0
    size = 0  # arguments and type tags so far; the address and tag framing are added below
    fixed = _padded(len(address.encode("utf-8")) + 1) + 8

    def flush() -> None:
        out.append(OscMessage(address, tuple(args), group_tags * count))

    for group in groups:
        group_size = len(group_tags) + sum(map(_arg_bytes, group_tags, group))
        if fixed + group_size > MAX_MESSAGE_BYTES:
            raise UsageError(f"{address}: one entry is too large to send ({group!r:.80})")
        if count and (
            count == protocol.MAX_GROUPS or fixed + size + group_size > MAX_MESSAGE_BYTES
        ):
            flush()
            args, count, size = [], 0, 0
        args.extend(group)
        count += 1
        size += group_size
    if count:
        flush()
    return out


# ---------------------------------------------------------------------------- the replies

Event = dict[str, Any]
_FINAL = ("done", "error", "cancelled")


def reply_event(reply: OscMessage) -> Event:
    """A reply as a JSON-ready dict: {"event": "done", "job": 3, "path": ..., ...}, named by the
    reply table (arguments past the table's, from a newer daemon, are left out)."""
    spec = _REPLIES.get(reply.address)
    if spec is None:
        return {"event": "other", "address": reply.address, "args": [str(a) for a in reply.args]}
    return {"event": spec.name, **{a.name: v for a, v in zip(spec.args, reply.args, strict=False)}}


@dataclass
class ReplyTracker:
    """Follows one request's replies on its own connection, until each of its jobs has ended.

    Errors without this request's token concern the messages before the render (a chord the
    daemon refused, a file it cannot read): the request has then failed, and its jobs are
    cancelled as soon as they are acknowledged (`cancel_requests` lists them for the caller).
    """

    token: str
    jobs: dict[int, str] = field(default_factory=dict)  # job id -> "queued" or its final event
    setup_failed: bool = False
    refused: bool = False
    cancel_requests: list[int] = field(default_factory=list)

    def feed(self, reply: OscMessage) -> list[Event]:
        event = reply_event(reply)
        kind = event["event"]
        mine = bool(reply.args) and reply.args[-1] == self.token
        if kind == "error" and not mine:
            if event.get("job", -1) != -1:
                return []  # another client's job cannot reach this connection; ignore it
            self.setup_failed = True
            self.cancel_requests += [job for job, state in self.jobs.items() if state == "queued"]
            return [event]
        if not mine or kind not in ("ack", "progress", *_FINAL):
            return []
        job = event["job"]
        if kind == "ack":
            self.jobs[job] = "queued"
            if self.setup_failed:
                self.cancel_requests.append(job)
        elif kind in _FINAL:
            if job == -1:
                self.refused = True
            else:
                self.jobs[job] = kind
        return [event]

    def take_cancel_requests(self) -> list[int]:
        taken, self.cancel_requests = self.cancel_requests, []
        return taken

    @property
    def finished(self) -> bool:
        if self.refused:
            return True
        return bool(self.jobs) and all(state in _FINAL for state in self.jobs.values())

    @property
    def unfinished_jobs(self) -> list[int]:
        return [job for job, state in self.jobs.items() if state not in _FINAL]

    @property
    def exit_status(self) -> int:
        ok = self.finished and not (self.refused or self.setup_failed)
        return 0 if ok and all(state == "done" for state in self.jobs.values()) else 1
