"""Loading checkpoint packages strictly.

The synthetic packages here are written from the key/shape table of the reference spec
(jasco-reference.md section 2), not from our own modules, so a naming or shape slip in the
engine's modules makes them fail to load.
"""

import shutil
from dataclasses import dataclass

import numpy as np
import pytest
import torch

from engine.checkpoint import load_compression_file, load_state_dict_file
from engine.errors import CheckpointError
from engine.jasco import JascoEngine
from engine.request import GenerationRequest

ENCODEC_PREFIX = "condition_provider.conditioners.self_wav.compression_model.model."


@dataclass(frozen=True)
class Variant:
    dim: int = 32
    num_heads: int = 2
    num_layers: int = 2
    hidden_scale: float = 4.0
    melody: bool = False
    bias_attn: bool = False
    bias_ff: bool = False
    bias_proj: bool = False
    skip_connections: bool = False
    norm_first: bool = True
    layer_scale: float | None = None
    qk_layer_norm: bool = False
    qk_layer_norm_cross: bool = False


def spec_shapes(v: Variant, latent: int = 32) -> dict[str, tuple[int, ...]]:
    """Keys and shapes of best_state as the spec's section 2.2/2.3 tables list them."""
    d, h = v.dim, int(v.hidden_scale * v.dim)
    melody_dim = 16 if v.melody else 0
    shapes: dict[str, tuple[int, ...]] = {"emb.weight": (d, latent + 16 + 2 + melody_dim)}
    for i in range(v.num_layers):
        p = f"transformer.layers.{i}."
        for attn, qk in (
            ("self_attn", v.qk_layer_norm),
            ("cross_attention", v.qk_layer_norm_cross),
        ):
            shapes[p + attn + ".in_proj_weight"] = (3 * d, d)
            shapes[p + attn + ".out_proj.weight"] = (d, d)
            if v.bias_attn:
                shapes[p + attn + ".in_proj_bias"] = (3 * d,)
                shapes[p + attn + ".out_proj.bias"] = (d,)
            if qk:
                for norm in ("q_layer_norm", "k_layer_norm"):
                    shapes[p + f"{attn}.{norm}.weight"] = (d,)
                    shapes[p + f"{attn}.{norm}.bias"] = (d,)
        shapes[p + "linear1.weight"] = (h, d)
        shapes[p + "linear2.weight"] = (d, h)
        if v.bias_ff:
            shapes[p + "linear1.bias"] = (h,)
            shapes[p + "linear2.bias"] = (d,)
        for norm in ("norm1", "norm2", "norm_cross"):
            shapes[p + norm + ".weight"] = (d,)
            shapes[p + norm + ".bias"] = (d,)
        if v.layer_scale is not None:
            for scale in ("layer_scale_1", "layer_scale_2", "layer_scale_cross"):
                shapes[p + scale + ".scale"] = (d,)
    if v.skip_connections:
        for j in range(v.num_layers // 2):
            shapes[f"transformer.skip_projections.{j}.weight"] = (d, 2 * d)
            shapes[f"transformer.skip_projections.{j}.bias"] = (d,)
    if v.norm_first:
        shapes["out_norm.weight"] = (d,)
        shapes["out_norm.bias"] = (d,)
    shapes["linear.weight"] = (latent, d)
    if v.bias_proj:
        shapes["linear.bias"] = (latent,)
    shapes.update(
        {
            "temb.dense.0.weight": (512, 128),
            "temb.dense.0.bias": (512,),
            "temb.dense.1.weight": (512, 512),
            "temb.dense.1.bias": (512,),
            "temb_proj.weight": (d, 512),
            "temb_proj.bias": (d,),
            "condition_provider.conditioners.description.output_proj.weight": (d, 768),
            "condition_provider.conditioners.description.output_proj.bias": (d,),
            "condition_provider.conditioners.chords.emb.weight": (195, 16),
            "condition_provider.conditioners.self_wav.output_proj.weight": (2, latent),
            "condition_provider.conditioners.self_wav.output_proj.bias": (2,),
        }
    )
    if v.melody:
        shapes["condition_provider.conditioners.melody.output_proj.weight"] = (16, 53)
        shapes["condition_provider.conditioners.melody.output_proj.bias"] = (16,)
    return shapes


def xp_cfg(v: Variant) -> str:
    melody_cond = (
        "  melody:\n    model: melody\n    melody:\n      out_dim: 16\n" if v.melody else ""
    )
    melody_dim = "  melody_dim: ${conditioners.melody.melody.out_dim}\n" if v.melody else ""
    melody_drop = "    melody: 0.5\n" if v.melody else ""
    melody_ignore = "  - melody\n" if v.melody else ""
    layer_scale = "null" if v.layer_scale is None else v.layer_scale
    flag = lambda b: "true" if b else "false"  # noqa: E731
    return f"""sample_rate: 32000
compression_model_latent_dim: 32
compression_model_framerate: 50
compression_model_latent_mean: 0.1
compression_model_latent_std: 2.0
datasource:
  train: ???
dataset:
  segment_duration: 2
attribute_dropout:
  text: {{}}
  symbolic:
    chords: 0.5
{melody_drop}  wav:
    self_wav: 0.5
fuser:
  cross_attention_pos_emb: false
  cross_attention_pos_emb_scale: 1
  sum: []
  prepend: []
  cross:
  - description
  ignore:
  - chords
  - self_wav
{melody_ignore}  input_interpolate: []
conditioners:
  self_wav:
    model: drum_latents
    drum_latents:
      sample_rate: ${{sample_rate}}
      out_dim: 2
      blurring_factor: 3
      cache_path: /private/cache
      compression_model_latent_dim: ${{compression_model_latent_dim}}
      compression_model_framerate: ${{compression_model_framerate}}
      segment_duration: ${{dataset.segment_duration}}
  description:
    model: t5
    t5:
      name: t5-base
      finetune: false
      word_dropout: 0.3
      normalize_text: false
  chords:
    model: chords_emb
    chords_emb:
      card: 194
      out_dim: 16
{melody_cond}transformer_lm:
  dim: {v.dim}
  num_heads: {v.num_heads}
  num_layers: {v.num_layers}
  hidden_scale: {v.hidden_scale}
  n_q: 4
  card: 2048
  dropout: 0.0
  activation: gelu
  norm_first: {flag(v.norm_first)}
  bias_ff: {flag(v.bias_ff)}
  bias_attn: {flag(v.bias_attn)}
  bias_proj: {flag(v.bias_proj)}
  past_context: null
  causal: false
  custom: false
  memory_efficient: true
  attention_as_float32: false
  layer_scale: {layer_scale}
  positional_embedding: sin
  xpos: false
  checkpointing: none
  weight_init: gaussian
  depthwise_init: current
  zero_bias_init: true
  norm: layer_norm
  cross_attention: false
  qk_layer_norm: {flag(v.qk_layer_norm)}
  qk_layer_norm_cross: {flag(v.qk_layer_norm_cross)}
  attention_dropout: null
  kv_repeat: 1
  skip_connections: {flag(v.skip_connections)}
  flow_dim: ${{compression_model_latent_dim}}
  chords_dim: ${{conditioners.chords.chords_emb.out_dim}}
  drums_dim: ${{conditioners.self_wav.drum_latents.out_dim}}
{melody_dim}"""


@pytest.fixture(scope="module")
def golden_state(golden_dir):
    return torch.load(golden_dir / "state_dict.bin", map_location="cpu", weights_only=True)


def make_model_dir(path, golden_dir, state, cfg_text, *, pointer="tiny_encodec_32khz"):
    """A model folder with its own state_dict.bin and the golden T5 / EnCodec folders beside."""
    path.mkdir(parents=True, exist_ok=True)
    package = {"best_state": state, "xp.cfg": cfg_text, "version": "1.4.0a2", "exported": True}
    torch.save(package, path / "state_dict.bin")
    torch.save({"pretrained": pointer, "exported": True}, path / "compression_state_dict.bin")
    for folder in ("t5-base", "tiny_encodec_32khz"):
        (path / folder).symlink_to(golden_dir / folder)
    return path


def synthetic_state(v: Variant, golden_state, seed: int = 0) -> dict[str, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    state = {}
    for key, shape in spec_shapes(v).items():
        value = torch.randn(shape, generator=generator) * 0.05
        if key.endswith(("norm1.weight", "norm2.weight", "norm_cross.weight", "out_norm.weight")):
            value = value + 1.0
        # the released files are expected to hold float16 tensors; loading must cast
        state[key] = value.half()
    best = golden_state["best_state"]
    state.update({k: v.clone() for k, v in best.items() if k.startswith(ENCODEC_PREFIX)})
    return state


VARIANTS = {
    "melody": Variant(melody=True),
    "wide-biased-qk-layerscale": Variant(
        dim=48,
        num_heads=6,
        num_layers=3,
        hidden_scale=2.5,
        bias_attn=True,
        bias_ff=True,
        bias_proj=True,
        layer_scale=0.1,
        qk_layer_norm=True,
        qk_layer_norm_cross=True,
    ),
    "skip-postnorm": Variant(
        dim=32, num_heads=4, num_layers=4, skip_connections=True, norm_first=False
    ),
}


@pytest.mark.parametrize("name", sorted(VARIANTS))
def test_spec_shaped_variants_load_strictly_and_render(name, tmp_path, golden_dir, golden_state):
    variant = VARIANTS[name]
    state = synthetic_state(variant, golden_state)
    model_dir = make_model_dir(tmp_path / name, golden_dir, state, xp_cfg(variant))
    engine = JascoEngine.from_pretrained(model_dir, device="cpu")
    assert engine.config.dim == variant.dim and engine.config.num_layers == variant.num_layers
    loaded = engine.network.state_dict()
    assert torch.equal(loaded["emb.weight"], state["emb.weight"].float())
    frames = engine.config.frames
    melody = None
    if variant.melody:
        melody = np.zeros((53, frames), dtype=np.float32)
        melody[10, :] = 1.0
    request = GenerationRequest(
        text="warm piano",
        chord_indices=tuple([2] * frames),
        drums_wav=np.random.default_rng(0).normal(0, 0.1, 16000).astype(np.float32),
        melody_salience=melody,
        duration_seconds=1.5,
        steps=2,
    )
    result = engine.generate(request)
    assert result.audio.shape == (48000,)
    assert np.isfinite(result.audio).all()
    assert result.audio.std() > 0


def _corrupt(tmp_path, golden_dir, golden_state, edit):
    state = dict(golden_state["best_state"])
    edit(state)
    return make_model_dir(tmp_path / "model", golden_dir, state, golden_state["xp.cfg"])


def test_missing_key_is_named(tmp_path, golden_dir, golden_state):
    model_dir = _corrupt(tmp_path, golden_dir, golden_state, lambda s: s.pop("temb_proj.bias"))
    with pytest.raises(CheckpointError, match=r"missing keys \(1\): temb_proj.bias"):
        JascoEngine.from_pretrained(model_dir, device="cpu")


def test_unexpected_key_is_named(tmp_path, golden_dir, golden_state):
    def add(state):
        state["transformer.layers.0.linear1.bias"] = torch.zeros(256)

    model_dir = _corrupt(tmp_path, golden_dir, golden_state, add)
    with pytest.raises(
        CheckpointError, match=r"unexpected keys \(1\): transformer.layers.0.linear1.bias"
    ):
        JascoEngine.from_pretrained(model_dir, device="cpu")


def test_wrong_shape_is_named_with_both_shapes(tmp_path, golden_dir, golden_state):
    def reshape(state):
        state["linear.weight"] = torch.zeros(16, 64)

    model_dir = _corrupt(tmp_path, golden_dir, golden_state, reshape)
    with pytest.raises(
        CheckpointError, match=r"linear.weight: checkpoint \(16, 64\), model \(32, 64\)"
    ):
        JascoEngine.from_pretrained(model_dir, device="cpu")


def test_legacy_weight_norm_names_load_the_same_weights(tmp_path, golden_dir, golden_state):
    def legacy(state):
        for key in [k for k in state if k.endswith("parametrizations.weight.original0")]:
            stem = key[: -len("parametrizations.weight.original0")]
            state[stem + "weight_g"] = state.pop(key)
            state[stem + "weight_v"] = state.pop(stem + "parametrizations.weight.original1")

    model_dir = _corrupt(tmp_path, golden_dir, golden_state, legacy)
    engine = JascoEngine.from_pretrained(model_dir, device="cpu")
    codec = engine.codec.state_dict()
    key = "model.decoder.layers.0.conv.parametrizations.weight.original1"
    assert torch.equal(
        codec[key], golden_state["best_state"][ENCODEC_PREFIX + key[len("model.") :]]
    )


def test_truncated_state_dict_is_a_checkpoint_error(tmp_path, golden_dir):
    data = (golden_dir / "state_dict.bin").read_bytes()
    broken = tmp_path / "state_dict.bin"
    broken.write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match="truncated"):
        load_state_dict_file(broken)


def test_pickled_code_is_refused(tmp_path):
    path = tmp_path / "state_dict.bin"
    torch.save({"best_state": {}, "xp.cfg": "", "hook": Variant()}, path)
    with pytest.raises(CheckpointError, match="cannot read"):
        load_state_dict_file(path)


def test_wrong_folder_is_a_checkpoint_error(tmp_path):
    with pytest.raises(CheckpointError, match="does not exist"):
        JascoEngine.from_pretrained(tmp_path / "nowhere", device="cpu")
    with pytest.raises(CheckpointError, match="state_dict.bin not found"):
        JascoEngine.from_pretrained(tmp_path, device="cpu")


def test_a_file_that_is_not_a_package_is_refused(tmp_path):
    path = tmp_path / "state_dict.bin"
    torch.save({"model": {}}, path)
    with pytest.raises(CheckpointError, match="not a JASCO model package"):
        load_state_dict_file(path)


def test_missing_t5_says_how_to_get_it(tmp_path, golden_dir):
    model_dir = tmp_path / "model"
    model_dir.mkdir()
    for name in ("state_dict.bin", "compression_state_dict.bin"):
        shutil.copy(golden_dir / name, model_dir / name)
    (model_dir / "tiny_encodec_32khz").symlink_to(golden_dir / "tiny_encodec_32khz")
    with pytest.raises(CheckpointError, match="jasco-bridge weights download"):
        JascoEngine.from_pretrained(model_dir, t5=str(tmp_path / "no-t5-here"), device="cpu")


def test_compression_pointer_and_full_form(tmp_path, golden_dir):
    assert load_compression_file(golden_dir / "compression_state_dict.bin") == "tiny_encodec_32khz"
    full = tmp_path / "compression_state_dict.bin"
    torch.save({"best_state": {}, "xp.cfg": "", "exported": True}, full)
    with pytest.raises(CheckpointError, match="pointer form"):
        load_compression_file(full)


def test_released_encodec_pointer_needs_no_hub(tmp_path):
    from engine.codec import encodec_config

    config = encodec_config("facebook/encodec_32khz", tmp_path)
    assert (config.hidden_size, config.num_filters, config.codebook_size) == (128, 64, 2048)
    assert list(config.upsampling_ratios) == [8, 5, 4, 4]


@pytest.mark.parametrize(
    ("melody_dim", "keys", "parameters"), [(0, 419, 404_728_114), (16, 421, 404_745_362)]
)
def test_released_400m_layout_has_the_spec_key_and_parameter_counts(melody_dim, keys, parameters):
    """The spec's totals for the released 400M models, checked on shape-only (meta) modules."""
    import math
    from pathlib import Path

    from engine.checkpoint import expected_shapes
    from engine.codec import ENCODEC_32KHZ, CompressionModel, encodec_config
    from engine.conditions import ConditionProvider
    from engine.config import JascoConfig
    from engine.flow_model import FlowMatchingTransformer

    config = JascoConfig(
        dim=1024, num_heads=16, num_layers=24, hidden_scale=4.0, flow_dim=128, chords_dim=16,
        drums_dim=2, melody_dim=melody_dim, text_model="t5-base", text_dim=768, chords_card=194,
        drums_blur_factor=3, latent_mean=-0.0074, latent_std=4.0102,
        frame_rate_hz=50.0, segment_seconds=10.0, sample_rate=32000, bias_ff=False,
        bias_attn=False, bias_proj=False, norm_first=True, text_cfg_drops=("chords", "self_wav"),
    )  # fmt: skip
    with torch.device("meta"):
        codec = CompressionModel(encodec_config(ENCODEC_32KHZ, Path("/nonexistent")))
        modules = {
            "": FlowMatchingTransformer(config),
            "condition_provider.": ConditionProvider(config, codec),
        }
    shapes = expected_shapes(modules)
    outside_codec = {k: s for k, s in shapes.items() if ".compression_model." not in k}
    assert len(shapes) == keys and len(shapes) - len(outside_codec) == 116
    assert sum(math.prod(s) for s in outside_codec.values()) == parameters
    assert sum(p.numel() for p in codec.parameters()) == 56_884_674
