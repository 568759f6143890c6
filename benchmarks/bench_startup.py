"""How long from `jasco-bridge serve` to "ready" with a model of the 400M shape?

Writes a released-format model folder with RANDOM float16 weights in the chosen transformer
shape (the golden folder's xp.cfg with the dimensions changed; its small T5 and EnCodec folders
beside it, so T5 loads faster than the real t5-base would), then starts the daemon on it as a
real process and times each line it prints until "ready": load, precision choice, warm-up
render. Also prints the CPU other processes used meanwhile (from /proc/stat).

examples:
  python benchmarks/bench_startup.py PATH/jasco-golden/chords_drums
  python benchmarks/bench_startup.py GOLDEN --shape tiny --precision fp32
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch
from bench_engine import SHAPES, Span, measured

from engine.checkpoint import load_state_dict_file
from engine.codec import CompressionModel, encodec_config
from engine.conditions import ConditionProvider
from engine.config import parse_xp_cfg
from engine.flow_model import FlowMatchingTransformer
from engine.weights import COMPRESSION_FILE, STATE_DICT_FILE


def write_model_folder(golden: Path, folder: Path, shape: str) -> None:
    package = load_state_dict_file(golden / STATE_DICT_FILE)
    cfg = package.xp_cfg
    for key, value in SHAPES[shape].items():
        old = getattr(parse_xp_cfg(cfg), key)
        cfg = cfg.replace(f"\n  {key}: {old}\n", f"\n  {key}: {value}\n", 1)
    config = parse_xp_cfg(cfg)
    torch.manual_seed(0)
    pointer = torch.load(golden / COMPRESSION_FILE, weights_only=True)["pretrained"]
    provider = ConditionProvider(config, CompressionModel(encodec_config(pointer, golden)))
    state = dict(FlowMatchingTransformer(config).state_dict())
    state.update({f"condition_provider.{k}": v for k, v in provider.state_dict().items()})
    best = {k: v.half() if v.is_floating_point() else v for k, v in state.items()}
    codec = "condition_provider.conditioners.self_wav.compression_model."
    best.update({k: v for k, v in package.best_state.items() if k.startswith(codec)})
    torch.save(
        {"best_state": best, "xp.cfg": cfg, "version": package.version, "exported": True},
        folder / STATE_DICT_FILE,
    )
    (folder / COMPRESSION_FILE).write_bytes((golden / COMPRESSION_FILE).read_bytes())
    for name in ("t5-base", pointer, "chord_to_index_mapping.pkl"):
        if (golden / name).exists():
            (folder / name).symlink_to((golden / name).resolve())


def process_cpu_seconds(pid: int) -> float | None:
    """User + system CPU seconds a running process has used so far (from /proc/PID/stat)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    # fields[0] is the state (field 3 of proc(5)); utime and stime are fields 14 and 15.
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__,
        formatter_class=type(
            "Formatter",
            (argparse.ArgumentDefaultsHelpFormatter, argparse.RawDescriptionHelpFormatter),
            {},
        ),
    )
    parser.add_argument("golden", type=Path, help="the golden folder (T5, EnCodec, xp.cfg)")
    parser.add_argument("--shape", choices=tuple(SHAPES), default="400M")
    parser.add_argument("--precision", default="auto")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        folder = Path(scratch) / f"jasco-random-{args.shape}"
        folder.mkdir()
        write_model_folder(args.golden, folder, args.shape)
        size = (folder / STATE_DICT_FILE).stat().st_size / 2**30
        print(f"{args.shape} package written: {size:.2f} GiB")
        command = [
            sys.executable, "-m", "jasco_bridge", "serve", "--engine", "jasco",
            "--model", str(folder), "--port", "0", "--out-dir", str(Path(scratch) / "clips"),
            "--precision", args.precision,
        ]  # fmt: skip
        span = Span()
        with measured(span, torch.device("cpu")):
            began = time.perf_counter()
            daemon = subprocess.Popen(
                command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                env={**os.environ, "PYTHONUNBUFFERED": "1"},
            )  # fmt: skip
            for line in daemon.stdout or ():
                print(f"  {time.perf_counter() - began:6.2f} s  {line.rstrip()}")
                if "ready" in line:
                    break
            else:
                raise SystemExit(f"the daemon ended before it was ready (rc {daemon.wait()})")
            daemon_cpu = process_cpu_seconds(daemon.pid)
        if span.other_cores is not None and daemon_cpu is not None:
            # The daemon is ours: only what is left was other processes' work.
            span.other_cores = max(0.0, span.other_cores - daemon_cpu / span.seconds)
        daemon.terminate()
        daemon.wait(timeout=30)
        print(f"daemon ready {span.seconds:.2f} s after start ({span.load()})")


if __name__ == "__main__":
    main()
