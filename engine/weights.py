"""Where the JASCO weights, the T5 text encoder and the chord table live on this machine.

Nothing here downloads at render time. `find_jasco_weights` only looks, in this order:

1. an explicit folder (`--model DIR`), holding `state_dict.bin` and `compression_state_dict.bin`
   (and usually `chord_to_index_mapping.pkl`, and maybe a `t5-base/` folder beside them);
2. the models folder: `$JASCO_BRIDGE_MODELS/<name>` or `~/.cache/jasco-bridge/models/<name>`,
   where `<name>` is the repository name, e.g. `jasco-chords-drums-400M`;
3. the Hugging Face cache (`$HF_HUB_CACHE`, by default `~/.cache/huggingface/hub`).

`download_weights` is the one function that fetches, and only when a user asks
(`jasco-bridge weights download`). It fetches the JASCO repository, the `t5-base` tokenizer and
weights, the EnCodec 32 kHz *config* (its weights are stored inside JASCO's `state_dict.bin`,
as the fp16 copy the model was trained with, so the hub weights are not needed and would not
match bit for bit), and the chord table from the audiocraft repository when the JASCO repository
does not hold it.
"""

from __future__ import annotations

import logging
import os
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from engine.errors import CheckpointError

logger = logging.getLogger(__name__)

MODELS = {
    "chords-drums-400M": "facebook/jasco-chords-drums-400M",
    "chords-drums-1B": "facebook/jasco-chords-drums-1B",
    "chords-drums-melody-400M": "facebook/jasco-chords-drums-melody-400M",
    "chords-drums-melody-1B": "facebook/jasco-chords-drums-melody-1B",
}
DEFAULT_MODEL = "chords-drums-400M"
STATE_DICT_FILE = "state_dict.bin"
COMPRESSION_FILE = "compression_state_dict.bin"
JASCO_FILES = (STATE_DICT_FILE, COMPRESSION_FILE)
CHORD_TABLE_FILE = "chord_to_index_mapping.pkl"
CHORD_TABLE_URL = (
    "https://raw.githubusercontent.com/facebookresearch/audiocraft/main/assets/" + CHORD_TABLE_FILE
)
T5_REPO = "t5-base"
T5_REPOS = ("t5-base", "google-t5/t5-base")  # the hub moved t5-base under google-t5/
T5_FILES = ("config.json", "spiece.model", "tokenizer.json", "tokenizer_config.json")
T5_WEIGHT_FILES = ("model.safetensors", "pytorch_model.bin")
ENCODEC_REPO = "facebook/encodec_32khz"
ENCODEC_FILES = ("config.json", "preprocessor_config.json")
MODELS_ENV = "JASCO_BRIDGE_MODELS"
DOWNLOAD_HINT = "jasco-bridge weights download"


@dataclass(frozen=True)
class WeightsLocation:
    """The files a JASCO render needs, found on disk.

    `chord_table` or `t5` is None when that part was not found; the caller decides whether a
    bundled chord table or another T5 folder will do.
    """

    model_id: str
    folder: Path
    state_dict: Path
    compression: Path
    chord_table: Path | None
    t5: Path | None
    source: str  # "folder", "models folder" or "Hugging Face cache"

    def __post_init__(self) -> None:
        for name in ("state_dict", "compression"):
            path = getattr(self, name)
            if not path.is_file():
                raise CheckpointError(f"{name} file {path} does not exist")


def resolve_model_id(model: str | None) -> str:
    """A short name (`chords-drums-400M`) or a hub id (`facebook/jasco-...`) -> the hub id."""
    if model is None:
        return MODELS[DEFAULT_MODEL]
    if model in MODELS:
        return MODELS[model]
    if model.startswith("jasco-") and model[len("jasco-") :] in MODELS:
        return MODELS[model[len("jasco-") :]]
    if "/" in model:
        return model
    raise CheckpointError(
        f"unknown model {model!r}: give a folder, a hub id, or one of {', '.join(MODELS)}"
    )


def models_root() -> Path:
    """`$JASCO_BRIDGE_MODELS`, or `~/.cache/jasco-bridge/models`."""
    configured = os.environ.get(MODELS_ENV)
    if configured:
        return Path(configured).expanduser()
    return Path.home() / ".cache" / "jasco-bridge" / "models"


def _folder_name(model_id: str) -> str:
    return model_id.rsplit("/", 1)[-1]


def _cached_file(repo_id: str, filename: str, hf_cache: Path | None) -> Path | None:
    from huggingface_hub import try_to_load_from_cache

    found = try_to_load_from_cache(repo_id, filename, cache_dir=hf_cache)
    return Path(found) if isinstance(found, str) else None


def _is_t5_folder(folder: Path) -> bool:
    has_tokenizer = (folder / "spiece.model").is_file() or (folder / "tokenizer.json").is_file()
    has_weights = any((folder / name).is_file() for name in T5_WEIGHT_FILES)
    return (folder / "config.json").is_file() and has_tokenizer and has_weights


def find_t5(near: Path | None = None, *, hf_cache: Path | None = None) -> Path | None:
    """A folder `transformers` can load T5-base from: beside the checkpoint, in the models
    folder, or in the Hugging Face cache."""
    candidates = [near / T5_REPO] if near is not None else []
    candidates.append(models_root() / T5_REPO)
    for folder in candidates:
        if _is_t5_folder(folder):
            return folder
    for repo_id in T5_REPOS:
        config = _cached_file(repo_id, "config.json", hf_cache)
        if config is not None and _is_t5_folder(config.parent):
            return config.parent
    return None


def _missing_message(model_id: str, where: str, missing: list[str], advice: str) -> str:
    return (
        f"JASCO weights for {model_id} not found ({where}; missing {', '.join(missing)}). {advice}"
    )


def _from_folder(
    folder: Path, model_id: str, source: str, hf_cache: Path | None
) -> tuple[WeightsLocation | None, list[str]]:
    missing = [name for name in JASCO_FILES if not (folder / name).is_file()]
    if missing:
        return None, missing
    table = folder / CHORD_TABLE_FILE
    return WeightsLocation(
        model_id=model_id,
        folder=folder,
        state_dict=folder / STATE_DICT_FILE,
        compression=folder / COMPRESSION_FILE,
        chord_table=table if table.is_file() else None,
        t5=find_t5(folder, hf_cache=hf_cache),
        source=source,
    ), []


def _looks_like_a_folder(model: str) -> bool:
    # Hub ids are `owner/name`; anything starting like a path, or that exists, is a folder.
    return model.startswith((".", "/", "~")) or Path(model).expanduser().is_dir()


def find_jasco_weights(
    model: str | Path | None = None, *, hf_cache: Path | None = None
) -> WeightsLocation:
    """Look for a JASCO checkpoint; raise `CheckpointError` saying what is missing and how to
    fetch it. `model` is a folder, a short name, a hub id, or None for the default model."""
    if isinstance(model, Path) or (model is not None and _looks_like_a_folder(model)):
        folder = Path(model).expanduser()
        if not folder.is_dir():
            raise CheckpointError(f"model folder {folder} does not exist: check --model")
        location, missing = _from_folder(folder, str(folder), "folder", hf_cache)
        if location is None:
            raise CheckpointError(
                _missing_message(
                    str(folder),
                    f"looked in {folder}",
                    missing,
                    f"Fetch a model with `{DOWNLOAD_HINT} --dest {folder.parent}` and pass "
                    "--model with the folder it makes",
                )
            )
        return location

    model_id = resolve_model_id(model)
    local = models_root() / _folder_name(model_id)
    location, _ = _from_folder(local, model_id, "models folder", hf_cache)
    if location is not None:
        return location

    cached = [_cached_file(model_id, name, hf_cache) for name in JASCO_FILES]
    if all(path is not None for path in cached):
        folder = cached[0].parent
        table = _cached_file(model_id, CHORD_TABLE_FILE, hf_cache) or local / CHORD_TABLE_FILE
        return WeightsLocation(
            model_id=model_id,
            folder=folder,
            state_dict=cached[0],
            compression=cached[1],
            chord_table=table if table.is_file() else None,
            t5=find_t5(hf_cache=hf_cache),
            source="Hugging Face cache",
        )
    missing = [name for name, path in zip(JASCO_FILES, cached, strict=True) if path is None]
    raise CheckpointError(
        _missing_message(
            model_id,
            f"looked in {local} and the Hugging Face cache",
            missing,
            f"Fetch them with `{DOWNLOAD_HINT} {model_id}` or pass --model DIR",
        )
    )


def _quiet_tqdm():
    from tqdm.auto import tqdm

    class QuietTqdm(tqdm):
        def __init__(self, *args, **kwargs):
            kwargs["disable"] = True
            super().__init__(*args, **kwargs)

    return QuietTqdm


def _snapshot(repo_id: str, patterns: list[str], local_dir: Path | None, progress: bool) -> Path:
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import GatedRepoError, RepositoryNotFoundError

    try:
        folder = snapshot_download(
            repo_id,
            allow_patterns=patterns,
            local_dir=local_dir,
            tqdm_class=None if progress else _quiet_tqdm(),
        )
    except GatedRepoError as exc:
        raise CheckpointError(
            f"{repo_id} is gated: accept its licence on https://huggingface.co/{repo_id} "
            "while logged in, then run `hf auth login` (or set HF_TOKEN) and try again"
        ) from exc
    except RepositoryNotFoundError as exc:
        raise CheckpointError(
            f"{repo_id} was not found on the Hugging Face hub (or it is gated and you are not "
            "logged in): check the name, then `hf auth login` or set HF_TOKEN"
        ) from exc
    except OSError as exc:
        reason = " ".join(str(exc).split())  # the hub's messages span lines; ours is one
        raise CheckpointError(
            f"could not download {repo_id} (check the network connection): {reason}"
        ) from exc
    return Path(folder)


def download_weights(
    model: str | None = None, dest: Path | None = None, progress: bool = True
) -> WeightsLocation:
    """Fetch everything a JASCO render needs and return where it landed.

    Without `dest` the files go to the Hugging Face cache (a chord table fetched from GitHub goes
    to the models folder). With `dest` everything goes into one folder, `dest/<name>`, with T5
    in `t5-base/` and the EnCodec config in `facebook/encodec_32khz/` inside it, where the engine
    looks first; point `$JASCO_BRIDGE_MODELS` at `dest` so that renders find it by name.
    """
    model_id = resolve_model_id(model)
    folder = Path(dest).expanduser() / _folder_name(model_id) if dest is not None else None
    jasco_dir = _snapshot(
        model_id, [*JASCO_FILES, CHORD_TABLE_FILE, "*.md", "*.json"], folder, progress
    )
    _snapshot(
        T5_REPO, [*T5_FILES, "model.safetensors"], folder / T5_REPO if folder else None, progress
    )
    _snapshot(
        ENCODEC_REPO, list(ENCODEC_FILES), folder / ENCODEC_REPO if folder else None, progress
    )
    if not (jasco_dir / CHORD_TABLE_FILE).is_file():
        table_dir = folder or models_root() / _folder_name(model_id)
        fetch_chord_table(table_dir / CHORD_TABLE_FILE, CHORD_TABLE_URL)
    return find_jasco_weights(folder if folder is not None else model_id)


def fetch_chord_table(path: Path, url: str = CHORD_TABLE_URL) -> Path:
    """Download the released chord table to `path` (written whole or not at all)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(".part")
    logger.info("fetching the chord table from %s", url)
    try:
        with urllib.request.urlopen(url, timeout=60) as response:  # noqa: S310 - fixed https URL
            partial.write_bytes(response.read())
    except OSError as exc:
        raise CheckpointError(
            f"could not fetch the chord table from {url}: {exc}; "
            f"copy {CHORD_TABLE_FILE} from the audiocraft repository's assets/ to {path}"
        ) from exc
    partial.replace(path)
    return path
