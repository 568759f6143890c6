"""Precision choice, the conditions cached per model, and variations batched in one forward."""

import numpy as np
import pytest
import torch

from engine.cache import LruCache
from engine.errors import DeviceError
from engine.jasco import JascoEngine, resolve_device
from engine.layers import attend
from engine.precision import native_bf16_flags, native_int8_flags, resolve_precision
from engine.quant import Int8Linear
from engine.request import GenerationRequest

CPU = torch.device("cpu")


def test_cpu_flags_are_read_from_cpuinfo(tmp_path):
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text("processor\t: 0\nflags\t\t: fpu sse2 avx512f avx512_bf16\n\n")
    assert native_bf16_flags(cpuinfo) == ("avx512_bf16",)
    cpuinfo.write_text("processor\t: 0\nflags\t\t: fpu sse2 avx2\n")
    assert native_bf16_flags(cpuinfo) == ()
    assert native_bf16_flags(tmp_path / "missing") == ()
    cpuinfo.write_text("processor\t: 0\nflags\t\t: fpu avx512_bf16 avx512_vnni\n")
    assert native_int8_flags(cpuinfo) == ("avx512_vnni",)


@pytest.mark.parametrize(
    ("requested", "flags", "name"),
    [
        ("auto", ("avx512_bf16",), "bf16"),
        ("auto", (), "fp32"),
        ("fp32", ("amx_bf16",), "fp32"),
        ("bf16", (), "bf16"),
    ],
)
def test_auto_is_bf16_only_where_the_cpu_runs_it_natively(requested, flags, name):
    precision = resolve_precision(requested, CPU, cpu_bf16_flags=flags)
    assert precision.name == name
    assert (flags[0] in precision.reason) if (requested == "auto" and flags) else True


def test_impossible_precisions_are_device_errors():
    with pytest.raises(DeviceError, match="fp16 is not supported on the CPU"):
        resolve_precision("fp16", CPU, cpu_bf16_flags=())
    with pytest.raises(DeviceError, match="auto, fp32, bf16, fp16, int8"):
        resolve_precision("double", CPU)


def test_int8_is_only_on_request_and_only_where_the_cpu_runs_it():
    both = {"cpu_bf16_flags": ("avx512_bf16",), "cpu_int8_flags": ("avx512_vnni",)}
    assert resolve_precision("auto", CPU, **both).name == "bf16"
    int8 = resolve_precision("int8", CPU, **both)
    assert (int8.name, int8.dtype) == ("int8", torch.bfloat16)
    assert "avx512_vnni" in int8.reason
    with pytest.raises(DeviceError, match="no int8 instructions: use auto"):
        resolve_precision("int8", CPU, cpu_bf16_flags=("avx512_bf16",), cpu_int8_flags=())
    with pytest.raises(DeviceError, match="no bf16 or int8 instructions"):
        resolve_precision("int8", CPU, cpu_bf16_flags=(), cpu_int8_flags=())
    with pytest.raises(DeviceError, match="int8 is a CPU precision: on cuda"):
        resolve_precision("int8", torch.device("cuda"))


def test_int8_projection_is_within_two_percent_of_the_float_one():
    torch.manual_seed(0)
    linear = torch.nn.Linear(256, 96, bias=True)
    x = torch.randn(3, 40, 256)
    x[0, 0] *= 50  # one loud frame gets its own scale and does not flatten the others
    projection = Int8Linear.from_linear(linear)
    assert projection.values.dtype == torch.int8
    with torch.inference_mode():
        exact = linear(x)
        for dtype, bound in ((torch.float32, 0.02), (torch.bfloat16, 0.025)):
            ours = projection(x.to(dtype))
            assert ours.dtype == dtype and ours.shape == (3, 40, 96)
            error = (ours.float() - exact).norm() / exact.norm()
            quiet = (ours[1:].float() - exact[1:]).norm() / exact[1:].norm()
            assert error < bound and quiet < bound
        with torch.autocast("cpu", dtype=torch.bfloat16):
            assert projection(x).dtype == torch.bfloat16  # as a float projection would be
        unbiased = Int8Linear(linear.weight)
        assert torch.equal(unbiased(-x), -unbiased(x))  # symmetric levels


def test_cpu_attention_in_bf16_matches_the_fused_kernel():
    torch.manual_seed(0)
    q, k, v = (torch.randn(2, 4, 50, 16) for _ in range(3))
    exact = torch.nn.functional.scaled_dot_product_attention(q, k, v)
    torch.testing.assert_close(attend(q, k, v), exact)  # fp32: the fused kernel itself
    ours = attend(q.bfloat16(), k.bfloat16(), v.bfloat16())
    assert ours.dtype == torch.bfloat16
    assert (ours.float() - exact).norm() / exact.norm() < 0.01


def test_an_unavailable_mps_names_the_devices_that_exist(monkeypatch):
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: False)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(DeviceError, match=r"no MPS here; use cpu$"):
        resolve_device("mps")


def test_lru_cache_keeps_the_most_recent_entries():
    cache = LruCache(2)
    cache.put("a", 1)
    cache.put("b", 2)
    assert cache.get("a") == 1  # "a" is now the most recent
    cache.put("c", 3)
    assert (cache.get("a"), cache.get("b"), cache.get("c"), len(cache)) == (1, None, 3, 2)


@pytest.fixture(scope="module")
def fp32_engine(golden_dir):
    return JascoEngine.from_pretrained(golden_dir, device="cpu", precision="fp32")


def request(**changes):
    rate = 32000
    drums = np.zeros(2 * rate, dtype=np.float32)
    drums[:: rate // 2] = 1.0
    base = dict(
        text="lofi hip hop groove",
        chord_indices=tuple([2] * 250 + [8] * 250),
        drums_wav=drums,
        duration_seconds=2.0,
        steps=3,
    )
    return GenerationRequest(**{**base, **changes})


def test_bf16_keeps_norms_in_fp32_and_stays_close_to_fp32(golden_dir, fp32_engine):
    bf16 = JascoEngine.from_pretrained(golden_dir, device="cpu", precision="bf16")
    layer = bf16.network.transformer.layers[0]
    assert layer.linear1.weight.dtype == torch.bfloat16
    assert layer.self_attn.in_proj_weight.dtype == torch.bfloat16
    assert layer.norm1.weight.dtype == torch.float32
    ours = bf16.generate(request(seed=5))
    reference = fp32_engine.generate(request(seed=5))
    assert (ours.precision, reference.precision) == ("bf16", "fp32")
    assert ours.audio.dtype == np.float32 and np.isfinite(ours.audio).all()
    error = np.linalg.norm(ours.audio - reference.audio) / np.linalg.norm(reference.audio)
    assert 0 < error < 0.05


@pytest.mark.skipif(
    not (native_bf16_flags() and native_int8_flags()), reason="this CPU has no native bf16/int8"
)
def test_int8_renders_close_to_fp32(golden_dir, fp32_engine):
    int8 = JascoEngine.from_pretrained(golden_dir, device="cpu", precision="int8")
    layer = int8.network.transformer.layers[0]
    assert isinstance(layer.linear1, Int8Linear) and isinstance(
        layer.self_attn.out_proj, Int8Linear
    )
    assert layer.norm1.weight.dtype == torch.float32
    ours = int8.generate(request(seed=5))
    reference = fp32_engine.generate(request(seed=5))
    assert ours.precision == "int8"
    assert ours.audio.dtype == np.float32 and np.isfinite(ours.audio).all()
    error = np.linalg.norm(ours.audio - reference.audio) / np.linalg.norm(reference.audio)
    assert 0 < error < 0.05


def test_prompt_states_and_silence_are_computed_once_per_model(golden_dir, monkeypatch):
    engine = JascoEngine.from_pretrained(golden_dir, device="cpu", precision="fp32")
    t5_rows, encoded = [], []
    hidden_states = engine.text_encoder.hidden_states
    codes = engine.codec.first_codebook_codes
    monkeypatch.setattr(
        engine.text_encoder,
        "hidden_states",
        lambda ids, m: t5_rows.append(1) or hidden_states(ids, m),
    )
    monkeypatch.setattr(
        engine.codec, "first_codebook_codes", lambda w: encoded.append(1) or codes(w)
    )
    first = engine.generate(request(seed=1))
    assert (len(t5_rows), len(encoded)) == (1, 2)  # the prompt; the stem and the silence
    again = engine.generate(request(seed=1))
    assert (len(t5_rows), len(encoded)) == (1, 2)  # all cached
    np.testing.assert_array_equal(first.audio, again.audio)
    other = request(seed=1, text="dark techno", drums_wav=request().drums_wav * 0.5)
    engine.generate(other)
    assert (len(t5_rows), len(encoded)) == (2, 3)  # new prompt, new stem; silence kept


def test_variations_in_one_batch_match_renders_one_by_one(fp32_engine):
    seeds = (3, 4)
    batched = fp32_engine.generate_variations(request(), seeds=seeds)
    assert len(batched) == len(seeds)
    for seed, result in zip(seeds, batched, strict=True):
        alone = fp32_engine.generate(request(seed=seed))
        np.testing.assert_allclose(result.audio, alone.audio, atol=1e-4, rtol=0)
    assert np.abs(batched[0].audio - batched[1].audio).max() > 1e-3


def test_warm_up_renders_once_and_leaves_the_silence_encoded(golden_dir):
    engine = JascoEngine.from_pretrained(golden_dir, device="cpu", precision="fp32")
    assert engine.warm_up() > 0
    silence = engine.provider.conditioners["self_wav"]._silence
    assert list(silence) == [engine.config.segment_samples]
