"""EnCodec 32 kHz decoding of one 10 s window (500 latent frames): fp32 against bf16 autocast,
interleaved (A B A B ...) so that both see the same machine load; the medians and their ratio,
the audio SNR of bf16 against fp32, and the minor page faults of each variant.

Random weights in the real architecture (speed does not depend on their values).

examples:
  python benchmarks/bench_decode.py --pairs 3 --threads 2
"""

from __future__ import annotations

import argparse
import math
import resource
import statistics
import time
from contextlib import nullcontext
from pathlib import Path

import torch

from engine.allocator import keep_freed_memory
from engine.codec import ENCODEC_32KHZ, CompressionModel, encodec_config


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--pairs", type=int, default=3)
    parser.add_argument("--threads", type=int, help="torch CPU threads")
    parser.add_argument("--release-memory", action="store_true", help="leave malloc's defaults")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    kept = False if args.release_memory else keep_freed_memory()
    torch.manual_seed(0)
    codec = CompressionModel(encodec_config(ENCODEC_32KHZ, Path("/nonexistent"))).eval()
    latents = torch.randn(1, 500, codec.latent_dim) * 4.0
    variants = {
        "fp32": nullcontext,
        "bf16": lambda: torch.autocast("cpu", dtype=torch.bfloat16),
    }
    seconds: dict[str, list[float]] = {name: [] for name in variants}
    faults: dict[str, list[int]] = {name: [] for name in variants}
    audio: dict[str, torch.Tensor] = {}
    with torch.inference_mode():
        for name, context in variants.items():  # warm-up
            with context():
                audio[name] = codec.decode(latents).float()
        for _ in range(args.pairs):
            for name, context in variants.items():
                before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
                began = time.perf_counter()
                with context():
                    codec.decode(latents)
                seconds[name].append(time.perf_counter() - began)
                faults[name].append(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
    print(f"{torch.get_num_threads()} threads, malloc keeps freed memory: {kept}")
    for name in variants:
        print(f"  {name}: median {statistics.median(seconds[name]):.3f} s "
              f"(runs {', '.join(f'{s:.3f}' for s in seconds[name])}), "
              f"minor faults {statistics.median(faults[name]):.0f}")  # fmt: skip
    ratio = statistics.median(seconds["bf16"]) / statistics.median(seconds["fp32"])
    noise = float((audio["bf16"] - audio["fp32"]).pow(2).sum())
    snr = 10 * math.log10(float(audio["fp32"].pow(2).sum()) / noise) if noise else math.inf
    print(f"  bf16 / fp32 time {ratio:.2f}; bf16 audio SNR against fp32 {snr:.1f} dB")


if __name__ == "__main__":
    main()
