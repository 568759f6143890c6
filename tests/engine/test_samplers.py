"""Samplers on fields with known solutions, progress totals and cancellation."""

import math

import pytest
import torch

from engine.errors import ConditioningError, GenerationCancelled
from engine.request import SAMPLER_NAMES
from engine.samplers import (
    DOPRI5_PROGRESS_UNITS,
    SAMPLERS,
    sample_dopri5,
    sample_euler,
    sample_midpoint,
)


def z0() -> torch.Tensor:
    return torch.randn(2, 5, 3, generator=torch.Generator().manual_seed(0), dtype=torch.float64)


def test_euler_on_a_constant_field_lands_on_z0_plus_c():
    c = torch.full((2, 5, 3), 0.75, dtype=torch.float64)
    start = z0()
    end = sample_euler(lambda z, t: c, start, steps=8)
    torch.testing.assert_close(end, start + c, rtol=0, atol=1e-12)


@pytest.mark.parametrize("steps", [1, 4, 10])
def test_euler_on_v_equals_z_gives_the_compound_growth(steps):
    start = z0()
    end = sample_euler(lambda z, t: z, start, steps=steps)
    torch.testing.assert_close(end, (1 + 1 / steps) ** steps * start, rtol=1e-12, atol=0)


def test_euler_times_are_float32_accumulated_like_the_reference():
    seen = []
    sample_euler(lambda z, t: seen.append(t.clone()) or torch.zeros_like(z), z0(), steps=10)
    expected = torch.zeros(1)
    for t in seen:
        assert t.dtype == torch.float32 and torch.equal(t, expected)
        expected = expected + 0.1
    assert seen[3].item() != 0.3  # 0.30000001192..., not k / n


def test_midpoint_is_exact_for_fields_linear_in_t():
    start = z0()
    end = sample_midpoint(lambda z, t: 3 * t.double() + 1 + 0 * z, start, steps=3)
    # z(1) = z0 + integral of (3t + 1) dt from 0 to 1 = z0 + 2.5
    torch.testing.assert_close(end, start + 2.5, rtol=0, atol=1e-6)


def test_dopri5_solves_exponential_growth_accurately():
    start = z0()
    end = sample_dopri5(lambda z, t: z, start, rtol=1e-8, atol=1e-8)
    torch.testing.assert_close(end, start * math.exp(1 - 1e-5), rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize(("name", "calls_per_step"), [("euler", 1), ("midpoint", 2)])
def test_fixed_step_samplers_count_calls_and_report_exact_progress(name, calls_per_step):
    calls, reports = [], []

    def field(z, t):
        calls.append(t)
        return torch.zeros_like(z)

    SAMPLERS[name](field, z0(), steps=7, progress=lambda s, n: reports.append((s, n)))
    assert len(calls) == 7 * calls_per_step
    assert reports == [(step, 7) for step in range(1, 8)]


def test_dopri5_progress_is_monotone_with_a_fixed_total_and_ends_complete():
    reports = []
    sample_dopri5(lambda z, t: -z, z0(), progress=lambda s, n: reports.append((s, n)))
    totals = {n for _, n in reports}
    steps = [s for s, _ in reports]
    assert totals == {DOPRI5_PROGRESS_UNITS}
    assert steps == sorted(steps)
    assert reports[-1] == (DOPRI5_PROGRESS_UNITS, DOPRI5_PROGRESS_UNITS)
    assert all(s < DOPRI5_PROGRESS_UNITS for s in steps[:-1])


@pytest.mark.parametrize("name", sorted(SAMPLERS))
def test_cancellation_stops_within_one_step(name):
    calls = []

    def field(z, t):
        calls.append(1)
        return torch.zeros_like(z)

    with pytest.raises(GenerationCancelled):
        SAMPLERS[name](field, z0(), steps=50, should_cancel=lambda: len(calls) >= 2)
    assert len(calls) <= 3


def test_cancel_before_the_first_step_runs_nothing():
    calls = []
    with pytest.raises(GenerationCancelled):
        sample_euler(lambda z, t: calls.append(1) or z, z0(), steps=3, should_cancel=lambda: True)
    assert calls == []


@pytest.mark.parametrize("steps", [0, -1, 2.5])
def test_bad_step_counts_are_refused(steps):
    with pytest.raises(ConditioningError, match="steps"):
        sample_euler(lambda z, t: z, z0(), steps=steps)


def test_the_sampler_table_offers_exactly_the_names_requests_accept():
    # request.py cannot import this torch module, so the names are kept twice; keep them equal.
    assert tuple(SAMPLERS) == SAMPLER_NAMES
