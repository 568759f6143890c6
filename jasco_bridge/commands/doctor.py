"""Check this machine for what jasco-bridge needs, and say how to fix what is missing.

One line per item, OK or MISSING (or NOTE for optional things), with the fix:
  - JASCO weights, the T5-base text encoder and the chord table: where they were found
    (a --model folder, $JASCO_BRIDGE_MODELS or ~/.cache/jasco-bridge/models, or the Hugging
    Face cache); without weights every render is a PREVIEW from the built-in synth;
  - the compute device: CUDA GPU name and memory, or CPU (a 10 s JASCO render then takes
    minutes instead of seconds);
  - versions of python, torch, transformers, numpy and jasco-bridge;
  - liblo's oscsend/oscdump, handy for poking the daemon by hand (optional);
  - with --cluster: the Ray cluster's engine workers, each with its engine, model, device and
    machine, and whether it is rendering now (exit 1 when none is there).

The exit code is 0 when a render can run (even as a preview), 1 otherwise.

examples:
  jasco-bridge doctor
  jasco-bridge doctor --model chords-drums-melody-400M
  jasco-bridge doctor --model ~/models/jasco-chords-drums-400M
  jasco-bridge doctor --cluster ray://10.0.0.5:10001
"""

from __future__ import annotations

import argparse
import platform
import shutil
from dataclasses import dataclass
from importlib import metadata

HELP = "check weights, device, versions and tools; say how to fix what is missing"


@dataclass(frozen=True)
class Check:
    status: str  # OK, MISSING or NOTE
    item: str
    detail: str

    def __str__(self) -> str:
        return f"{self.status:<8}{self.item:<18}{self.detail}"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", help="JASCO folder, short name or hub id to look for")
    parser.add_argument(
        "--cluster",
        metavar="ray://HOST:PORT",
        help="also list the engine workers of this Ray cluster (`jasco-bridge worker`)",
    )


def _weights_checks(model: str | None) -> list[Check]:
    from engine.errors import CheckpointError
    from engine.weights import DOWNLOAD_HINT, find_jasco_weights, find_t5
    from jasco_bridge.engines import bundled_chord_table

    try:
        found = find_jasco_weights(model)
    except CheckpointError as missing:
        return [
            Check("MISSING", "JASCO weights", f"{missing} (renders will be PREVIEWs until then)"),
            _t5_check(find_t5(), DOWNLOAD_HINT),
            Check("OK", "chord table", f"bundled copy {bundled_chord_table()}"),
        ]
    table = (
        Check("OK", "chord table", str(found.chord_table))
        if found.chord_table
        else Check("NOTE", "chord table", "none beside the weights; bundled copy will be used")
    )
    return [
        Check("OK", "JASCO weights", describe_location(found)),
        _t5_check(found.t5, DOWNLOAD_HINT),
        table,
    ]


def describe_location(found) -> str:
    """`facebook/jasco-... (Hugging Face cache): /path`, or just the folder when given one."""
    if found.source == "folder":
        return f"{found.folder} (folder)"
    return f"{found.model_id} ({found.source}): {found.folder}"


def _t5_check(folder, hint: str) -> Check:
    if folder is None:
        return Check("MISSING", "T5 text encoder", f"t5-base not found: run `{hint}`")
    return Check("OK", "T5 text encoder", str(folder))


def _device_check() -> Check:
    import torch

    from engine.errors import DeviceError
    from engine.jasco import resolve_device
    from engine.precision import resolve_precision

    device = resolve_device(None)
    precision = resolve_precision("auto", device)
    arithmetic = f"precision auto = {precision.name} ({precision.reason.removeprefix('auto: ')})"
    if device.type == "cuda":
        props = torch.cuda.get_device_properties(0)
        memory = f"{props.total_memory / 2**30:.1f} GiB"
        return Check("OK", "device", f"cuda: {props.name}, {memory}; {arithmetic}")
    if device.type == "mps":
        return Check("OK", "device", f"mps (Apple GPU); {arithmetic}")
    try:
        faster = f"; --precision int8 is faster ({resolve_precision('int8', device).reason})"
    except DeviceError:
        faster = ""
    return Check(
        "NOTE",
        "device",
        f"no GPU: JASCO runs on the CPU; {arithmetic}{faster}; the preview is unaffected",
    )


def _version(package: str) -> str:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return ""


def _version_checks() -> list[Check]:
    from jasco_bridge import __version__

    checks = [
        Check("OK", "python", platform.python_version()),
        Check("OK", "jasco-bridge", __version__),
    ]
    for package in ("torch", "transformers", "numpy"):
        version = _version(package)
        checks.append(
            Check("OK", package, version)
            if version
            else Check("MISSING", package, f"run `pip install {package}`")
        )
    return checks


def _tool_checks() -> list[Check]:
    missing = [tool for tool in ("oscsend", "oscdump") if shutil.which(tool) is None]
    if missing:
        return [
            Check(
                "NOTE",
                "liblo tools",
                f"{', '.join(missing)} not found (optional): `apt install liblo-tools`",
            )
        ]
    return [Check("OK", "liblo tools", "oscsend, oscdump")]


def _cluster_checks(address: str) -> list[Check]:
    from jasco_bridge.cluster import connect, list_workers
    from jasco_bridge.errors import RenderError

    try:
        connect(address)
        workers = list_workers()
    except RenderError as error:
        return [Check("MISSING", "cluster", str(error))]
    if not workers:
        return [
            Check(
                "MISSING",
                "cluster",
                f"{address}: no engine workers; start some with `jasco-bridge worker --cluster ...`",
            )
        ]
    checks = [Check("OK", "cluster", f"{address}: {len(workers)} engine worker(s)")]
    for worker in workers:
        state = f"rendering for {worker['busy_for']}" if worker["busy_for"] else "idle"
        checks.append(
            Check(
                "OK",
                "cluster worker",
                f"{worker['name']}: {worker['engine']} {worker['model_id']} on {worker['device']}"
                f" at {worker['node']}, {state}",
            )
        )
    waiting = sum(workers[0]["waiting"].values())
    if waiting:
        checks.append(Check("NOTE", "cluster queue", f"{waiting} render(s) waiting for a worker"))
    return checks


def run(args: argparse.Namespace) -> int:
    checks = [*_weights_checks(args.model), *_version_checks(), *_tool_checks()]
    if args.cluster:
        checks += _cluster_checks(args.cluster)
    if not any(c.item == "torch" and c.status == "MISSING" for c in checks):
        checks.insert(3, _device_check())
    for check in checks:
        print(check)
    blocking = {"torch", "numpy", "transformers", "cluster"}
    return 1 if any(c.status == "MISSING" and c.item in blocking for c in checks) else 0
