"""committee: average the eval probabilities of several method configs, each run with the same seed.

No single method does this: it combines configs that were found separately (in a swarm, by different
agents), whose errors differ, so the average is often better on held-out data than its best member.
"""

from __future__ import annotations

from typing import Annotated, Any

import msgspec
import numpy as np

from gpu_worker.errors import BadParamsError, UnknownNameError
from gpu_worker.methods.base import MethodInput, Params, get_method, register_method
from gpu_worker.models.base import Array

NAME = "committee"


class Member(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """One config of the committee: a registered head-only method and its params."""

    method: str
    params: dict[str, Any] = msgspec.field(default_factory=dict)


def _default_members() -> list[Member]:
    return [Member(method="propagate"), Member(method="soft"), Member(method="conf_filter")]


class CommitteeParams(Params, frozen=True, kw_only=True):
    """``members``: 2 to 8 configs whose eval probabilities are averaged (with equal weight).

    A member may not be a committee, nor a method that needs prompt features; each member's params
    are checked against its own method when the request is decoded, not when it runs.
    """

    members: Annotated[list[Member], msgspec.Meta(min_length=2, max_length=8)] = msgspec.field(
        default_factory=_default_members
    )

    def __post_init__(self) -> None:
        for m in self.members:
            if m.method == NAME:
                raise ValueError("a committee cannot have a committee as a member")
            try:
                spec = get_method(m.method)
                spec.decode(m.params)
            except (UnknownNameError, BadParamsError) as e:
                raise ValueError(f"member {m.method!r}: {e.reason}") from None
            if spec.uses_prompt:
                raise ValueError(
                    f"member {m.method!r} needs prompt features; a committee runs head-only methods"
                )


@register_method(NAME, CommitteeParams, "average of several method configs' eval probabilities")
def run(inp: MethodInput, params: CommitteeParams, seed: int) -> Array:
    """Run every member on the same input and seed; average their probabilities."""
    total = np.zeros((len(inp.x_eval), inp.n_classes), dtype=np.float64)
    for member in params.members:
        spec = get_method(member.method)
        total += spec.run(inp, spec.decode(member.params), seed)
    return np.asarray(total / len(params.members), dtype=np.float32)
