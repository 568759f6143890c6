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
