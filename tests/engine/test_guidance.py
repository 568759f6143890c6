"""Multi-source CFG: the reference's term plan (pruning quirk included) and the combination."""

import pytest
import torch

from engine.errors import ConditioningError
from engine.guidance import combine_terms, guided, plan_cfg_terms


@pytest.mark.parametrize(
    ("cfg_all", "cfg_text", "expected"),
    [
        (5.0, 0.0, [("all", 5.0), ("null", -4.0)]),
        (1.25, 2.5, [("all", 1.25), ("text", 2.5), ("null", -2.75)]),
        (1.5, 3.0, [("all", 1.5), ("text", 3.0), ("null", -3.5)]),
        (0.0, 5.0, [("text", 5.0), ("null", -4.0)]),
        (3.0, 1.0, [("all", 3.0), ("text", 1.0), ("null", -3.0)]),
        # the quirk: the term after a removed one is never examined and survives at weight 0
        (0.0, 0.0, [("text", 0.0), ("null", 1.0)]),
        (1.0, 0.0, [("all", 1.0), ("null", 0.0)]),
        (0.0, 1.0, [("text", 1.0)]),
    ],
)
def test_plan_matches_the_reference_table(cfg_all, cfg_text, expected):
    assert list(plan_cfg_terms(cfg_all, cfg_text).items()) == expected


def test_weights_always_sum_to_one_before_pruning():
    for cfg_all, cfg_text in [(2.0, 0.5), (0.3, 0.3), (7.0, -1.0)]:
        terms = plan_cfg_terms(cfg_all, cfg_text)
        assert sum(terms.values()) == pytest.approx(1.0)


def fields(batch=2):
    generator = torch.Generator().manual_seed(1)
    return [torch.randn(batch, 4, 3, generator=generator) for _ in range(3)]


@pytest.mark.parametrize(("cfg_all", "cfg_text"), [(5.0, 0.0), (1.25, 2.5), (3.0, 1.0), (0.0, 5.0)])
def test_combination_equals_the_guidance_formula(cfg_all, cfg_text):
    v_all, v_text, v_null = fields()
    terms = plan_cfg_terms(cfg_all, cfg_text)
    by_kind = {"all": v_all, "text": v_text, "null": v_null}
    batched = torch.cat([by_kind[kind] for kind in terms])
    expected = v_null + cfg_all * (v_all - v_null) + cfg_text * (v_text - v_null)
    combined = combine_terms(batched, tuple(terms.values()))
    torch.testing.assert_close(combined, expected, rtol=1e-5, atol=1e-5)


def test_a_single_term_is_returned_unweighted():
    (v,) = fields()[:1]
    terms = plan_cfg_terms(0.0, 1.0)
    assert combine_terms(v, tuple(terms.values())) is v


def test_guided_runs_every_term_in_one_batched_call():
    calls = []

    def model(z, t):
        calls.append(z.shape[0])
        return z * torch.arange(1, z.shape[0] + 1, dtype=z.dtype)[:, None, None]

    terms = plan_cfg_terms(1.25, 2.5)
    z = torch.ones(2, 4, 3)
    v = guided(model, tuple(terms.values()))(z, torch.zeros(1))
    assert calls == [6]
    # rows 0-1 scaled by 1,2 (all), 2-3 by 3,4 (text), 4-5 by 5,6 (null)
    expected_row0 = 1.25 * 1 + 2.5 * 3 - 2.75 * 5
    torch.testing.assert_close(v[0], torch.full((4, 3), expected_row0))


def test_unknown_term_kind_is_refused():
    from engine.conditions import ConditionInputs, rows_for_terms

    with pytest.raises(ConditioningError, match="kind"):
        rows_for_terms([ConditionInputs("a")], {"drums": 1.0}, _config(melody=False))


def _config(melody: bool):
    from engine.config import JascoConfig

    drops = ("chords", "melody", "self_wav") if melody else ("chords", "self_wav")
    return JascoConfig(
        dim=8, num_heads=2, num_layers=2, hidden_scale=4, flow_dim=4, chords_dim=16, drums_dim=2,
        melody_dim=16 if melody else 0, text_model="t5-base", text_dim=768, chords_card=194,
        drums_blur_factor=3, latent_mean=0.0, latent_std=1.0,
        frame_rate_hz=50.0, segment_seconds=1.0, sample_rate=32000, text_cfg_drops=drops,
        bias_ff=False, bias_attn=False, bias_proj=False, norm_first=True,
    )  # fmt: skip


def test_rows_are_term_major_and_null_the_right_conditions():
    from engine.conditions import ConditionInputs, rows_for_terms

    chords = torch.full((50,), 7)
    drums = torch.ones(32000)
    melody = torch.ones(53, 50)
    inputs = [
        ConditionInputs("a", chords, drums, melody),
        ConditionInputs("b", chords, drums, melody),
    ]
    rows = rows_for_terms(inputs, plan_cfg_terms(1.25, 2.5), _config(melody=True))
    assert [r.text for r in rows] == ["a", "b", "a", "b", "", ""]
    all_row, text_row, null_row = rows[0], rows[2], rows[4]
    assert torch.equal(all_row.chords, chords) and all_row.drums is drums
    assert torch.equal(text_row.chords, torch.full((50,), 194)) and text_row.drums is None
    assert not text_row.melody.any() and not null_row.melody.any()
    assert torch.equal(null_row.chords, torch.full((50,), 194)) and null_row.drums is None


def test_melody_without_chords_is_kept_in_the_null_term_like_the_reference():
    from engine.conditions import ConditionInputs, rows_for_terms

    melody = torch.ones(53, 50)
    rows = rows_for_terms(
        [ConditionInputs("a", None, None, melody)], plan_cfg_terms(1.25, 2.5), _config(True)
    )
    assert all(row.chords is None for row in rows)
    assert all(torch.equal(row.melody, melody) for row in rows)
    assert [row.text for row in rows] == ["a", "a", ""]


@pytest.mark.parametrize(
    ("field", "value", "named"),
    [
        ("chords", torch.zeros(2, 50, dtype=torch.long), "chords"),
        ("chords", torch.zeros(50), "integer"),
        ("drums", torch.zeros(2, 100), "mono"),
        ("melody", torch.zeros(12, 50), "53"),
    ],
)
def test_condition_inputs_refuse_wrong_shapes(field, value, named):
    from engine.conditions import ConditionInputs

    with pytest.raises(ConditioningError, match=named):
        ConditionInputs(**{field: value})


@pytest.mark.parametrize("frames", [0, 1])
def test_a_melody_of_at_most_one_frame_collates_as_the_null_melody(frames):
    # The reference replaces such a melody by zeros [53, T] (the projection bias at every frame);
    # padding the projected frame(s) with zeros instead would drop the bias.
    from engine.conditions import ConditionInputs, _collate_melody

    rows = [ConditionInputs("a", None, None, torch.ones(53, frames))]
    collated = _collate_melody(rows, 50, torch.device("cpu"))
    assert torch.equal(collated, torch.zeros(1, 53, 50))
