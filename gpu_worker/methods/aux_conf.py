"""aux_conf: Burns et al. 2023's auxiliary confidence loss, with an adaptive hardening threshold.

loss = (1 - a) * CE(p, weak) + a * CE(p, harden(p)), a ramping up to ``alpha`` over the warm-up.
harden() thresholds at the weak labels' class prior rather than 0.5, which kept the student from
collapsing onto one class (TESTBED). The hardened targets are refreshed once per optimiser stage.
"""

from __future__ import annotations

import dataclasses
from typing import Annotated

import msgspec
import numpy as np
import torch

from gpu_worker.heads import LossFn, fit_head, one_hot
from gpu_worker.methods.base import MethodInput, Params, register_method
from gpu_worker.methods.common import prior_hard
from gpu_worker.models.base import Array


class AuxConfParams(Params, frozen=True, kw_only=True):
    """``alpha``: final weight of the self-confidence term; ``warmup``: fraction of stages to reach it."""

    alpha: Annotated[float, msgspec.Meta(ge=0, le=1)] = 0.75
    warmup: Annotated[float, msgspec.Meta(ge=0, le=1)] = 0.2
    stages: Annotated[int, msgspec.Meta(ge=1, le=50)] = 6
    soft_weak: bool = False


@register_method(
    "aux_conf", AuxConfParams, "Burns et al. auxiliary confidence loss, prior-adaptive threshold"
)
def run(inp: MethodInput, params: AuxConfParams, seed: int) -> Array:
    """Fit with the mixed loss, predict eval."""
    weak_t = torch.from_numpy(inp.weak_pool if params.soft_weak else one_hot(inp.weak_labels, inp.n_classes))
    prior = np.bincount(inp.weak_labels, minlength=inp.n_classes) / len(inp.weak_labels)

    def staged(stage: int, n_stages: int, start: torch.Tensor) -> LossFn:
        a = params.alpha * min(1.0, stage / max(1.0, params.warmup * n_stages))
        hard = torch.from_numpy(one_hot(prior_hard(torch.softmax(start, -1).numpy(), prior), inp.n_classes))

        def loss(logits: torch.Tensor) -> torch.Tensor:
            logp = torch.log_softmax(logits, -1)
            return -(((1 - a) * weak_t + a * hard) * logp).sum(-1).mean()

        return loss

    cfg = dataclasses.replace(
        inp.head, stages=params.stages, max_iter=max(inp.head.max_iter, 20 * params.stages)
    )
    return fit_head(inp.x_pool, inp.n_classes, staged, staged=True, cfg=cfg, seed=seed).probs(inp.x_eval)
