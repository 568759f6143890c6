"""Finding JASCO, T5 and the chord table on disk, without any network."""

from pathlib import Path

import pytest

from engine.errors import CheckpointError
from engine.weights import (
    CHORD_TABLE_FILE,
    fetch_chord_table,
    find_jasco_weights,
    find_t5,
    resolve_model_id,
)

COMMIT = "0123456789abcdef0123456789abcdef01234567"


@pytest.fixture(autouse=True)
def isolated_home(tmp_path, monkeypatch):
    """Every test sees an empty models folder and an empty default HF cache."""
    monkeypatch.setenv("JASCO_BRIDGE_MODELS", str(tmp_path / "models"))
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "empty-hf"))


def fake_hf_repo(cache: Path, repo_id: str, files: dict[str, bytes]) -> Path:
    """The layout huggingface_hub writes: refs/main names a snapshot folder of the files."""
    repo = cache / ("models--" + repo_id.replace("/", "--"))
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text(COMMIT)
    snapshot = repo / "snapshots" / COMMIT
    snapshot.mkdir(parents=True)
    for name, data in files.items():
        (snapshot / name).write_bytes(data)
    return snapshot


JASCO = {"state_dict.bin": b"s", "compression_state_dict.bin": b"c", CHORD_TABLE_FILE: b"p"}
T5 = {"config.json": b"{}", "spiece.model": b"x", "model.safetensors": b"w"}


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        (None, "facebook/jasco-chords-drums-400M"),
        ("chords-drums-melody-1B", "facebook/jasco-chords-drums-melody-1B"),
        ("jasco-chords-drums-1B", "facebook/jasco-chords-drums-1B"),
        ("someone/jasco-finetune", "someone/jasco-finetune"),
    ],
)
def test_model_names_short_and_full(given, expected):
    assert resolve_model_id(given) == expected


def test_an_unknown_short_name_lists_the_known_ones():
    with pytest.raises(CheckpointError, match="chords-drums-400M"):
        resolve_model_id("drums-only")


def test_found_in_the_hugging_face_cache(tmp_path):
    cache = tmp_path / "hf"
    snapshot = fake_hf_repo(cache, "facebook/jasco-chords-drums-400M", JASCO)
    t5 = fake_hf_repo(cache, "t5-base", T5)
    found = find_jasco_weights("chords-drums-400M", hf_cache=cache)
    assert found.source == "Hugging Face cache"
    assert found.state_dict == snapshot / "state_dict.bin"
    assert found.compression == snapshot / "compression_state_dict.bin"
    assert found.chord_table == snapshot / CHORD_TABLE_FILE
    assert found.t5 == t5
    assert found.model_id == "facebook/jasco-chords-drums-400M"


def test_the_cache_without_a_chord_table_or_t5_says_so_with_none(tmp_path):
    cache = tmp_path / "hf"
    fake_hf_repo(cache, "facebook/jasco-chords-drums-1B", {k: JASCO[k] for k in list(JASCO)[:2]})
    found = find_jasco_weights("facebook/jasco-chords-drums-1B", hf_cache=cache)
    assert found.chord_table is None
    assert found.t5 is None


def test_the_models_folder_comes_before_the_cache(tmp_path):
    cache = tmp_path / "hf"
    fake_hf_repo(cache, "facebook/jasco-chords-drums-400M", JASCO)
    local = tmp_path / "models" / "jasco-chords-drums-400M"
    local.mkdir(parents=True)
    for name, data in JASCO.items():
        (local / name).write_bytes(data)
    found = find_jasco_weights(None, hf_cache=cache)
    assert (found.source, found.folder) == ("models folder", local)


def test_an_explicit_folder_with_t5_beside_it(golden_dir):
    found = find_jasco_weights(golden_dir)
    assert found.source == "folder"
    assert found.chord_table == golden_dir / CHORD_TABLE_FILE
    assert found.t5 == golden_dir / "t5-base"
    assert find_jasco_weights(str(golden_dir)).folder == golden_dir


def test_a_folder_without_weights_names_the_missing_files(tmp_path):
    (tmp_path / "state_dict.bin").write_bytes(b"s")
    with pytest.raises(CheckpointError, match="missing compression_state_dict.bin"):
        find_jasco_weights(tmp_path)


def test_nothing_installed_says_how_to_download(tmp_path):
    with pytest.raises(CheckpointError) as caught:
        find_jasco_weights("chords-drums-400M", hf_cache=tmp_path / "hf")
    message = str(caught.value)
    assert "jasco-bridge weights download facebook/jasco-chords-drums-400M" in message
    assert "state_dict.bin" in message


def test_t5_in_the_models_folder(tmp_path):
    folder = tmp_path / "models" / "t5-base"
    folder.mkdir(parents=True)
    for name, data in T5.items():
        (folder / name).write_bytes(data)
    assert find_t5(hf_cache=tmp_path / "hf") == folder


def test_a_t5_folder_without_weights_does_not_count(tmp_path):
    folder = tmp_path / "models" / "t5-base"
    folder.mkdir(parents=True)
    (folder / "config.json").write_text("{}")
    (folder / "spiece.model").write_bytes(b"x")
    assert find_t5(hf_cache=tmp_path / "hf") is None


def test_the_chord_table_is_fetched_whole(tmp_path, chord_pkl):
    target = tmp_path / "models" / "jasco-chords-drums-400M" / CHORD_TABLE_FILE
    fetch_chord_table(target, url=chord_pkl.as_uri())
    assert target.read_bytes() == chord_pkl.read_bytes()
    assert not target.with_suffix(".part").exists()


def test_a_failed_chord_table_fetch_says_where_to_put_it(tmp_path):
    target = tmp_path / CHORD_TABLE_FILE
    with pytest.raises(CheckpointError, match="assets/"):
        fetch_chord_table(target, url=(tmp_path / "absent.pkl").as_uri())
    assert not target.exists()


def test_a_path_that_does_not_exist_is_reported_as_a_folder(tmp_path):
    with pytest.raises(CheckpointError, match="does not exist"):
        find_jasco_weights(str(tmp_path / "nowhere"))


def test_download_into_a_folder_lays_out_what_the_engine_looks_for(
    tmp_path, monkeypatch, chord_pkl
):
    """The hub is replaced by a function writing the files each repository would give."""
    import engine.weights as weights

    repos = {
        "facebook/jasco-chords-drums-400M": {k: JASCO[k] for k in list(JASCO)[:2]},
        "t5-base": T5,
        "facebook/encodec_32khz": {"config.json": b"{}"},
    }
    fetched = []

    def fake_snapshot(repo_id, patterns, local_dir, progress):
        fetched.append(repo_id)
        local_dir.mkdir(parents=True, exist_ok=True)
        for name, data in repos[repo_id].items():
            (local_dir / name).write_bytes(data)
        return local_dir

    monkeypatch.setattr(weights, "_snapshot", fake_snapshot)
    monkeypatch.setattr(weights, "CHORD_TABLE_URL", chord_pkl.as_uri())
    found = weights.download_weights(None, dest=tmp_path / "dest", progress=False)
    folder = tmp_path / "dest" / "jasco-chords-drums-400M"
    assert fetched == list(repos)
    assert found.folder == folder
    assert found.t5 == folder / "t5-base"
    assert found.chord_table == folder / CHORD_TABLE_FILE
    assert (folder / "facebook" / "encodec_32khz" / "config.json").is_file()
