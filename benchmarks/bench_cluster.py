"""What does rendering on a Ray cluster cost over rendering here? Run it from the repository root.

Starts a real local Ray cluster on this machine (a head with few CPUs, no dashboard, a small
object store) and real `jasco-bridge worker` processes, then prints:

- overhead per window: the same request rendered here and on the cluster, interleaved
  (here, cluster, here, cluster ...) so that a busy machine hits both alike; the median of each
  and the difference, for the preview and for the tiny golden JASCO checkpoint (JASCO's own
  compute is then small, so the difference is the cluster's cost: lease, request and result
  through Ray, progress polls);
- time to the first progress message, here and on the cluster (what a producer waits before
  the first `/jasco/progress`);
- throughput with 1 and with 2 workers: two clients (two daemons) rendering windows at once on
  the preview workers, in windows per second.

The remote side runs on the same machine, so network time is loopback time; on a real studio
network add the round trips of your link to each figure. Ray gives each CPU worker one thread
(OMP_NUM_THREADS=1), so the local side here runs with one thread too, for a like-for-like
comparison.

    PYTHONPATH=$PWD python benchmarks/bench_cluster.py --golden ../shared/fixtures/jasco-golden/chords_drums
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
# Before numpy and torch load: one thread here, as in a Ray CPU worker.
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")

import numpy as np  # noqa: E402

from engine.request import GenerationRequest  # noqa: E402
from jasco_bridge.cluster import ClusterRenderer, connect, list_workers  # noqa: E402
from jasco_bridge.engines import open_renderer  # noqa: E402
from tests.cluster.support import local_cluster  # noqa: E402


def preview_request(seed: int) -> GenerationRequest:
    return GenerationRequest(
        text="warm rhodes",
        chord_indices=tuple([2] * 250 + [8] * 250),
        beat_seconds=tuple(0.5 * i for i in range(20)),
        seed=seed,
    )


def jasco_request(seed: int) -> GenerationRequest:
    drums = np.zeros(10 * 32000, dtype=np.float32)
    drums[::16000] = 1.0
    return GenerationRequest(
        text="lofi hip hop groove",
        chord_indices=tuple([2] * 250 + [8] * 250),
        drums_wav=drums,
        duration_seconds=10.0,
        seed=seed,
        steps=4,
    )


def timed(renderer, request) -> tuple[float, float]:
    """(seconds to the first progress call, seconds for the whole render)."""
    began = time.perf_counter()
    first: list[float] = []

    def progress(_step: int, _total: int) -> None:
        if not first:
            first.append(time.perf_counter() - began)

    renderer.generate(request, progress=progress)
    return first[0], time.perf_counter() - began


def overhead(label: str, local, remote, make_request, reps: int) -> None:
    timed(local, make_request(0))  # warm-up both sides
    timed(remote, make_request(0))
    here, there = [], []
    for rep in range(reps):
        here.append(timed(local, make_request(rep)))
        there.append(timed(remote, make_request(rep)))
    here_total = statistics.median(t for _, t in here)
    there_total = statistics.median(t for _, t in there)
    here_first = statistics.median(f for f, _ in here)
    there_first = statistics.median(f for f, _ in there)
    print(
        f"{label:<8} window: here {here_total * 1000:8.1f} ms, cluster {there_total * 1000:8.1f} ms,"
        f" overhead {(there_total - here_total) * 1000:+7.1f} ms"
        f" (ratio {there_total / here_total:.2f}, median of {reps}, interleaved)"
    )
    print(
        f"{label:<8} first progress: here {here_first * 1000:7.1f} ms,"
        f" cluster {there_first * 1000:7.1f} ms"
    )


def throughput(renderers: list[ClusterRenderer], windows_each: int) -> float:
    """Windows per second with each renderer (one daemon each) rendering on its own thread."""

    def run(renderer: ClusterRenderer) -> None:
        for seed in range(windows_each):
            renderer.generate(preview_request(seed))

    threads = [threading.Thread(target=run, args=(r,)) for r in renderers]
    began = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return len(renderers) * windows_each / (time.perf_counter() - began)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--golden", type=Path, required=True, help="tiny JASCO checkpoint folder")
    parser.add_argument("--reps", type=int, default=5, help="renders per side and engine")
    parser.add_argument("--windows", type=int, default=6, help="windows per client (throughput)")
    args = parser.parse_args()

    with local_cluster(num_cpus=4) as cluster:
        cluster.start_workers(
            ("--engine", "preview", "--cpu-actors", "1"),
            ("--engine", "jasco", "--model", str(args.golden), "--cpu-actors", "1"),
        )
        connect(cluster.client_address)
        print(f"cluster: {cluster.client_address}, workers: {len(list_workers())}")
        local_preview = open_renderer("preview").renderer
        remote_preview = open_renderer("preview", cluster=cluster.client_address).renderer
        overhead("preview", local_preview, remote_preview, preview_request, args.reps)
        local_jasco = open_renderer("jasco", args.golden, "cpu").renderer
        remote_jasco = open_renderer(
            "jasco", str(args.golden), cluster=cluster.client_address
        ).renderer
        overhead("jasco", local_jasco, remote_jasco, jasco_request, args.reps)

        info = next(w for w in list_workers() if w["is_preview"])
        daemons = [ClusterRenderer(cluster.client_address, info) for _ in range(2)]
        one = throughput(daemons, args.windows)
        cluster.start_workers(("--engine", "preview", "--cpu-actors", "1"))
        two = throughput(daemons, args.windows)
        print(
            f"throughput, 2 daemons, preview windows: 1 worker {one:.2f}/s, "
            f"2 workers {two:.2f}/s (x{two / one:.2f})"
        )
        import ray

        ray.shutdown()  # before the head stops, so the client does not try to reconnect
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
