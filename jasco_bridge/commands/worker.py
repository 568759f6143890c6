"""Serve renders to daemons on other machines: start engine workers on this machine's Ray node.

Run it on each GPU box after the box has joined the Ray cluster (`ray start`). It starts one
engine actor per GPU (--gpus N), or CPU actors (--cpu-actors N, for the preview or small models),
loads the model once in each and keeps it warm, registers them with the cluster's pool, and
keeps them running until Ctrl-C. Daemons started with `serve --cluster ray://HEAD:10001` then
render their windows here; their clips are still written on the producer's machine.

Security: Ray runs whatever its clients send. Put every Ray port on a private network you trust
(--node-ip-address, a firewall), never on the internet; see docs/cluster.md.

examples:
  # the head (on the GPU box, private interface 10.0.0.5):
  ray start --head --node-ip-address 10.0.0.5 --port 6379 \\
      --ray-client-server-port 10001 --include-dashboard=false
  jasco-bridge worker --cluster auto --model chords-drums-400M --gpus 2

  # another GPU box joins it:
  ray start --address 10.0.0.5:6379 --node-ip-address 10.0.0.6
  jasco-bridge worker --cluster auto --model chords-drums-400M --gpus 4

  # a CPU preview worker, to try it all on one machine (firewalled: on Linux Ray listens on
  # the machine's address even when given 127.0.0.1):
  ray start --head --node-ip-address 127.0.0.1 --ray-client-server-port 10001 \\
      --include-dashboard=false
  jasco-bridge worker --cluster auto --engine preview --cpu-actors 2
"""

from __future__ import annotations

import argparse
import threading

from jasco_bridge.config import ENGINE_KINDS

HELP = "start engine workers on this Ray node for daemons started with --cluster"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--cluster",
        required=True,
        metavar="ADDRESS",
        help="the cluster to join: auto (this node's cluster), HOST:PORT or ray://HOST:PORT",
    )
    parser.add_argument("--engine", choices=ENGINE_KINDS, default="auto", help="renderer to load")
    parser.add_argument(
        "--model", default=None, help="JASCO weights folder or model id; %(default)s = find it"
    )
    parser.add_argument(
        "--gpus", type=int, default=0, help="start one worker per GPU on this many GPUs"
    )
    parser.add_argument(
        "--cpu-actors",
        type=int,
        default=1,
        help="without --gpus: how many CPU workers to start",
    )


def run(args: argparse.Namespace) -> int:
    from jasco_bridge.cluster import WorkerSpec, connect, start_workers, stop_workers
    from jasco_bridge.errors import UsageError

    if args.gpus < 0 or args.cpu_actors < 1:
        raise UsageError("--gpus must be 0 or more and --cpu-actors 1 or more")
    connect(args.cluster, log_to_driver=True)
    spec = WorkerSpec(args.engine, args.model, args.gpus, args.cpu_actors)
    what = f"{args.gpus} GPU" if args.gpus else f"{args.cpu_actors} CPU"
    print(f"jasco-bridge worker: starting {what} worker(s) ({args.engine}) ...", flush=True)
    started = start_workers(spec)
    for name, handle in started:
        info = _describe(handle)
        print(
            f"jasco-bridge worker: {name}: {info['engine']} {info['model_id']} on {info['device']}",
            flush=True,
        )
    print("jasco-bridge worker: ready (Ctrl-C to stop)", flush=True)
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        print("jasco-bridge worker: stopping", flush=True)
    finally:
        stop_workers(started)
    return 0


def _describe(handle) -> dict:
    import ray

    return ray.get(handle.describe.remote())
