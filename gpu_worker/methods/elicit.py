"""elicit: unsupervised elicitation from the strong features, with weak labels only to name the clusters.

The strong model's own geometry proposes the classes: k-means over many clusters (or, for two
classes, the top principal direction of the pool, a CCS-like single direction). Weak labels
only decide which class each cluster (or direction sign) stands for, so weak errors inside a
cluster are outvoted.
"""

from __future__ import annotations

from typing import Annotated, Literal

import msgspec
import numpy as np
from sklearn.cluster import KMeans  # type: ignore[import-untyped]
from sklearn.decomposition import PCA  # type: ignore[import-untyped]

from gpu_worker.heads import one_hot
from gpu_worker.methods.base import MethodInput, Params, register_method
from gpu_worker.methods.common import prior_hard, train_soft
from gpu_worker.models.base import Array


class ElicitParams(Params, frozen=True, kw_only=True):
    """``mode``: k-means clusters or the top principal direction; ``mix``: weight of the elicited labels."""

    mode: Literal["kmeans", "pca"] = "kmeans"
    clusters_per_class: Annotated[int, msgspec.Meta(ge=1, le=50)] = 8
    dims: Annotated[int, msgspec.Meta(ge=1, le=256)] = 32
    mix: Annotated[float, msgspec.Meta(ge=0, le=1)] = 0.7


def _kmeans_labels(z: Array, weak: Array, k: int, seed: int) -> np.ndarray:
    assign = KMeans(n_clusters=k, n_init=3, random_state=seed).fit_predict(z)
    mean = np.stack([weak[assign == c].mean(0) if (assign == c).any() else weak.mean(0) for c in range(k)])
    # A cluster is named by its weak-label mass relative to the weak prior, so a big class does not win all.
    return np.asarray((mean / weak.mean(0).clip(1e-6)).argmax(1)[assign], dtype=np.int64)


@register_method(
    "elicit", ElicitParams, "unsupervised clusters/direction of strong features, named by weak labels"
)
def run(inp: MethodInput, params: ElicitParams, seed: int) -> Array:
    """Elicit pool labels from the strong features, mix with weak labels, fit, predict eval."""
    n = len(inp.x_pool)
    x_all = np.concatenate([inp.x_pool, inp.x_eval])
    dims = min(params.dims, x_all.shape[1], len(x_all) - 1)
    z = PCA(n_components=dims, random_state=seed).fit_transform(x_all)[:n].astype(np.float32)
    weak = inp.weak_pool
    if params.mode == "pca" and inp.n_classes == 2:
        score = z[:, 0] * np.sign(np.corrcoef(z[:, 0], weak[:, 1])[0, 1] or 1.0)
        elicited = prior_hard(np.stack([-score, score], 1), weak.mean(0))
    else:
        elicited = _kmeans_labels(z, weak, min(n, params.clusters_per_class * inp.n_classes), seed)
    target = params.mix * one_hot(elicited, inp.n_classes) + (1 - params.mix) * one_hot(
        inp.weak_labels, inp.n_classes
    )
    return train_soft(inp, target.astype(np.float32), seed).probs(inp.x_eval)
