"""The renderers: a JASCO engine that loads the released checkpoints, and a preview synthesiser.

No OSC, no DAW concepts, no `midi` imports: the engine takes chord *indices* per frame (50 Hz,
500 frames for JASCO's 10 s window). Importing this package is light (numpy only); the torch
modules load when you import them.

Cheat sheet::

    from engine import GenerationRequest
    from engine.jasco import JascoEngine             # torch, transformers

    engine = JascoEngine.from_pretrained("~/models/jasco-chords-drums-400M")  # t5-base found locally
    request = GenerationRequest(
        text="lofi hip hop, warm Rhodes",
        chord_indices=tuple(frames),                 # one vocabulary index per frame
        seed=7, steps=10, sampler="euler",           # euler | midpoint | dopri5
        cfg_all=1.25, cfg_text=2.5,                  # the authors' demo guidance
    )
    result = engine.generate(request, progress=lambda step, total: ..., should_cancel=lambda: False)
    result.audio, result.sample_rate                 # mono float32 at 32 kHz

    from engine import PreviewEngine                 # same request, no weights: a chord-pad synth

    python -m engine.parity DIR                      # compare against a golden-tensor folder
"""

from engine.errors import (
    CheckpointError,
    ConditioningError,
    DeviceError,
    EngineError,
    GenerationCancelled,
)
from engine.preview import PreviewEngine, synthesize_drums
from engine.request import (
    PRECISIONS,
    SAMPLER_NAMES,
    CancelFn,
    GenerationRequest,
    GenerationResult,
    ProgressFn,
    Renderer,
)

__all__ = [
    "PRECISIONS",
    "SAMPLER_NAMES",
    "CancelFn",
    "CheckpointError",
    "ConditioningError",
    "DeviceError",
    "EngineError",
    "GenerationCancelled",
    "GenerationRequest",
    "GenerationResult",
    "PreviewEngine",
    "ProgressFn",
    "Renderer",
    "synthesize_drums",
]
