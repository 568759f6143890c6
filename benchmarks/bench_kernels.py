"""Where a 400M sampler step goes on this CPU: the transformer's kernels, one by one, per precision.

Times, at the shapes of one 10 s window with 3 guidance rows (1500 frames, width 1024, 16 heads):

  projections   each matmul of a layer (q/k/v, output, feed-forward in and out) in fp32, bf16 and
                int8 (engine.quant, quantisation of the input included), in GFLOP/s
  attention     self attention over 500 frames in bf16: torch's fused CPU kernel against
                engine.layers.attend (two matmuls and a softmax)

Candidates are interleaved (A B C A B C ...) so that they share the machine's state, and each
figure is the median of --runs. Printed with the CPU that other processes used meanwhile
(from /proc/stat, in cores): above 0.1 the absolute figures mean little, the ratios still do.

examples:
  python benchmarks/bench_kernels.py
  python benchmarks/bench_kernels.py --runs 20 --threads 2
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

import torch
import torch.nn.functional as F
from bench_engine import Span, measured

from engine.allocator import keep_freed_memory
from engine.layers import attend
from engine.quant import Int8Linear

FRAMES, WIDTH, HEADS, FFN = 1500, 1024, 16, 4096
PROJECTIONS = {
    "q/k/v   1500x1024 -> 3072": (WIDTH, 3 * WIDTH),
    "output  1500x1024 -> 1024": (WIDTH, WIDTH),
    "ffn in  1500x1024 -> 4096": (WIDTH, FFN),
    "ffn out 1500x4096 -> 1024": (FFN, WIDTH),
}


def interleaved(candidates: dict[str, Callable[[], object]], runs: int) -> dict[str, float]:
    """Median seconds of each candidate, run in turn `runs` times after one warm-up each."""
    for run in candidates.values():
        run()
    times: dict[str, list[float]] = {name: [] for name in candidates}
    for _ in range(runs):
        for name, run in candidates.items():
            began = time.perf_counter()
            run()
            times[name].append(time.perf_counter() - began)
    return {name: statistics.median(values) for name, values in times.items()}


def projection_seconds(inputs: int, outputs: int, runs: int) -> dict[str, float]:
    """Median seconds of one [FRAMES, inputs] x [inputs, outputs] projection per precision."""
    linear = torch.nn.Linear(inputs, outputs, bias=False)
    x = torch.randn(FRAMES, inputs)
    x16, w16 = x.bfloat16(), linear.weight.detach().bfloat16()
    int8 = Int8Linear.from_linear(linear)
    return interleaved(
        {
            "fp32": lambda: F.linear(x, linear.weight),
            "bf16": lambda: F.linear(x16, w16),
            "int8": lambda: int8(x16),
        },
        runs,
    )


def projections(runs: int) -> None:
    print("projections (GFLOP/s; x the bf16 speed)")
    for label, (inputs, outputs) in PROJECTIONS.items():
        seconds = projection_seconds(inputs, outputs, runs)
        flops = 2 * FRAMES * inputs * outputs
        speeds = "  ".join(
            f"{name} {flops / s / 1e9:5.0f} ({seconds['bf16'] / s:.2f}x)"
            for name, s in seconds.items()
        )
        print(f"  {label}   {speeds}")


def attention(runs: int) -> None:
    rows, frames = 3, FRAMES // 3
    packed = torch.randn(rows, frames, 3 * WIDTH).bfloat16()
    q, k, v = (t.view(rows, frames, HEADS, -1).transpose(1, 2) for t in packed.chunk(3, dim=-1))
    seconds = interleaved(
        {
            "fused": lambda: F.scaled_dot_product_attention(q, k, v),
            "attend": lambda: attend(q, k, v),
        },
        runs,
    )
    print(
        f"self attention, bf16, {rows} rows x {frames} frames: fused kernel "
        f"{seconds['fused'] * 1e3:.1f} ms, engine.layers.attend {seconds['attend'] * 1e3:.1f} ms "
        f"({seconds['attend'] / seconds['fused']:.2f}x the time)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--runs", type=int, default=10, help="timed runs of each candidate")
    parser.add_argument("--threads", type=int, help="torch CPU threads (default: one per core)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    keep_freed_memory()  # as the CLI and the daemon do
    torch.manual_seed(0)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads")
    with torch.inference_mode(), measured(Span(), torch.device("cpu")) as span:
        projections(args.runs)
        attention(args.runs)
    advice = ": compare the ratios only" if span.busy else ""
    print(f"meanwhile: {span.load()}{advice}")


if __name__ == "__main__":
    main()
