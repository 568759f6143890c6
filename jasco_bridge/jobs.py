"""The render queue: one engine worker thread, jobs in order, progress and cancellation events.

The daemon's event loop submits jobs and gets `RenderJob`s back at once (one per variation, each
with the seed it will use); it never waits for the engine. One worker thread renders them in
order and reports through `on_event`, called *from the worker thread* (a server hands events to
its loop with `loop.call_soon_threadsafe`); only jobs that never started are reported from the
thread that cancelled them (`cancel`, `shutdown`). Every job ends with exactly one of "done",
"error" or "cancelled"; "progress" events before that carry step/total of the sampler.

    queue = JobQueue(renderer, vocabulary, "clips", on_event=print)
    queue.start()
    jobs = queue.submit(session.snapshot(), start_bar=5, bars=4)
    queue.cancel(jobs[0].id)
    queue.shutdown(timeout=30.0)

A failing job (bad session content, engine error, full disk) becomes an "error" event whose
message says what to do; the worker carries on with the next job.
"""

from __future__ import annotations

import enum
import logging
import random
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np

from engine.errors import EngineError, GenerationCancelled
from engine.request import Renderer
from jasco_bridge.clips import ClipInfo, clip_path, save_clip
from jasco_bridge.conditioning import BarWindow, build_request, plan_window
from jasco_bridge.errors import BridgeError, RenderError
from jasco_bridge.session import MAX_SEED, SessionSnapshot
from jasco_bridge.sources import AudioDrums, MidiDrums
from midi.errors import MidiError
from midi.vocabulary import ChordVocabulary

logger = logging.getLogger(__name__)

DEFAULT_MAX_QUEUED = 64
# After a shutdown cancels the running job, how long to wait for the engine to notice.
CANCEL_GRACE_SECONDS = 30.0
# Finished jobs remembered for cancel/status lookups; older ones are forgotten.
MAX_FINISHED_JOBS = 1024


class JobState(enum.Enum):
    QUEUED = "queued"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"
    CANCELLED = "cancelled"


EventKind = Literal["progress", "done", "error", "cancelled"]


@dataclass(frozen=True)
class JobEvent:
    """Something happened to a job. `reply_to` is whatever the submitter passed in."""

    kind: EventKind
    job_id: int
    reply_to: object = None
    fraction: float = 0.0
    clip: ClipInfo | None = None
    message: str = ""


@dataclass(frozen=True)
class QueueStatus:
    state: Literal["idle", "rendering"]
    queued: int
    running: int | None
    engine: str


@dataclass(eq=False)
class RenderJob:
    """One clip to render. Times come from the queue's clock; mutated only under its lock."""

    id: int
    snapshot: SessionSnapshot = field(repr=False)
    window: BarWindow = field(repr=False)
    seed: int
    variation: int
    reply_to: object = field(default=None, repr=False)
    state: JobState = JobState.QUEUED
    created: float = 0.0
    started: float | None = None
    finished: float | None = None
    clip: ClipInfo | None = None
    message: str = ""
    cancel_requested: threading.Event = field(default_factory=threading.Event, repr=False)

    @property
    def session(self) -> str:
        return self.snapshot.name

    @property
    def start_bar(self) -> int:
        return self.window.start_bar

    @property
    def bars(self) -> int:
        return self.window.bars


class JobQueue:
    """Renders submitted jobs one at a time on its own worker thread."""

    def __init__(
        self,
        renderer: Renderer,
        vocabulary: ChordVocabulary,
        out_dir: str | Path,
        *,
        max_queued: int = DEFAULT_MAX_QUEUED,
        on_event: Callable[[JobEvent], None],
        clock: Callable[[], float] = time.monotonic,
        rng: random.Random | None = None,
    ) -> None:
        if max_queued < 1:
            raise RenderError(f"max_queued must be at least 1, got {max_queued}")
        self.renderer = renderer
        self.vocabulary = vocabulary
        self.out_dir = Path(out_dir)
        self.max_queued = max_queued
        self._on_event = on_event
        self._clock = clock
        self._rng = rng if rng is not None else random.Random()
        self._lock = threading.Lock()
        self._wakeup = threading.Condition(self._lock)
        self._queued: deque[RenderJob] = deque()
        self._jobs: dict[int, RenderJob] = {}
        self._running: RenderJob | None = None
        self._finished: deque[int] = deque()
        self._next_id = 1
        self._accepting = True
        self._stopping = False
        self._worker: threading.Thread | None = None

    # ---------------------------------------------------------------- lifecycle

    def start(self) -> None:
        """Start the worker thread (once)."""
        with self._lock:
            if self._worker is not None:
                raise RenderError("the render queue is already started")
            self._worker = threading.Thread(target=self._work, name="jasco-render", daemon=True)
            self._worker.start()

    def shutdown(self, timeout: float) -> None:
        """Refuse new jobs, cancel the queued ones, give the running one `timeout` seconds to
        finish and cancel it after that; returns when the worker has stopped."""
        with self._lock:
            self._accepting = False
            dropped = list(self._queued)
            self._queued.clear()
            for job in dropped:
                self._finish(job, JobState.CANCELLED, "the daemon is shutting down")
        for job in dropped:
            self._emit(JobEvent("cancelled", job.id, job.reply_to, message=job.message))
        worker = self._worker
        if worker is None:
            return
        worker_done = self._wait_until_idle(timeout)
        with self._lock:
            if not worker_done and self._running is not None:
                logger.warning(
                    "job %s did not finish within %.1f s: cancelling it", self._running.id, timeout
                )
                self._running.cancel_requested.set()
            self._stopping = True
            self._wakeup.notify_all()
        worker.join(CANCEL_GRACE_SECONDS)
        if worker.is_alive():
            logger.error(
                "the engine ignored cancellation for %.0f s; leaving its thread behind",
                CANCEL_GRACE_SECONDS,
            )

    def _wait_until_idle(self, timeout: float) -> bool:
        """Wait up to `timeout` seconds for the running job to end; True when nothing runs."""
        deadline = time.monotonic() + max(timeout, 0.0)
        with self._wakeup:
            while self._running is not None:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._wakeup.wait(left)
        return True

    # ---------------------------------------------------------------- requests from the loop

    def submit(
        self,
        snapshot: SessionSnapshot,
        start_bar: int,
        bars: int | None = None,
        reply_to: object = None,
    ) -> list[RenderJob]:
        """Queue one job per variation of the session's settings; never blocks.

        The bar window is checked now, so a bad range fails at once with RenderError; so does a
        full queue. `bars=None` renders as many whole bars as fit in one clip (at most 4).
        """
        window = plan_window(snapshot.tempo_map, start_bar, bars, self.renderer.segment_seconds)
        count = snapshot.settings.variations
        with self._lock:
            if not self._accepting:
                raise RenderError("the daemon is shutting down; no new renders are accepted")
            if len(self._queued) + count > self.max_queued:
                raise RenderError(
                    f"queue full ({len(self._queued)} jobs waiting, at most {self.max_queued}): "
                    "wait for /jasco/done or cancel jobs"
                )
            now = self._clock()
            jobs = [
                RenderJob(
                    id=self._next_id + variation,
                    snapshot=snapshot,
                    window=window,
                    seed=seed,
                    variation=variation,
                    reply_to=reply_to,
                    created=now,
                )
                for variation, seed in enumerate(self._seeds(snapshot.settings.seed, count))
            ]
            self._next_id += count
            for job in jobs:
                self._jobs[job.id] = job
                self._queued.append(job)
            self._wakeup.notify_all()
        return jobs

    def _seeds(self, fixed: int | None, count: int) -> list[int]:
        if fixed is not None:
            # A fixed seed renders variation 0 exactly as before; later ones step from it.
            return [(fixed + i) % (MAX_SEED + 1) for i in range(count)]
        seeds: list[int] = []
        while len(seeds) < count:
            seed = self._rng.randint(0, MAX_SEED)
            if seed not in seeds:
                seeds.append(seed)
        return seeds

    def cancel(self, job_id: int) -> bool:
        """Cancel a job: a queued one at once, a running one within one sampler step.

        Returns False when the job has already finished; raises RenderError for an unknown id.
        """
        with self._lock:
            job = self._jobs.get(job_id)
            if job is None:
                raise RenderError(
                    f"there is no job {job_id}; job ids come from /jasco/ack "
                    "(/jasco/status shows the running one)"
                )
            if job.state is JobState.RUNNING:
                job.cancel_requested.set()
                return True
            if job.state is not JobState.QUEUED:
                return False
            self._queued.remove(job)
            self._finish(job, JobState.CANCELLED, "cancelled before it started")
        self._emit(JobEvent("cancelled", job.id, job.reply_to, message=job.message))
        return True

    def status(self) -> QueueStatus:
        with self._lock:
            running = self._running.id if self._running is not None else None
            return QueueStatus(
                state="rendering" if running is not None else "idle",
                queued=len(self._queued),
                running=running,
                engine="preview" if self.renderer.is_preview else self.renderer.name,
            )

    def job(self, job_id: int) -> RenderJob | None:
        """A job by id (queued, running or finished), for inspection."""
        with self._lock:
            return self._jobs.get(job_id)

    # ---------------------------------------------------------------- the worker thread

    def _work(self) -> None:
        while True:
            with self._lock:
                while not self._queued and not self._stopping:
                    self._wakeup.wait()
                if self._stopping and not self._queued:
                    return
                job = self._queued.popleft()
                job.state = JobState.RUNNING
                job.started = self._clock()
                self._running = job
            event = self._run_safely(job)
            with self._lock:
                self._running = None
                self._finish(job, _FINAL_STATE[event.kind], event.message, event.clip)
                self._wakeup.notify_all()
            self._emit(event)

    def _run_safely(self, job: RenderJob) -> JobEvent:
        try:
            clip = self._render(job)
        except GenerationCancelled:
            return JobEvent("cancelled", job.id, job.reply_to, message="cancelled while rendering")
        except (BridgeError, EngineError, MidiError) as error:
            logger.warning("job %s failed: %s", job.id, error)
            return JobEvent("error", job.id, job.reply_to, message=f"job {job.id}: {error}")
        except Exception as error:  # the worker must outlive any bug in one job
            logger.exception("job %s crashed", job.id)
            return JobEvent(
                "error",
                job.id,
                job.reply_to,
                message=f"job {job.id} hit an internal error ({type(error).__name__}: {error}); "
                "the daemon log has the details, please report it",
            )
        return JobEvent("done", job.id, job.reply_to, fraction=1.0, clip=clip)

    def _render(self, job: RenderJob) -> ClipInfo:
        snapshot, window, settings = job.snapshot, job.window, job.snapshot.settings
        drums_wav, drums_rate = self._drums_for(snapshot, window)
        conditioned = build_request(
            window,
            snapshot.chord_timeline(until_beat=window.horizon_beat(self.renderer.segment_seconds)),
            self.vocabulary,
            self.renderer,
            prompt=snapshot.prompt,
            seed=job.seed,
            steps=settings.steps,
            sampler=settings.sampler,
            cfg_all=settings.cfg_all,
            cfg_text=settings.cfg_text,
            drums_wav=drums_wav,
            drums_sample_rate=drums_rate,
            # A chords-drums model has no melody input: the melody is left out (the sidecar
            # says so) rather than failing a render the producer asked for.
            melody_notes=(snapshot.melody_notes or None) if self.renderer.accepts_melody else None,
        )

        def progress(step: int, total: int) -> None:
            self._emit(JobEvent("progress", job.id, job.reply_to, fraction=step / total))

        began = self._clock()
        result = self.renderer.generate(
            conditioned.request, progress=progress, should_cancel=job.cancel_requested.is_set
        )
        rendered = self._clock()
        if job.cancel_requested.is_set():
            raise GenerationCancelled(f"job {job.id} was cancelled after its last step")
        sidecar = {
            **snapshot.describe(),
            "job": job.id,
            "variation": job.variation,
            **conditioned.describe_render(result),
            "timings": {
                "queued_seconds": (job.started or began) - job.created,
                "render_seconds": rendered - began,
                **{f"engine_{k}": v for k, v in result.timings.items()},
            },
        }
        path = clip_path(
            self.out_dir, job.session, job.start_bar, job.bars, snapshot.prompt, job.seed, job.id
        )
        return save_clip(
            result.audio,
            result.sample_rate,
            path=path,
            window=window,
            sidecar=sidecar,
            output_sample_rate=settings.sample_rate,
            target_lufs=settings.target_lufs,
            description=f"jasco-bridge {snapshot.prompt}"[:256],
        )

    def _drums_for(
        self, snapshot: SessionSnapshot, window: BarWindow
    ) -> tuple[np.ndarray | None, int]:
        """The session's drums as a song-long stem (what build_request cuts the segment from),
        filled in only where this window's segment reads it."""
        drums = snapshot.drums
        until = window.start_seconds + self.renderer.segment_seconds
        if isinstance(drums, AudioDrums):
            return drums.timeline_audio(snapshot.tempo_map, window.start_seconds, until)
        if isinstance(drums, MidiDrums):
            return drums.timeline_audio(
                snapshot.tempo_map, window.start_seconds, until, self.renderer.sample_rate
            )
        return None, self.renderer.sample_rate

    # ---------------------------------------------------------------- helpers

    def _finish(
        self, job: RenderJob, state: JobState, message: str, clip: ClipInfo | None = None
    ) -> None:
        job.state = state
        job.finished = self._clock()
        job.message = message
        job.clip = clip
        self._finished.append(job.id)
        while len(self._finished) > MAX_FINISHED_JOBS:
            self._jobs.pop(self._finished.popleft(), None)

    def _emit(self, event: JobEvent) -> None:
        try:
            self._on_event(event)
        except Exception:  # a broken listener must not stop the queue
            logger.exception("on_event failed for job %s %s", event.job_id, event.kind)


_FINAL_STATE = {"done": JobState.DONE, "error": JobState.FAILED, "cancelled": JobState.CANCELLED}
