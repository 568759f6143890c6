"""Parsing the checkpoint's xp.cfg into JascoConfig, and refusing what the engine cannot run."""

import pytest
import torch

from engine.config import JascoConfig, parse_xp_cfg
from engine.errors import CheckpointError


@pytest.fixture(scope="module")
def golden_cfg(golden_dir) -> str:
    package = torch.load(golden_dir / "state_dict.bin", map_location="cpu", weights_only=True)
    return package["xp.cfg"]


def test_golden_cfg_resolves_interpolations_from_the_root(golden_cfg):
    config = parse_xp_cfg(golden_cfg)
    # flow_dim and drums_dim are ${...} interpolations in the file
    assert (config.dim, config.num_heads, config.num_layers) == (64, 4, 4)
    assert (config.flow_dim, config.chords_dim, config.drums_dim, config.melody_dim) == (
        32,
        16,
        2,
        0,
    )
    assert config.ffn_dim == 256
    assert config.null_chord_index == 194
    assert config.frames == 500
    assert config.segment_samples == 320000
    assert config.input_dim == 50
    assert config.text_model == "t5-base" and config.text_dim == 768
    assert (config.latent_mean, config.latent_std) == (0.0464, 0.9982)
    assert config.time_embedding_dim == 128
    assert config.norm_first and not config.skip_connections and not config.bias_attn
    assert config.text_cfg_drops == ("chords", "self_wav")


@pytest.mark.parametrize(
    ("line", "replacement", "named"),
    [
        ("  causal: false", "  causal: true", "causal"),
        ("  xpos: false", "  xpos: true", "xpos"),
        ("  kv_repeat: 1", "  kv_repeat: 2", "kv_repeat"),
        ("  positional_embedding: sin", "  positional_embedding: rope", "positional_embedding"),
        ("  norm: layer_norm", "  norm: rms_norm", "norm"),
        ("  activation: gelu", "  activation: relu", "activation"),
        (
            "  cross_attention_pos_emb: false",
            "  cross_attention_pos_emb: true",
            "cross_attention_pos_emb",
        ),
        (
            "  skip_connections: false",
            "  skip_connections: false\n  rotary_base: 10",
            "rotary_base",
        ),
        ("    model: chords_emb", "    model: chroma_stem", "chords"),
    ],
)
def test_architecture_changes_are_refused_by_name(golden_cfg, line, replacement, named):
    assert line in golden_cfg
    with pytest.raises(CheckpointError, match=named):
        parse_xp_cfg(golden_cfg.replace(line, replacement, 1))


def test_training_only_keys_are_accepted(golden_cfg):
    text = golden_cfg.replace(
        "  skip_connections: false", "  skip_connections: false\n  emb_lr: 0.1"
    )
    assert parse_xp_cfg(text).dim == 64


def test_melody_variant_drops_melody_in_the_text_term(golden_cfg):
    text = (
        golden_cfg.replace(
            "  symbolic:\n    chords: 0.3", "  symbolic:\n    chords: 0.5\n    melody: 0.5"
        )
        .replace(
            "conditioners:\n",
            "conditioners:\n  melody:\n    model: melody\n    melody:\n      out_dim: 16\n",
            1,
        )
        .replace("  - self_wav\n", "  - self_wav\n  - melody\n", 1)
    )
    text = text.replace(
        "  drums_dim: ${conditioners.self_wav.drum_latents.out_dim}",
        "  drums_dim: ${conditioners.self_wav.drum_latents.out_dim}\n"
        "  melody_dim: ${conditioners.melody.melody.out_dim}",
    )
    config = parse_xp_cfg(text)
    assert config.melody_dim == 16 and config.has_melody
    assert config.input_dim == 32 + 16 + 2 + 16
    assert set(config.text_cfg_drops) == {"chords", "melody", "self_wav"}


def test_missing_values_outside_the_read_subtrees_are_ignored(golden_cfg):
    # the released configs carry '???' in fields the builder never reads
    assert "max_sample_rate: ???" in golden_cfg
    parse_xp_cfg(golden_cfg)


def test_not_a_yaml_document_is_a_checkpoint_error():
    with pytest.raises(CheckpointError, match="transformer_lm"):
        parse_xp_cfg("just: text")


def test_config_rejects_heads_that_do_not_divide_the_width(golden_cfg):
    config = parse_xp_cfg(golden_cfg)
    with pytest.raises(CheckpointError, match="divisible"):
        JascoConfig(**{**config.__dict__, "num_heads": 5})


def test_skip_connections_need_an_even_depth(golden_cfg):
    config = parse_xp_cfg(golden_cfg)
    with pytest.raises(CheckpointError, match="even num_layers"):
        JascoConfig(**{**config.__dict__, "skip_connections": True, "num_layers": 3})


def test_a_hidden_scale_too_small_for_one_unit_names_the_width(golden_cfg):
    config = parse_xp_cfg(golden_cfg)
    with pytest.raises(
        CheckpointError, match=r"hidden_scale=0\.001 gives a feed-forward width of 0"
    ):
        JascoConfig(**{**config.__dict__, "hidden_scale": 0.001})
