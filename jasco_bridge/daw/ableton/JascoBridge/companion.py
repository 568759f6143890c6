"""What the script does, without Live: plan a render from the selected clip, talk to the
daemon, follow the job, place the clip.

`plan_render` is pure: a `SelectedClip` and the song's tempo and meter in, the bar range and
the OSC messages out. `Companion` keeps the jobs in flight and is driven by Live's update tick
(`tick`), by MIDI triggers and by OSC triggers; it reaches Live only through `LiveAdapter`.

Limits (said in the docs too): one constant tempo and meter (tempo automation and meter changes
are not followed); a looped clip's notes are read once, not unrolled. A clip of any length is
one request: the daemon renders one longer than a JASCO window window by window, as one clip.
"""

import math
import random
import time
from dataclasses import dataclass

from . import settings
from .live_adapter import LiveAdapter, SelectedClip, SongTime
from .udp_link import UdpLink

_NOTES_PER_MESSAGE = 1000  # 4 numbers each: about 20 KB, well inside one datagram
_EPSILON = 1e-6


class PlanError(Exception):
    """The selection cannot be rendered; the message says what to do."""


@dataclass(frozen=True)
class RenderPlan:
    start_bar: int
    bars: int
    start_beat: float  # where the rendered audio starts
    in_arrangement: bool
    messages: tuple[tuple[str, tuple], ...]

    @property
    def bar_text(self) -> str:
        if self.bars == 1:
            return f"bar {self.start_bar}"
        return f"bars {self.start_bar}-{self.start_bar + self.bars - 1}"


def plan_render(clip: SelectedClip, time: SongTime, segment_seconds: float) -> RenderPlan:
    """The bar range and messages that render `clip` (notes, tempo, prompt, render)."""
    if not clip.notes:
        raise PlanError("the selected clip has no notes; select a MIDI clip with chords")
    beats_per_bar = time.numerator * 4.0 / time.denominator
    first_bar_index = math.floor(clip.start_beat / beats_per_bar + _EPSILON)
    bar_start = first_bar_index * beats_per_bar
    clip_end = clip.start_beat + clip.length_beats
    bars = max(1, math.ceil((clip_end - bar_start) / beats_per_bar - _EPSILON))
    seconds_per_bar = beats_per_bar * 60.0 / time.tempo
    if seconds_per_bar > segment_seconds + _EPSILON:
        raise PlanError(
            f"one bar lasts {seconds_per_bar:.1f} s at {time.tempo:g} bpm, longer than a JASCO clip ({segment_seconds:g} s)"
        )
    flat: list = []
    for note in clip.notes:
        start = clip.start_beat + note.start_beat
        if note.length_beats <= 0 or not (clip.start_beat - _EPSILON <= start < clip_end):
            continue
        velocity = min(max(note.velocity, 1), 127)
        flat.append((float(start), float(note.length_beats), int(note.pitch), int(velocity)))
    messages: list[tuple[str, tuple]] = [
        ("/jasco/tempo", (float(time.tempo), time.numerator, time.denominator)),
        ("/jasco/chords/clear", ()),
    ]
    for i in range(0, len(flat), _NOTES_PER_MESSAGE):
        chunk = flat[i : i + _NOTES_PER_MESSAGE]
        messages.append(("/jasco/chords/notes", tuple(v for note in chunk for v in note)))
    if clip.name.strip():
        messages.append(("/jasco/prompt", (clip.name.strip(),)))
    messages.append(("/jasco/render", (first_bar_index + 1, bars)))
    return RenderPlan(
        start_bar=first_bar_index + 1,
        bars=bars,
        start_beat=bar_start,
        in_arrangement=clip.in_arrangement,
        messages=tuple(messages),
    )


@dataclass(frozen=True)
class _Job:
    plan: RenderPlan
    seed: int


class Companion:
    """The script's state: the render asked for, the jobs in flight, what Live shows."""

    def __init__(self, live: LiveAdapter, link: UdpLink) -> None:
        self._live = live
        self._link = link
        self._awaiting: RenderPlan | None = None  # the render last sent
        self._sent_at: float | None = None  # when it was sent, until the daemon answers
        self._jobs: dict[int, _Job] = {}

    def hello(self) -> None:
        """Ping the daemon; the pong says so in the status bar."""
        self._link.send("/jasco/ping")

    # -- triggers (MIDI control, OSC, or Live calling us)

    def trigger(self, action: str) -> None:
        if action == "render":
            self.render(fresh_seed=False)
        elif action == "another_take":
            self.render(fresh_seed=True)
        elif action == "cancel":
            self.cancel()

    def render(self, fresh_seed: bool = False) -> None:
        clip = self._live.selected_clip()
        if clip is None:
            self._live.show("JASCO: select a MIDI clip first (arrangement or session view)")
            return
        try:
            plan = plan_render(clip, self._live.song_time(), settings.SEGMENT_SECONDS)
        except PlanError as error:
            self._live.show(f"JASCO: {error}")
            return
        if fresh_seed:
            self._link.send("/jasco/set", "seed", random.randrange(2**31 - 1))
        for address, args in plan.messages:
            self._link.send(address, *args)
        self._awaiting = plan
        self._sent_at = time.monotonic()
        self._live.show(f"JASCO: sent {plan.bar_text}, waiting for the daemon")

    def cancel(self) -> None:
        if not self._jobs:
            self._live.show("JASCO: nothing to cancel")
            return
        for job_id in list(self._jobs):
            self._link.send("/jasco/cancel", job_id)

    # -- Live's update tick

    def tick(self) -> None:
        for address, args in self._link.poll():
            self._receive(address, args)
        waited = None if self._sent_at is None else time.monotonic() - self._sent_at
        if waited is not None and waited > settings.ANSWER_TIMEOUT_SECONDS:
            host, port = self._link.daemon
            self._sent_at = None
            self._awaiting = None
            self._live.show(
                f"JASCO: no answer from jasco-bridge at {host}:{port}; "
                "is `jasco-bridge serve` running?"
            )

    def _receive(self, address: str, args: tuple) -> None:
        if address.startswith("/jasco/live/"):
            pressed = not args or (isinstance(args[0], (int, float)) and args[0] != 0)
            if pressed:
                self.trigger(address[len("/jasco/live/") :])
            return
        handler = {
            "/jasco/ack": self._on_ack,
            "/jasco/progress": self._on_progress,
            "/jasco/done": self._on_done,
            "/jasco/error": self._on_error,
            "/jasco/cancelled": self._on_cancelled,
            "/jasco/pong": self._on_pong,
        }.get(address)
        if handler is not None and (args or address == "/jasco/pong"):
            handler(args)

    def _on_ack(self, args: tuple) -> None:
        if self._awaiting is None:
            return
        self._sent_at = None
        self._jobs[int(args[0])] = _Job(self._awaiting, int(args[1]))
        self._live.show(f"JASCO: job {args[0]} queued (seed {args[1]})")

    def _on_progress(self, args: tuple) -> None:
        job = self._jobs.get(int(args[0]))
        if job is not None:
            self._live.show(
                f"JASCO: rendering {job.plan.bar_text} ... {round(float(args[1]) * 100)}%"
            )

    def _on_done(self, args: tuple) -> None:
        job = self._jobs.pop(int(args[0]), None)
        if job is None:
            return
        path, start_beat = str(args[1]), float(args[2])
        name = f"JASCO {job.plan.bar_text} seed {job.seed}"
        try:
            where = self._live.place_audio(path, start_beat, job.plan.in_arrangement, name)
        except Exception as error:  # Live refused (frozen track, old Live): say so, keep running
            self._live.log(f"placing {path} failed: {error!r}")
            self._live.show(f"JASCO: could not place the clip ({error}); the file is {path}")
            return
        self._live.show(f"JASCO: {name} on the {settings.TRACK_NAME} track ({where})")

    def _on_error(self, args: tuple) -> None:
        job_id = args[0] if isinstance(args[0], int) else -1
        if job_id != -1:
            if self._jobs.pop(job_id, None) is None:
                return
        elif self._awaiting is None:
            return  # an old refusal, not about the render we are waiting for
        else:
            self._awaiting = None
            self._sent_at = None
        self._live.show(f"JASCO: {args[1] if len(args) > 1 else 'the daemon refused'}")

    def _on_pong(self, args: tuple) -> None:
        host, port = self._link.daemon
        self._live.show(f"JASCO: connected to jasco-bridge at {host}:{port}")

    def _on_cancelled(self, args: tuple) -> None:
        if self._jobs.pop(int(args[0]), None) is not None:
            self._live.show(f"JASCO: job {args[0]} cancelled")
