"""What every metric module shares: the unparsed convention and the metric error.

Kept in its own module so :mod:`cuelab.core.metrics.classification`, :mod:`cuelab.core.metrics.text`
and :mod:`cuelab.core.metrics.tags` can all use it without importing each other;
import these names from :mod:`cuelab.core.metrics`.
"""

from __future__ import annotations

import math

from cuelab.core.errors import CueLabError

UNPARSED = "unparsed"


class MetricsError(CueLabError):
    """A metric cannot be computed from the given data (empty, mismatched, invalid)."""


def is_unparsed(prediction: object) -> bool:
    """True for a prediction that could not be parsed (None, NaN or ``"unparsed"``)."""
    if prediction is None:
        return True
    if isinstance(prediction, float) and math.isnan(prediction):
        return True
    return isinstance(prediction, str) and prediction == UNPARSED
