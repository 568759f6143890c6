"""Numerical parity against a golden folder made with the reference implementation.

    python -m engine.parity /path/to/jasco-golden/chords_drums

A golden folder holds a checkpoint (`state_dict.bin`, `compression_state_dict.bin`, T5 and
EnCodec folders), `manifest.json`, `inputs.safetensors` and one `cfg_all*_txt*.safetensors` per
guidance setting. Everything — dimensions, guidance settings, Euler steps, the list of tensors and
their tolerances — is read from the manifest, so any width, depth, head count, variant (melody
included) works. Every tensor the manifest lists is recomputed through the engine's public
lower-level API and compared; a tensor this module cannot recompute counts as a failure.
Prints a table and exits 1 on any mismatch.

The intermediate condition tensors are collected from outside the render path, by forward hooks
on the engine's conditioners (`collect_conditions`); the engine itself keeps none of them.
Everything runs in fp32, the reference's CPU arithmetic.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import torch

from engine.checkpoint import load_state_dict_file
from engine.conditions import ConditionInputs, PreparedConditions, rows_for_terms
from engine.config import (
    CHORDS_CONDITION,
    DRUMS_CONDITION,
    MELODY_BINS,
    MELODY_CONDITION,
    TEXT_CONDITION,
)
from engine.drums import DrumEncoding, prepare_drum_stem
from engine.errors import EngineError
from engine.guidance import TermKind, plan_cfg_terms
from engine.jasco import JascoEngine
from engine.weights import STATE_DICT_FILE

DEFAULT_FLOAT_ATOL = 1e-5
"""Tolerance for float tensors the manifest gives none for (time embedding, drum latents)."""

_TERM_KINDS: dict[str, TermKind] = {
    "AllCFGTerm": "all",
    "TextCFGTerm": "text",
    "NullCFGTerm": "null",
}


@dataclass(frozen=True)
class ParityRow:
    """One compared tensor."""

    file: str
    tensor: str
    shape: tuple[int, ...]
    max_abs_error: float | None  # None: could not be computed (see note)
    tolerance: float
    ok: bool
    note: str = ""


def _tolerance(manifest: dict, name: str, dtype: torch.dtype) -> float:
    if not dtype.is_floating_point:
        return 0.0
    entry = manifest.get("recommended_tolerances", {}).get(name)
    if isinstance(entry, dict):
        return float(entry.get("atol", DEFAULT_FLOAT_ATOL))
    return DEFAULT_FLOAT_ATOL


def _compare(
    file: str, name: str, golden: torch.Tensor, ours: torch.Tensor, tol: float
) -> ParityRow:
    shape = tuple(golden.shape)
    ours = ours.detach().cpu()
    if tuple(ours.shape) != shape:
        return ParityRow(file, name, shape, None, tol, False, f"our shape {tuple(ours.shape)}")
    if golden.numel() == 0:
        return ParityRow(file, name, shape, 0.0, tol, True)
    error = float((ours.double() - golden.double()).abs().max())
    finite = bool(torch.isfinite(ours.double()).all()) or not golden.dtype.is_floating_point
    return ParityRow(file, name, shape, error, tol, error <= tol and finite)


def _load_safetensors(path: Path) -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file

    return load_file(str(path))


def _melody_input(inputs: dict[str, torch.Tensor]) -> torch.Tensor | None:
    """The melody salience of the inputs file, as [53, T] (files may store it time-major)."""
    names = [name for name in inputs if "melody" in name or "salience" in name]
    if not names:
        return None
    salience = inputs[names[0]].float()
    if salience.dim() == 3:
        salience = salience[0]
    if salience.shape[0] != MELODY_BINS and salience.shape[-1] == MELODY_BINS:
        salience = salience.T
    return salience.contiguous()


def _base_inputs(engine: JascoEngine, manifest: dict, inputs: dict) -> list[ConditionInputs]:
    descriptions = manifest["inputs"]["descriptions"]
    chords = inputs.get("frame_chords")
    drums = None
    if "drums_wav" in inputs:
        drums = prepare_drum_stem(
            inputs["drums_wav"].numpy(),
            int(manifest["settings"].get("drums_sample_rate", engine.sample_rate)),
            sample_rate=engine.sample_rate,
            samples=engine.config.segment_samples,
        )
    melody = _melody_input(inputs)
    return [
        ConditionInputs(text=text or "", chords=chords, drums=drums, melody=melody)
        for text in descriptions
    ]


def _terms_of(spec: dict) -> dict[TermKind, float]:
    """The reference's guidance terms, kind -> weight in its batch order."""
    return {_TERM_KINDS[term["term"]]: float(term["weight"]) for term in spec["cfg_terms"]}


def _coefficients(spec: dict) -> tuple[float, float]:
    weights = _terms_of(spec)
    if "all" in weights or "text" in weights:
        return weights.get("all", 0.0), weights.get("text", 0.0)
    # Only a null term survived: the reference's pruning never does that, so the manifest is off.
    raise EngineError(
        f"manifest lists only a null guidance term ({spec['cfg_terms']}); the coefficients "
        "cannot be recovered from it: regenerate the golden folder"
    )


def _representative_rows(spec: dict, count: int) -> list[int]:
    """Rows of the drum-latent tensors: CFG row 0 and the first row of the Null term."""
    rows = [0]
    for term in spec["cfg_terms"]:
        if term["term"] == "NullCFGTerm":
            rows.append(int(term["batch_rows"][0]))
    return rows[:count]


def collect_conditions(
    engine: JascoEngine, inputs: Sequence[ConditionInputs], terms: Mapping[TermKind, float]
) -> tuple[PreparedConditions, dict[str, torch.Tensor]]:
    """Prepare the CFG batch of `inputs` under `terms` through the engine, and the intermediate
    tensors under the names the reference's golden files use (tokens, masks, chord frames, drum
    codes and latents ...).

    The conditioners' inputs and outputs are caught by forward hooks; tokens, masks and
    lengths are what the engine's tokenizer and collation give for the same rows.
    """
    collected: dict[str, torch.Tensor] = {}

    def text(args: tuple, embeds: torch.Tensor) -> None:
        collected["cond.description.embeds"] = embeds

    def chords(args: tuple, embeds: torch.Tensor) -> None:
        collected["tokenized.chords.frame_chords"] = args[0]
        collected["cond.chords.embeds"] = embeds

    def drums(args: tuple, encoding: DrumEncoding) -> None:
        collected["cond.self_wav.embeds"] = encoding.row_embeds()
        if encoding.stems:
            rows = encoding.rows.tolist()
            for name, part in (
                ("drums.codes_first_codebook", "codes"),
                ("drums.latents", "latents"),
                ("drums.blurred", "blurred"),
            ):
                collected[name] = torch.stack([getattr(encoding.stems[r], part) for r in rows])

    def melody(args: tuple, embeds: torch.Tensor) -> None:
        collected["cond.melody.embeds"] = embeds

    catchers = {
        TEXT_CONDITION: text,
        CHORDS_CONDITION: chords,
        DRUMS_CONDITION: drums,
        MELODY_CONDITION: melody,
    }
    conditioners = engine.provider.conditioners
    handles = [
        conditioners[name].register_forward_hook(
            lambda module, args, output, catch=catch: catch(args, output)
        )
        for name, catch in catchers.items()
        if name in conditioners
    ]
    try:
        prepared = engine.prepare_conditions(inputs, terms)
    finally:
        for handle in handles:
            handle.remove()
    rows = rows_for_terms(inputs, terms, engine.config)
    ids, mask = engine.text_encoder.tokenize([row.text for row in rows], torch.device("cpu"))
    collected["tokenized.description.input_ids"] = ids
    collected["tokenized.description.attention_mask"] = mask
    collected["cond.description.mask"] = mask
    # Every frame of a temporal condition is valid: the engine has no mask for them.
    valid = torch.ones(len(rows), engine.config.frames)
    for name in conditioners:
        if name != TEXT_CONDITION:
            collected[f"cond.{name}.mask"] = valid
    if DRUMS_CONDITION in conditioners:
        collected["tokenized.self_wav.length"] = torch.tensor(
            [0 if row.drums is None else row.drums.shape[-1] for row in rows]
        )
    return prepared, collected


def compare_folder(folder: str | Path, *, device: str = "cpu") -> list[ParityRow]:
    """Recompute every tensor `manifest.json` lists and compare; one row per tensor."""
    folder = Path(folder)
    manifest = json.loads((folder / "manifest.json").read_text())
    engine = JascoEngine.from_pretrained(folder, device=device, precision="fp32")
    inputs = _load_safetensors(folder / "inputs.safetensors")
    base = _base_inputs(engine, manifest, inputs)
    rows: list[ParityRow] = [_weights_row(engine, folder)]
    rows += _token_rows(engine, manifest, inputs)
    euler_steps = int(manifest["settings"].get("euler_steps", 4))
    for file, spec in manifest["files"].items():
        if "cfg_terms" not in spec:
            continue
        rows += _setting_rows(engine, manifest, folder / file, spec, base, inputs, euler_steps)
    return rows


def _weights_row(engine: JascoEngine, folder: Path) -> ParityRow:
    best = load_state_dict_file(folder / STATE_DICT_FILE).best_state
    loaded = dict(engine.network.state_dict())
    loaded.update({f"condition_provider.{k}": v for k, v in engine.provider.state_dict().items()})
    error = max(
        float((loaded[key].detach().cpu().double() - value.double()).abs().max())
        if value.numel()
        else 0.0
        for key, value in best.items()
        if value.is_floating_point() and "cluster_size" not in key and "embed_avg" not in key
    )
    return ParityRow(STATE_DICT_FILE, "loaded weights", (len(best),), error, 0.0, error == 0.0)


def _token_rows(engine: JascoEngine, manifest: dict, inputs: dict) -> list[ParityRow]:
    texts = [text or "" for text in manifest["inputs"]["descriptions"]]
    ids, mask = engine.text_encoder.tokenize(texts, torch.device("cpu"))
    found = []
    for name, ours in (("description_input_ids", ids), ("description_attention_mask", mask)):
        if name in inputs:
            found.append(_compare("inputs.safetensors", name, inputs[name], ours, 0.0))
    return found


def _setting_rows(
    engine: JascoEngine,
    manifest: dict,
    path: Path,
    spec: dict,
    base: Sequence[ConditionInputs],
    inputs: dict,
    euler_steps: int,
) -> list[ParityRow]:
    file = path.name
    golden = _load_safetensors(path)
    expected_terms = _terms_of(spec)
    terms = plan_cfg_terms(*_coefficients(spec))
    same = list(terms.items()) == list(expected_terms.items())  # the batch order counts too
    rows = [
        ParityRow(
            file,
            "cfg terms",
            (len(expected_terms),),
            0.0 if same else None,
            0.0,
            same,
            "" if same else f"planned {terms}, reference {expected_terms}",
        )
    ]
    prepared, collected = collect_conditions(engine, base, terms)
    lazy = _Recomputed(engine, prepared, collected, inputs, euler_steps)
    for name in spec["tensors"]:
        reference = golden.get(name)
        if reference is None:
            rows.append(ParityRow(file, name, (), None, 0.0, False, "missing from the file"))
            continue
        tol = _tolerance(manifest, name, reference.dtype)
        ours = lazy.tensor(name, spec, reference)
        if ours is None:
            rows.append(
                ParityRow(file, name, tuple(reference.shape), None, tol, False, "not recomputed")
            )
            continue
        rows.append(_compare(file, name, reference, ours, tol))
    return rows


class _Recomputed:
    """Computes each compared tensor on first use (sampling only once per setting)."""

    def __init__(
        self,
        engine: JascoEngine,
        prepared: PreparedConditions,
        collected: dict[str, torch.Tensor],
        inputs: dict,
        euler_steps: int,
    ) -> None:
        self.engine = engine
        self.prepared = prepared
        self.collected = collected
        self.inputs = inputs
        self.euler_steps = euler_steps
        self._latents: torch.Tensor | None = None

    def _final_latents(self) -> torch.Tensor:
        if self._latents is None:
            field = self.engine.velocity_field(self.prepared)
            z0 = self.inputs["z0"].to(self.engine.device)
            self._latents = self.engine.sample(field, z0, sampler="euler", steps=self.euler_steps)
        return self._latents

    def tensor(self, name: str, spec: dict, reference: torch.Tensor) -> torch.Tensor | None:
        details = self.collected
        if name in details:
            return details[name]
        computations: dict[str, Callable[[], torch.Tensor]] = {
            "drums.latents_before_blur": lambda: details["drums.latents"][
                _representative_rows(spec, reference.shape[0])
            ],
            "drums.latents_after_blur": lambda: details["drums.blurred"][
                _representative_rows(spec, reference.shape[0])
            ],
            "v_theta_batched_at_z_test": self._v_batched,
            "v_combined_at_z_test": self._v_combined,
            "time_embedding_at_t_test": self._time_embedding,
            "latents_final": self._final_latents,
            "latents_unnormalized": lambda: self.engine.unnormalise(self._final_latents()),
            "audio": lambda: self._audio(reference.shape[0]),
        }
        compute = computations.get(name)
        if compute is None:
            return None
        try:
            return compute()
        except KeyError:
            return None

    def _audio(self, items: int) -> torch.Tensor:
        return self.engine.decode(self._final_latents()[:items])[:, None]  # [items, 1, samples]

    def _z_t(self) -> tuple[torch.Tensor, torch.Tensor]:
        device = self.engine.device
        return self.inputs["z_test"].to(device), self.inputs["t_test"].to(device)

    def _v_batched(self) -> torch.Tensor:
        z, t = self._z_t()
        with torch.inference_mode():
            terms = len(self.prepared.weights)
            return self.engine.model_velocity(self.prepared)(z.repeat(terms, 1, 1), t)

    def _v_combined(self) -> torch.Tensor:
        z, t = self._z_t()
        with torch.inference_mode():
            return self.engine.velocity_field(self.prepared)(z, t)

    def _time_embedding(self) -> torch.Tensor:
        _, t = self._z_t()
        with torch.inference_mode():
            return self.engine.network.time_embedding(t)


def format_table(rows: Sequence[ParityRow]) -> str:
    """A fixed-width table: file, tensor, shape, max abs error, tolerance, ok."""
    header = ("file", "tensor", "shape", "max abs err", "tolerance", "ok")
    lines = []
    for row in rows:
        error = "-" if row.max_abs_error is None else f"{row.max_abs_error:.3g}"
        status = "ok" if row.ok else f"FAIL {row.note}".strip()
        lines.append(
            (row.file, row.tensor, str(list(row.shape)), error, f"{row.tolerance:.3g}", status)
        )
    widths = [max(len(str(cells[i])) for cells in [header, *lines]) for i in range(5)]
    render = [
        "  ".join(str(cell).ljust(width) for cell, width in zip(cells[:5], widths, strict=True))
        + "  "
        + cells[5]
        for cells in [header, *lines]
    ]
    return "\n".join(render)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m engine.parity",
        description="Compare the engine against a JASCO golden folder (manifest.json + tensors).",
    )
    parser.add_argument("folder", type=Path, help="golden folder, e.g. jasco-golden/chords_drums")
    parser.add_argument("--device", default="cpu", help="cpu (the tolerances assume it) or cuda")
    args = parser.parse_args(argv)
    if not (args.folder / "manifest.json").is_file():
        print(f"{args.folder}: no manifest.json — not a golden folder", file=sys.stderr)
        return 2
    try:
        rows = compare_folder(args.folder, device=args.device)
    except EngineError as exc:
        print(f"{args.folder}: {exc}", file=sys.stderr)
        return 2
    print(format_table(rows))
    failed = [row for row in rows if not row.ok]
    print(f"\n{len(rows) - len(failed)}/{len(rows)} tensors within tolerance")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
