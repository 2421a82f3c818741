"""prompt_consistency: train the strong head on the prompted strong LM's answers combined with weak labels.

Two label sources with unrelated errors (a TF-IDF model and an LM's zero-shot answer) rarely make the
same mistake, so examples on which they agree are far cleaner than either alone, and their mixture is
better than either. Modes:

- ``agree``: hard weak labels on the pool examples where the calibrated prompt label agrees.
- ``mix``: soft targets ``w * prompt + (1 - w) * weak`` on the whole pool (``w=1``: distil the prompt).
- ``product``: soft targets proportional to ``prompt * weak`` (both as probabilities), on the whole pool.
"""

from __future__ import annotations

from typing import Annotated, Literal

import msgspec
import numpy as np

from gpu_worker.methods.base import MethodInput, Params, register_method
from gpu_worker.methods.common import train_hard, train_soft
from gpu_worker.methods.prompt_common import Calibration, calibrated_logits, softmax
from gpu_worker.models.base import Array


class PromptConsistencyParams(Params, frozen=True, kw_only=True):
    """``mode``: agree, mix or product; ``weight``: the prompt's share in ``mix``."""

    # mix had the best dev accuracy on rt (zero-shot) and roget; agree won only on rt 4-shot, small pool.
    mode: Literal["agree", "mix", "product"] = "mix"
    calibration: Calibration = "mean"
    weight: Annotated[float, msgspec.Meta(ge=0, le=1)] = 0.5
    # Fewer agreeing examples than this per class: fall back to every pool example (too few to fit on).
    min_per_class: Annotated[int, msgspec.Meta(ge=1)] = 10


@register_method(
    "prompt_consistency",
    PromptConsistencyParams,
    "strong head trained where calibrated zero/few-shot prompt labels and weak labels agree (or a mix)",
    uses_prompt=True,
)
def run(inp: MethodInput, params: PromptConsistencyParams, seed: int) -> Array:
    """Build pool targets from prompt and weak labels, fit the strong head, predict eval."""
    pool, _ = calibrated_logits(inp, params.calibration, "prompt_consistency")
    zs = softmax(pool)
    if params.mode == "mix":
        return train_soft(inp, params.weight * zs + (1 - params.weight) * inp.weak_pool, seed).probs(
            inp.x_eval
        )
    if params.mode == "product":
        prod = zs * inp.weak_pool
        return train_soft(inp, (prod / prod.sum(1, keepdims=True)).astype(np.float32), seed).probs(inp.x_eval)
    weak = inp.weak_labels
    rows = np.flatnonzero(zs.argmax(1) == weak)
    counts = np.bincount(weak[rows], minlength=inp.n_classes)
    if counts.min() < params.min_per_class:
        rows = np.arange(len(weak))
    return train_hard(inp, weak, seed, rows=rows).probs(inp.x_eval)
