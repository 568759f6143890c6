"""The shapes of the OSC address table: `Arg`, `Command`, `Reply`, and the parsed `Request`.

The table itself (`COMMANDS`, `REPLIES`), the parser that reads messages through it and the
reply builders are in `jasco_bridge.protocol`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Literal

PREFIX = "/jasco/"

Kind = Literal["int", "float", "str", "number_or_str", "int_or_str"]


class _Required:
    """Marks an argument without a default."""

    def __repr__(self) -> str:
        return "REQUIRED"


_REQUIRED = _Required()

_KIND_DOC = {
    "int": "i",
    "float": "f",
    "str": "s",
    "number_or_str": "i, f or s",
    "int_or_str": "s or i",
}


@dataclass(frozen=True)
class Arg:
    """One argument: its name, OSC type, default (absent = required), allowed range and meaning."""

    name: str
    kind: Kind
    help: str
    default: object = _REQUIRED
    low: float | None = None
    high: float | None = None

    @property
    def required(self) -> bool:
        return self.default is _REQUIRED

    def describe(self) -> str:
        text = f"{self.name} {_KIND_DOC[self.kind]}"
        if self.low is not None and self.high is not None:
            text += f" ({self.low:g}..{self.high:g})"
        elif self.low is not None:
            text += f" (>= {self.low:g})"
        if not self.required:
            text = f"[{text} = {self.default!r}]" if self.default is not None else f"[{text}]"
        return text


@dataclass(frozen=True)
class Command:
    """One address the daemon accepts. `repeat` makes the message a flat list of groups."""

    name: str  # the part after /jasco/, e.g. "tempo/change"
    summary: str
    handler: str  # a Session method called with the arguments by name, or a daemon method
    args: tuple[Arg, ...] = ()
    repeat: tuple[Arg, ...] = ()
    replies: tuple[str, ...] = ()
    # False: daemon-wide (ping, status, cancel), answered at once, no /jasco/session/<name>/ form.
    per_session: bool = True
    # Whose method `handler` names. A per-session command may still run on the daemon (render
    # needs the queue); it then waits its turn on the session lane like the rest.
    runs_on: Literal["session", "daemon"] = "session"
    # Opens a file: run in a thread so that a slow disk never stalls ping.
    reads_file: bool = False

    @property
    def address(self) -> str:
        return PREFIX + self.name


@dataclass(frozen=True)
class Reply:
    """One address the daemon sends."""

    name: str
    summary: str
    args: tuple[Arg, ...] = ()

    @property
    def address(self) -> str:
        return PREFIX + self.name


@dataclass(frozen=True)
class Request:
    """A message that passed the table: typed `values` by argument name, `groups` for bulk lists."""

    command: Command
    address: str  # as received, for error messages
    session: str
    values: Mapping[str, object] = field(default_factory=dict)
    groups: tuple[tuple[object, ...], ...] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "values", MappingProxyType(dict(self.values)))

    def __getitem__(self, name: str) -> object:
        return self.values[name]
