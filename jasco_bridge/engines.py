"""Choosing and opening the renderer: JASCO when its weights are here, the preview otherwise.

    opened = open_renderer("auto")
    if opened.notice:
        print(opened.notice)          # e.g. "no JASCO weights found ... rendering a PREVIEW"
    result = opened.renderer.generate(request)

The chord vocabulary comes with the renderer because chord indices only mean something for the
table the checkpoint was trained with: JASCO uses the `chord_to_index_mapping.pkl` found beside
its weights, the preview the copy bundled in `jasco_bridge/data/`.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from engine.errors import CheckpointError
from engine.preview import PreviewEngine
from engine.request import Renderer
from engine.weights import CHORD_TABLE_FILE, DOWNLOAD_HINT, find_jasco_weights
from jasco_bridge.config import ENGINE_KINDS
from jasco_bridge.errors import RenderError
from midi.vocabulary import ChordVocabulary

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class OpenedRenderer:
    """A ready renderer, the chord table its indices refer to, and what the user should know
    about the choice (None when there is nothing to say)."""

    renderer: Renderer
    vocabulary: ChordVocabulary
    notice: str | None = None


def bundled_chord_table() -> Path:
    """The released chord table shipped inside the package (a copy of audiocraft's asset)."""
    return Path(str(resources.files("jasco_bridge") / "data" / CHORD_TABLE_FILE))


def open_preview(vocabulary: ChordVocabulary | None = None) -> OpenedRenderer:
    """The built-in synthesiser, playing every label of `vocabulary` (default: bundled table)."""
    vocabulary = vocabulary or ChordVocabulary.from_pickle(bundled_chord_table())
    chord_tones = {i: vocabulary.pitch_classes_of(i) for i in range(vocabulary.null_index)}
    return OpenedRenderer(PreviewEngine(chord_tones), vocabulary)


def open_jasco(
    model: str | Path | None = None,
    device: str | None = None,
    precision: str = "auto",
    warm_up: bool = False,
) -> OpenedRenderer:
    """Load JASCO from disk; `CheckpointError` says what is missing and how to fetch it.
    `warm_up` renders one short window first (a daemon's first trigger is then as fast as the
    next)."""
    location = find_jasco_weights(model)
    notice = None
    if location.chord_table is not None:
        vocabulary = ChordVocabulary.from_pickle(location.chord_table)
    else:
        # The released checkpoints all share one table; the bundled copy is that table.
        vocabulary = ChordVocabulary.from_pickle(bundled_chord_table())
        notice = (
            f"no {CHORD_TABLE_FILE} beside the weights in {location.folder}: "
            "using the bundled copy of the released chord table"
        )
    from engine.allocator import keep_freed_memory
    from engine.jasco import JascoEngine  # torch-heavy; only when JASCO is really wanted

    # This process exists to render: let it reuse its activation memory (see engine.allocator).
    keep_freed_memory()

    logger.info(
        "loading JASCO %s from %s (%s)", location.model_id, location.folder, location.source
    )
    renderer = JascoEngine.from_pretrained(
        location.folder, t5=location.t5, device=device, precision=precision
    )
    if warm_up:
        logger.info("JASCO warmed up in %.1f s", renderer.warm_up())
    return OpenedRenderer(renderer, vocabulary, notice)


def open_cluster_renderer(cluster: str, kind: str, model: str | Path | None) -> OpenedRenderer:
    """A renderer whose windows render on the workers of the Ray cluster at `cluster`
    (see `jasco_bridge.cluster`); the chord table is the one of the workers' model."""
    from jasco_bridge.cluster import open_cluster  # Ray is an optional extra

    renderer, chord_table, notice = open_cluster(
        cluster, kind, None if model is None else str(model)
    )
    vocabulary = ChordVocabulary(chord_table, source=f"{renderer.model_id} on {cluster}")
    return OpenedRenderer(renderer, vocabulary, notice)


def open_renderer(
    kind: str = "auto",
    model: str | Path | None = None,
    device: str | None = None,
    precision: str = "auto",
    warm_up: bool = False,
    cluster: str | None = None,
) -> OpenedRenderer:
    """`auto`: JASCO when its weights are found, else the preview with a notice saying how to
    get JASCO. `jasco`: JASCO or a `CheckpointError`. `preview`: the built-in synthesiser.

    A `model` that is named but not found is an error under `auto` too: a typo in a folder
    name must not quietly turn into a preview. `precision` (auto | fp32 | bf16 | fp16) is
    JASCO's arithmetic and `warm_up` asks JASCO for one short render before it is handed out;
    the preview ignores both. With `cluster` (a Ray address) the same choice is made among the
    cluster's workers."""
    if kind not in ENGINE_KINDS:
        raise RenderError(f"unknown engine {kind!r}: choose one of {', '.join(ENGINE_KINDS)}")
    if cluster is not None:
        if device is not None:
            raise RenderError(
                "--device chooses a local device; cluster workers choose theirs "
                "(`jasco-bridge worker --gpus N`): leave --device out with --cluster"
            )
        return open_cluster_renderer(cluster, kind, model)
    if kind == "preview":
        return open_preview()
    if kind == "jasco" or model is not None:
        return open_jasco(model, device, precision, warm_up)
    try:
        find_jasco_weights(model)
    except CheckpointError as missing:
        logger.debug("falling back to the preview: %s", missing)
        opened = open_preview()
        notice = (
            "no JASCO weights found: rendering a PREVIEW with the built-in synthesiser. "
            f"Get JASCO with `{DOWNLOAD_HINT}` (see `jasco-bridge weights --help`)"
        )
        return OpenedRenderer(opened.renderer, opened.vocabulary, notice)
    # Weights that are present but fail to load are an error to fix, not a reason to fall back.
    return open_jasco(model, device, precision, warm_up)
