"""zeroshot: the strong LM's own calibrated zero/few-shot answer, with no training at all.

The weak labels play no part unless ``calibration="prior"``, which borrows only their class prior.
This is the unsupervised-elicitation baseline: how much the strong model knows when simply asked.
"""

from __future__ import annotations

from typing import Annotated

import msgspec

from gpu_worker.methods.base import MethodInput, Params, register_method
from gpu_worker.methods.prompt_common import Calibration, calibrated_logits, softmax
from gpu_worker.models.base import Array


class ZeroShotParams(Params, frozen=True, kw_only=True):
    """``calibration``: none, mean (batch calibration) or prior (match the weak prior)."""

    calibration: Calibration = "mean"
    temperature: Annotated[float, msgspec.Meta(gt=0, le=100)] = 1.0


@register_method(
    "zeroshot", ZeroShotParams, "calibrated zero/few-shot prompt answers of the strong LM", uses_prompt=True
)
def run(inp: MethodInput, params: ZeroShotParams, seed: int) -> Array:
    """Softmax of the calibrated prompt log-scores on eval (``seed`` is unused: nothing is random)."""
    _, ev = calibrated_logits(inp, params.calibration, "zeroshot")
    return softmax(ev, params.temperature)
