"""conf_filter: keep only the pool examples the weak supervisor is most confident about."""

from __future__ import annotations

from typing import Annotated

import msgspec

from gpu_worker.methods.base import MethodInput, Params, register_method
from gpu_worker.methods.common import top_fraction_per_class, train_hard
from gpu_worker.models.base import Array


class ConfFilterParams(Params, frozen=True, kw_only=True):
    """Keep the ``keep`` most confident fraction of each weak class."""

    keep: Annotated[float, msgspec.Meta(gt=0, le=1)] = 0.5


@register_method(
    "conf_filter", ConfFilterParams, "train on the weak model's most confident examples per class"
)
def run(inp: MethodInput, params: ConfFilterParams, seed: int) -> Array:
    """Fit on the confident subset, predict eval."""
    labels = inp.weak_labels
    rows = top_fraction_per_class(inp.weak_conf, labels, inp.n_classes, params.keep)
    return train_hard(inp, labels, seed, rows=rows).probs(inp.x_eval)
