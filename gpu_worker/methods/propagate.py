"""propagate: label spreading (Zhou et al. 2004) of weak probabilities over a kNN graph of strong features.

Every text (pool, dev and final) is a node; edges join each node to its ``k`` nearest neighbours by
cosine similarity of the strong features. Weak probabilities are the initial labels; spreading
smooths them along the strong model's geometry, then a strong head is fit on the smoothed pool labels.
"""

from __future__ import annotations

from typing import Annotated

import msgspec
import numpy as np
import scipy.sparse as sp  # type: ignore[import-untyped]
import torch

from gpu_worker.methods.base import MethodInput, Params, register_method
from gpu_worker.methods.common import prior_hard, top_fraction_per_class, train_hard
from gpu_worker.models.base import Array


class PropagateParams(Params, frozen=True, kw_only=True):
    """``k`` neighbours; ``alpha`` in (0, 1): how far labels spread; ``keep``: fraction of the pool kept
    (most confident after spreading, per class); ``include_eval``: put dev/final texts in the graph too.

    Defaults from a sweep on code and roget (2 seeds): larger ``k`` and a confidence filter helped.
    """

    k: Annotated[int, msgspec.Meta(ge=1, le=200)] = 50
    alpha: Annotated[float, msgspec.Meta(gt=0, lt=1)] = 0.9
    iters: Annotated[int, msgspec.Meta(ge=1, le=200)] = 30
    keep: Annotated[float, msgspec.Meta(gt=0, le=1)] = 0.7
    include_eval: bool = False


def knn_graph(x: Array, k: int, chunk: int = 2048) -> sp.csr_matrix:
    """Symmetric, degree-normalised sparse kNN adjacency (cosine similarity, clipped at 0)."""
    xt = torch.nn.functional.normalize(torch.from_numpy(np.ascontiguousarray(x)), dim=1)
    n = len(xt)
    rows, cols, vals = [], [], []
    for s in range(0, n, chunk):
        sim = xt[s : s + chunk] @ xt.T
        r = torch.arange(sim.shape[0])
        sim[r, r + s] = -2.0  # no self-loops
        top = sim.topk(k, dim=1)
        rows.append(np.repeat(r.numpy() + s, k))
        cols.append(top.indices.reshape(-1).numpy())
        vals.append(top.values.reshape(-1).clamp(min=0.0).numpy())
    w = sp.csr_matrix((np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))), shape=(n, n))
    w = w.maximum(w.T)
    d = 1.0 / np.sqrt(np.maximum(np.asarray(w.sum(1)).ravel(), 1e-8))
    return sp.csr_matrix(sp.diags(d) @ w @ sp.diags(d))


def spread(graph: sp.csr_matrix, y0: Array, alpha: float, iters: int) -> Array:
    """Iterate ``F = (1 - alpha) Y0 + alpha S F`` and return row-normalised ``F``."""
    f = y0.astype(np.float64)
    for _ in range(iters):
        f = (1 - alpha) * y0 + alpha * (graph @ f)
    f = np.clip(f, 1e-8, None)
    return np.asarray(f / f.sum(1, keepdims=True), dtype=np.float32)


@register_method("propagate", PropagateParams, "label spreading of weak probs on a strong-feature kNN graph")
def run(inp: MethodInput, params: PropagateParams, seed: int) -> Array:
    """Spread weak labels over the graph, fit a head on the pool's spread labels, predict eval."""
    n = len(inp.x_pool)
    x = np.concatenate([inp.x_pool, inp.x_eval]) if params.include_eval else inp.x_pool
    y0 = np.concatenate([inp.weak_pool, inp.weak_eval]) if params.include_eval else inp.weak_pool
    # Centre on the prior, so spreading moves evidence rather than the majority class's base rate.
    prior = inp.weak_pool.mean(0)
    f = spread(
        knn_graph(x, min(params.k, len(x) - 1)),
        np.asarray(y0 - prior, dtype=np.float32) + 1.0,
        params.alpha,
        params.iters,
    )[:n]
    labels = prior_hard(f, prior)
    conf = f[np.arange(n), labels]
    rows = top_fraction_per_class(conf, labels, inp.n_classes, params.keep) if params.keep < 1 else None
    return train_hard(inp, labels, seed, rows=rows).probs(inp.x_eval)
