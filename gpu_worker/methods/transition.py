"""transition: forward loss correction with a weak-label noise matrix estimated on the strong side.

T[i, j] = P(weak = j | true = i) is estimated from anchor points: pool examples an out-of-fold
strong head is most confident about stand in for the true class. The student is then trained so
that its predictions, pushed through T, match the weak labels (Patrini et al. 2017).
"""

from __future__ import annotations

from typing import Annotated

import msgspec
import numpy as np
import torch

from gpu_worker.heads import fit_head
from gpu_worker.methods.base import MethodInput, Params, register_method
from gpu_worker.methods.common import cross_fit
from gpu_worker.models.base import Array


class TransitionParams(Params, frozen=True, kw_only=True):
    """``anchor``: fraction of most confident out-of-fold predictions per class used to estimate T."""

    anchor: Annotated[float, msgspec.Meta(gt=0, le=1)] = 0.2
    folds: Annotated[int, msgspec.Meta(ge=2, le=20)] = 3


def estimate_transition(oof: Array, weak: np.ndarray, n_classes: int, anchor: float) -> Array:
    """Row-stochastic ``(K, K)`` noise matrix from the most confident out-of-fold predictions."""
    pred = oof.argmax(1)
    t = np.full((n_classes, n_classes), 1e-3, dtype=np.float64)
    for i in range(n_classes):
        rows = np.flatnonzero(pred == i)
        rows = rows[np.argsort(-oof[rows, i], kind="stable")[: max(1, round(anchor * len(rows)))]]
        t[i] += np.bincount(weak[rows], minlength=n_classes)
    return np.asarray(t / t.sum(1, keepdims=True), dtype=np.float32)


@register_method(
    "transition", TransitionParams, "forward noise correction with an anchor-estimated weak-noise matrix"
)
def run(inp: MethodInput, params: TransitionParams, seed: int) -> Array:
    """Estimate T, fit with the forward-corrected loss, predict eval."""
    weak = inp.weak_labels
    oof = cross_fit(inp, weak, params.folds, seed)
    t = torch.from_numpy(estimate_transition(oof, weak, inp.n_classes, params.anchor))
    y = torch.from_numpy(weak)

    def loss(logits: torch.Tensor) -> torch.Tensor:
        noisy = torch.softmax(logits, -1) @ t
        return -torch.log(noisy.gather(1, y[:, None]).clamp(min=1e-8)).mean()

    return fit_head(inp.x_pool, inp.n_classes, loss, cfg=inp.head, seed=seed).probs(inp.x_eval)
