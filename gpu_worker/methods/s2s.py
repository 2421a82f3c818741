"""s2s: strong-to-strong relabelling with cross-fitting.

The pool is cut into folds; a strong head trained on the other folds' weak labels relabels each fold.
Because no head ever scores examples it was trained on, it cannot simply memorise the weak labels
back, so its out-of-fold labels carry what the strong features generalise. ``mode="filter"`` drops
examples where the out-of-fold head disagrees with the weak label instead of relabelling them.
"""

from __future__ import annotations

from typing import Annotated, Literal

import msgspec
import numpy as np

from gpu_worker.methods.base import MethodInput, Params, register_method
from gpu_worker.methods.common import cross_fit, prior_hard, train_hard
from gpu_worker.models.base import Array


class S2SParams(Params, frozen=True, kw_only=True):
    """``folds`` for cross-fitting, ``rounds`` of relabelling, ``mode`` relabel or filter."""

    folds: Annotated[int, msgspec.Meta(ge=2, le=20)] = 3
    rounds: Annotated[int, msgspec.Meta(ge=1, le=5)] = 2
    mode: Literal["relabel", "filter"] = "relabel"


@register_method("s2s", S2SParams, "strong-to-strong: out-of-fold strong heads relabel (or filter) the pool")
def run(inp: MethodInput, params: S2SParams, seed: int) -> Array:
    """Relabel the pool with out-of-fold heads for a few rounds, then fit on it and predict eval."""
    weak = inp.weak_labels
    prior = np.bincount(weak, minlength=inp.n_classes) / len(weak)
    labels = weak
    for r in range(params.rounds):
        oof = prior_hard(cross_fit(inp, labels, params.folds, seed + 97 * r), prior)
        if params.mode == "filter":
            rows = np.flatnonzero(oof == weak)
            return train_hard(inp, weak, seed, rows=rows).probs(inp.x_eval)
        labels = oof
    return train_hard(inp, labels, seed).probs(inp.x_eval)
