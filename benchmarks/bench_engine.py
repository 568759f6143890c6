"""How fast does JASCO render here? One whole render, stage by stage, with the machine's load.

Builds the JASCO pipeline with RANDOM weights in a given shape (no download, no checkpoint):
the flow-matching transformer through `engine.config.JascoConfig`, the real EnCodec 32 kHz
architecture (decoder and drum encoder, random weights) and a small random T5 text encoder of
t5-base's width. Speed does not depend on the weights' values, so the figures are those of a
released model of the same shape.

Shapes:
  tiny   width 64, 4 heads, 4 layers (the golden-fixture shape): the overhead around the network
  400M   width 1024, 16 heads, 24 layers, FFN 4096: the released chords-drums-400M
  1B     width 1536, 24 heads, 24 layers (the released 1B shape is not published: a guess)

Each render is a 10 s window with chords, a drum stem and a prompt, guidance 1.25 / 2.5 (three
rows per network call, as the authors' demo), timed whole: trigger to audio in memory. Every
timed render uses a new prompt and a new drum stem, so T5 and the drum encoder really run (what
a cached prompt saves is printed apart). Printed per render: T5, chords, drums, each sampler
step, EnCodec decoding, the full render, the real-time factor (render seconds per second of
audio; below 1 is faster than real time), minor page faults, peak memory, precision and device,
and the CPU that OTHER processes used meanwhile (from /proc/stat, in cores), with a warning when
the machine was busy: then the figure says little about the engine.

--long compares a 32-bar render at 120 bpm (64 s: 8 windows continuing each other, one decode)
with the same 32 bars as 8 separate 4-bar windows (the way to get 64 s before long renders), for
the preview and each --shape. Each run is its own process (so its peak memory is its own), the
two alternate (long, windows, long, windows, ...) and the ratio of each pair is printed. With
--long-steps fewer than --steps (the default on a CPU: 1), the sampling is measured at
--long-steps and the figure for --steps is estimated from the measured median step.

examples:
  python benchmarks/bench_engine.py --shape 400M                 # auto precision, best device
  python benchmarks/bench_engine.py --long --shape 400M --rounds 2
  python benchmarks/bench_engine.py --shape 400M --precision fp32 --renders 2
  python benchmarks/bench_engine.py --shape tiny --sampler midpoint
  python benchmarks/bench_engine.py --shape 400M --device cuda --variations 8
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from engine.allocator import keep_freed_memory
from engine.codec import ENCODEC_32KHZ, CompressionModel, encodec_config
from engine.conditions import ConditionProvider
from engine.config import CHORDS_CONDITION, DRUMS_CONDITION, TEXT_CONDITION, JascoConfig
from engine.flow_model import FlowMatchingTransformer
from engine.jasco import JascoEngine, resolve_device
from engine.precision import PRECISIONS, resolve_precision
from engine.preview import PreviewEngine, synthesize_drums
from engine.quant import Int8Linear
from engine.request import SAMPLER_NAMES, GenerationRequest, LongRequest
from engine.text import T5Encoder
from jasco_bridge.wav import encode_bwf_wav

SHAPES = {
    "tiny": {"dim": 64, "num_heads": 4, "num_layers": 4},
    "400M": {"dim": 1024, "num_heads": 16, "num_layers": 24},
    "1B": {"dim": 1536, "num_heads": 24, "num_layers": 24},
}
SEGMENT_SECONDS = 10.0
BUSY_OTHER_CORES = 0.1
"""Other processes' CPU (in cores) above which a figure is flagged as measured on a busy machine."""


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
        bias_ff=False,
        bias_attn=False,
        bias_proj=False,
        norm_first=True,
        text_cfg_drops=(CHORDS_CONDITION, DRUMS_CONDITION),
    )


def random_engine(shape: str, device: torch.device, precision: str) -> JascoEngine:
    config = jasco_config(shape)
    compression = CompressionModel(encodec_config(ENCODEC_32KHZ, Path("/nonexistent")))
    return JascoEngine(
        config,
        FlowMatchingTransformer(config),
        ConditionProvider(config, compression),
        random_text_encoder(device),
        compression,
        device=device,
        precision=resolve_precision(precision, device),
        model_id=f"random-{shape}",
    )


def _synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


# -- machine load ------------------------------------------------------------------------------


def _busy_cpu_seconds() -> float | None:
    """CPU-seconds every process on the machine has used since boot (from /proc/stat)."""
    try:
        with open("/proc/stat") as stat:
            values = [int(v) for v in stat.readline().split()[1:8]]
    except OSError:
        return None
    user, nice, system, _idle, _iowait, irq, softirq = values
    return (user + nice + system + irq + softirq) / os.sysconf("SC_CLK_TCK")


@dataclass
class Span:
    """Wall time of a stretch of work, the CPU others used meanwhile, and our page faults."""

    seconds: float = 0.0
    other_cores: float | None = None  # None where /proc/stat is not readable
    minor_faults: int = 0

    @property
    def busy(self) -> bool:
        return self.other_cores is not None and self.other_cores > BUSY_OTHER_CORES

    def load(self) -> str:
        if self.other_cores is None:
            return "load unknown"
        return f"others {self.other_cores:4.2f} cores" + ("  BUSY" if self.busy else "")


@contextmanager
def measured(span: Span, device: torch.device) -> Iterator[Span]:
    _synchronize(device)
    busy, own = _busy_cpu_seconds(), time.process_time()
    faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    began = time.perf_counter()
    yield span
    _synchronize(device)
    span.seconds = time.perf_counter() - began
    span.minor_faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt - faults
    after = _busy_cpu_seconds()
    if busy is not None and after is not None and span.seconds > 0:
        others = (after - busy) - (time.process_time() - own)
        span.other_cores = max(0.0, others / span.seconds)


# -- one render, stage by stage ----------------------------------------------------------------


@dataclass
class RenderFigures:
    total: Span = field(default_factory=Span)
    stages: dict[str, float] = field(default_factory=dict)  # T5, chords, drums seconds
    steps: list[float] = field(default_factory=list)
    decode_seconds: float = 0.0
    wav_bytes: int = 0


def bench_request(index: int, sampler: str, steps: int) -> GenerationRequest:
    """The bench's window; `index` makes the prompt and the drum stem new (no cache hits)."""
    beats = [k * 0.5 for k in range(20)]  # 120 bpm
    drums = synthesize_drums(
        [(b, 36 if k % 2 == 0 else 38, 110) for k, b in enumerate(beats)], SEGMENT_SECONDS, 32000
    )
    chords = tuple(i for i in (2, 8, 1, 14) for _ in range(125))  # C Am F G, 2.5 s each
    return GenerationRequest(
        text=f"upbeat funk, slap bass, clavinet, take {index}",
        chord_indices=chords,
        drums_wav=drums * (1.0 - 1e-3 * index),
        duration_seconds=SEGMENT_SECONDS,
        steps=steps,
        sampler=sampler,
        seed=index,
    )


def timed_stages(engine: JascoEngine, figures: RenderFigures) -> list:
    """Forward hooks that time each conditioner (synchronised on CUDA)."""
    names = {TEXT_CONDITION: "T5", CHORDS_CONDITION: "chords", DRUMS_CONDITION: "drums"}
    handles = []
    for key, label in names.items():
        module = engine.provider.conditioners[key]
        began: list[float] = []

        def before(module, args, began=began):
            _synchronize(engine.device)
            began.append(time.perf_counter())

        def after(module, args, output, began=began, label=label):
            _synchronize(engine.device)
            figures.stages[label] = time.perf_counter() - began.pop()

        handles += [module.register_forward_pre_hook(before), module.register_forward_hook(after)]
    return handles


def render_once(
    engine: JascoEngine, request: GenerationRequest, variations: int = 1
) -> RenderFigures:
    figures = RenderFigures()
    handles = timed_stages(engine, figures)
    marks: list[float] = []

    def progress(step: int, total: int) -> None:
        _synchronize(engine.device)
        marks.append(time.perf_counter())

    try:
        with measured(figures.total, engine.device):
            seeds = [request.seed + k for k in range(variations)]
            results = engine.generate_variations(request, seeds, progress=progress)
            # trigger to WAV bytes: the 24-bit BWF file the daemon writes
            wavs = [
                encode_bwf_wav(r.audio, r.sample_rate, time_reference_samples=0) for r in results
            ]
            figures.wav_bytes = sum(len(wav) for wav in wavs)
    finally:
        for handle in handles:
            handle.remove()
    timings = results[0].timings
    # the last progress call ends the sampling, so its start is that mark minus its duration
    sampling_began = marks[-1] - timings["sampling_seconds"]
    figures.steps = np.diff([sampling_began, *marks]).tolist()
    figures.decode_seconds = timings["decoding_seconds"]
    if not all(np.isfinite(result.audio).all() for result in results):
        raise RuntimeError("the render produced NaN or infinite samples")
    return figures


def peak_memory_gib(device: torch.device) -> float:
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**30
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20  # KiB -> GiB


def report(label: str, figures: RenderFigures, engine: JascoEngine) -> None:
    total = figures.total
    stages = "  ".join(f"{name} {seconds:6.3f} s" for name, seconds in figures.stages.items())
    steps = " ".join(f"{s:.3f}" for s in figures.steps)
    print(f"  {label}: trigger to WAV bytes {total.seconds:7.3f} s  RTF {total.seconds / SEGMENT_SECONDS:6.3f}  "
          f"{total.load()}  minor faults {total.minor_faults}")  # fmt: skip
    print(f"    conditions: {stages}")
    print(f"    steps (s): {steps}  (median {np.median(figures.steps):.3f})")
    print(f"    decode {figures.decode_seconds:6.3f} s  peak memory "
          f"{peak_memory_gib(engine.device):5.2f} GiB")  # fmt: skip
    if total.busy:
        print(f"    WARNING: other processes used {total.other_cores:.2f} cores during this "
              "render: the machine was busy and the figure is slower than the engine")  # fmt: skip


def run_shape(shape: str, args: argparse.Namespace, device: torch.device) -> None:
    torch.manual_seed(0)
    built = time.perf_counter()
    engine = random_engine(shape, device, args.precision)
    if args.compile:
        engine.compile_network()
    # int8 projections hold their weights as buffers, not parameters.
    int8 = sum(m.values.numel() for m in engine.network.modules() if isinstance(m, Int8Linear))
    params = (sum(p.numel() for p in engine.network.parameters()) + int8) / 1e6
    print(
        f"\n{shape}: transformer {params:.1f} M parameters, built in "
        f"{time.perf_counter() - built:.1f} s; device {device}, precision "
        f"{engine.precision.name} ({engine.precision.reason}), {args.sampler} {args.steps} steps"
        + (", torch.compile" if args.compile else "")
    )
    warm = time.perf_counter()
    engine.generate(bench_request(0, args.sampler, 1))  # warm-up: kernels, caches, silence
    print(f"  warm-up render (1 step) {time.perf_counter() - warm:.2f} s")
    for index in range(1, args.renders + 1):
        figures = render_once(engine, bench_request(index, args.sampler, args.steps))
        report(f"render {index} (new prompt and stem)", figures, engine)
    if args.cached or args.variations > 1:
        again = render_once(engine, bench_request(args.renders, args.sampler, args.steps))
        report("same prompt and stem again (cached conditions)", again, engine)
    if args.variations > 1:
        batch = render_once(engine, bench_request(99, args.sampler, args.steps), args.variations)
        report(f"{args.variations} variations in one batch", batch, engine)
        print(f"    {args.variations} variations / 1 render: "
              f"{batch.total.seconds / again.total.seconds:.2f}x")  # fmt: skip


def bench_preview() -> None:
    """The preview synth on the same window, for scale (CPU, numpy)."""
    tones = {2: (0, 4, 7), 8: (9, 0, 4), 1: (5, 9, 0), 14: (7, 11, 2)}
    request = bench_request(0, "euler", 10)
    preview = PreviewEngine(tones)
    preview.generate(request)
    runs = 5
    span = Span()
    with measured(span, torch.device("cpu")):
        for _ in range(runs):
            preview.generate(request)
    print(f"preview synth: {span.seconds / runs * 1000:.0f} ms per {SEGMENT_SECONDS:g} s render "
          f"(RTF {span.seconds / runs / SEGMENT_SECONDS:.3f}), {span.load()}")  # fmt: skip


# -- a long render against separate windows -----------------------------------------------------

LONG_BARS, LONG_BPM = 32, 120.0


def long_requests(sampler: str, steps: int) -> tuple[LongRequest, list[GenerationRequest]]:
    """32 bars at 120 bpm as the bridge plans them (8 windows of 5 bars sharing one), and the
    same bars as 8 separate 4-bar windows."""
    from jasco_bridge.conditioning import plan_render
    from midi.tempo import TempoMap

    plan = plan_render(TempoMap.constant(LONG_BPM), 1, LONG_BARS, SEGMENT_SECONDS, 50.0)
    base = bench_request(1, sampler, steps)
    windows = tuple(
        GenerationRequest(**{**base.__dict__, "duration_seconds": frames / 50.0})
        for frames in plan.window_frames
    )
    separate = [
        GenerationRequest(**{**base.__dict__, "duration_seconds": 8.0, "seed": k})
        for k in range(LONG_BARS // 4)
    ]
    return LongRequest(windows, plan.overlap_frames), separate


def run_long_part(part: str, shape: str, args: argparse.Namespace, device: torch.device) -> dict:
    """One side of the comparison in this process: wall time, sampling, decode, peak memory."""
    torch.manual_seed(0)
    if shape == "preview":
        engine = PreviewEngine({2: (0, 4, 7), 8: (9, 0, 4), 1: (5, 9, 0), 14: (7, 11, 2)})
    else:
        engine = random_engine(shape, device, args.precision)
        engine.generate(bench_request(0, args.sampler, 1))  # warm-up
    long, separate = long_requests(args.sampler, args.long_steps)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    span = Span()
    results = []
    with measured(span, device):
        if part == "long":
            results.append(engine.generate_long(long))
        else:
            results += [engine.generate(r) for r in separate]
    audio_seconds = sum(len(r.audio) / r.sample_rate for r in results)
    decode = sum(r.timings.get("decoding_seconds", 0.0) for r in results)
    sampling = sum(r.timings.get("sampling_seconds", 0.0) for r in results)
    return {
        "seconds": span.seconds,
        "audio_seconds": audio_seconds,
        "decode_seconds": decode,
        "sampling_seconds": sampling,
        "windows": len(long.windows) if part == "long" else len(separate),
        "peak_gib": peak_memory_gib(device if shape != "preview" else torch.device("cpu")),
        "other_cores": span.other_cores,
    }


def bench_long(args: argparse.Namespace, device: torch.device) -> None:
    """Alternate the two sides in fresh processes and print each pair's figures and ratio."""
    print(f"\n{LONG_BARS} bars at {LONG_BPM:g} bpm: one long render vs {LONG_BARS // 4} separate "
          f"4-bar windows; sampling measured at {args.long_steps} step(s), {args.steps} estimated")  # fmt: skip
    for shape in ["preview", *args.shape]:
        for round_ in range(1, args.rounds + 1):
            pair = {}
            for part in ("long", "windows"):
                command = [sys.executable, __file__, "--long-part", part, "--shape", shape,
                           "--precision", args.precision, "--sampler", args.sampler,
                           "--long-steps", str(args.long_steps)]  # fmt: skip
                if args.device:
                    command += ["--device", args.device]
                if args.threads:
                    command += ["--threads", str(args.threads)]
                done = subprocess.run(command, capture_output=True, text=True, check=True)
                pair[part] = json.loads(done.stdout.strip().splitlines()[-1])
            # the same network on the same 500-frame windows: one step costs the same on both
            # sides, so the measured separate windows' sampling gives the step time
            windows = pair["windows"]
            step = windows["sampling_seconds"] / (windows["windows"] * args.long_steps)
            for part, got in pair.items():
                extra = max(args.steps - args.long_steps, 0) * got["windows"] * step
                estimate = got["seconds"] + (extra if shape != "preview" else 0.0)
                load = (
                    "load unknown"
                    if got["other_cores"] is None
                    else f"others {got['other_cores']:.2f} cores"
                )
                print(f"  {shape} round {round_} {part:>7}: {got['windows']} windows, "
                      f"{got['audio_seconds']:.1f} s audio, measured {got['seconds']:7.2f} s "
                      f"(decode {got['decode_seconds']:.2f} s), at {args.steps} steps ~{estimate:7.1f} s, "
                      f"peak memory {got['peak_gib']:.2f} GiB, {load}")  # fmt: skip
                got["estimate"] = estimate
            ratio = pair["long"]["seconds"] / pair["windows"]["seconds"]
            estimated = pair["long"]["estimate"] / pair["windows"]["estimate"]
            print(f"  {shape} round {round_}: long / windows = {ratio:.2f}x measured, "
                  f"{estimated:.2f}x at {args.steps} steps; peak memory "
                  f"{pair['long']['peak_gib'] / pair['windows']['peak_gib']:.2f}x")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__,
        formatter_class=type(
            "Formatter",
            (argparse.ArgumentDefaultsHelpFormatter, argparse.RawDescriptionHelpFormatter),
            {},
        ),
    )
    parser.add_argument(
        "--shape", nargs="+", choices=(*SHAPES, "preview"), default=["tiny", "400M"]
    )
    parser.add_argument("--device", help="cpu, cuda, cuda:N or mps (default: the best present)")
    parser.add_argument("--precision", choices=PRECISIONS, default="auto")
    parser.add_argument("--sampler", choices=SAMPLER_NAMES, default="euler")
    parser.add_argument("--steps", type=int, default=10, help="sampler steps per render")
    parser.add_argument("--renders", type=int, default=1, help="timed renders per shape")
    parser.add_argument(
        "--cached", action="store_true", help="also time a render whose prompt and stem are cached"
    )
    parser.add_argument(
        "--variations", type=int, default=1, help="also time N seeds in one batch (and --cached)"
    )
    parser.add_argument("--threads", type=int, help="torch CPU threads (default: torch's choice)")
    parser.add_argument(
        "--release-memory",
        action="store_true",
        help="leave malloc's defaults (freed activations go back to the OS and fault in again); "
        "by default the bench keeps them, as the CLI and the daemon do",
    )
    parser.add_argument(
        "--compile", action="store_true", help="torch.compile the flow model (CUDA graphs on GPU)"
    )
    parser.add_argument(
        "--long", action="store_true", help="compare a 32-bar render with 8 separate windows"
    )
    parser.add_argument("--rounds", type=int, default=1, help="--long pairs to run")
    parser.add_argument(
        "--long-steps",
        type=int,
        help="sampler steps --long measures (default: --steps on a GPU, 1 on a CPU)",
    )
    parser.add_argument("--long-part", choices=("long", "windows"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    kept = False if args.release_memory else keep_freed_memory()
    device = resolve_device(args.device)
    if args.long_steps is None:
        args.long_steps = args.steps if device.type == "cuda" else 1
    if args.long_part:
        print(json.dumps(run_long_part(args.long_part, args.shape[0], args, device)))
        return
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else device.type.upper()
    print(f"torch {torch.__version__} on {name}, {torch.get_num_threads()} CPU threads, "
          f"{os.cpu_count()} cores, malloc keeps freed memory: {kept}")  # fmt: skip
    if args.long:
        bench_long(args, device)
        return
    bench_preview()
    for shape in args.shape:
        run_shape(shape, args, device)


if __name__ == "__main__":
    main()
