"""product: cross-entropy to the product of weak and student beliefs, a product of experts.

Where the strong student is already confident and the weak label is unsure, the product follows
the student; where both agree it sharpens. The student factor is refreshed once per stage.
"""

from __future__ import annotations

import dataclasses
from typing import Annotated

import msgspec
import torch

from gpu_worker.heads import LossFn, fit_head
from gpu_worker.methods.base import MethodInput, Params, register_method
from gpu_worker.models.base import Array


class ProductParams(Params, frozen=True, kw_only=True):
    """Target ``∝ weak**alpha * student**beta``; ``beta`` ramps in over ``warmup`` of the stages."""

    alpha: Annotated[float, msgspec.Meta(gt=0, le=5)] = 1.0
    beta: Annotated[float, msgspec.Meta(ge=0, le=5)] = 1.0
    warmup: Annotated[float, msgspec.Meta(ge=0, le=1)] = 0.3
    stages: Annotated[int, msgspec.Meta(ge=1, le=50)] = 6


@register_method("product", ProductParams, "CE to weak^alpha * student^beta (product of experts)")
def run(inp: MethodInput, params: ProductParams, seed: int) -> Array:
    """Fit with the product target, predict eval."""
    log_weak = params.alpha * torch.log(torch.from_numpy(inp.weak_pool).clamp(min=1e-6))

    def staged(stage: int, n_stages: int, start: torch.Tensor) -> LossFn:
        b = params.beta * min(1.0, stage / max(1.0, params.warmup * n_stages))
        target = torch.softmax(log_weak + b * torch.log_softmax(start, -1), -1)

        def loss(logits: torch.Tensor) -> torch.Tensor:
            return -(target * torch.log_softmax(logits, -1)).sum(-1).mean()

        return loss

    cfg = dataclasses.replace(
        inp.head, stages=params.stages, max_iter=max(inp.head.max_iter, 20 * params.stages)
    )
    return fit_head(inp.x_pool, inp.n_classes, staged, staged=True, cfg=cfg, seed=seed).probs(inp.x_eval)
