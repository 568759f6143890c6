"""Reading JASCO checkpoint packages and loading them strictly into our modules.

A released model folder holds two `torch.save` files:

* `state_dict.bin`: `{'best_state': {key: tensor}, 'xp.cfg': yaml, 'version': str,
  'exported': True}` — the flow model, the conditioner heads and a full EnCodec copy;
* `compression_state_dict.bin`: `{'pretrained': 'facebook/encodec_32khz', ...}` — a pointer
  naming the EnCodec architecture (its weights come from `state_dict.bin`).

Both are read with `weights_only=True`: they hold only plain types and tensors, and a file that
needs arbitrary unpickling is refused rather than trusted.
"""

from __future__ import annotations

import pickle
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from engine.errors import CheckpointError
from engine.weights import COMPRESSION_FILE, STATE_DICT_FILE

# transformers' legacy weight-norm names -> the torch parametrization names our EnCodec uses.
_LEGACY_WEIGHT_NORM = {
    ".weight_g": ".parametrizations.weight.original0",
    ".weight_v": ".parametrizations.weight.original1",
}


@dataclass(frozen=True)
class ModelPackage:
    """The contents of `state_dict.bin`."""

    best_state: dict[str, torch.Tensor]
    xp_cfg: str
    version: str


def _torch_load(path: Path) -> object:
    if not path.is_file():
        raise CheckpointError(
            f"{path} not found: a JASCO model folder holds {STATE_DICT_FILE} and "
            f"{COMPRESSION_FILE}; `jasco-bridge weights download` fetches them"
        )
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except (RuntimeError, EOFError, pickle.UnpicklingError, zipfile.BadZipFile, OSError) as exc:
        raise CheckpointError(
            f"cannot read {path}: {exc}. The file is truncated, corrupted, or not a "
            "torch.save file; download it again"
        ) from exc


def load_state_dict_file(path: str | Path) -> ModelPackage:
    """Read `state_dict.bin` (exported by audiocraft's `export_lm`)."""
    path = Path(path)
    package = _torch_load(path)
    if not isinstance(package, dict) or "best_state" not in package or "xp.cfg" not in package:
        keys = sorted(package) if isinstance(package, dict) else type(package).__name__
        raise CheckpointError(
            f"{path} is not a JASCO model package: expected keys 'best_state' and 'xp.cfg', "
            f"found {keys}"
        )
    state = package["best_state"]
    if not isinstance(state, Mapping) or not all(
        isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in state.items()
    ):
        raise CheckpointError(f"{path}: 'best_state' is not a mapping of names to tensors")
    if not isinstance(package["xp.cfg"], str):
        raise CheckpointError(f"{path}: 'xp.cfg' is not a YAML string")
    return ModelPackage(
        best_state=normalise_weight_norm_names(dict(state)),
        xp_cfg=package["xp.cfg"],
        version=str(package.get("version", "")),
    )


def load_compression_file(path: str | Path) -> str:
    """Read `compression_state_dict.bin` and return the pretrained EnCodec name it points to."""
    path = Path(path)
    package = _torch_load(path)
    if isinstance(package, dict) and isinstance(package.get("pretrained"), str):
        return package["pretrained"]
    if isinstance(package, dict) and "best_state" in package:
        raise CheckpointError(
            f"{path} holds a full audiocraft EnCodec (own-trained compression model). JASCO's "
            "released models use the pointer form {'pretrained': 'facebook/encodec_32khz'}; "
            "this engine supports only that form"
        )
    raise CheckpointError(
        f"{path} is not a compression-model package: expected a dict with 'pretrained'"
    )


def normalise_weight_norm_names(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Rename legacy `weight_g` / `weight_v` keys to the parametrization spelling (g, v order)."""
    renamed: dict[str, torch.Tensor] = {}
    for key, value in state.items():
        for legacy, modern in _LEGACY_WEIGHT_NORM.items():
            if key.endswith(legacy):
                key = key[: -len(legacy)] + modern
                break
        renamed[key] = value
    return renamed


def expected_shapes(modules: Mapping[str, nn.Module]) -> dict[str, tuple[int, ...]]:
    """Every persistent parameter and buffer of `modules` ({prefix: module}) with its shape."""
    return {
        prefix + key: tuple(value.shape)
        for prefix, module in modules.items()
        for key, value in module.state_dict().items()
    }


def check_keys_and_shapes(
    expected: Mapping[str, tuple[int, ...]], given: Mapping[str, torch.Tensor], *, source: str
) -> None:
    """Raise CheckpointError listing missing, unexpected and wrongly shaped keys, if any."""
    missing = sorted(set(expected) - set(given))
    unexpected = sorted(set(given) - set(expected))
    mismatched = sorted(
        f"{key}: checkpoint {tuple(given[key].shape)}, model {expected[key]}"
        for key in set(expected) & set(given)
        if tuple(given[key].shape) != expected[key]
    )
    if not (missing or unexpected or mismatched):
        return
    lines = [f"{source} does not match the architecture its xp.cfg describes:"]
    for title, items in (
        ("missing keys", missing),
        ("unexpected keys", unexpected),
        ("wrong shapes", mismatched),
    ):
        if items:
            shown = items[:20] + ([f"... and {len(items) - 20} more"] if len(items) > 20 else [])
            lines.append(f"  {title} ({len(items)}): " + "; ".join(shown))
    raise CheckpointError("\n".join(lines))


def load_strict(
    modules: Mapping[str, nn.Module], state: Mapping[str, torch.Tensor], *, source: str
) -> None:
    """Check every key and shape of `state` against `modules` ({prefix: module}), then copy.

    Copies cast to each module's dtype (the released files are expected to be float16).
    """
    check_keys_and_shapes(expected_shapes(modules), state, source=source)
    for prefix, module in modules.items():
        part = {key[len(prefix) :]: value for key, value in state.items() if key.startswith(prefix)}
        if prefix == "":
            part = {key: value for key, value in part.items() if not _owned_elsewhere(key, modules)}
        module.load_state_dict(part, strict=True)


def _owned_elsewhere(key: str, modules: Mapping[str, nn.Module]) -> bool:
    return any(prefix and key.startswith(prefix) for prefix in modules)
