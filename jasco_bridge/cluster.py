"""Rendering on a Ray cluster: engine actors on the GPU boxes, a `Renderer` in the daemon.

Three parts, all on Ray (the optional `cluster` extra):

- `EngineWorker`, an actor holding one opened engine (JASCO on one GPU, or the preview), loaded
  once and kept warm; `jasco-bridge worker` starts them and registers them with the pool.
- `WorkerPool`, one named asyncio actor per cluster that leases idle workers to daemons. Waiting
  daemons are served in turn (the one served longest ago first), so a daemon with a long batch
  cannot starve another producer's single render.
- `ClusterRenderer`, the daemon's side: it satisfies `engine.request.Renderer`, so sessions,
  trimming, clip writing and replies stay on the producer's machine and only the
  `GenerationRequest` (drum stems as arrays) and the `GenerationResult` cross the wire. A long
  render's `LongRequest` goes to one worker whole: its windows continue each other's latents,
  which stay on that worker's device.

Progress is a long poll: while the worker renders, the daemon asks "what step after N?" and the
worker answers as soon as a step ends (or after `POLL_SECONDS`, which is also how often the
daemon's cancel flag is looked at); a cancel reaches the worker's sampler before its next step.
This works over Ray Client (`ray://`), which has no streaming actor methods.

A worker that dies while rendering (process killed, machine lost) is dropped from the pool and the
window is rendered once more on another worker of the same model (same seed, so the same audio);
when that fails too, or no other worker is there, the job fails with a `RenderError` saying so.

Ray trusts everyone who can reach its ports: keep them on loopback or a private network; the
daemon only connects out (over `ray://`) and never listens for Ray.
"""

from __future__ import annotations

import asyncio
import logging
import os
import platform
import threading
import uuid
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

from engine.errors import EngineError, GenerationCancelled
from engine.request import (
    CancelFn,
    GenerationRequest,
    GenerationResult,
    LongRequest,
    ProgressFn,
    WindowFn,
)
from jasco_bridge.errors import ConfigError, RenderError

logger = logging.getLogger(__name__)

NAMESPACE = "jasco-bridge"
POOL_NAME = "jasco-bridge-pool"
POLL_SECONDS = 0.1
CLIENT_CONNECT_ATTEMPTS = 3
INSTALL_HINT = "pip install 'jasco-bridge[cluster]'"
# Finished renders a worker still answers progress questions about (late polls).
_REMEMBERED_RENDERS = 64


def import_ray():
    """Ray, or a RenderError saying how to install it."""
    try:
        import ray
    except ImportError:
        raise RenderError(f"--cluster needs Ray, which is not installed: {INSTALL_HINT}") from None
    return ray


def check_address(address: str) -> str:
    """`ray://HOST:PORT` (Ray Client, for daemons anywhere), `HOST:PORT` or `auto` (for
    processes on a machine of the cluster); anything else is a ConfigError."""
    if address == "auto":
        return address
    rest = address.removeprefix("ray://")
    host, _, port = rest.rpartition(":")
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ConfigError(
            f"--cluster {address!r} is not a Ray address: give ray://HOST:PORT "
            "(the head's Ray Client port, 10001 by default), HOST:PORT or auto"
        )
    return address


def connect(address: str, *, log_to_driver: bool = False) -> None:
    """Join the cluster at `address` once per process (later calls reuse the connection)."""
    ray = import_ray()
    check_address(address)
    if ray.is_initialized():
        return
    # Ray Client starts a server process per connection on the head, which now and then dies
    # while starting on a busy head; a second try gets a fresh one.
    attempts = CLIENT_CONNECT_ATTEMPTS if address.startswith("ray://") else 1
    for attempt in range(1, attempts + 1):
        try:
            ray.init(
                address=address,
                namespace=NAMESPACE,
                log_to_driver=log_to_driver,
                logging_level=logging.WARNING,
            )
            return
        except (ConnectionError, RuntimeError, ValueError) as error:
            if attempt < attempts and "failure from server" in str(error).lower():
                logger.info("Ray Client server did not start (try %d); trying again", attempt)
                continue
            raise RenderError(
                f"cannot reach the Ray cluster at {address}: {_last_line(error)}. Is the head running "
                "(`ray start --head ...`) and may this machine reach it?"
            ) from None


class _ActorHandles:
    """One handle per named actor for this process. Ray Client counts the handles of a
    connection per actor, not per handle object: when any copy is garbage-collected, every other
    copy stops working. So handles are looked up by name once and kept."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._handles: dict[str, Any] = {}

    def get(self, name: str) -> Any:
        ray = import_ray()
        if not ray.is_initialized():
            # Without this Ray would quietly start a cluster of its own on this machine.
            raise RenderError(
                "not connected to the Ray cluster (the connection was lost or never made): "
                "check the head and restart with --cluster ADDRESS"
            )
        with self._lock:
            if name not in self._handles:
                if name == POOL_NAME:
                    self._handles[name] = WorkerPool.options(
                        name=POOL_NAME,
                        namespace=NAMESPACE,
                        lifetime="detached",
                        get_if_exists=True,
                        num_cpus=0,
                    ).remote()
                else:
                    self._handles[name] = ray.get_actor(name, namespace=NAMESPACE)
            return self._handles[name]


_HANDLES = _ActorHandles()


def pool():
    """The cluster's one pool actor, created by whoever needs it first."""
    return _HANDLES.get(POOL_NAME)


# ---------------------------------------------------------------------------- the worker side


@dataclass
class _Render:
    """One render's progress inside a worker, shared by its render and poll threads."""

    changed: threading.Condition
    cancel: threading.Event
    step: int = 0
    total: int = 0
    window: int = 0
    windows: int = 1
    finished: bool = False


class _EngineWorker:
    """The engine, loaded once in a Ray actor process; one render at a time (the pool leases it
    to one daemon), progress polls and cancels on other threads of the same actor."""

    def __init__(self, name: str, kind: str, model: str | None, device: str | None) -> None:
        from jasco_bridge.engines import open_renderer

        self.name = name
        opened = open_renderer(kind, model, device)
        self.renderer = opened.renderer
        vocabulary = opened.vocabulary
        self._info = {
            "name": name,
            "engine": self.renderer.name,
            "is_preview": self.renderer.is_preview,
            "model_id": self.renderer.model_id,
            "device": _device_of(self.renderer),
            "node": platform.node(),
            "pid": os.getpid(),
            "sample_rate": self.renderer.sample_rate,
            "frame_rate_hz": self.renderer.frame_rate_hz,
            "segment_seconds": self.renderer.segment_seconds,
            "accepts_melody": self.renderer.accepts_melody,
            "chord_table": {label: vocabulary.index_of(label) for label in vocabulary.labels},
            "notice": opened.notice,
        }
        self._renders: OrderedDict[str, _Render] = OrderedDict()
        self._lock = threading.Lock()
        self._one_at_a_time = threading.Lock()
        ray = import_ray()
        me = ray.get_runtime_context().current_actor
        # Registering from here means a worker Ray restarts after a crash rejoins on its own.
        ray.get(pool().register.remote(name, me, self.describe()))

    def describe(self) -> dict[str, Any]:
        return dict(self._info)

    def _render(self, token: str) -> _Render:
        with self._lock:
            render = self._renders.get(token)
            if render is None:
                render = _Render(threading.Condition(), threading.Event())
                self._renders[token] = render
                while len(self._renders) > _REMEMBERED_RENDERS:
                    self._renders.popitem(last=False)
            return render

    def generate(
        self, token: str, request: GenerationRequest | LongRequest
    ) -> tuple[str, Any, int, int]:
        """("done", result | "cancelled", message | "error", exception, step, total)."""
        render = self._render(token)

        def progress(step: int, total: int) -> None:
            with render.changed:
                render.step, render.total = step, total
                render.changed.notify_all()

        def on_window(index: int, count: int) -> None:
            with render.changed:
                render.window, render.windows = index, count

        try:
            with self._one_at_a_time:
                if isinstance(request, LongRequest):
                    result = self.renderer.generate_long(
                        request, progress, render.cancel.is_set, on_window
                    )
                else:
                    result = self.renderer.generate(request, progress, render.cancel.is_set)
            outcome: tuple[str, Any] = ("done", result)
        except GenerationCancelled as cancelled:
            outcome = ("cancelled", str(cancelled))
        except EngineError as error:
            outcome = ("error", error)
        except Exception as error:  # returned, not raised: the daemon shows it as the job's error
            logger.exception("render %s crashed on %s", token, self.name)
            outcome = ("error", RenderError(f"{type(error).__name__} on {self.name}: {error}"))
        with render.changed:
            render.finished = True
            render.changed.notify_all()
        return (*outcome, render.step, render.total)

    def wait_progress(
        self, token: str, after_step: int, timeout: float
    ) -> tuple[int, int, bool, int, int]:
        """(step, total, finished, window, windows) as soon as a step past `after_step` is
        done, or at `timeout`."""
        render = self._render(token)
        with render.changed:
            render.changed.wait_for(
                lambda: render.step > after_step or render.finished, timeout=timeout
            )
            return render.step, render.total, render.finished, render.window, render.windows

    def cancel(self, token: str) -> None:
        self._render(token).cancel.set()

    def pid(self) -> int:
        return os.getpid()


def _device_of(renderer) -> str:
    device = getattr(renderer, "device", None)
    if device is None:
        return "cpu"
    text = str(device)
    if text.startswith("cuda"):
        import torch

        index = torch.device(text).index or 0
        return f"{text} ({torch.cuda.get_device_name(index)})"
    return text


# ---------------------------------------------------------------------------- the pool


@dataclass
class _Ticket:
    client: str
    engine: str
    model_id: str
    exclude: frozenset[str]
    granted: asyncio.Future


class _WorkerPool:
    """Which workers exist and which are free; leases them to waiting daemons in turn."""

    def __init__(self) -> None:
        self._workers: dict[str, tuple[Any, dict[str, Any]]] = {}
        self._busy: dict[str, str] = {}  # worker -> client holding it
        self._tickets: dict[str, _Ticket] = {}
        self._served: dict[str, int] = {}  # client -> serial of its last lease
        self._serial = 0

    async def register(self, name: str, handle: Any, info: dict[str, Any]) -> None:
        self._workers[name] = (handle, info)
        self._busy.pop(name, None)
        self._dispatch()

    async def unregister(self, name: str) -> None:
        self._workers.pop(name, None)
        self._busy.pop(name, None)
        self._fail_hopeless()

    async def workers(self) -> list[dict[str, Any]]:
        waiting: dict[str, int] = {}
        for ticket in self._tickets.values():
            waiting[ticket.client] = waiting.get(ticket.client, 0) + 1
        return [
            {**info, "busy_for": self._busy.get(name), "waiting": waiting}
            for name, (_handle, info) in sorted(self._workers.items())
        ]

    async def acquire(
        self, client: str, ticket: str, engine: str, model_id: str, exclude: list[str]
    ) -> tuple[str] | str | None:
        """(worker name,) when one is leased to `client`; None when withdrawn; a message when
        no registered worker could ever take it. Only names travel: see `_ActorHandles`."""
        granted = asyncio.get_running_loop().create_future()
        self._tickets[ticket] = _Ticket(client, engine, model_id, frozenset(exclude), granted)
        self._dispatch()
        self._fail_hopeless()
        return await granted

    async def withdraw(self, ticket: str) -> None:
        waiting = self._tickets.pop(ticket, None)
        if waiting is not None and not waiting.granted.done():
            waiting.granted.set_result(None)

    async def release(self, name: str, failed: bool = False) -> None:
        self._busy.pop(name, None)
        if failed:
            self._workers.pop(name, None)  # a restarted actor registers itself again
            self._fail_hopeless()
        self._dispatch()

    def _fits(self, ticket: _Ticket, name: str) -> bool:
        info = self._workers[name][1]
        return (
            name not in ticket.exclude
            and info["engine"] == ticket.engine
            and info["model_id"] == ticket.model_id
        )

    def _dispatch(self) -> None:
        while True:
            idle = [name for name in sorted(self._workers) if name not in self._busy]
            waiting = sorted(
                self._tickets.items(), key=lambda item: self._served.get(item[1].client, -1)
            )
            match = next(
                (
                    (token, ticket, name)
                    for token, ticket in waiting
                    for name in idle
                    if self._fits(ticket, name)
                ),
                None,
            )
            if match is None:
                return
            token, ticket, name = match
            del self._tickets[token]
            self._busy[name] = ticket.client
            self._serial += 1
            self._served[ticket.client] = self._serial
            ticket.granted.set_result((name,))

    def _fail_hopeless(self) -> None:
        for token, ticket in list(self._tickets.items()):
            if not any(self._fits(ticket, name) for name in self._workers):
                del self._tickets[token]
                ticket.granted.set_result(
                    f"no cluster worker with {ticket.engine} {ticket.model_id} is left"
                    + (" besides the one that failed" if ticket.exclude else "")
                    + ": start one with `jasco-bridge worker --cluster ...`"
                )


def _remote_classes():
    ray = import_ray()
    # Threads: one render, its progress polls and a cancel run at the same time.
    worker = ray.remote(max_concurrency=4, max_restarts=2, max_task_retries=0)(_EngineWorker)
    return worker, ray.remote(_WorkerPool)


class _LazyRemote:
    """The Ray actor class, made on first use so importing this module never needs Ray."""

    def __init__(self, index: int) -> None:
        self._index = index
        self._made = None

    def options(self, **options):
        if self._made is None:
            self._made = _remote_classes()[self._index]
        return self._made.options(**options)


EngineWorker = _LazyRemote(0)
WorkerPool = _LazyRemote(1)


# ---------------------------------------------------------------------------- starting workers


@dataclass(frozen=True)
class WorkerSpec:
    """What `jasco-bridge worker` starts: `gpus` actors on one GPU each, or `cpu_actors` on CPU."""

    engine: str = "auto"
    model: str | None = None
    gpus: int = 0
    cpu_actors: int = 1


def start_workers(spec: WorkerSpec) -> list[tuple[str, Any]]:
    """Start the actors on this machine's node and wait until each has loaded its engine;
    returns (name, handle) pairs. The actors live as long as the calling process."""
    ray = import_ray()
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    node = ray.get_runtime_context().get_node_id()
    here = NodeAffinitySchedulingStrategy(node_id=node, soft=False)
    prefix = f"jasco-worker-{platform.node()}-{os.getpid()}"
    slots = [("cuda", {"num_gpus": 1})] * spec.gpus or [("cpu", {"num_cpus": 1})] * spec.cpu_actors
    started = []
    for index, (device, resources) in enumerate(slots):
        name = f"{prefix}-{index}"
        handle = EngineWorker.options(
            name=name, namespace=NAMESPACE, scheduling_strategy=here, **resources
        ).remote(name, spec.engine, spec.model, device)
        started.append((name, handle))
    try:
        ray.get([handle.describe.remote() for _name, handle in started])
    except ray.exceptions.RayActorError as error:
        stop_workers(started)
        raise RenderError(f"a worker could not load its engine: {error}") from None
    return started


def stop_workers(started: list[tuple[str, Any]]) -> None:
    ray = import_ray()
    registry = pool()
    ray.get([registry.unregister.remote(name) for name, _handle in started])
    for _name, handle in started:
        ray.kill(handle, no_restart=True)


def list_workers() -> list[dict[str, Any]]:
    ray = import_ray()
    return ray.get(pool().workers.remote())


# ---------------------------------------------------------------------------- the daemon side


class WorkerLost(Exception):
    """The worker rendering a window went away (internal: turned into a retry or RenderError)."""


class ClusterRenderer:
    """A `Renderer` whose `generate` runs on the cluster's workers of one engine and model.

    Call `generate` from a worker thread, never from an event loop: it waits for the cluster.
    Several threads may call it at once: each call leases its own worker. `concurrency` (the
    number of workers of this model when the daemon connected) tells the job queue how many
    windows to send at once.
    """

    def __init__(
        self,
        address: str,
        info: dict[str, Any],
        *,
        client: str | None = None,
        concurrency: int = 1,
    ) -> None:
        self.address = address
        self.concurrency = concurrency
        self.name: str = info["engine"]
        self.is_preview: bool = info["is_preview"]
        self.sample_rate: int = info["sample_rate"]
        self.frame_rate_hz: float = info["frame_rate_hz"]
        self.segment_seconds: float = info["segment_seconds"]
        self.model_id: str = info["model_id"]
        self.accepts_melody: bool = info["accepts_melody"]
        self.client = client or f"{platform.node()}-{os.getpid()}-{uuid.uuid4().hex[:8]}"
        self._ray = import_ray()
        self._pool = pool()

    def generate(
        self,
        request: GenerationRequest,
        progress: ProgressFn | None = None,
        should_cancel: CancelFn | None = None,
    ) -> GenerationResult:
        return self._run(request, progress, should_cancel, None)

    def generate_long(
        self,
        request: LongRequest,
        progress: ProgressFn | None = None,
        should_cancel: CancelFn | None = None,
        on_window: WindowFn | None = None,
    ) -> GenerationResult:
        """All windows on one worker (they continue each other's latents there)."""
        return self._run(request, progress, should_cancel, on_window)

    def _run(
        self,
        request: GenerationRequest | LongRequest,
        progress: ProgressFn | None,
        should_cancel: CancelFn | None,
        on_window: WindowFn | None,
    ) -> GenerationResult:
        cancelled = should_cancel or (lambda: False)
        tried: list[str] = []
        while True:
            name, worker = self._lease(tried, cancelled)
            failed = False
            try:
                return self._render_on(worker, request, progress, cancelled, on_window)
            except WorkerLost as lost:
                failed = True
                tried.append(name)
                if len(tried) > 1:
                    raise RenderError(
                        f"cluster workers {', '.join(tried)} died while rendering ({lost}); "
                        "check the worker machines' logs (`ray logs`) and render again"
                    ) from None
                logger.warning("worker %s died while rendering (%s): trying another", name, lost)
            finally:
                self._pool.release.remote(name, failed)

    def _lease(self, tried: list[str], cancelled: CancelFn) -> tuple[str, Any]:
        ray = self._ray
        ticket = uuid.uuid4().hex
        answer = self._pool.acquire.remote(
            self.client, ticket, self.name, self.model_id, list(tried)
        )
        while not ray.wait([answer], timeout=POLL_SECONDS)[0]:
            if cancelled():
                ray.get(self._pool.withdraw.remote(ticket))
                lease = ray.get(answer)
                if isinstance(lease, tuple):  # granted just before the withdrawal
                    self._pool.release.remote(lease[0])
                raise GenerationCancelled("cancelled while waiting for a cluster worker")
        lease = ray.get(answer)
        if isinstance(lease, tuple):
            return lease[0], _HANDLES.get(lease[0])
        if isinstance(lease, str):
            if tried:
                raise RenderError(
                    f"cluster worker {tried[0]} died while rendering and {lease}"
                ) from None
            raise RenderError(lease)
        raise GenerationCancelled("cancelled while waiting for a cluster worker")

    def _render_on(
        self,
        worker: Any,
        request: GenerationRequest | LongRequest,
        progress: ProgressFn | None,
        cancelled: CancelFn,
        on_window: WindowFn | None = None,
    ) -> GenerationResult:
        ray = self._ray
        token = uuid.uuid4().hex
        reported = 0
        window_seen = (-1, 0)

        def report(step: int, total: int, window: int | None = None, windows: int = 1) -> None:
            nonlocal reported, window_seen
            if on_window is not None and window is not None and (window, windows) != window_seen:
                window_seen = (window, windows)
                on_window(window, windows)
            if progress is not None:
                for done in range(reported + 1, step + 1):
                    progress(done, total)
            reported = max(reported, step)

        cancel_sent = False
        try:
            rendering = worker.generate.remote(token, request)
            while True:
                poll = worker.wait_progress.remote(token, reported, POLL_SECONDS)
                ready, _ = ray.wait([rendering, poll], num_returns=1, timeout=None)
                if rendering in ready:
                    kind, payload, step, total = ray.get(rendering)
                    break
                step, total, finished, window, windows = ray.get(poll)
                report(step, total, window, windows)
                if finished:
                    kind, payload, step, total = ray.get(rendering)
                    break
                if not cancel_sent and cancelled():
                    worker.cancel.remote(token)
                    cancel_sent = True
        except (ray.exceptions.RayActorError, ray.exceptions.ActorUnavailableError) as error:
            raise WorkerLost(_first_line(error)) from None
        report(step, total)
        if kind == "done":
            return payload
        if kind == "cancelled":
            raise GenerationCancelled(payload)
        raise payload


def _last_line(error: BaseException) -> str:
    lines = [line for line in str(error).strip().splitlines() if line.strip()]
    return lines[-1].strip() if lines else type(error).__name__


def _first_line(error: BaseException) -> str:
    lines = str(error).strip().splitlines()
    return lines[0] if lines else type(error).__name__


# ---------------------------------------------------------------------------- opening


def choose_workers(
    workers: list[dict[str, Any]], kind: str, model: str | None
) -> tuple[list[dict[str, Any]], str]:
    """The workers a daemon asking for engine `kind` (and `model`) renders on, and why; a
    RenderError naming what is there when none fits."""
    jasco = [w for w in workers if not w["is_preview"]]
    if model is not None:
        jasco = [w for w in jasco if model in (w["model_id"], os.path.basename(w["model_id"]))]
    preview = [w for w in workers if w["is_preview"]]
    if kind == "preview":
        chosen, why = preview, "preview requested"
    elif jasco:
        chosen, why = jasco, "JASCO workers found"
    elif kind == "jasco" or model is not None:
        chosen, why = [], ""
    else:
        chosen, why = preview, "no JASCO workers in the cluster: rendering PREVIEWs"
    if not chosen:
        present = ", ".join(sorted({f"{w['engine']} {w['model_id']}" for w in workers})) or "none"
        wanted = f"{kind} {model}" if model else kind
        raise RenderError(
            f"no cluster worker renders {wanted} (workers present: {present}): start one with "
            "`jasco-bridge worker --cluster ADDRESS --engine ... --model ...`"
        )
    first = chosen[0]["model_id"]
    same_model = [w for w in chosen if w["model_id"] == first]
    return same_model, why


def open_cluster(address: str, kind: str, model: str | None) -> tuple[ClusterRenderer, dict, str]:
    """Connect, pick the workers, and return the renderer, the chord table of its model
    (label -> index) and a notice for the operator."""
    connect(address)
    chosen, why = choose_workers(list_workers(), kind, model)
    info = chosen[0]
    renderer = ClusterRenderer(address, info, concurrency=len(chosen))
    devices = ", ".join(f"{w['name']} on {w['node']} ({w['device']})" for w in chosen)
    notice = (
        f"rendering on the Ray cluster at {address} ({why}): {len(chosen)} worker(s): {devices}"
    )
    return renderer, info["chord_table"], notice
