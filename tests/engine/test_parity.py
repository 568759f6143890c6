"""Numerical parity with the reference implementation on the golden fixture folder.

Runs the same comparison as `python -m engine.parity DIR`, so the command and the test can
never disagree about what "parity" means.
"""

import pytest

from engine.parity import compare_folder, format_table, main


@pytest.fixture(scope="module")
def parity_rows(golden_dir):
    return compare_folder(golden_dir)


def test_every_manifest_tensor_is_compared(parity_rows, golden_dir):
    import json

    manifest = json.loads((golden_dir / "manifest.json").read_text())
    listed = {
        (file, name)
        for file, spec in manifest["files"].items()
        if "cfg_terms" in spec
        for name in spec["tensors"]
    }
    compared = {(row.file, row.tensor) for row in parity_rows}
    assert listed <= compared, f"not compared: {sorted(listed - compared)}"


def test_every_tensor_within_manifest_tolerance(parity_rows):
    failed = [row for row in parity_rows if not row.ok]
    assert not failed, "parity failures:\n" + format_table(failed)


def test_loaded_weights_are_bitwise_equal(parity_rows):
    (weights,) = [row for row in parity_rows if row.tensor == "loaded weights"]
    assert weights.max_abs_error == 0.0


def test_both_guidance_settings_are_checked(parity_rows):
    files = {row.file for row in parity_rows if row.tensor == "latents_final"}
    assert files == {"cfg_all5.0_txt0.0.safetensors", "cfg_all1.25_txt2.5.safetensors"}


def test_command_rejects_a_folder_without_manifest(tmp_path, capsys):
    assert main([str(tmp_path)]) == 2
    assert "manifest.json" in capsys.readouterr().err


# -- the command on a folder of another shape ------------------------------------------------
# A golden folder in the same format, for a melody model with other dims, written from the
# engine's own outputs. It cannot prove numerical agreement with the reference (the fixture
# above does); it proves the comparison reads every shape and setting from the folder.


def _term_name(kind):
    return {"all": "AllCFGTerm", "text": "TextCFGTerm", "null": "NullCFGTerm"}[kind]


def write_golden_folder(folder, golden_dir, golden_state):
    import json

    import torch
    from safetensors.torch import save_file

    from engine.conditions import ConditionInputs
    from engine.drums import prepare_drum_stem
    from engine.guidance import plan_cfg_terms
    from engine.jasco import JascoEngine
    from engine.parity import collect_conditions
    from tests.engine.test_checkpoint import Variant, make_model_dir, synthetic_state, xp_cfg

    variant = Variant(dim=48, num_heads=3, num_layers=2, hidden_scale=2.0, melody=True)
    make_model_dir(folder, golden_dir, synthetic_state(variant, golden_state), xp_cfg(variant))
    engine = JascoEngine.from_pretrained(folder, device="cpu", precision="fp32")
    frames, flow = engine.config.frames, engine.config.flow_dim
    generator = torch.Generator().manual_seed(3)
    descriptions = ["bright synth pop", "dark ambient drone with bells"]
    ids, mask = engine.text_encoder.tokenize(descriptions, torch.device("cpu"))
    melody = torch.zeros(frames, 53)
    melody[torch.arange(frames), torch.arange(frames) % 53] = 1.0
    inputs = {
        "z0": torch.randn(2, frames, flow, generator=generator),
        "z_test": torch.randn(2, frames, flow, generator=generator),
        "t_test": torch.tensor([0.6]),
        "description_input_ids": ids,
        "description_attention_mask": mask,
        "frame_chords": torch.arange(frames) % 194,
        "drums_wav": (torch.randn(1, 24000, generator=generator) * 0.2),
        "melody_salience": melody,  # time-major, like the authors' example files
    }
    save_file(inputs, str(folder / "inputs.safetensors"))
    stem = prepare_drum_stem(
        inputs["drums_wav"].numpy(), 32000, sample_rate=32000, samples=engine.config.segment_samples
    )
    rows = [
        ConditionInputs(text, inputs["frame_chords"], stem, melody.T.contiguous())
        for text in descriptions
    ]
    files = {}
    for cfg_all, cfg_text in [(3.0, 1.0), (0.0, 5.0)]:
        terms = plan_cfg_terms(cfg_all, cfg_text)
        prepared, collected = collect_conditions(engine, rows, terms)
        with torch.inference_mode():
            z_test = inputs["z_test"]
            tensors = {
                name: collected[name]
                for name in (
                    "cond.description.embeds",
                    "cond.chords.embeds",
                    "cond.self_wav.embeds",
                    "cond.melody.embeds",
                    "tokenized.chords.frame_chords",
                    "drums.codes_first_codebook",  # only when a row has drums
                )
                if name in collected
            }
            tensors["v_theta_batched_at_z_test"] = engine.model_velocity(prepared)(
                z_test.repeat(len(terms), 1, 1), inputs["t_test"]
            )
            tensors["v_combined_at_z_test"] = engine.velocity_field(prepared)(
                z_test, inputs["t_test"]
            )
        z1 = engine.sample(engine.velocity_field(prepared), inputs["z0"], steps=2)
        tensors["latents_final"] = z1
        tensors["audio"] = engine.decode(z1[:1])[:, None]
        name = f"cfg_all{cfg_all}_txt{cfg_text}.safetensors"
        save_file({k: v.contiguous() for k, v in tensors.items()}, str(folder / name))
        files[name] = {
            "cfg_terms": [
                {"term": _term_name(kind), "weight": weight, "batch_rows": [2 * i, 2 * i + 1]}
                for i, (kind, weight) in enumerate(terms.items())
            ],
            "tensors": {k: {"shape": list(v.shape)} for k, v in tensors.items()},
        }
    manifest = {
        "settings": {"euler_steps": 2},
        "inputs": {"descriptions": descriptions},
        "files": files,
        "recommended_tolerances": {"latents_final": {"atol": 1e-4, "rtol": 0.0}},
    }
    (folder / "manifest.json").write_text(json.dumps(manifest))


@pytest.fixture(scope="module")
def other_folder(tmp_path_factory, golden_dir):
    import torch

    golden_state = torch.load(golden_dir / "state_dict.bin", map_location="cpu", weights_only=True)
    folder = tmp_path_factory.mktemp("golden") / "melody_d48"
    write_golden_folder(folder, golden_dir, golden_state)
    return folder


def _table_line(output: str, file: str, tensor: str) -> str:
    (line,) = [ln for ln in output.splitlines() if ln.startswith(file) and f" {tensor} " in ln]
    return line


def test_command_explains_a_folder_without_a_checkpoint(tmp_path, golden_dir, capsys):
    (tmp_path / "manifest.json").write_bytes((golden_dir / "manifest.json").read_bytes())
    assert main([str(tmp_path)]) == 2
    assert "state_dict.bin not found" in capsys.readouterr().err


def test_a_melody_folder_of_another_shape_passes(other_folder, capsys):
    assert main([str(other_folder)]) == 0
    output = capsys.readouterr().out
    assert "FAIL" not in output
    for tensor in ("cond.melody.embeds", "v_theta_batched_at_z_test", "latents_final", "audio"):
        assert _table_line(output, "cfg_all3.0_txt1.0.safetensors", tensor).endswith("ok")


def test_a_changed_or_missing_tensor_fails_the_command(other_folder, capsys):
    from safetensors.torch import load_file, save_file

    path = other_folder / "cfg_all3.0_txt1.0.safetensors"
    tensors = load_file(str(path))
    tensors["latents_final"] = tensors["latents_final"] + 1e-3
    del tensors["audio"]
    save_file(tensors, str(path))
    assert main([str(other_folder)]) == 1
    output = capsys.readouterr().out
    changed = _table_line(output, path.name, "latents_final")
    assert "0.001" in changed and "FAIL" in changed
    assert "FAIL missing from the file" in _table_line(output, path.name, "audio")
