"""The number test every `midi` value object shares, so that all of them accept the same things.

An int or float counts, numpy scalars included (positions often come out of numpy arrays);
`True`/`False`, text, None, NaN and infinities do not. Each caller raises its own error, naming
its own field, when the test fails.
"""

from __future__ import annotations

import math
from numbers import Real


def is_finite_number(value: object) -> bool:
    """True for a finite real number that is not a bool: ``1``, ``0.5``, ``numpy.float32(2)``."""
    return isinstance(value, Real) and not isinstance(value, bool) and math.isfinite(value)
