"""ensemble: average heads trained with different seeds on bootstrap resamples and feature subsets."""

from __future__ import annotations

from typing import Annotated

import msgspec
import numpy as np

from gpu_worker.heads import fit_labels
from gpu_worker.methods.base import MethodInput, Params, register_method
from gpu_worker.models.base import Array


class EnsembleParams(Params, frozen=True, kw_only=True):
    """``members`` heads, each on a ``sample`` fraction of the pool and ``features`` fraction of dims."""

    members: Annotated[int, msgspec.Meta(ge=1, le=32)] = 5
    sample: Annotated[float, msgspec.Meta(gt=0, le=1)] = 0.8
    features: Annotated[float, msgspec.Meta(gt=0, le=1)] = 0.5


@register_method("ensemble", EnsembleParams, "seed ensemble of heads on resampled pool and feature subsets")
def run(inp: MethodInput, params: EnsembleParams, seed: int) -> Array:
    """Fit the members, average their eval probabilities."""
    rng = np.random.default_rng(seed)
    n, d = inp.x_pool.shape
    labels = inp.weak_labels
    total = np.zeros((len(inp.x_eval), inp.n_classes), dtype=np.float32)
    for m in range(params.members):
        rows = rng.choice(n, size=max(2, round(params.sample * n)), replace=False)
        cols = np.sort(rng.choice(d, size=max(1, round(params.features * d)), replace=False))
        head = fit_labels(
            inp.x_pool[np.ix_(rows, cols)], labels[rows], inp.n_classes, cfg=inp.head, seed=seed + m
        )
        total += head.probs(np.ascontiguousarray(inp.x_eval[:, cols]))
    return np.asarray(total / params.members, dtype=np.float32)
