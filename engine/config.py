"""The typed JASCO configuration, read from the `xp.cfg` YAML stored inside `state_dict.bin`.

The released checkpoints carry the whole training config (OmegaConf YAML with `${...}`
interpolations still in place). We read only the sub-trees that decide the network and the
conditioners, resolve them relative to the document root, and refuse every value that would
change the architecture in a way this engine does not implement: silently ignoring one would
load the weights and then produce wrong audio.

Example::

    cfg = parse_xp_cfg(load_state_dict_file(folder / "state_dict.bin").xp_cfg)
    cfg.dim, cfg.num_layers, cfg.null_chord_index   # 1024, 24, 194 for the 400M models
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import MISSING, dataclass, fields
from typing import Any

from engine.errors import CheckpointError

TEXT_CONDITION = "description"
CHORDS_CONDITION = "chords"
DRUMS_CONDITION = "self_wav"
MELODY_CONDITION = "melody"

MELODY_BINS = 53
"""Salience bins of the melody conditioner; the reference hard-codes it rather than reading cfg."""

# Hidden width of the T5 encoders the reference knows by name; output_proj is sized from it.
T5_HIDDEN_SIZES = {
    "t5-small": 512,
    "t5-base": 768,
    "t5-large": 1024,
    "t5-3b": 1024,
    "t5-11b": 1024,
    "google/flan-t5-small": 512,
    "google/flan-t5-base": 768,
    "google/flan-t5-large": 1024,
    "google/flan-t5-xl": 2048,
    "google/flan-t5-xxl": 4096,
}

_CONDITIONER_MODELS = {
    TEXT_CONDITION: "t5",
    CHORDS_CONDITION: "chords_emb",
    DRUMS_CONDITION: "drum_latents",
    MELODY_CONDITION: "melody",
}

# transformer_lm keys that only matter for training or weight initialisation.
_TRAINING_ONLY_KEYS = frozenset(
    {
        "n_q",
        "card",
        "dropout",
        "attention_dropout",
        "checkpointing",
        "weight_init",
        "depthwise_init",
        "zero_bias_init",
        "custom",  # both attention paths store the same packed in_proj keys
        "memory_efficient",
        "cross_attention",  # forced on by the reference because the fuser has a cross list
        "emb_lr",
        "two_step_cfg",
    }
)

# transformer_lm keys whose value must be exactly this for the engine's network to be right.
_REQUIRED_VALUES: dict[str, Any] = {
    "activation": "gelu",
    "norm": "layer_norm",
    "causal": False,
    "past_context": None,
    "positional_embedding": "sin",
    "xpos": False,
    "kv_repeat": 1,
}

_READ_KEYS = frozenset(
    {
        "dim",
        "num_heads",
        "num_layers",
        "hidden_scale",
        "flow_dim",
        "chords_dim",
        "drums_dim",
        "melody_dim",
        "bias_ff",
        "bias_attn",
        "bias_proj",
        "norm_first",
        "skip_connections",
        "layer_scale",
        "qk_layer_norm",
        "qk_layer_norm_cross",
        "attention_as_float32",
        "time_embedding_dim",
        "max_period",
        "positional_scale",
    }
)


@dataclass(frozen=True)
class JascoConfig:
    """Everything the engine needs to build the network and prepare conditions.

    Dimensions: `dim` is the transformer width D, `flow_dim` the latent channels F (128 for the
    released models), `chords_dim` / `drums_dim` / `melody_dim` the widths of the temporal
    conditions concatenated to the latents (0 = the model has no such conditioner).
    """

    dim: int
    num_heads: int
    num_layers: int
    hidden_scale: float
    flow_dim: int
    chords_dim: int
    drums_dim: int
    melody_dim: int
    text_model: str
    text_dim: int
    chords_card: int
    drums_blur_factor: int
    latent_mean: float
    latent_std: float
    frame_rate_hz: float
    segment_seconds: float
    sample_rate: int
    bias_ff: bool
    bias_attn: bool
    bias_proj: bool
    norm_first: bool
    text_cfg_drops: tuple[str, ...]
    """Conditions the Text CFG term nulls (cfg `attribute_dropout.symbolic` + `.wav` keys)."""
    # The defaults below are the reference constructor's, used by the parser for a key xp.cfg
    # leaves out. The four flags above have none on purpose: the released models set them
    # opposite to the constructor's defaults, so a config built by hand must say them.
    skip_connections: bool = False
    layer_scale: float | None = None
    qk_layer_norm: bool = False
    qk_layer_norm_cross: bool = False
    attention_as_float32: bool = False
    time_embedding_dim: int = 128
    max_period: float = 10000.0
    positional_scale: float = 1.0

    def __post_init__(self) -> None:
        for name in ("dim", "num_heads", "num_layers", "flow_dim", "text_dim", "chords_card"):
            value = getattr(self, name)
            if not (isinstance(value, int) and value > 0):
                raise CheckpointError(f"config: {name} must be a positive integer, got {value!r}")
        if self.dim % self.num_heads:
            raise CheckpointError(
                f"config: transformer_lm.dim={self.dim} is not divisible by "
                f"num_heads={self.num_heads}; the checkpoint's xp.cfg is inconsistent"
            )
        if self.dim % 2:
            raise CheckpointError(f"config: transformer_lm.dim={self.dim} must be even")
        if self.skip_connections and self.num_layers % 2:
            raise CheckpointError(
                "config: skip_connections needs an even num_layers "
                f"(got {self.num_layers}); the reference itself cannot run this model"
            )
        if self.ffn_dim <= 0:
            raise CheckpointError(
                f"config: transformer_lm.hidden_scale={self.hidden_scale} gives a feed-forward "
                f"width of {self.ffn_dim} at dim={self.dim}; it must be positive"
            )
        if not (self.latent_std > 0 and math.isfinite(self.latent_mean)):
            raise CheckpointError(
                f"config: bad latent statistics mean={self.latent_mean} std={self.latent_std}"
            )
        if self.frame_rate_hz <= 0 or self.segment_seconds <= 0 or self.sample_rate <= 0:
            raise CheckpointError(
                "config: frame rate, segment duration and sample rate must be positive, got "
                f"{self.frame_rate_hz}, {self.segment_seconds}, {self.sample_rate}"
            )

    @property
    def ffn_dim(self) -> int:
        """Width of the feed-forward layers, int(hidden_scale * dim) as the reference computes it."""
        return int(self.hidden_scale * self.dim)

    @property
    def frames(self) -> int:
        """Latent frames per segment (500 for 10 s at 50 Hz)."""
        return int(self.frame_rate_hz * self.segment_seconds)

    @property
    def segment_samples(self) -> int:
        return int(self.segment_seconds * self.sample_rate)

    @property
    def null_chord_index(self) -> int:
        """Chord index meaning "no chord information" (= the vocabulary size, 194)."""
        return self.chords_card

    @property
    def has_chords(self) -> bool:
        return self.chords_dim > 0

    @property
    def has_drums(self) -> bool:
        return self.drums_dim > 0

    @property
    def has_melody(self) -> bool:
        return self.melody_dim > 0

    @property
    def input_dim(self) -> int:
        """Feature width entering `emb`: latents, then chords, drums, melody."""
        return self.flow_dim + self.chords_dim + self.drums_dim + self.melody_dim


# The parser takes a missing key's value from the dataclass, so the two cannot disagree.
_DEFAULTS = {f.name: f.default for f in fields(JascoConfig) if f.default is not MISSING}


def parse_xp_cfg(yaml_text: str) -> JascoConfig:
    """Parse the `xp.cfg` YAML of a JASCO checkpoint into a `JascoConfig`.

    Raises CheckpointError naming the key for anything this engine cannot reproduce.
    """
    from omegaconf import OmegaConf
    from omegaconf.errors import OmegaConfBaseException

    try:
        root = OmegaConf.create(yaml_text)
    except (OmegaConfBaseException, ValueError) as exc:
        raise CheckpointError(f"xp.cfg is not a readable OmegaConf YAML document: {exc}") from exc

    def read(path: str) -> Any:
        # Interpolations are resolved relative to the root, like the reference's builder does.
        try:
            node = OmegaConf.select(root, path, throw_on_missing=True)
            if OmegaConf.is_config(node):
                return OmegaConf.to_container(node, resolve=True)
            return node
        except OmegaConfBaseException as exc:
            raise CheckpointError(f"xp.cfg: cannot read {path!r}: {exc}") from exc

    lm = read("transformer_lm")
    if not isinstance(lm, dict):
        raise CheckpointError("xp.cfg has no transformer_lm section; is this a JASCO checkpoint?")
    _check_transformer_keys(lm)
    conditioners = read("conditioners")
    if not isinstance(conditioners, dict) or not conditioners:
        raise CheckpointError("xp.cfg has no conditioners section; is this a JASCO checkpoint?")
    conditioners = {k: v for k, v in conditioners.items() if k != "args"}
    _check_conditioners(conditioners)
    _check_fuser(read("fuser") or {}, conditioners)

    text = conditioners[TEXT_CONDITION]["t5"]
    text_model = str(text["name"])
    if text_model not in T5_HIDDEN_SIZES:
        raise CheckpointError(
            f"xp.cfg: conditioners.description.t5.name={text_model!r} is not a T5 model this "
            f"engine knows ({', '.join(sorted(T5_HIDDEN_SIZES))})"
        )
    drums = conditioners.get(DRUMS_CONDITION, {}).get("drum_latents", {})
    chords = conditioners.get(CHORDS_CONDITION, {}).get("chords_emb", {})
    melody = conditioners.get(MELODY_CONDITION, {}).get("melody", {})
    dropout = read("attribute_dropout") or {}
    drops = tuple(
        name
        for kind in ("symbolic", "wav")
        for name in (dropout.get(kind) or {})
        if name in conditioners
    )

    def temporal_dim(key: str, name: str, spec: Mapping[str, Any]) -> int:
        # The width lives in transformer_lm (interpolated from the conditioner's out_dim).
        if name not in conditioners:
            return 0
        return int(lm.get(key, spec.get("out_dim", 0)))

    return JascoConfig(
        dim=int(lm["dim"]),
        num_heads=int(lm["num_heads"]),
        num_layers=int(lm["num_layers"]),
        hidden_scale=float(lm.get("hidden_scale", 4)),
        flow_dim=int(lm.get("flow_dim", 128)),
        chords_dim=temporal_dim("chords_dim", CHORDS_CONDITION, chords),
        drums_dim=temporal_dim("drums_dim", DRUMS_CONDITION, drums),
        melody_dim=temporal_dim("melody_dim", MELODY_CONDITION, melody),
        text_model=text_model,
        text_dim=T5_HIDDEN_SIZES[text_model],
        chords_card=int(chords.get("card", 194)),
        drums_blur_factor=int(drums.get("blurring_factor", 3)),
        latent_mean=float(read("compression_model_latent_mean")),
        latent_std=float(read("compression_model_latent_std")),
        frame_rate_hz=float(read("compression_model_framerate")),
        segment_seconds=float(read("dataset.segment_duration")),
        sample_rate=int(read("sample_rate")),
        # The reference constructor's defaults for the flags the config dataclass leaves open.
        bias_ff=bool(lm.get("bias_ff", True)),
        bias_attn=bool(lm.get("bias_attn", True)),
        bias_proj=bool(lm.get("bias_proj", True)),
        norm_first=bool(lm.get("norm_first", False)),
        text_cfg_drops=drops,
        skip_connections=bool(lm.get("skip_connections", _DEFAULTS["skip_connections"])),
        layer_scale=None if lm.get("layer_scale") is None else float(lm["layer_scale"]),
        qk_layer_norm=bool(lm.get("qk_layer_norm", _DEFAULTS["qk_layer_norm"])),
        qk_layer_norm_cross=bool(lm.get("qk_layer_norm_cross", _DEFAULTS["qk_layer_norm_cross"])),
        attention_as_float32=bool(
            lm.get("attention_as_float32", _DEFAULTS["attention_as_float32"])
        ),
        time_embedding_dim=int(lm.get("time_embedding_dim", _DEFAULTS["time_embedding_dim"])),
        max_period=float(lm.get("max_period", _DEFAULTS["max_period"])),
        positional_scale=float(lm.get("positional_scale", _DEFAULTS["positional_scale"])),
    )


def _check_transformer_keys(lm: Mapping[str, Any]) -> None:
    for key, value in lm.items():
        if key in _TRAINING_ONLY_KEYS or key in _READ_KEYS:
            continue
        if key in _REQUIRED_VALUES:
            if value != _REQUIRED_VALUES[key]:
                raise CheckpointError(
                    f"xp.cfg: transformer_lm.{key}={value!r} is not supported by this engine "
                    f"(it implements {key}={_REQUIRED_VALUES[key]!r} only)"
                )
            continue
        raise CheckpointError(
            f"xp.cfg: unknown transformer_lm key {key!r} (value {value!r}); this engine cannot "
            "tell whether it changes the network, so it refuses the checkpoint"
        )
    for key in ("dim", "num_heads", "num_layers"):
        if key not in lm:
            raise CheckpointError(f"xp.cfg: transformer_lm.{key} is missing")
    if lm.get("time_embedding_dim", _DEFAULTS["time_embedding_dim"]) % 2:
        raise CheckpointError("xp.cfg: transformer_lm.time_embedding_dim must be even")


def _check_conditioners(conditioners: Mapping[str, Any]) -> None:
    for name, spec in conditioners.items():
        expected = _CONDITIONER_MODELS.get(name)
        model = spec.get("model") if isinstance(spec, dict) else None
        if expected is None or model != expected:
            raise CheckpointError(
                f"xp.cfg: conditioner {name!r} with model {model!r} is not supported "
                f"(known: {', '.join(f'{k}={v}' for k, v in _CONDITIONER_MODELS.items())})"
            )
    if TEXT_CONDITION not in conditioners:
        raise CheckpointError("xp.cfg: a JASCO checkpoint needs the 'description' (T5) conditioner")
    if DRUMS_CONDITION not in conditioners:
        # The EnCodec weights used for decoding live under the drums conditioner.
        raise CheckpointError(
            "xp.cfg: no 'self_wav' (drums) conditioner; every released JASCO model has one and "
            "its EnCodec copy is what the engine decodes with"
        )


def _check_fuser(fuser: Mapping[str, Any], conditioners: Mapping[str, Any]) -> None:
    cross = list(fuser.get("cross") or [])
    if cross != [TEXT_CONDITION]:
        raise CheckpointError(
            f"xp.cfg: fuser.cross={cross!r} is not supported (only ['description'] is)"
        )
    for key in ("sum", "prepend", "input_interpolate"):
        if fuser.get(key):
            raise CheckpointError(
                f"xp.cfg: fuser.{key}={fuser[key]!r} is not supported (must be empty)"
            )
    if fuser.get("cross_attention_pos_emb"):
        raise CheckpointError("xp.cfg: fuser.cross_attention_pos_emb=true is not supported")
    unfused = set(conditioners) - {TEXT_CONDITION} - set(fuser.get("ignore") or [])
    if unfused:
        raise CheckpointError(
            f"xp.cfg: conditions {sorted(unfused)} are neither cross-attended nor in fuser.ignore; "
            "JASCO concatenates temporal conditions and lists them under ignore"
        )
