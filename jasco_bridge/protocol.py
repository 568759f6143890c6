"""The jasco-bridge OSC address table, and the one function that reads messages through it.

`COMMANDS` lists every address a DAW may send: its arguments (name, type, default, range), the
flat repeat group for bulk messages, what carries it out (a `Session` method called with the
arguments by name, the repeat groups as one flat list, or a daemon method), and which replies
it can cause. `parse_request(message)` checks a decoded `OscMessage` against that table and returns a
`Request` with typed values, or raises `ProtocolError` with a message that names the address, the
argument and what to send instead. `REPLIES` describes what the daemon sends back and the reply
builders below produce exactly those messages. `docs/osc.md` is generated from both tables
(`markdown_tables()`), so the docs cannot drift from the code.

Sessions: `/jasco/<command>` works on the session called "default";
`/jasco/session/<name>/<command>` works on session `<name>` (letters, digits, `-`, `_`).

Integers are also accepted as floats (Pure Data and REAPER send every number as `f`), but only
whole values where a whole number is needed; T/F are accepted for numbers as 1/0.
"""

from __future__ import annotations

import difflib
import math
from collections.abc import Mapping
from dataclasses import replace
from types import MappingProxyType

from jasco_bridge.clips import ClipInfo
from jasco_bridge.conditioning import MAX_RENDER_BARS
from jasco_bridge.errors import ProtocolError
from jasco_bridge.osc import OscArg, OscMessage
from jasco_bridge.protocol_spec import PREFIX, Arg, Command, Reply, Request
from jasco_bridge.session import DEFAULT_SESSION
from jasco_bridge.settings import (
    DEFAULT_START_BAR,
    MAX_CFG,
    MAX_CONTEXT_BARS,
    MAX_SEED,
    MAX_STEPS,
    RANDOM_SEED,
)
from midi.notes import MAX_PITCH, MAX_VELOCITY
from midi.tempo import MAX_BPM, MAX_DENOMINATOR, MAX_NUMERATOR, MIN_BPM

SESSION_PREFIX = PREFIX + "session/"
MAX_STRING_CHARS = 4096  # a prompt or a path longer than this is a mistake (or an attack)
MAX_GROUPS = 4096  # bulk messages: at most this many notes / symbols per message

_BEAT = Arg("start_beat", "float", "quarter notes from the song start (0 = bar 1)", low=0)
_LENGTH = Arg("length_beats", "float", "length in quarter notes", low=0)
_PITCH = Arg("pitch", "int", "MIDI note number", low=0, high=MAX_PITCH)
_VELOCITY = Arg("velocity", "int", "MIDI velocity", default=100, low=0, high=MAX_VELOCITY)
_REQUIRED_VELOCITY = Arg("velocity", "int", "MIDI velocity", low=0, high=MAX_VELOCITY)
_BPM = Arg("bpm", "float", "quarter notes per minute", low=MIN_BPM, high=MAX_BPM)
_NUMERATOR = Arg("numerator", "int", "beats per bar", low=1, high=MAX_NUMERATOR)
_DENOMINATOR = Arg("denominator", "int", "beat unit (1, 2, 4, 8, ...)", low=1, high=MAX_DENOMINATOR)
_JOB = Arg("job", "int", "job id from /jasco/ack", low=1)
_TOKEN = Arg("token", "str", "the render's token, when it sent one", default=None)
_START_BAR = Arg("start_bar", "int", "first bar of the clip (1-based)")
_BARS = Arg("bars", "int", "how many bars the clip covers")
# Controllers: a button sends 1.0 on press and 0.0 on release; a bare message counts as a press.
_PRESS = Arg("press", "float", "non-zero = pressed, 0 = released (ignored)", default=1.0)
_CONTROLLER_REPLIES = ("ctl/progress", "ctl/state", "ctl/clip")
# Chords of another kind dropped (the latest kind sent wins); which tempo map the bars follow.
_CHORD_REPLIES = ("notice",)

COMMANDS: tuple[Command, ...] = (
    Command(
        "ping",
        "Is the daemon alive? The optional token comes back in the pong.",
        "ping",
        args=(Arg("token", "int", "echoed back", default=None),),
        replies=("pong",),
        per_session=False,
        runs_on="daemon",
    ),
    Command(
        "status",
        "Queue and engine state.",
        "status",
        replies=("status",),
        per_session=False,
        runs_on="daemon",
    ),
    Command(
        "cancel",
        "Cancel a queued or running job.",
        "cancel",
        args=(_JOB,),
        replies=("cancelled", "error"),
        per_session=False,
        runs_on="daemon",
    ),
    Command(
        "reply/port",
        "Send this session's UDP replies (and ping, status and cancel replies, for the default "
        "session) to a port where you listen; 0 = back to the sending port again.",
        "set_reply_port",
        args=(
            Arg("port", "int", "your listening UDP port; 0 = the sender's port", low=0, high=65535),
            Arg(
                "host",
                "str",
                "your own address (the default), or, from loopback, another loopback address",
                default=None,
            ),
        ),
        replies=("error",),
        runs_on="daemon",
    ),
    Command(
        "tempo",
        "Set a constant tempo and time signature (replaces the tempo map).",
        "set_tempo",
        args=(_BPM, replace(_NUMERATOR, default=4), replace(_DENOMINATOR, default=4)),
    ),
    Command(
        "tempo/change",
        "Add a tempo change at a beat (after /jasco/tempo).",
        "add_tempo_change",
        args=(Arg("at_beat", "float", "where it starts", low=0), _BPM),
    ),
    Command(
        "meter/change",
        "Add a time-signature change at a beat (on a bar line).",
        "add_meter_change",
        args=(Arg("at_beat", "float", "where it starts", low=0), _NUMERATOR, _DENOMINATOR),
    ),
    Command("chords/clear", "Forget all chord notes, symbols and the chord file.", "clear_chords"),
    Command(
        "chords/note",
        "Add one note of the chord track.",
        "add_chord_note",
        args=(_BEAT, _LENGTH, _PITCH, _VELOCITY),
        replies=_CHORD_REPLIES,
    ),
    Command(
        "chords/notes",
        "Add many chord notes at once: a flat list of start, length, pitch, velocity.",
        "add_chord_notes",
        repeat=(_BEAT, _LENGTH, _PITCH, _REQUIRED_VELOCITY),
        replies=_CHORD_REPLIES,
    ),
    Command(
        "chords/symbol",
        "Add a chord symbol (Cmaj7, F#m7b5, C/E, N.C.) starting at a beat.",
        "add_chord_symbol",
        args=(_BEAT, Arg("label", "str", "chord symbol")),
        replies=_CHORD_REPLIES,
    ),
    Command(
        "chords/symbols",
        "Add many chord symbols at once: a flat list of start, label.",
        "add_chord_symbols",
        repeat=(_BEAT, Arg("label", "str", "chord symbol")),
        replies=_CHORD_REPLIES,
    ),
    Command(
        "chords/file",
        "Read the chords from a MIDI file on this machine (its notes are in beats), and its "
        "tempo map and meters unless the session has its own; track may name several parts, "
        "'RH,LH' or '1,2', read as one harmony.",
        "set_chord_file",
        args=(
            Arg("path", "str", "absolute path of a .mid file"),
            Arg(
                "track",
                "int_or_str",
                "track name or index, or several separated by commas ('RH,LH', '1,2') "
                "read as one harmony (default: chosen automatically)",
                default=None,
            ),
        ),
        replies=_CHORD_REPLIES,
        reads_file=True,
    ),
    Command(
        "drums/file",
        "Use a drum stem (wav/flac/aiff/ogg) or a drum MIDI file.",
        "set_drums_file",
        args=(
            Arg("path", "str", "absolute path of the audio or MIDI file"),
            Arg(
                "start_beat", "float", "where an audio stem's first sample sits", default=0.0, low=0
            ),
        ),
        reads_file=True,
    ),
    Command("drums/clear", "Forget the drum stem or drum MIDI.", "clear_drums"),
    Command("melody/clear", "Forget the melody notes.", "clear_melody"),
    Command(
        "melody/note",
        "Add one melody note.",
        "add_melody_note",
        args=(_BEAT, _LENGTH, _PITCH, _VELOCITY),
    ),
    Command(
        "melody/notes",
        "Add many melody notes at once: a flat list of start, length, pitch, velocity.",
        "add_melody_notes",
        repeat=(_BEAT, _LENGTH, _PITCH, _REQUIRED_VELOCITY),
    ),
    Command(
        "prompt", "Set the text prompt.", "set_prompt", args=(Arg("text", "str", "what to play"),)
    ),
    Command(
        "set",
        f"Change a render setting: seed (0..{MAX_SEED}; {RANDOM_SEED} or `random` = a new "
        "random seed per render, other negative seeds are refused), steps, sampler "
        "(euler, midpoint, dopri5), cfg_all, cfg_text, variations, sample_rate (0 = engine rate), "
        f"target_lufs (0 = off), context_bars (1..{MAX_CONTEXT_BARS}: bars each window of a long "
        "render shares with the one before).",
        "set_setting",
        args=(Arg("name", "str", "setting name"), Arg("value", "number_or_str", "new value")),
    ),
    Command("reset", "Reset the session to its defaults.", "reset"),
    Command(
        "render",
        "Queue a render of a bar range, of any length up to 10 minutes (longer than one JASCO "
        "window: rendered window by window as one continuous clip); one job per variation.",
        "render",
        args=(
            Arg("start_bar", "int", "first bar (1-based)", default=DEFAULT_START_BAR, low=1),
            Arg(
                "bars",
                "int",
                "how many bars; 0 = to the song's last note; default: as many whole bars as "
                "fit in one window, at most 4",
                default=None,
                low=0,
                high=MAX_RENDER_BARS,
            ),
            Arg(
                "token",
                "str",
                "your name for this request; every reply about its jobs ends with it",
                default=None,
            ),
        ),
        replies=("ack", "notice", "progress", "done", "error", "cancelled"),
        runs_on="daemon",
    ),
    Command(
        "ctl/render",
        "Button: render the controller's bar range (see ctl/start_bar, ctl/bars) on a press; "
        "a release (0) is ignored. Feedback on /jasco/ctl/progress, state, clip.",
        "ctl_render",
        args=(_PRESS,),
        replies=_CONTROLLER_REPLIES,
        runs_on="daemon",
    ),
    Command(
        "ctl/cancel",
        "Button: cancel the jobs the controller's last render queued, on a press.",
        "ctl_cancel",
        args=(_PRESS,),
        replies=_CONTROLLER_REPLIES,
        runs_on="daemon",
    ),
    Command(
        "ctl/another_take",
        "Button: render the dialled-in bars again with a fresh random seed (the session keeps "
        "its own seed), on a press.",
        "ctl_another_take",
        args=(_PRESS,),
        replies=_CONTROLLER_REPLIES,
        runs_on="daemon",
    ),
    Command(
        "ctl/start_bar",
        "Fader/encoder: first bar the controller renders, snapped to a whole bar.",
        "ctl_set",
        args=(Arg("value", "float", "bar, any float (snapped)", low=0.5, high=9999),),
        replies=("ctl/state",),
        runs_on="daemon",
    ),
    Command(
        "ctl/bars",
        "Fader/encoder: how many bars, snapped to whole bars; 0 = as many as fit in one clip.",
        "ctl_set",
        args=(Arg("value", "float", "bars, any float (snapped)", low=0, high=MAX_RENDER_BARS),),
        replies=("ctl/state",),
        runs_on="daemon",
    ),
    Command(
        "ctl/seed",
        "Fader/encoder: the seed, snapped to a whole number; below 0 = a new random seed each time.",
        "ctl_set",
        args=(Arg("value", "float", "seed (snapped)", low=-1, high=MAX_SEED),),
        replies=("ctl/state",),
        runs_on="daemon",
    ),
    Command(
        "ctl/steps",
        "Fader/encoder: sampler steps, snapped to a whole number.",
        "ctl_set",
        args=(Arg("value", "float", "steps (snapped)", low=0.5, high=MAX_STEPS),),
        replies=("ctl/state",),
        runs_on="daemon",
    ),
    Command(
        "ctl/guidance",
        "Fader/encoder: classifier-free guidance (cfg_all), snapped to quarter steps so the "
        "default 1.25 stays reachable.",
        "ctl_set",
        args=(Arg("value", "float", "guidance (snapped to 0.25)", low=0, high=MAX_CFG),),
        replies=("ctl/state",),
        runs_on="daemon",
    ),
    Command(
        "transport",
        "The DAW's transport: playing or not, and the beat sounding latency_ms ago. Auditions "
        "and drum takes line up with it (Ableton Link wins when it has peers).",
        "set_transport",
        args=(
            Arg("playing", "int", "1 = playing, 0 = stopped", low=0, high=1),
            Arg("beat", "float", "quarter notes from the song start (0 = bar 1)", low=0),
            Arg(
                "latency_ms",
                "float",
                "how long ago beat was current",
                default=0.0,
                low=0,
                high=10000,
            ),
        ),
        runs_on="daemon",
    ),
    Command(
        "play",
        "Audition a clip through the --audio-out device from the next bar of the transport "
        "(at once when none is known); loop 1 repeats the clip's bars until /jasco/stop.",
        "play",
        args=(
            Arg(
                "job",
                "int",
                "job id from /jasco/ack; 0 = the session's last clip",
                default=0,
                low=0,
            ),
            Arg("loop", "int", "1 = loop the clip's bars", default=0, low=0, high=1),
        ),
        replies=("playing", "stopped", "link/tempo", "error"),
        runs_on="daemon",
    ),
    Command(
        "stop",
        "Stop the clip being auditioned.",
        "stop_audition",
        replies=("error",),
        per_session=False,
        runs_on="daemon",
    ),
    Command(
        "drums/record",
        "Record a drum take from the --audio-in device for exactly these bars, after a count-in "
        "click on --audio-out; it becomes the session's drum stem (a WAV beside the clips).",
        "record_drums",
        args=(
            Arg("start_bar", "int", "first bar of the take (1-based)", low=1),
            Arg("bars", "int", "how many bars", low=1, high=64),
            Arg("count_in", "int", "bars of click before the take", default=1, low=0, high=4),
            Arg(
                "click",
                "int",
                "1 = the click goes on through the take (it is recorded too without headphones)",
                default=0,
                low=0,
                high=1,
            ),
        ),
        replies=("drums/recorded", "link/tempo", "error"),
        runs_on="daemon",
    ),
)


def _in_parts(command: Command) -> tuple[Command, ...]:
    """begin / part / commit rows for a bulk command: one list in several datagrams, applied
    all or nothing at commit."""
    return (
        Command(
            f"{command.name}/begin",
            f"Start a {command.address} list sent in parts (drops parts not yet committed).",
            "bulk_begin",
            runs_on="daemon",
        ),
        Command(
            f"{command.name}/part",
            f"One datagram's worth of the {command.address} list; kept until commit.",
            "bulk_part",
            repeat=command.repeat,
            runs_on="daemon",
        ),
        Command(
            f"{command.name}/commit",
            f"Apply every part since begin as one {command.address}, all or nothing; refused "
            "when the parts do not hold `groups` groups (a datagram lost or refused).",
            "bulk_commit",
            args=(Arg("groups", "int", "how many groups all the parts hold together", low=0),),
            replies=command.replies,
            runs_on="daemon",
        ),
    )


COMMANDS += tuple(row for command in COMMANDS if command.repeat for row in _in_parts(command))

REPLIES: tuple[Reply, ...] = (
    Reply(
        "pong", "Answer to /jasco/ping.", (Arg("token", "int", "the ping's token", default=None),)
    ),
    Reply(
        "ack",
        "A render job was queued (sent at once, one per variation).",
        (
            _JOB,
            Arg("seed", "int", "the seed this job renders with"),
            Arg("variation", "int", "0-based variation index"),
            _START_BAR,
            _BARS,
            _TOKEN,
        ),
    ),
    Reply(
        "progress",
        "A sampler step finished (of any window of a long render).",
        (
            _JOB,
            Arg("fraction", "float", "0..1 of the whole render", low=0, high=1),
            Arg("step", "int", "steps done, over all windows"),
            Arg("total", "int", "steps of the whole render, known before the first"),
            Arg("window", "int", "the window running (1-based)"),
            Arg("windows", "int", "windows in the render (1 for the preview)"),
            _TOKEN,
        ),
    ),
    Reply(
        "done",
        "The clip is written. Insert it at start_beat.",
        (
            _JOB,
            Arg("path", "str", "absolute path of the WAV"),
            Arg("start_beat", "float", "where the clip starts on the timeline"),
            Arg("length_beats", "float", "clip length in quarter notes"),
            Arg("start_seconds", "float", "where the clip starts, in seconds"),
            Arg("duration_seconds", "float", "clip length in seconds"),
            Arg("sidecar", "str", "absolute path of the JSON sidecar"),
            _START_BAR,
            _BARS,
            _TOKEN,
        ),
    ),
    Reply(
        "error",
        "Something was refused or failed; job is -1 when no job is concerned.",
        (
            Arg("job", "int", "job id or -1"),
            Arg("message", "str", "what went wrong and what to do"),
            _TOKEN,
        ),
    ),
    Reply(
        "notice",
        "Sent after the acks when a render will probably not be what you want (no tempo, "
        "chords or prompt set, or bars after the song's last note; the job still runs), and "
        "with job -1 when a chord message changed more than it says: chords of another kind "
        "dropped, the tempo map a chord file brought or could not bring.",
        (
            Arg("job", "int", "job id, or -1 for a message's notice"),
            Arg("message", "str", "what to check"),
            _TOKEN,
        ),
    ),
    Reply("cancelled", "A job was cancelled.", (_JOB, _TOKEN)),
    Reply(
        "status",
        "Answer to /jasco/status. When several jobs render at once (on a cluster), running is "
        "the one that started first.",
        (
            Arg("state", "str", "idle, rendering or loading"),
            Arg("queued", "int", "jobs waiting"),
            Arg("engine", "str", "jasco or preview; none while loading"),
            Arg("running", "int", "id of the running job (the oldest of several), -1 if none"),
        ),
    ),
    Reply(
        "ctl/progress",
        "To a controller: the progress of the job it queued, for a fader or a bar.",
        (Arg("fraction", "float", "0..1", low=0, high=1),),
    ),
    Reply(
        "ctl/state",
        "To a controller: what is happening, as text for a label (queued, rendering 40%, done, "
        "error: ..., the dialled-in range and settings).",
        (Arg("text", "str", "one line"),),
    ),
    Reply(
        "ctl/clip",
        "To a controller: the file name of the clip just written.",
        (Arg("name", "str", "file name of the WAV"),),
    ),
    Reply(
        "playing",
        "An audition is about to start.",
        (
            Arg("path", "str", "the clip being played"),
            Arg("starts_in_seconds", "float", "seconds until its first sample sounds"),
            Arg("loop", "int", "1 = looping until /jasco/stop"),
        ),
    ),
    Reply("stopped", "An audition ended or was stopped.", (Arg("path", "str", "the clip played"),)),
    Reply(
        "drums/recorded",
        "A drum take is saved and is now the session's drum stem; the next render follows it.",
        (
            Arg("path", "str", "absolute path of the take's WAV"),
            Arg("start_beat", "float", "where the take starts on the timeline"),
            Arg("length_beats", "float", "take length in quarter notes"),
            Arg("latency_ms", "float", "input latency subtracted from the take"),
        ),
    ),
    Reply(
        "link/tempo",
        "Ableton Link runs at another tempo than the session: bars are timed by Link's.",
        (
            Arg("link_bpm", "float", "Link's tempo"),
            Arg("session_bpm", "float", "the session's first tempo"),
        ),
    ),
)

COMMANDS_BY_NAME: Mapping[str, Command] = MappingProxyType({c.name: c for c in COMMANDS})


# ---------------------------------------------------------------------------- parsing


def _kind_name(value: OscArg) -> str:
    if isinstance(value, bool) or value is None:
        return repr(value)
    if isinstance(value, str):
        return f"string {value[:40]!r}"
    if isinstance(value, (int, float)):
        return f"number {value!r}"
    return type(value).__name__


def _coerce(address: str, arg: Arg, value: OscArg) -> object:
    where = f"{address}: {arg.name}"
    if arg.kind in ("int", "float") or (
        arg.kind in ("number_or_str", "int_or_str") and not isinstance(value, str)
    ):
        if isinstance(value, bool):
            value = int(value)
        if not isinstance(value, (int, float)):
            wanted = "a whole number" if arg.kind in ("int", "int_or_str") else "a number"
            if arg.kind == "int_or_str":
                wanted += " or a name"
            raise ProtocolError(f"{where} must be {wanted}, got {_kind_name(value)}")
        if not math.isfinite(value):
            raise ProtocolError(f"{where} must be a finite number, got {value!r}")
        if arg.kind in ("int", "int_or_str"):
            if value != int(value):
                raise ProtocolError(f"{where} must be a whole number, got {value!r}")
            value = int(value)
        elif arg.kind == "float":
            value = float(value)
        if arg.low is not None and value < arg.low:
            raise ProtocolError(f"{where} must be at least {arg.low:g}, got {value!r}")
        if arg.high is not None and value > arg.high:
            raise ProtocolError(f"{where} must be at most {arg.high:g}, got {value!r}")
        return value
    if not isinstance(value, str):
        raise ProtocolError(f"{where} must be a string, got {_kind_name(value)}")
    if len(value) > MAX_STRING_CHARS:
        raise ProtocolError(
            f"{where} is {len(value)} characters long; the limit is {MAX_STRING_CHARS}"
        )
    return value


def _split_address(address: str) -> tuple[str, str]:
    """(session, command name) of a received address."""
    if address.startswith(SESSION_PREFIX):
        rest = address[len(SESSION_PREFIX) :]
        session, _, name = rest.partition("/")
        if not session or not name:
            raise ProtocolError(
                f"{address[:200]}: session addresses look like /jasco/session/<name>/<command>, "
                "e.g. /jasco/session/verse/tempo"
            )
        return session, name
    if address.startswith(PREFIX):
        return DEFAULT_SESSION, address[len(PREFIX) :]
    raise ProtocolError(f"{address[:200]}: not a jasco-bridge address; they start with /jasco/")


def session_of(address: str) -> str:
    """The session an address works on; the default one for an address that is malformed."""
    try:
        return _split_address(address)[0]
    except ProtocolError:
        return DEFAULT_SESSION


def parse_request(message: OscMessage) -> Request:
    """Check a message against `COMMANDS`; return the typed request or raise ProtocolError."""
    session, name = _split_address(message.address)
    command = COMMANDS_BY_NAME.get(name)
    shown = message.address[:200]
    if command is None:
        close = difflib.get_close_matches(name, list(COMMANDS_BY_NAME), n=1)
        hint = f"did you mean {PREFIX}{close[0]}? " if close else ""
        raise ProtocolError(f"{shown}: unknown address; {hint}docs/osc.md lists them all")
    if not command.per_session and session != DEFAULT_SESSION:
        raise ProtocolError(
            f"{shown}: {command.address} is not per session; send it without /session/<name>"
        )
    args = message.args
    if command.repeat:
        return _parse_groups(message, command, session)
    required = sum(1 for a in command.args if a.required)
    if not required <= len(args) <= len(command.args):
        raise ProtocolError(f"{shown}: expected {_arity(command)}, got {len(args)} argument(s)")
    # OSC nil (N) for an optional argument means "not given": its default (so that a later
    # argument, such as render's token, can be sent while an earlier one keeps its default).
    values = {
        arg.name: _coerce(shown, arg, args[i])
        if i < len(args) and not (args[i] is None and not arg.required)
        else arg.default
        for i, arg in enumerate(command.args)
    }
    return Request(command, message.address, session, values)


def _parse_groups(message: OscMessage, command: Command, session: str) -> Request:
    shown = message.address[:200]
    size = len(command.repeat)
    names = ", ".join(a.name for a in command.repeat)
    if len(message.args) % size:
        raise ProtocolError(
            f"{shown}: arguments come in groups of {size} ({names}); got {len(message.args)}"
        )
    count = len(message.args) // size
    if count > MAX_GROUPS:
        raise ProtocolError(
            f"{shown}: {count} groups in one message; send at most {MAX_GROUPS} per message"
        )
    groups = []
    for index in range(count):
        chunk = message.args[index * size : (index + 1) * size]
        try:
            groups.append(
                tuple(_coerce(shown, a, v) for a, v in zip(command.repeat, chunk, strict=True))
            )
        except ProtocolError as exc:
            raise ProtocolError(f"{exc} (group {index + 1})") from None
    return Request(command, message.address, session, {}, tuple(groups))


def _arity(command: Command) -> str:
    parts = [a.describe() for a in command.args]
    return "no arguments" if not parts else ", ".join(parts)


# ---------------------------------------------------------------------------- replies


def _reply(name: str, *args: OscArg) -> OscMessage:
    return OscMessage(PREFIX + name, args)


def pong(token: int | None = None) -> OscMessage:
    return _reply("pong") if token is None else _reply("pong", token)


def _tokened(name: str, token: str | None, *args: OscArg) -> OscMessage:
    # The token is the last argument, and only there when the render sent one.
    return _reply(name, *args) if token is None else _reply(name, *args, token)


def ack(
    job_id: int, seed: int, variation: int, start_bar: int, bars: int, token: str | None = None
) -> OscMessage:
    return _tokened("ack", token, job_id, seed, variation, start_bar, bars)


def progress(
    job_id: int,
    fraction: float,
    step: int,
    total: int,
    window: int,
    windows: int,
    token: str | None = None,
) -> OscMessage:
    """`window` is 1-based here, as a musician counts."""
    return _tokened("progress", token, job_id, float(fraction), step, total, window, windows)


def done(
    job_id: int, clip: ClipInfo, start_bar: int, bars: int, token: str | None = None
) -> OscMessage:
    return _tokened(
        "done",
        token,
        job_id,
        str(clip.path),
        float(clip.start_beat),
        float(clip.length_beats),
        float(clip.start_seconds),
        float(clip.duration_seconds),
        str(clip.sidecar_path),
        start_bar,
        bars,
    )


def notice(job_id: int, text: str, token: str | None = None) -> OscMessage:
    return _tokened("notice", token, job_id, text[:2000])


def error(job_id: int, text: str, token: str | None = None) -> OscMessage:
    # Replies are datagrams too: keep a runaway message well under any UDP limit.
    return _tokened("error", token, job_id, text[:2000])


def cancelled(job_id: int, token: str | None = None) -> OscMessage:
    return _tokened("cancelled", token, job_id)


def status(state: str, queued: int, engine: str, running: int | None) -> OscMessage:
    return _reply("status", state, queued, engine, -1 if running is None else running)


def playing(path: str, starts_in_seconds: float, loop: bool) -> OscMessage:
    return _reply("playing", path, float(starts_in_seconds), int(loop))


def stopped(path: str) -> OscMessage:
    return _reply("stopped", path)


def drums_recorded(
    path: str, start_beat: float, length_beats: float, latency_ms: float
) -> OscMessage:
    return _reply("drums/recorded", path, float(start_beat), float(length_beats), float(latency_ms))


def link_tempo(link_bpm: float, session_bpm: float) -> OscMessage:
    return _reply("link/tempo", float(link_bpm), float(session_bpm))


# ---------------------------------------------------------------------------- docs


def _command_arguments(command: Command) -> str:
    if command.repeat:
        inner = ", ".join(a.describe() for a in command.repeat)
        return f"({inner}) repeated"
    return ", ".join(a.describe() for a in command.args) or "—"


def markdown_tables() -> str:
    """The generated part of docs/osc.md: one table of commands, one of replies."""
    lines = [
        "### Addresses you send",
        "",
        "| address | arguments | replies | what it does |",
        "|---|---|---|---|",
    ]
    for command in COMMANDS:
        replies = ", ".join(f"`{PREFIX}{r}`" for r in command.replies) or "— (errors only)"
        scope = "" if command.per_session else " Not per session."
        lines.append(
            f"| `{command.address}` | {_command_arguments(command)} | {replies} | "
            f"{command.summary}{scope} |"
        )
    lines += [
        "",
        "### Replies the daemon sends",
        "",
        "| address | arguments | meaning |",
        "|---|---|---|",
    ]
    for reply in REPLIES:
        args = ", ".join(a.describe() for a in reply.args) or "—"
        lines.append(f"| `{reply.address}` | {args} | {reply.summary} |")
    return "\n".join(lines) + "\n"


DOCS_BEGIN = "<!-- BEGIN GENERATED: jasco_bridge.protocol.markdown_tables() -->"
DOCS_END = "<!-- END GENERATED -->"


def with_generated_tables(document: str) -> str:
    """`document` (docs/osc.md) with the text between the markers replaced by fresh tables."""
    head, found_begin, rest = document.partition(DOCS_BEGIN)
    _, found_end, tail = rest.partition(DOCS_END)
    if not (found_begin and found_end):
        raise ProtocolError(f"the document has no {DOCS_BEGIN} ... {DOCS_END} section to fill")
    return f"{head}{DOCS_BEGIN}\n\n{markdown_tables()}\n{DOCS_END}{tail}"


def regenerate_docs(path: str) -> None:
    """Rewrite the generated tables of docs/osc.md in place (after editing COMMANDS or REPLIES)."""
    with open(path, encoding="utf-8") as handle:
        document = handle.read()
    with open(path, "w", encoding="utf-8") as handle:
        handle.write(with_generated_tables(document))
