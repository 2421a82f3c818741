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
    return mean, _t_interval(mean, sd, n, confidence)


def _t_interval(mean: float, sd: float, n: int, confidence: float) -> tuple[float, float]:
    half = _t_quantile(confidence, n - 1) * sd / math.sqrt(n)
    return mean - half, mean + half


class RunningMean:
    """Mean and t-interval of values added one at a time (Welford's update): O(1) per value.

    Gives what ``mean_ci`` gives over the same finite values, to rounding.
    """

    __slots__ = ("_m2", "mean", "n")

    def __init__(self) -> None:
        self.n, self.mean, self._m2 = 0, 0.0, 0.0

    def add(self, value: float) -> None:
        if not math.isfinite(value):
            return
        self.n += 1
        delta = value - self.mean
        self.mean += delta / self.n
        self._m2 += delta * (value - self.mean)

    def ci(self, confidence: float = 0.95) -> tuple[float, tuple[float, float] | None]:
        """As ``mean_ci``: the mean (NaN with no values) and the interval (None under two values)."""
        if self.n == 0:
            return math.nan, None
        if self.n < 2:
            return self.mean, None
        sd = math.sqrt(max(self._m2, 0.0) / (self.n - 1))
        return self.mean, _t_interval(self.mean, sd, self.n, confidence)
