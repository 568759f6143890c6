"""The render queue: engine worker threads, jobs in order, progress and cancellation events.

The daemon's event loop submits jobs and gets `RenderJob`s back at once (one per variation, each
with the seed it will use); it never waits for the engine. Worker threads start them in the
order they were submitted and report through `on_event`, called *from a worker thread* (a server
hands events to its loop with `loop.call_soon_threadsafe`); only jobs that never started are
reported from the thread that cancelled them (`cancel`, `shutdown`). Every job ends with exactly
one of "done", "error" or "cancelled"; "progress" events before that carry the step and total
of the sampler over all the windows of the render, and which window is running.

How many jobs render at once is the renderer's `concurrency` attribute, read once here (1 when
it has none, as a local engine: one model on one device renders one window at a time). A
`ClusterRenderer` declares its number of workers, so the variations of one request render side
by side on several GPUs; the queue keeps one thread per slot.

    queue = JobQueue(open_renderer("preview"), "clips", on_event=print)
    queue.start()
    jobs = queue.submit(session.snapshot(), start_bar=5, bars=4)
    queue.cancel(jobs[0].id)
    queue.shutdown(timeout=30.0)

A failing job (bad session content, engine error, full disk) becomes an "error" event whose
message says what to do; the worker carries on with the next job.
"""

from __future__ import annotations

import concurrent.futures
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

from engine.errors import EngineError, GenerationCancelled
from jasco_bridge.clips import ClipInfo
from jasco_bridge.conditioning import BarWindow, RenderPlan, bars_to_song_end, plan_render
from jasco_bridge.engines import OpenedRenderer
from jasco_bridge.errors import BridgeError, RenderError
from jasco_bridge.journal import JobJournal
from jasco_bridge.ownership import check_job_owner
from jasco_bridge.pipeline import render_clip, variation_seeds
from jasco_bridge.session import SessionSnapshot
from midi.chords import TimedChord
from midi.errors import MidiError

logger = logging.getLogger(__name__)

DEFAULT_MAX_QUEUED = 64
# After a shutdown cancels the running job, how long to wait for the engine to notice.
CANCEL_GRACE_SECONDS = 30.0
# Finished jobs remembered for cancel/status lookups; older ones are forgotten.
MAX_FINISHED_JOBS = 1024
# Chord recognition of one window may take this long before its job fails; it runs on its own
# thread, so a huge chord file fails one job instead of holding the queue for everyone.
RECOGNITION_TIMEOUT_SECONDS = 60.0


class JobState(str, enum.Enum):
    """Where a job is, and what its events say: a "running" event reports progress, the three
    final states end a job. The values are the words the events and `/jasco/*` replies use."""

    QUEUED = "queued"
    RUNNING = "running"
    DONE = "done"
    FAILED = "error"
    CANCELLED = "cancelled"


@dataclass(frozen=True)
class JobEvent:
    """Something happened to a job: progress (`RUNNING`) or its end. `reply_to` is whatever the
    submitter passed in."""

    kind: JobState
    job_id: int
    reply_to: object = None
    fraction: float = 0.0
    clip: ClipInfo | None = None
    message: str = ""
    step: int = 0
    total: int = 0
    window: int = 0  # 0-based window running, of `windows`
    windows: int = 1


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
    plan: RenderPlan = field(repr=False)
    seed: int
    variation: int
    reply_to: object = field(default=None, repr=False)
    owner: str | None = None  # the client that queued it (`jasco_bridge.ownership`)
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
    def window(self) -> BarWindow:
        """All the bars of the job (its plan's span)."""
        return self.plan.span

    @property
    def start_bar(self) -> int:
        return self.window.start_bar

    @property
    def bars(self) -> int:
        return self.window.bars


class JobQueue:
    """Renders submitted jobs on its own worker threads, `concurrency` of them at a time."""

    def __init__(
        self,
        opened: OpenedRenderer,
        out_dir: str | Path,
        *,
        max_queued: int = DEFAULT_MAX_QUEUED,
        on_event: Callable[[JobEvent], None],
        clock: Callable[[], float] = time.monotonic,
        rng: random.Random | None = None,
        journal: JobJournal | None = None,
        recognition_timeout_seconds: float = RECOGNITION_TIMEOUT_SECONDS,
    ) -> None:
        """`journal`: where queued and running jobs are written down (the daemon's, in the
        clip folder); ids then continue from the last run's."""
        if max_queued < 1:
            raise RenderError(f"max_queued must be at least 1, got {max_queued}")
        concurrency = getattr(opened.renderer, "concurrency", 1)
        if not isinstance(concurrency, int) or concurrency < 1:
            raise RenderError(
                f"renderer {opened.renderer.name} declares concurrency {concurrency!r}; "
                "it must be a whole number of at least 1"
            )
        self.concurrency = concurrency
        self.opened = opened
        self.renderer = opened.renderer
        self.out_dir = Path(out_dir)
        self.max_queued = max_queued
        self._on_event = on_event
        self._clock = clock
        self._rng = rng if rng is not None else random.Random()
        self._lock = threading.Lock()
        self._wakeup = threading.Condition(self._lock)
        self._queued: deque[RenderJob] = deque()
        self._jobs: dict[int, RenderJob] = {}
        # Jobs rendering now, in the order they started (dicts keep insertion order).
        self._running: dict[int, RenderJob] = {}
        self._finished: deque[int] = deque()
        self._journal = journal
        self._recognition_timeout = recognition_timeout_seconds
        # One thread per render slot: a recognition given up on keeps its thread busy, so they
        # can never pile up beyond that, and one job's slow chords never time out another's.
        self._recognizer = concurrent.futures.ThreadPoolExecutor(concurrency, "jasco-chords")
        self._next_id = 1
        self._accepting = True
        self._stopping = False
        self._workers: list[threading.Thread] = []

    # ---------------------------------------------------------------- lifecycle

    def start(self) -> None:
        """Start the worker threads (once)."""
        with self._lock:
            if self._workers:
                raise RenderError("the render queue is already started")
            self._workers = [
                threading.Thread(target=self._work, name=f"jasco-render-{slot}", daemon=True)
                for slot in range(self.concurrency)
            ]
            for worker in self._workers:
                worker.start()

    def shutdown(self, timeout: float) -> None:
        """Refuse new jobs, cancel the queued ones, give the running ones `timeout` seconds to
        finish and cancel them after that; returns when the workers have stopped."""
        with self._lock:
            self._accepting = False
            dropped = list(self._queued)
            self._queued.clear()
            for job in dropped:
                self._finish(job, JobState.CANCELLED, "the daemon is shutting down")
        for job in dropped:
            self._emit(JobEvent(JobState.CANCELLED, job.id, job.reply_to, message=job.message))
        if not self._workers:
            self._recognizer.shutdown(wait=False)
            return
        self._wait_until_idle(timeout)
        with self._lock:
            for job in self._running.values():
                logger.warning(
                    "job %s did not finish within %.1f s: cancelling it", job.id, timeout
                )
                job.cancel_requested.set()
            self._stopping = True
            self._wakeup.notify_all()
        # One grace period for all: the cancelled jobs stop side by side.
        deadline = time.monotonic() + CANCEL_GRACE_SECONDS
        for worker in self._workers:
            worker.join(max(deadline - time.monotonic(), 0.0))
        self._recognizer.shutdown(wait=False, cancel_futures=True)
        if any(worker.is_alive() for worker in self._workers):
            logger.error(
                "the engine ignored cancellation for %.0f s; leaving its thread behind",
                CANCEL_GRACE_SECONDS,
            )

    def _wait_until_idle(self, timeout: float) -> None:
        """Wait up to `timeout` seconds for the running jobs to end."""
        deadline = time.monotonic() + max(timeout, 0.0)
        with self._wakeup:
            while self._running:
                left = deadline - time.monotonic()
                if left <= 0:
                    return
                self._wakeup.wait(left)

    # ---------------------------------------------------------------- requests from the loop

    def submit(
        self,
        snapshot: SessionSnapshot,
        start_bar: int,
        bars: int | None = None,
        reply_to: object = None,
        *,
        owner: str | None = None,
        token: str | None = None,
        reply_address: tuple[str, int] | None = None,
    ) -> list[RenderJob]:
        """Queue one job per variation of the session's settings; never blocks.

        The bars are planned now, so a bad range fails at once with RenderError; so does a full
        queue. `bars=None` renders as many whole bars as fit in one clip (at most 4), `bars=0`
        to the song's last note; more bars than fit one window are a long render.
        `owner` may cancel the jobs; `token` and `reply_address` (a UDP client) are written in
        the journal, so that a restarted daemon can tell that client its job was interrupted.
        """
        if bars == 0:
            bars = bars_to_song_end(snapshot.tempo_map, start_bar, snapshot.last_beat())
        plan = plan_render(
            snapshot.tempo_map,
            start_bar,
            bars,
            self.renderer.segment_seconds,
            self.renderer.frame_rate_hz,
            context_bars=snapshot.settings.context_bars,
        )
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
            first = self._journal.take_ids(count) if self._journal else self._next_id
            jobs = [
                RenderJob(
                    id=first + variation,
                    snapshot=snapshot,
                    plan=plan,
                    seed=seed,
                    variation=variation,
                    reply_to=reply_to,
                    owner=owner,
                    created=now,
                )
                for variation, seed in enumerate(variation_seeds(snapshot.settings, self._rng))
            ]
            self._next_id = first + count
            if self._journal is not None:
                self._journal.queued(
                    [
                        {
                            "job": job.id,
                            "session": job.session,
                            "start_bar": job.start_bar,
                            "bars": job.bars,
                            "seed": job.seed,
                            "variation": job.variation,
                            "token": token,
                            "reply_to": None if reply_address is None else list(reply_address),
                        }
                        for job in jobs
                    ]
                )
            for job in jobs:
                self._jobs[job.id] = job
                self._queued.append(job)
            self._wakeup.notify_all()
        return jobs

    def cancel(self, job_id: int, by: str | None = None) -> bool:
        """Cancel a job: a queued one at once, a running one within one sampler step.

        Returns False when the job has already finished; raises RenderError for an unknown id,
        or when `by` (a client) is not the client that queued it (None: the daemon itself).
        """
        with self._lock:
            job = self._jobs.get(job_id)
            if job is None:
                raise RenderError(
                    f"there is no job {job_id}; job ids come from /jasco/ack "
                    "(/jasco/status shows the oldest running one)"
                )
            check_job_owner(job.owner, by, job_id)
            if job.state is JobState.RUNNING:
                job.cancel_requested.set()
                return True
            if job.state is not JobState.QUEUED:
                return False
            self._queued.remove(job)
            self._finish(job, JobState.CANCELLED, "cancelled before it started")
        self._emit(JobEvent(JobState.CANCELLED, job.id, job.reply_to, message=job.message))
        return True

    def status(self) -> QueueStatus:
        """`running` is the job rendering longest when several render at once (see `running`)."""
        with self._lock:
            running = next(iter(self._running), None)
            return QueueStatus(
                state="rendering" if running is not None else "idle",
                queued=len(self._queued),
                running=running,
                engine="preview" if self.renderer.is_preview else self.renderer.name,
            )

    def running(self) -> list[int]:
        """The ids of the jobs rendering now, the one that started first first."""
        with self._lock:
            return list(self._running)

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
                self._running[job.id] = job
            if self._journal is not None:
                self._journal.running(job.id)
            event = self._run_safely(job)
            with self._lock:
                del self._running[job.id]
                self._finish(job, event.kind, event.message, event.clip)
                self._wakeup.notify_all()
            self._emit(event)

    def _run_safely(self, job: RenderJob) -> JobEvent:
        try:
            clip = self._render(job)
        except GenerationCancelled:
            return JobEvent(
                JobState.CANCELLED, job.id, job.reply_to, message="cancelled while rendering"
            )
        except (BridgeError, EngineError, MidiError) as error:
            logger.warning("job %s failed: %s", job.id, error)
            return JobEvent(JobState.FAILED, job.id, job.reply_to, message=f"job {job.id}: {error}")
        except Exception as error:  # the worker must outlive any bug in one job
            logger.exception("job %s crashed", job.id)
            return JobEvent(
                JobState.FAILED,
                job.id,
                job.reply_to,
                message=f"job {job.id} hit an internal error ({type(error).__name__}: {error}); "
                "the daemon log has the details, please report it",
            )
        return JobEvent(JobState.DONE, job.id, job.reply_to, fraction=1.0, clip=clip)

    def _render(self, job: RenderJob) -> ClipInfo:
        running = [0, 1]  # the window going, and how many: set by the engine before each

        def on_window(index: int, count: int) -> None:
            running[:] = [index, count]

        def progress(step: int, total: int) -> None:
            self._emit(
                JobEvent(
                    JobState.RUNNING,
                    job.id,
                    job.reply_to,
                    fraction=step / total,
                    step=step,
                    total=total,
                    window=running[0],
                    windows=running[1],
                )
            )

        clip = render_clip(
            job.snapshot,
            job.plan,
            self.opened,
            chords=self._recognise(job),
            seed=job.seed,
            out_dir=self.out_dir,
            job_id=job.id,
            variation=job.variation,
            progress=progress,
            on_window=on_window,
            should_cancel=job.cancel_requested.is_set,
            timings={"queued_seconds": (job.started or self._clock()) - job.created},
            clock=self._clock,
        )
        window = job.window
        logger.info(
            "job %s done: %s (bars %s-%s, %.2f s, %d window%s)",
            job.id,
            clip.path,
            window.start_bar,
            window.end_bar,
            clip.duration_seconds,
            len(job.plan.windows),
            "" if len(job.plan.windows) == 1 else "s",
        )
        return clip

    # ---------------------------------------------------------------- helpers

    def _recognise(self, job: RenderJob) -> list[TimedChord]:
        """The render's chords (to its last window's horizon), recognised on the recogniser
        thread within the time limit."""
        horizon = job.plan.windows[-1].horizon_beat
        try:
            running = self._recognizer.submit(job.snapshot.chord_timeline, horizon)
        except RuntimeError:  # the queue is shutting down
            raise GenerationCancelled("the daemon is shutting down") from None
        try:
            return running.result(timeout=self._recognition_timeout)
        except concurrent.futures.TimeoutError:
            raise RenderError(
                f"chord recognition took longer than {self._recognition_timeout:g} s and was "
                "given up; the chord file or notes are too many for one song: send fewer "
                "(or chord symbols)"
            ) from None

    def _finish(
        self, job: RenderJob, state: JobState, message: str, clip: ClipInfo | None = None
    ) -> None:
        job.state = state
        job.finished = self._clock()
        job.message = message
        job.clip = clip
        if self._journal is not None:
            self._journal.finished(job.id, state.value)
        self._finished.append(job.id)
        while len(self._finished) > MAX_FINISHED_JOBS:
            self._jobs.pop(self._finished.popleft(), None)

    def _emit(self, event: JobEvent) -> None:
        try:
            self._on_event(event)
        except Exception:  # a broken listener must not stop the queue
            logger.exception("on_event failed for job %s %s", event.job_id, event.kind)
