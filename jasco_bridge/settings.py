"""`RenderSettings`: how a session renders, and the one home of those defaults and limits
(with `DEFAULT_START_BAR`, where a render starts when not told).

OSC `/jasco/set`, the `render` command's options and the library all build a `RenderSettings`,
so none of them can disagree about a range:

    settings = RenderSettings(seed=7, steps=20)
    replace(settings, **{"seed": setting_value("seed", -1)})   # -1: a new random seed per render
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from engine.request import SAMPLER_NAMES
from jasco_bridge.errors import SessionError
from midi.checks import is_finite_number

DEFAULT_START_BAR = 1  # a render without a start bar begins on the song's first bar (1-based)
MAX_STEPS = 200
MAX_VARIATIONS = 16
MAX_CFG = 20.0
MAX_SEED = 2**31 - 1  # seeds travel back to the DAW as signed 32-bit OSC ints
RANDOM_SEED = -1  # over OSC and on the command line: draw a new seed for every render
MIN_SAMPLE_RATE = 8000
MAX_SAMPLE_RATE = 192_000
MIN_LUFS = -70.0
MAX_LUFS = -1.0
MAX_CONTEXT_BARS = 8


def _whole(name: str, value: object, low: int, high: int, hint: str = "") -> int:
    if not (is_finite_number(value) and value == int(value) and low <= value <= high):
        raise SessionError(f"{name} must be a whole number {low}..{high}, got {value!r}{hint}")
    return int(value)


def _number(name: str, value: object, low: float, high: float, hint: str = "") -> float:
    if not (is_finite_number(value) and low <= value <= high):
        raise SessionError(f"{name} must be a number {low:g}..{high:g}, got {value!r}{hint}")
    return float(value)


@dataclass(frozen=True)
class RenderSettings:
    """How a session renders: the one home of these defaults and limits (OSC `/jasco/set`, the
    `render` command's options and the library all build this).

    `seed=None` draws a fresh seed for every job (and reports it). `sample_rate=None` writes
    clips at the engine's rate (32 kHz for JASCO); a number resamples them to the DAW project's
    rate. `target_lufs=None` leaves loudness alone. `context_bars` is how many bars each window
    of a render longer than one window shares with the window before (what it continues from).
    """

    seed: int | None = None
    steps: int = 10
    sampler: str = "euler"
    cfg_all: float = 1.25  # the authors' demo defaults
    cfg_text: float = 2.5
    variations: int = 1
    sample_rate: int | None = None
    target_lufs: float | None = None
    context_bars: int = 1

    def __post_init__(self) -> None:
        if self.sampler not in SAMPLER_NAMES:
            raise SessionError(
                f"sampler must be one of {', '.join(SAMPLER_NAMES)}, got {self.sampler!r}"
            )
        # Whole-valued floats (as REAPER and Pure Data send them) are stored as ints.
        checked = {
            "steps": _whole("steps", self.steps, 1, MAX_STEPS),
            "cfg_all": _number("cfg_all", self.cfg_all, 0.0, MAX_CFG),
            "cfg_text": _number("cfg_text", self.cfg_text, 0.0, MAX_CFG),
            "variations": _whole("variations", self.variations, 1, MAX_VARIATIONS),
            "context_bars": _whole("context_bars", self.context_bars, 1, MAX_CONTEXT_BARS),
        }
        if self.seed is not None:
            hint = f"; {RANDOM_SEED} means a new random seed per render"
            checked["seed"] = _whole("seed", self.seed, 0, MAX_SEED, hint)
        if self.sample_rate is not None:
            hint = "; 0 means the engine's rate"
            checked["sample_rate"] = _whole(
                "sample_rate", self.sample_rate, MIN_SAMPLE_RATE, MAX_SAMPLE_RATE, hint
            )
        if self.target_lufs is not None:
            hint = "; 0 switches loudness off"
            checked["target_lufs"] = _number(
                "target_lufs", self.target_lufs, MIN_LUFS, MAX_LUFS, hint
            )
        for name, value in checked.items():
            object.__setattr__(self, name, value)

    def describe(self) -> dict[str, Any]:
        """Plain JSON values for a clip's sidecar (and `RenderSettings(**described)`)."""
        return {name: getattr(self, name) for name in SETTING_NAMES}


SETTING_NAMES = tuple(f for f in RenderSettings.__dataclass_fields__)


def setting_value(name: str, value: object) -> object:
    """A value for setting `name` as a DAW or a command line sends it -> the RenderSettings
    field value: `seed` -1 (or "random") is None, `sample_rate` and `target_lufs` 0 (or "off")
    are None; RenderSettings checks the rest."""
    if name == "sampler":
        if not isinstance(value, str):
            raise SessionError(
                f"sampler must be a name ({', '.join(SAMPLER_NAMES)}), got {value!r}"
            )
        return value.strip().lower()
    if isinstance(value, str):
        text = value.strip().lower()
        if name == "seed" and text in ("random", "auto", "none"):
            return None
        if name in ("sample_rate", "target_lufs") and text in ("off", "none", "engine"):
            return None
        try:
            value = float(text)
        except ValueError:
            raise SessionError(f"{name} must be a number, got {value!r}") from None
    # Only -1 means random: any other negative seed is a mistake to report, not a wish.
    if name == "seed" and value == RANDOM_SEED:
        return None
    if name in ("sample_rate", "target_lufs") and value == 0:
        return None
    return value
