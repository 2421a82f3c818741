"""gce and sce: noise-robust losses on the weak hard labels.

GCE (Zhang & Sabuncu 2018): (1 - p_y**q) / q, between CE (q→0) and MAE (q=1).
SCE (Wang et al. 2019): alpha * CE + beta * reverse CE, with log 0 clipped to ``-A``.
"""

from __future__ import annotations

from typing import Annotated

import msgspec
import torch

from gpu_worker.heads import fit_head, one_hot
from gpu_worker.methods.base import MethodInput, Params, register_method
from gpu_worker.models.base import Array


class GceParams(Params, frozen=True, kw_only=True):
    """``q`` in (0, 1]."""

    q: Annotated[float, msgspec.Meta(gt=0, le=1)] = 0.7


class SceParams(Params, frozen=True, kw_only=True):
    """Weights of CE and reverse CE, and the clip ``A`` of log 0."""

    alpha: Annotated[float, msgspec.Meta(ge=0, le=10)] = 0.5
    beta: Annotated[float, msgspec.Meta(ge=0, le=10)] = 1.0
    clip: Annotated[float, msgspec.Meta(gt=0, le=20)] = 4.0


@register_method("gce", GceParams, "generalised cross-entropy on weak hard labels (noise-robust)")
def run_gce(inp: MethodInput, params: GceParams, seed: int) -> Array:
    """Fit with GCE, predict eval."""
    y = torch.from_numpy(inp.weak_labels)

    def loss(logits: torch.Tensor) -> torch.Tensor:
        py = torch.softmax(logits, -1).gather(1, y[:, None]).squeeze(1).clamp(min=1e-6)
        return ((1 - py**params.q) / params.q).mean()

    return fit_head(inp.x_pool, inp.n_classes, loss, cfg=inp.head, seed=seed).probs(inp.x_eval)


@register_method("sce", SceParams, "symmetric cross-entropy on weak hard labels (noise-robust)")
def run_sce(inp: MethodInput, params: SceParams, seed: int) -> Array:
    """Fit with SCE, predict eval."""
    t = torch.from_numpy(one_hot(inp.weak_labels, inp.n_classes))
    log_t = torch.log(t.clamp(min=float(torch.exp(torch.tensor(-params.clip)))))

    def loss(logits: torch.Tensor) -> torch.Tensor:
        logp = torch.log_softmax(logits, -1)
        ce = -(t * logp).sum(-1).mean()
        rce = -(logp.exp() * log_t).sum(-1).mean()
        return params.alpha * ce + params.beta * rce

    return fit_head(inp.x_pool, inp.n_classes, loss, cfg=inp.head, seed=seed).probs(inp.x_eval)
