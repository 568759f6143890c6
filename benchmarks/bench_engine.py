"""How fast does JASCO render here? Per-step time, 10 s render time, real-time factor, memory.

Builds the JASCO pipeline with RANDOM weights in a given shape (no download, no checkpoint):
the flow-matching transformer through `engine.config.JascoConfig`, the real EnCodec 32 kHz
architecture (decoder and drum encoder, random weights) and a small random T5 text encoder
(T5 runs once per render, so its size barely moves the figures). Speed does not depend on the
weights' values, so the figures are those of the released model of the same shape.

Shapes:
  tiny   width 64, 4 heads, 4 layers (the golden-fixture shape): measures the overhead around
         the network (conditions, sampler loop, EnCodec decoding)
  400M   width 1024, 16 heads, 24 layers, FFN 4096: the released chords-drums-400M

For each sampler it renders one 10 s window with chords, a drum stem and a prompt (CFG 1.25 /
2.5, i.e. three guidance rows per network call, as the authors' demo), after a warm-up render,
and prints: network calls (NFE), time per sampler step, time per network call, the full render
time, the real-time factor (render seconds per second of audio; below 1 is faster than real
time) and peak memory (CUDA: peak allocated; CPU: process peak RSS so far), then where the
render time went (conditions, sampling, EnCodec decoding). CPU figures are only meaningful on
an otherwise idle machine; on a busy one, try --threads 1.

On a CPU the 400M shape is slow (seconds per network call), so by default it runs 2 Euler and
2 midpoint steps and prints the 10-step render time as an estimate from the measured per-step
time; dopri5 runs there only when named with --samplers. On CUDA everything is measured.

examples:
  python benchmarks/bench_engine.py                      # tiny and 400M, on the best device
  python benchmarks/bench_engine.py --shape tiny --samplers euler dopri5
  python benchmarks/bench_engine.py --shape 400M --device cuda --dtype bfloat16
  python benchmarks/bench_engine.py --shape 400M --steps 10 --threads 16
"""

from __future__ import annotations

import argparse
import resource
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from engine.codec import ENCODEC_32KHZ, CompressionModel, encodec_config
from engine.conditions import ConditionProvider
from engine.config import JascoConfig
from engine.flow_model import FlowMatchingTransformer
from engine.jasco import JascoEngine, resolve_device
from engine.preview import PreviewEngine, synthesize_drums
from engine.request import SAMPLER_NAMES, GenerationRequest
from engine.text import T5Encoder

SHAPES = {
    "tiny": {"dim": 64, "num_heads": 4, "num_layers": 4},
    "400M": {"dim": 1024, "num_heads": 16, "num_layers": 24},
}
CPU_400M_STEPS = 2
SEGMENT_SECONDS = 10.0


class ByteTokenizer:
    """Enough of a Hugging Face tokenizer for T5Encoder: bytes -> ids, padded, with a mask."""

    def __init__(self, vocab_size: int) -> None:
        self.vocab_size = vocab_size

    def __call__(self, texts: list[str], return_tensors: str, padding: bool) -> dict:
        rows = [[1 + b % (self.vocab_size - 1) for b in t.encode()] + [1] for t in texts]
        width = max(len(r) for r in rows)
        ids = torch.zeros(len(rows), width, dtype=torch.int64)
        mask = torch.zeros(len(rows), width, dtype=torch.int64)
        for i, row in enumerate(rows):
            ids[i, : len(row)] = torch.tensor(row)
            mask[i, : len(row)] = 1
        return {"input_ids": ids, "attention_mask": mask}


def random_text_encoder(device: torch.device) -> T5Encoder:
    from transformers import T5Config, T5EncoderModel

    config = T5Config(vocab_size=256, d_model=768, d_kv=64, d_ff=1024, num_layers=2, num_heads=4)
    config._attn_implementation = "eager"
    model = T5EncoderModel(config).to(device).eval().requires_grad_(False)
    return T5Encoder(ByteTokenizer(config.vocab_size), model, "random T5 (768 wide, 2 layers)")


def jasco_config(shape: str) -> JascoConfig:
    """The released chords-drums configuration with the transformer of `shape`."""
    return JascoConfig(
        **SHAPES[shape],
        hidden_scale=4.0,
        flow_dim=128,
        chords_dim=16,
        drums_dim=2,
        melody_dim=0,
        text_model="t5-base",
        text_dim=768,
        chords_card=194,
        drums_blur_factor=3,
        latent_mean=-0.0074,
        latent_std=4.0102,
        frame_rate_hz=50.0,
        segment_seconds=SEGMENT_SECONDS,
        sample_rate=32000,
    )


def random_engine(shape: str, device: torch.device, dtype: torch.dtype | None) -> JascoEngine:
    config = jasco_config(shape)
    compression = CompressionModel(encodec_config(ENCODEC_32KHZ, Path("/nonexistent")))
    return JascoEngine(
        config,
        FlowMatchingTransformer(config),
        ConditionProvider(config, compression),
        random_text_encoder(device),
        device=device,
        autocast_dtype=dtype if device.type == "cuda" else None,
        model_id=f"random-{shape}",
    )


class CountingNetwork(torch.nn.Module):
    """Wraps the transformer to count calls and time each one, synchronised on CUDA."""

    def __init__(self, network: torch.nn.Module, device: torch.device) -> None:
        super().__init__()
        self.network = network
        self.device = device
        self.calls = 0
        self.seconds = 0.0

    def forward(self, *args, **kwargs):
        _synchronize(self.device)
        began = time.perf_counter()
        out = self.network(*args, **kwargs)
        _synchronize(self.device)
        self.seconds += time.perf_counter() - began
        self.calls += 1
        return out


def _synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def bench_request(sampler: str, steps: int) -> GenerationRequest:
    beats = [k * 0.5 for k in range(20)]  # 120 bpm
    drums = synthesize_drums(
        [(b, 36 if k % 2 == 0 else 38, 110) for k, b in enumerate(beats)], SEGMENT_SECONDS, 32000
    )
    chords = tuple(i for i in (2, 8, 1, 14) for _ in range(125))  # C Am F G, 2.5 s each
    return GenerationRequest(
        text="upbeat funk, slap bass, clavinet",
        chord_indices=chords,
        drums_wav=drums,
        duration_seconds=SEGMENT_SECONDS,
        steps=steps,
        sampler=sampler,
        seed=0,
    )


@dataclass(frozen=True)
class Figures:
    shape: str
    sampler: str
    steps: int | None  # None: adaptive (dopri5), only network calls count
    calls: int
    render_seconds: float
    conditions_seconds: float
    sampling_seconds: float
    decoding_seconds: float
    network_seconds: float
    peak_memory_gib: float

    @property
    def step_seconds(self) -> float | None:
        return self.sampling_seconds / self.steps if self.steps else None

    @property
    def call_seconds(self) -> float:
        return self.network_seconds / max(self.calls, 1)


def measure(
    engine: JascoEngine, counter: CountingNetwork, sampler: str, steps: int, shape: str
) -> Figures:
    device = engine.device
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    counter.calls, counter.seconds = 0, 0.0
    request = bench_request(sampler, steps)
    _synchronize(device)
    began = time.perf_counter()
    result = engine.generate(request)
    _synchronize(device)
    render_seconds = time.perf_counter() - began
    if not np.isfinite(result.audio).all():
        raise RuntimeError(f"{shape} {sampler}: the render produced NaN or infinite samples")
    if device.type == "cuda":
        peak = torch.cuda.max_memory_allocated(device) / 2**30
    else:
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20  # KiB -> GiB
    return Figures(
        shape=shape,
        sampler=sampler,
        steps=None if sampler == "dopri5" else steps,
        calls=counter.calls,
        render_seconds=render_seconds,
        conditions_seconds=result.timings["conditions_seconds"],
        sampling_seconds=result.timings["sampling_seconds"],
        decoding_seconds=result.timings["decoding_seconds"],
        network_seconds=counter.seconds,
        peak_memory_gib=peak,
    )


def report(figures: Figures, estimate_steps: int | None) -> None:
    steps = f"{figures.steps:>5}" if figures.steps else "adapt"
    per_step = f"{figures.step_seconds * 1000:9.1f}" if figures.step_seconds else f"{'-':>9}"
    line = (
        f"{figures.shape:>5} {figures.sampler:>8} steps {steps}  NFE {figures.calls:>3}  "
        f"{per_step} ms/step  {figures.call_seconds * 1000:9.1f} ms/NFE  "
        f"render {figures.render_seconds:7.2f} s  RTF {figures.render_seconds / SEGMENT_SECONDS:6.3f}  "
        f"peak {figures.peak_memory_gib:5.2f} GiB"
    )
    print(line)
    print(
        f"{'':>15}conditions (T5, chords, drum encoding) {figures.conditions_seconds:6.2f} s, "
        f"sampling {figures.sampling_seconds:6.2f} s, EnCodec decoding {figures.decoding_seconds:6.2f} s"
    )
    if figures.step_seconds and estimate_steps and estimate_steps != figures.steps:
        other = figures.render_seconds - figures.sampling_seconds
        estimated = other + estimate_steps * figures.step_seconds
        print(
            f"{'':>15}estimate for {estimate_steps} steps: render {estimated:7.2f} s  "
            f"RTF {estimated / SEGMENT_SECONDS:6.3f}"
        )


def run_shape(shape: str, args: argparse.Namespace, device: torch.device) -> None:
    dtype = {"float16": torch.float16, "bfloat16": torch.bfloat16}[args.dtype]
    torch.manual_seed(0)
    built = time.perf_counter()
    engine = random_engine(shape, device, dtype)
    counter = CountingNetwork(engine.network, device)
    engine.network = counter
    params = sum(p.numel() for p in counter.network.parameters()) / 1e6
    print(
        f"\n{shape}: transformer {params:.1f} M parameters, built in "
        f"{time.perf_counter() - built:.1f} s on {device}"
        + (f" ({args.dtype} autocast)" if device.type == "cuda" else " (float32)")
    )
    slow = shape == "400M" and device.type == "cpu"
    steps = args.steps or (CPU_400M_STEPS if slow else 10)
    samplers = args.samplers or [s for s in SAMPLER_NAMES if not (slow and s == "dopri5")]
    if slow and not args.samplers:
        print("  dopri5 skipped on CPU for 400M (tens of network calls); name it to run it")
    engine.generate(bench_request("euler", 1))  # warm-up: allocations, kernels, caches
    for sampler in samplers:
        figures = measure(engine, counter, sampler, steps, shape)
        report(figures, 10 if slow and sampler != "dopri5" else None)


def bench_preview() -> None:
    """The preview synth on the same request, for scale (CPU, numpy)."""
    tones = {2: (0, 4, 7), 8: (9, 0, 4), 1: (5, 9, 0), 14: (7, 11, 2)}
    request = bench_request("euler", 10)
    preview = PreviewEngine(tones)
    preview.generate(request)
    runs = 5
    began = time.perf_counter()
    for _ in range(runs):
        preview.generate(request)
    seconds = (time.perf_counter() - began) / runs
    print(
        f"preview synth: {seconds * 1000:.0f} ms per {SEGMENT_SECONDS:g} s render "
        f"(RTF {seconds / SEGMENT_SECONDS:.3f})"
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__,
        formatter_class=type(
            "Formatter",
            (argparse.ArgumentDefaultsHelpFormatter, argparse.RawDescriptionHelpFormatter),
            {},
        ),
    )
    parser.add_argument("--shape", choices=("tiny", "400M", "both"), default="both")
    parser.add_argument("--device", help="cpu, cuda or cuda:N (default: cuda when present)")
    parser.add_argument("--samplers", nargs="+", choices=SAMPLER_NAMES, help="default: all")
    parser.add_argument(
        "--steps",
        type=int,
        help=f"euler/midpoint steps (default 10; {CPU_400M_STEPS} for 400M on CPU)",
    )
    parser.add_argument(
        "--dtype",
        choices=("float16", "bfloat16"),
        default="float16",
        help="CUDA autocast dtype (CPU always runs float32)",
    )
    parser.add_argument("--threads", type=int, help="torch CPU threads (default: torch's choice)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    device = resolve_device(args.device)
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "CPU"
    print(f"torch {torch.__version__} on {name}, {torch.get_num_threads()} CPU threads")
    bench_preview()
    for shape in ("tiny", "400M") if args.shape == "both" else (args.shape,):
        run_shape(shape, args, device)


if __name__ == "__main__":
    main()
