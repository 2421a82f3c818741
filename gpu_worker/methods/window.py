"""window: a loss that is zero while the student stays within ``width`` of the weak probabilities.

Inside the window the student is free to follow its own features; only large departures from the
weak supervisor are penalised (squared excess), so weak noise near the boundary is not imitated.
"""

from __future__ import annotations

from typing import Annotated

import msgspec
import torch

from gpu_worker.heads import fit_head
from gpu_worker.methods.base import MethodInput, Params, register_method
from gpu_worker.methods.common import sharpen
from gpu_worker.models.base import Array


class WindowParams(Params, frozen=True, kw_only=True):
    """``width``: free band around the (tempered) weak probability of each class."""

    width: Annotated[float, msgspec.Meta(ge=0, le=1)] = 0.2
    temperature: Annotated[float, msgspec.Meta(gt=0, le=10)] = 0.5
    entropy: Annotated[float, msgspec.Meta(ge=0, le=1)] = 0.05


@register_method("window", WindowParams, "penalise only departures from weak probs beyond a window")
def run(inp: MethodInput, params: WindowParams, seed: int) -> Array:
    """Fit with the window loss (plus a small entropy term to commit inside the window), predict eval."""
    target = torch.from_numpy(sharpen(inp.weak_pool, params.temperature))

    def loss(logits: torch.Tensor) -> torch.Tensor:
        p = torch.softmax(logits, -1)
        excess = torch.relu((p - target).abs() - params.width)
        ent = -(p * torch.log(p.clamp(min=1e-8))).sum(-1).mean()
        return (excess**2).sum(-1).mean() * 10 + params.entropy * ent

    return fit_head(inp.x_pool, inp.n_classes, loss, cfg=inp.head, seed=seed).probs(inp.x_eval)
