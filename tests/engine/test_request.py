"""GenerationRequest refuses what no renderer can use, naming the field."""

import pytest

from engine.errors import ConditioningError
from engine.preview import PreviewEngine
from engine.request import GenerationRequest


@pytest.mark.parametrize("seed", [-1, 2**64, 1.5])
def test_a_seed_no_renderer_can_use_is_refused(seed):
    # A negative seed used to reach the preview's numpy generator as a bare ValueError.
    with pytest.raises(ConditioningError, match="seed must be a whole number"):
        GenerationRequest(seed=seed)


def test_the_largest_seed_renders():
    result = PreviewEngine({}).generate(GenerationRequest(seed=2**64 - 1, duration_seconds=0.1))
    assert len(result.audio) == round(0.1 * result.sample_rate)
