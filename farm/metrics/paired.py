"""A gain with its spread: the mean of paired differences and a t interval around it.

The evaluator trains real alone and real + synthetic with the same classifier seeds, so the
seed's own luck cancels in each difference (real + synthetic minus real, seed by seed). With
few seeds the t distribution, not the normal, gives the interval's width (three seeds: 4.30
standard errors each side at 95%).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from scipy import stats


def mean_and_interval(values: Sequence[float], level: float = 0.95) \
        -> tuple[float, tuple[float, float] | None]:
    """(mean, (low, high)) of `values` at `level`; no interval from a single value."""
    values = [float(v) for v in values]
    if not values:
        raise ValueError("no values")
    mean = sum(values) / len(values)
    if len(values) < 2:
        return mean, None
    half = stats.t.ppf(0.5 + level / 2, len(values) - 1) * spread(values) / math.sqrt(len(values))
    return mean, (mean - half, mean + half)


def paired_gain(treated: Sequence[float], base: Sequence[float], level: float = 0.95) -> dict:
    """{mean, ci, per_seed} of treated - base, paired by position (the classifier seed)."""
    if len(treated) != len(base):
        raise ValueError(f"paired figures need the same seeds: {len(treated)} and {len(base)}")
    diffs = [a - b for a, b in zip(treated, base)]
    mean, ci = mean_and_interval(diffs, level)
    return {"mean": mean, "ci": None if ci is None else [ci[0], ci[1]], "per_seed": diffs}


def spread(values: Sequence[float]) -> float:
    """Sample standard deviation (0 for a single value)."""
    values = [float(v) for v in values]
    if len(values) < 2:
        return 0.0
    mean = sum(values) / len(values)
    return math.sqrt(sum((v - mean) ** 2 for v in values) / (len(values) - 1))
