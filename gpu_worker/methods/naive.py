"""naive: train the strong head on the weak supervisor's hard labels (the W2S baseline)."""

from __future__ import annotations

from gpu_worker.methods.base import MethodInput, Params, register_method
from gpu_worker.methods.common import train_hard
from gpu_worker.models.base import Array


class NaiveParams(Params, frozen=True, kw_only=True):
    """No parameters."""


@register_method("naive", NaiveParams, "strong head on the weak model's hard labels")
def run(inp: MethodInput, params: NaiveParams, seed: int) -> Array:
    """Fit on argmax weak labels, predict eval."""
    return train_hard(inp, inp.weak_labels, seed).probs(inp.x_eval)
