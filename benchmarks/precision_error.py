"""How far does reduced precision (bf16) move JASCO's output from fp32? Prints the error bound.

Runs the same render twice, once in fp32 (the reference's CPU arithmetic) and once in the
reduced precision, from the same weights, conditions and noise, and prints:

  vector field   relative RMS error of one guided velocity evaluation, ||v - v32|| / ||v32||,
                 at several flow times (the error each step brings in)
  final latents  relative RMS error of the latents after the whole Euler solve (errors add up)
  audio          SNR of the decoded audio against the fp32 audio, 10 log10(|a32|^2 / |a - a32|^2) dB

Models:
  golden   the tiny golden checkpoint (a released-format package with random weights)
  400M     the released chords-drums-400M shape with random weights (bench_engine's request)

Both render bench_engine's request (a prompt, chords, a drum stem, guidance 1.25 / 2.5). Random
weights make no music; the figures bound the arithmetic, not the sound.

examples:
  python benchmarks/precision_error.py --golden PATH/jasco-golden/chords_drums
  python benchmarks/precision_error.py --shape 400M --steps 10 --threads 2
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path

import torch
from bench_engine import bench_request, random_engine

from engine.guidance import plan_cfg_terms
from engine.jasco import JascoEngine


def relative_rms(ours: torch.Tensor, reference: torch.Tensor) -> float:
    ours, reference = ours.double(), reference.double()
    return float((ours - reference).norm() / reference.norm())


def snr_db(ours: torch.Tensor, reference: torch.Tensor) -> float:
    noise = float((ours.double() - reference.double()).pow(2).sum())
    signal = float(reference.double().pow(2).sum())
    return math.inf if noise == 0 else 10 * math.log10(signal / noise)


def compare(engines: dict[str, JascoEngine], request, steps: int, label: str) -> None:
    """Render `request` with each engine from the same noise; print the errors against fp32."""
    outputs = {}
    for name, engine in engines.items():
        inputs = engine.request_inputs(request)
        terms = plan_cfg_terms(request.cfg_all, request.cfg_text)
        prepared = engine.prepare_conditions([inputs], terms)
        field = engine.velocity_field(prepared)
        z0 = engine.initial_noise(request.seed)
        probe = engine.initial_noise(request.seed + 1)
        with torch.inference_mode():
            fields = [field(probe, torch.tensor([t])).float() for t in (0.0, 0.5, 0.9)]
        latents = engine.sample(field, z0, steps=steps)
        outputs[name] = (fields, latents, engine.decode(latents))
    reference = outputs.pop("fp32")
    for name, (fields, latents, audio) in outputs.items():
        field_errors = ", ".join(
            f"t={t}: {relative_rms(f, r):.2%}"
            for t, f, r in zip((0.0, 0.5, 0.9), fields, reference[0], strict=True)
        )
        print(f"{label} {name} vs fp32 (Euler {steps}):")
        print(f"  vector field relative RMS error   {field_errors}")
        print(f"  final latents relative RMS error  {relative_rms(latents, reference[1]):.2%}")
        print(f"  decoded audio SNR                 {snr_db(audio, reference[2]):.1f} dB")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__,
        formatter_class=type(
            "Formatter",
            (argparse.ArgumentDefaultsHelpFormatter, argparse.RawDescriptionHelpFormatter),
            {},
        ),
    )
    parser.add_argument("--golden", type=Path, help="the golden folder (chords_drums)")
    parser.add_argument("--shape", choices=("tiny", "400M", "1B"), help="a random-weight shape")
    parser.add_argument("--precision", default="bf16", help="the reduced precision to measure")
    parser.add_argument("--steps", type=int, default=10, help="Euler steps")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, help="torch CPU threads")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.golden is None and args.shape is None:
        parser.error("give --golden FOLDER and/or --shape SHAPE")
    request = bench_request(1, "euler", args.steps)
    if args.golden is not None:
        engines = {
            name: JascoEngine.from_pretrained(args.golden, device=args.device, precision=name)
            for name in ("fp32", args.precision)
        }
        compare(engines, request, args.steps, "golden checkpoint")
    if args.shape is not None:
        engines = {}
        for name in ("fp32", args.precision):
            torch.manual_seed(0)  # the same random weights for both
            engines[name] = random_engine(args.shape, torch.device(args.device), name)
        compare(engines, request, args.steps, f"{args.shape} shape")


if __name__ == "__main__":
    main()
