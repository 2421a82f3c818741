"""Helpers several methods share."""

from __future__ import annotations

import numpy as np

from gpu_worker.heads import LinearHead, fit_head, fit_labels, soft_ce
from gpu_worker.methods.base import MethodInput
from gpu_worker.models.base import Array


def sharpen(p: Array, temperature: float) -> Array:
    """Raise probabilities to ``1/temperature`` and renormalise (T<1 sharpens, T>1 flattens)."""
    q = np.power(np.clip(p, 1e-8, 1.0), 1.0 / temperature)
    return np.asarray(q / q.sum(1, keepdims=True), dtype=np.float32)


def top_fraction_per_class(conf: Array, labels: np.ndarray, n_classes: int, keep: float) -> np.ndarray:
    """Indices of the most confident ``keep`` fraction within each class (keeps the class balance)."""
    out = []
    for c in range(n_classes):
        idx = np.flatnonzero(labels == c)
        k = max(1, round(keep * len(idx))) if len(idx) else 0
        out.append(idx[np.argsort(-conf[idx], kind="stable")[:k]])
    return np.sort(np.concatenate(out))


def train_hard(
    inp: MethodInput,
    labels: np.ndarray,
    seed: int,
    rows: np.ndarray | None = None,
    weights: Array | None = None,
) -> LinearHead:
    """Fit a head on hard labels for (a subset of) the pool."""
    x = inp.x_pool if rows is None else inp.x_pool[rows]
    y = labels if rows is None else labels[rows]
    return fit_labels(x, y, inp.n_classes, weights=weights, cfg=inp.head, seed=seed)


def train_soft(inp: MethodInput, targets: Array, seed: int, weights: Array | None = None) -> LinearHead:
    """Fit a head on soft targets for the whole pool."""
    return fit_head(inp.x_pool, inp.n_classes, soft_ce(targets, weights), cfg=inp.head, seed=seed)


def prior_hard(p: Array, prior: np.ndarray) -> np.ndarray:
    """Hard labels whose class proportions follow ``prior`` (an adaptive threshold, not argmax).

    A fixed 0.5 threshold lets a drifting student harden everything into one class (TESTBED);
    for two classes, thresholding at the prior's quantile cannot.
    """
    if p.shape[1] == 2:
        thr = np.quantile(p[:, 1], 1.0 - float(prior[1]))
        return (p[:, 1] > thr).astype(np.int64)
    # K classes: one bias per class, nudged until the hard labels' class frequencies match the prior.
    # Scores are standardised first so the step size means the same for flat and for peaked inputs.
    z = np.log(np.clip(p, 1e-8, 1.0))
    z = (z - z.mean(1, keepdims=True)) / (z.std() + 1e-12)
    bias = np.zeros(p.shape[1])
    target = np.log(np.clip(prior, 1e-6, 1.0))
    for _ in range(100):
        freq = np.bincount((z + bias).argmax(1), minlength=p.shape[1]) / len(p)
        bias += 0.2 * (target - np.log(freq + 1e-3))
    return np.asarray((z + bias).argmax(1), dtype=np.int64)


def cross_fit(
    inp: MethodInput, labels: np.ndarray, folds: int, seed: int, weights: Array | None = None
) -> Array:
    """Out-of-fold student probabilities on the pool: each fold is predicted by a head that never saw it."""
    n = len(labels)
    fold = np.random.default_rng(seed).permutation(n) % folds
    out = np.zeros((n, inp.n_classes), dtype=np.float32)
    for f in range(folds):
        tr, te = np.flatnonzero(fold != f), np.flatnonzero(fold == f)
        w = None if weights is None else weights[tr]
        out[te] = train_hard(inp, labels, seed + f, rows=tr, weights=w).probs(inp.x_pool[te])
    return out
