"""bootstrap: self-training; each round mixes the weak labels with the previous student's predictions."""

from __future__ import annotations

from typing import Annotated

import msgspec
import numpy as np

from gpu_worker.heads import one_hot
from gpu_worker.methods.base import MethodInput, Params, register_method
from gpu_worker.methods.common import prior_hard, train_hard, train_soft
from gpu_worker.models.base import Array


class BootstrapParams(Params, frozen=True, kw_only=True):
    """``rounds`` of relabelling; target = ``beta`` * weak + (1 - ``beta``) * student hard label."""

    rounds: Annotated[int, msgspec.Meta(ge=1, le=10)] = 3
    beta: Annotated[float, msgspec.Meta(ge=0, le=1)] = 0.3


@register_method("bootstrap", BootstrapParams, "self-training: targets mix weak labels and the student's own")
def run(inp: MethodInput, params: BootstrapParams, seed: int) -> Array:
    """Train, relabel, retrain for a few rounds, predict eval."""
    weak = one_hot(inp.weak_labels, inp.n_classes)
    prior = weak.mean(0)
    head = train_hard(inp, inp.weak_labels, seed)
    for r in range(params.rounds):
        student = one_hot(prior_hard(head.probs(inp.x_pool), prior), inp.n_classes)
        head = train_soft(
            inp, (params.beta * weak + (1 - params.beta) * student).astype(np.float32), seed + r + 1
        )
    return head.probs(inp.x_eval)
