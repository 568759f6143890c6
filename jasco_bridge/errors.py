"""The exceptions raised by `jasco_bridge`.

Each one carries the text that goes back to the user: over OSC as `/jasco/error`, or on the
command line as a one-line message (never a traceback).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from midi.errors import MidiError


class BridgeError(Exception):
    """Base class of every error raised by the daemon and the CLI."""


class ProtocolError(BridgeError):
    """An OSC message with an unknown address or arguments of the wrong number or type."""


class SessionError(BridgeError):
    """A session is missing something a render needs, or was given an unusable value."""


class RenderError(BridgeError):
    """A render job failed, was refused (queue full) or cannot be placed."""


class ClipError(BridgeError):
    """A clip could not be written."""


class ConfigError(BridgeError):
    """A daemon setting is unusable (bad port, address, limit or engine choice)."""


class UsageError(BridgeError):
    """A command line that cannot be carried out: options that exclude each other, or none given."""


class AudioDeviceError(BridgeError):
    """A sound device is missing, busy or refused a stream; the message lists the devices."""


@contextlib.contextmanager
def session_input(what: str) -> Iterator[None]:
    """The one place where a `midi` refusal of user input (a value object, a MIDI file) becomes
    a `SessionError` saying which input it was."""
    try:
        yield
    except MidiError as error:
        raise SessionError(f"{what}: {error}") from error
