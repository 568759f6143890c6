"""One render, for the daemon's worker and the `render` command alike:

    session snapshot + render plan -> condition each window -> engine -> trim, resample,
    loudness -> WAV + sidecar

    renderer = opened.renderer
    plan = plan_render(snapshot.tempo_map, start_bar, bars, renderer.segment_seconds,
                       renderer.frame_rate_hz, context_bars=snapshot.settings.context_bars)
    clip = render_clip(snapshot, plan, opened, seed=7, out_dir="jasco-clips")

A plan of one window is one `generate`; a longer one is one `generate_long` over all its windows
(each conditioned on its own bars), and the clip is the one joined piece trimmed to the bars.

The sidecar beside each WAV has one schema (docs/architecture.md lists its keys): the session as
`SessionSnapshot.describe()` gives it, the window, what rendered it and how long it took.
`session_from_sidecar` reads one back, so `render --again CLIP.json` renders the clip again.
"""

from __future__ import annotations

import platform
import random
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from engine.errors import GenerationCancelled
from engine.request import (
    CancelFn,
    GenerationRequest,
    GenerationResult,
    LongRequest,
    ProgressFn,
    WindowFn,
)
from jasco_bridge import __version__
from jasco_bridge.clips import ClipInfo, clip_path, save_clip
from jasco_bridge.conditioning import BarWindow, RenderPlan, condition, merged_chords
from jasco_bridge.engines import OpenedRenderer
from jasco_bridge.errors import RenderError
from jasco_bridge.session import SessionSnapshot
from jasco_bridge.settings import MAX_SEED, RenderSettings
from midi.chords import TimedChord

SIDECAR_SCHEMA = 1


def render_clip(
    snapshot: SessionSnapshot,
    plan: RenderPlan,
    opened: OpenedRenderer,
    *,
    seed: int,
    out_dir: str | Path | None = None,
    path: str | Path | None = None,
    job_id: int | None = None,
    variation: int = 0,
    progress: ProgressFn | None = None,
    should_cancel: CancelFn | None = None,
    on_window: WindowFn | None = None,
    on_chords: Callable[[Sequence[TimedChord]], None] | None = None,
    timings: Mapping[str, float] | None = None,
    clock: Callable[[], float] = time.perf_counter,
    chords: Sequence[TimedChord] | None = None,
) -> ClipInfo:
    """Render the bars of `plan` from `snapshot` with `seed` and write them as one clip that
    never replaces a file.

    The clip goes to `path` when given, else to `clip_path(out_dir, ...)`. `on_chords` sees the
    chords of the whole span, each with its vocabulary match, before the engine runs;
    `progress(step, total)` counts the steps of every window, `on_window(index, count)` says
    which one starts, `should_cancel` is polled between sampler steps. `timings` (e.g. the time
    a job waited) are added to the sidecar's. `chords`: the span's chords when already
    recognised (see `conditioning.condition`).
    """
    renderer = opened.renderer
    window = plan.span
    requests: list[GenerationRequest] = []
    window_chords: list[tuple[TimedChord, ...]] = []
    for index, part in enumerate(plan.windows):
        request, in_bars = condition(
            snapshot,
            part,
            renderer,
            opened.vocabulary,
            seed=seed,
            chords=chords,
            duration_seconds=plan.engine_seconds(index),
        )
        requests.append(request)
        window_chords.append(in_bars)
    span_chords = merged_chords(plan, window_chords)
    if on_chords is not None:
        on_chords(span_chords)
    began = clock()
    if plan.is_long:
        long_request = LongRequest(tuple(requests), plan.overlap_frames)
        result = renderer.generate_long(
            long_request, progress=progress, should_cancel=should_cancel, on_window=on_window
        )
    else:
        if on_window is not None:
            on_window(0, 1)
        result = renderer.generate(requests[0], progress=progress, should_cancel=should_cancel)
    rendered = clock()
    if should_cancel is not None and should_cancel():
        raise GenerationCancelled("cancelled after the last sampler step; no clip was written")
    root = None
    if path is None:
        if out_dir is None:
            raise RenderError("render_clip needs out_dir= or path= to know where the clip goes")
        path = clip_path(
            out_dir, snapshot.name, window.start_bar, window.bars, snapshot.prompt, seed, job_id
        )
        root = Path(out_dir).resolve()
    settings = snapshot.settings
    sidecar = {
        "schema": SIDECAR_SCHEMA,
        **snapshot.describe(),
        "job": job_id,
        "variation": variation,
        **_render_facts(requests[0], span_chords, result),
        "windows": [
            {**plan.describe_window(index), "chords": [_chord_entry(c) for c in in_bars]}
            for index, in_bars in enumerate(window_chords)
        ],
        "timings": {
            **(timings or {}),
            "render_seconds": rendered - began,
            **{f"engine_{k}": v for k, v in result.timings.items()},
        },
    }
    label = "PREVIEW clip" if renderer.is_preview else "clip"
    return save_clip(
        result.audio,
        result.sample_rate,
        path=path,
        window=window,
        sidecar=sidecar,
        output_sample_rate=settings.sample_rate,
        target_lufs=settings.target_lufs,
        description=f"jasco-bridge {label}: {snapshot.prompt}"[:256],
        root=root,
    )


def variation_seeds(settings: RenderSettings, rng: random.Random) -> list[int]:
    """One seed per variation: a fixed seed renders variation 0 exactly as before and later
    ones step from it; without one, distinct random seeds."""
    count = settings.variations
    if settings.seed is not None:
        return [(settings.seed + i) % (MAX_SEED + 1) for i in range(count)]
    seeds: list[int] = []
    while len(seeds) < count:
        seed = rng.randint(0, MAX_SEED)
        if seed not in seeds:
            seeds.append(seed)
    return seeds


def _render_facts(
    request: GenerationRequest, chords: Sequence[TimedChord], result: GenerationResult
) -> dict[str, Any]:
    """What rendered the clip: `request` is the first window's (the settings of every one)."""
    return {
        "preview": result.engine == "preview",
        "engine": result.engine,
        "model": result.model,
        "seed": request.seed,
        "steps": request.steps,
        "sampler": request.sampler,
        "precision": result.precision,
        "cfg_all": request.cfg_all,
        "cfg_text": request.cfg_text,
        "chords": [_chord_entry(c) for c in chords],
        "melody_used": request.melody_salience is not None,
        "drums_used": request.drums_wav is not None,
        "versions": library_versions(),
    }


def _chord_entry(timed: TimedChord) -> dict[str, Any]:
    """One chord of the sidecar: as given (`given` its Harte label, `written` the symbol as
    sent) and where it landed in the vocabulary."""
    match = timed.match
    return {
        "start_beat": timed.start_beat,
        "end_beat": timed.end_beat,
        "given": timed.harte,
        "label": match.label,
        "index": match.index,
        "exact": match.exact,
        "written": timed.written,
        "spelled": match.spelled,
    }


def library_versions() -> dict[str, str]:
    """The versions that decide what a clip sounds like, for its sidecar."""
    versions = {
        "jasco_bridge": __version__,
        "python": platform.python_version(),
        "numpy": np.__version__,
    }
    torch = sys.modules.get("torch")  # only loaded (and only relevant) when JASCO rendered
    if torch is not None:
        versions["torch"] = str(torch.__version__)
    return versions


def notices(snapshot: SessionSnapshot, window: BarWindow) -> list[str]:
    """What a producer should know before waiting for this render: nothing set that shapes it,
    or bars past the end of the song."""
    found = []
    if not snapshot.tempo_given:
        found.append("no tempo was set: rendering at 120 bpm 4/4 (send /jasco/tempo)")
    if snapshot.chord_source == "none":
        found.append("no chords were set: JASCO follows the prompt and drums alone")
    if not snapshot.prompt:
        found.append("no prompt was set: the text condition is empty (send /jasco/prompt)")
    last = snapshot.last_beat()
    if last > 0 and window.start_beat >= last:
        found.append(
            f"bars {window.start_bar}-{window.end_bar} start after the song's last note "
            f"ends ({window.tempo_map.position_at(last)}): no chords, melody or drum MIDI "
            "sound in them"
        )
    return found
