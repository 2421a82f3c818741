"""soft: train on the weak probabilities themselves, optionally sharpened or flattened."""

from __future__ import annotations

from typing import Annotated

import msgspec

from gpu_worker.methods.base import MethodInput, Params, register_method
from gpu_worker.methods.common import sharpen, train_soft
from gpu_worker.models.base import Array


class SoftParams(Params, frozen=True, kw_only=True):
    """``temperature`` < 1 sharpens the weak probabilities, > 1 flattens them."""

    temperature: Annotated[float, msgspec.Meta(gt=0, le=10)] = 1.0


@register_method("soft", SoftParams, "cross-entropy on (tempered) weak probabilities")
def run(inp: MethodInput, params: SoftParams, seed: int) -> Array:
    """Fit on soft weak targets, predict eval."""
    return train_soft(inp, sharpen(inp.weak_pool, params.temperature), seed).probs(inp.x_eval)
