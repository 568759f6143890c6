"""Which floating-point precision the flow model runs in, and why.

    precision = resolve_precision("auto", torch.device("cpu"))
    precision.name, precision.reason    # ("bf16", "the CPU executes bf16 natively (avx512_bf16)")

`fp32` is the reference's CPU arithmetic (the parity checks run in it). `bf16` keeps the weights
of the transformer's matrix multiplications in bfloat16 and runs them, and attention, under
autocast, and EnCodec decodes under bf16 autocast; layer norms, the residual stream, the
conditioners and the sampler state stay float32. `fp16` does the same in float16 (what the model
was trained under; GPUs only) except the decoder, which stays float32. `int8` (CPUs with native
bf16 and VNNI) is bf16 with the layers' projections in 8-bit integers (engine.quant): faster
again, less accurate, so only on request. `auto` picks bf16 where the hardware executes it
natively and fp32 elsewhere: a CPU without bf16 instructions emulates it and gets slower, not
faster.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch

from engine.errors import DeviceError
from engine.request import PRECISIONS

# The float type each precision computes in (int8's projections aside).
_DTYPES = {
    "fp32": torch.float32,
    "bf16": torch.bfloat16,
    "fp16": torch.float16,
    "int8": torch.bfloat16,
}

# /proc/cpuinfo flags of CPUs with bf16 dot-product instructions (x86 AVX512-BF16 / AMX, Arm).
_NATIVE_BF16_FLAGS = ("avx512_bf16", "amx_bf16", "bf16")
# ... and of those with int8 dot-product instructions (x86 VNNI / AMX, Arm i8mm and dot product).
_NATIVE_INT8_FLAGS = ("avx512_vnni", "avx_vnni", "amx_int8", "i8mm", "asimddp")


@dataclass(frozen=True)
class Precision:
    """A resolved precision: its name, the torch dtype of the matmuls, and why it was chosen."""

    name: str  # fp32 | bf16 | fp16
    reason: str

    @property
    def dtype(self) -> torch.dtype:
        return _DTYPES[self.name]

    @property
    def is_reduced(self) -> bool:
        return self.name != "fp32"


def _cpu_flags(cpuinfo: Path) -> set[str]:
    try:
        text = cpuinfo.read_text()
    except OSError:
        return set()
    flags: set[str] = set()
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key.strip() in ("flags", "Features"):
            flags.update(value.split())
    return flags


def native_bf16_flags(cpuinfo: Path = Path("/proc/cpuinfo")) -> tuple[str, ...]:
    """The bf16 instruction flags this CPU reports (empty when none, or not Linux)."""
    flags = _cpu_flags(cpuinfo)
    return tuple(flag for flag in _NATIVE_BF16_FLAGS if flag in flags)


def native_int8_flags(cpuinfo: Path = Path("/proc/cpuinfo")) -> tuple[str, ...]:
    """The int8 dot-product instruction flags this CPU reports (empty when none, or not Linux)."""
    flags = _cpu_flags(cpuinfo)
    return tuple(flag for flag in _NATIVE_INT8_FLAGS if flag in flags)


def resolve_precision(
    requested: str,
    device: torch.device,
    *,
    cpu_bf16_flags: tuple[str, ...] | None = None,
    cpu_int8_flags: tuple[str, ...] | None = None,
) -> Precision:
    """`requested` (one of PRECISIONS) on `device` -> Precision; impossible choices raise
    DeviceError saying what works there."""
    if requested not in PRECISIONS:
        raise DeviceError(f"unknown precision {requested!r}: choose one of {', '.join(PRECISIONS)}")
    if requested == "int8" and device.type != "cpu":
        raise DeviceError(f"int8 is a CPU precision: on {device.type} use auto, bf16 or fp16")
    if device.type == "cpu":
        flags = native_bf16_flags() if cpu_bf16_flags is None else cpu_bf16_flags
        if requested == "int8":
            return _cpu_int8(
                flags, native_int8_flags() if cpu_int8_flags is None else cpu_int8_flags
            )
        if requested == "fp16":
            raise DeviceError("fp16 is not supported on the CPU: use bf16 or fp32")
        if requested == "auto":
            if flags:
                return Precision("bf16", f"auto: the CPU executes bf16 natively ({flags[0]})")
            return Precision("fp32", "auto: the CPU has no native bf16 instructions")
        if requested == "bf16" and not flags:
            return Precision("bf16", "asked for; this CPU emulates bf16 (expect it slower)")
        return Precision(requested, "asked for")
    if device.type == "cuda":
        if requested == "auto":
            if torch.cuda.is_bf16_supported():
                return Precision("bf16", "auto: the GPU supports bf16")
            return Precision("fp16", "auto: the GPU has no bf16, fp16 as trained")
        if requested == "bf16" and not torch.cuda.is_bf16_supported():
            raise DeviceError("this GPU has no bf16 support: use fp16 or fp32")
        return Precision(requested, "asked for")
    if device.type == "mps":
        if requested in ("auto", "fp16"):
            return Precision(
                "fp16", "auto: fp16 on Apple GPUs" if requested == "auto" else "asked for"
            )
        return Precision(requested, "asked for")
    if requested in ("auto", "fp32"):
        return Precision("fp32", f"{requested} on {device.type}")
    raise DeviceError(f"{requested} is not supported on {device.type}: use fp32")


def _cpu_int8(bf16_flags: tuple[str, ...], int8_flags: tuple[str, ...]) -> Precision:
    missing = [name for name, flags in (("bf16", bf16_flags), ("int8", int8_flags)) if not flags]
    if missing:
        raise DeviceError(
            "int8 needs a CPU that executes bf16 and int8 dot products natively (such as "
            f"avx512_bf16 with avx512_vnni); this one has no {' or '.join(missing)} "
            "instructions: use auto"
        )
    return Precision("int8", f"asked for ({int8_flags[0]} with {bf16_flags[0]})")
