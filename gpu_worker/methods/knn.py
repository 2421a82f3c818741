"""knn: relabel or filter the pool by a vote of weak labels among neighbours in strong-feature space.

The weak errors are roughly independent of where an example sits in the strong model's geometry,
so a neighbourhood vote averages them out (a probe on strong features without any gold label).
"""

from __future__ import annotations

from typing import Annotated, Literal

import msgspec
import numpy as np
import torch

from gpu_worker.methods.base import MethodInput, Params, register_method
from gpu_worker.methods.common import train_hard, train_soft
from gpu_worker.models.base import Array


class KnnParams(Params, frozen=True, kw_only=True):
    """``k`` neighbours (cosine); ``mode``: relabel by vote, filter disagreements, or soft vote targets."""

    k: Annotated[int, msgspec.Meta(ge=1, le=200)] = 25
    mode: Literal["relabel", "filter", "soft"] = "relabel"
    use_weak_probs: bool = True


def knn_vote(x: Array, votes: Array, k: int, chunk: int = 2048) -> Array:
    """Average ``votes`` rows of each point's ``k`` nearest other points (cosine similarity)."""
    xt = torch.nn.functional.normalize(torch.from_numpy(x), dim=1)
    vt = torch.from_numpy(votes)
    out = np.zeros_like(votes)
    for s in range(0, len(x), chunk):
        sim = xt[s : s + chunk] @ xt.T
        rows = torch.arange(sim.shape[0])
        sim[rows, rows + s] = -2.0  # never vote for yourself
        idx = sim.topk(k, dim=1).indices
        out[s : s + chunk] = vt[idx].mean(1).numpy()
    return out


@register_method("knn", KnnParams, "k-nearest-neighbour vote of weak labels in strong-feature space")
def run(inp: MethodInput, params: KnnParams, seed: int) -> Array:
    """Relabel/filter by neighbourhood vote, fit, predict eval."""
    weak = inp.weak_labels
    votes_in = inp.weak_pool if params.use_weak_probs else np.eye(inp.n_classes, dtype=np.float32)[weak]
    vote = knn_vote(
        inp.x_pool, np.ascontiguousarray(votes_in, dtype=np.float32), min(params.k, len(weak) - 1)
    )
    if params.mode == "soft":
        return train_soft(inp, vote, seed).probs(inp.x_eval)
    voted = vote.argmax(1)
    if params.mode == "filter":
        return train_hard(inp, weak, seed, rows=np.flatnonzero(voted == weak)).probs(inp.x_eval)
    return train_hard(inp, voted, seed).probs(inp.x_eval)
