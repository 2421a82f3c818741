"""The dev answer agents get: Thresholdout over a public and a hidden half of the dev split.

Agents that tune on the score they are shown overfit it (the reference system let agents query
without limit). Thresholdout answers with the public half while it agrees with the hidden half, and
with a noisy hidden-half answer, spending budget, when it does not; see ``HoldoutConfig``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import numpy as np

from scorer.config import HoldoutConfig
from scorer.truth import BoolArray

Answer = Literal["public", "holdout"]


@dataclass(frozen=True, slots=True)
class DevAnswer:
    """What the agent is told (``accuracy``) and what the scorer knows (``true_accuracy``)."""

    accuracy: float
    answer: Answer
    true_accuracy: float


@dataclass(frozen=True, slots=True)
class Halves:
    """How many dev examples a submission got right, in all and in the hidden half."""

    n: int
    n_hidden: int
    right: int
    right_hidden: int

    @property
    def true_accuracy(self) -> float:
        return self.right / self.n if self.n else 0.0

    @property
    def public_accuracy(self) -> float:
        n_public = self.n - self.n_hidden
        return (self.right - self.right_hidden) / n_public if n_public else self.true_accuracy

    @property
    def hidden_accuracy(self) -> float:
        return self.right_hidden / self.n_hidden if self.n_hidden else self.true_accuracy


def halves(correct: BoolArray, holdout: BoolArray) -> Halves:
    """Count ``correct`` (one bool per dev example) in all and where ``holdout`` is set."""
    return Halves(
        n=correct.size,
        n_hidden=int(np.count_nonzero(holdout)),
        right=int(np.count_nonzero(correct)),
        right_hidden=int(np.count_nonzero(correct & holdout)),
    )


def answer(correct: BoolArray, holdout: BoolArray, cfg: HoldoutConfig, seed: int) -> DevAnswer:
    """One Thresholdout answer for a submission whose per-example correctness is ``correct``.

    Args:
        correct: one bool per dev example.
        holdout: which dev examples are in the hidden half.
        cfg: threshold, noise scale and rounding.
        seed: seeds the Laplace noise (the same result always gets the same answer).
    """
    return answer_counted(halves(correct, holdout), cfg, seed)


def answer_counted(counts: Halves, cfg: HoldoutConfig, seed: int) -> DevAnswer:
    """``answer`` for a submission already counted (the scorer also keeps its hidden-half accuracy)."""
    true_acc, public_acc, hidden_acc = counts.true_accuracy, counts.public_accuracy, counts.hidden_accuracy
    n_public = counts.n - counts.n_hidden
    gate_u, noise_u = _uniforms(seed)
    threshold = max(cfg.threshold, cfg.threshold_se * _se_of_difference(true_acc, n_public, counts.n_hidden))
    if abs(public_acc - hidden_acc) > threshold + _laplace(gate_u, 2 * cfg.sigma):
        noisy = hidden_acc + _laplace(noise_u, cfg.sigma)
        return DevAnswer(_round(noisy, cfg.round_to), "holdout", true_acc)
    return DevAnswer(_round(public_acc, cfg.round_to), "public", true_acc)


_MASK64 = (1 << 64) - 1


def _uniforms(seed: int) -> tuple[float, float]:
    """Two uniforms in [0, 1) from a seed (SplitMix64); seeding ``random.Random`` costs twice as much."""
    out = []
    state = seed & _MASK64
    for _ in range(2):
        state = (state + 0x9E3779B97F4A7C15) & _MASK64
        z = state
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & _MASK64
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & _MASK64
        out.append(((z ^ (z >> 31)) >> 11) / float(1 << 53))
    return out[0], out[1]


def _laplace(u: float, scale: float) -> float:
    """A Laplace(0, scale) draw by inverting its CDF at the uniform ``u``."""
    if scale <= 0:
        return 0.0
    u -= 0.5
    return -scale * math.copysign(1.0, u) * math.log(max(1e-300, 1 - 2 * abs(u)))


def _se_of_difference(acc: float, n_public: int, n_hidden: int) -> float:
    # Two honest halves differ by sampling noise alone: sqrt(p(1-p)(1/n1 + 1/n2)).
    if n_public == 0 or n_hidden == 0:
        return 0.0
    return math.sqrt(max(acc * (1 - acc), 0.0) * (1 / n_public + 1 / n_hidden))


def _round(value: float, step: float) -> float:
    value = min(1.0, max(0.0, value))
    return round(round(value / step) * step, 6) if step > 0 else value
