"""OSC controllers (TouchOSC, Open Stage Control, hardware bridges): buttons, faders, feedback.

A controller speaks a different dialect from a DAW script. A button sends 1.0 on press and 0.0
on release, so a trigger acts on a non-zero value and ignores zero. Faders and encoders send
floats anywhere in their travel, so bar, seed and step values are snapped to whole numbers
(guidance to quarter steps). A controller shows what it receives on one address per widget,
so job events are turned into three fader- and label-friendly feedback messages: the progress
as 0..1, the state as text and the last clip's name.

`ControlPanel` is the per-session state a controller adjusts (the bar range it renders and the
jobs its last press queued). `ControllerFeedback` wraps the reply channel of every `/jasco/ctl/*`
message, so acks, progress, done, errors and cancellations of the jobs it queued come back in
the controller's form.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import PurePath

from jasco_bridge.osc import OscMessage
from jasco_bridge.protocol_spec import PREFIX
from jasco_bridge.replies import ReplyChannel
from jasco_bridge.settings import DEFAULT_START_BAR

CONTROL_PREFIX = "ctl/"


def is_press(value: float) -> bool:
    """A button's press (any non-zero value); its release sends 0."""
    return value != 0


def snap_whole(value: float) -> int:
    """The nearest whole number, halves upwards (a fader resting between two bars)."""
    return int(math.floor(value + 0.5))


def snap_quarter(value: float) -> float:
    """The nearest quarter step: guidance values such as 1.25 stay reachable from a fader."""
    return math.floor(value * 4 + 0.5) / 4


@dataclass
class ControlPanel:
    """What a controller has dialled in for one session. `bars=None` = as many as fit."""

    start_bar: int = DEFAULT_START_BAR
    bars: int | None = None
    last_jobs: tuple[int, ...] = field(default=())

    def range_text(self) -> str:
        if self.bars is None:
            return f"from bar {self.start_bar} (as many bars as fit)"
        if self.bars == 1:
            return f"bar {self.start_bar}"
        return f"bars {self.start_bar}-{self.start_bar + self.bars - 1}"


def progress(fraction: float) -> OscMessage:
    return OscMessage(PREFIX + "ctl/progress", (float(min(max(fraction, 0.0), 1.0)),))


def state(text: str) -> OscMessage:
    return OscMessage(PREFIX + "ctl/state", (text[:500],))


def clip(name: str) -> OscMessage:
    return OscMessage(PREFIX + "ctl/clip", (name,))


def feedback_for(message: OscMessage) -> list[OscMessage]:
    """The controller messages that stand for one daemon reply (empty: nothing to show)."""
    name = message.address[len(PREFIX) :] if message.address.startswith(PREFIX) else ""
    args = message.args
    if name == "ack":
        return [progress(0.0), state(f"queued: job {args[0]}, seed {args[1]}")]
    if name == "progress":
        fraction = float(args[1])  # type: ignore[arg-type]
        return [progress(fraction), state(f"rendering job {args[0]}: {round(fraction * 100)}%")]
    if name == "done":
        clip_name = PurePath(str(args[1])).name
        return [progress(1.0), state(f"done: {clip_name}"), clip(clip_name)]
    if name == "cancelled":
        return [progress(0.0), state(f"cancelled job {args[0]}")]
    if name == "error":
        return [state(f"error: {args[1]}")]
    return []


@dataclass(frozen=True)
class ControllerFeedback:
    """A reply channel that sends the controller form of each reply, and the reply itself.

    The original reply still goes out: a controller ignores addresses it has no widget for,
    and a script driving the controller addresses still gets job ids and clip paths.
    """

    inner: ReplyChannel

    def send(self, message: OscMessage) -> None:
        for shown in feedback_for(message):
            self.inner.send(shown)
        self.inner.send(message)

    def __str__(self) -> str:
        return f"controller via {self.inner}"


def feedback_channel(command_name: str, channel: ReplyChannel) -> ReplyChannel:
    """Wrap the channel of a controller command; any other command keeps its channel."""
    if command_name.startswith(CONTROL_PREFIX) and not isinstance(channel, ControllerFeedback):
        return ControllerFeedback(channel)
    return channel
