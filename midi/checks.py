"""The number tests every `midi` value object shares, so that all of them accept the same things.

Python and numpy numbers both count (positions and pitches often come out of numpy arrays);
`True`/`False`, text and None never do, and neither do NaN and infinities. Each caller raises its
own error, naming its own field, when a test fails.
"""

from __future__ import annotations

import math
from numbers import Integral, Real


def is_finite_number(value: object) -> bool:
    """True for a finite real number that is not a bool: ``1``, ``0.5``, ``numpy.float32(2)``."""
    return isinstance(value, Real) and not isinstance(value, bool) and math.isfinite(value)


def is_whole_number(value: object) -> bool:
    """True for an integer that is not a bool: ``60``, ``numpy.int64(60)``; False for ``60.0``."""
    return isinstance(value, Integral) and not isinstance(value, bool)
