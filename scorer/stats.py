"""Means and t-intervals over a method's seeds."""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence


@functools.lru_cache(maxsize=256)
def _t_quantile(confidence: float, dof: int) -> float:
    # Imported on first use: scipy.stats costs ~2 s to import, scipy.special a fraction of that.
    from scipy.special import stdtrit  # type: ignore[import-untyped]

    return float(stdtrit(dof, 0.5 + confidence / 2))


def preload() -> None:
    """Import what the intervals need now (~0.3 s), not on the first verified result."""
    _t_quantile(0.95, 2)


def mean_ci(values: Sequence[float], confidence: float = 0.95) -> tuple[float, tuple[float, float] | None]:
    """The mean and a two-sided Student-t interval (None with fewer than two finite values)."""
    finite = [v for v in values if math.isfinite(v)]
    n = len(finite)
    if not n:
        return math.nan, None
    mean = math.fsum(finite) / n
    if n < 2:
        return mean, None
    sd = math.sqrt(math.fsum((v - mean) ** 2 for v in finite) / (n - 1))
    half = _t_quantile(confidence, n - 1) * sd / math.sqrt(n)
    return mean, (mean - half, mean + half)
