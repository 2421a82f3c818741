"""Linear heads on frozen features, trained full-batch with any loss on the logits."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import cast

import numpy as np
import torch
from scipy.optimize import minimize  # type: ignore[import-untyped]

from gpu_worker.models.base import Array

# A loss on the (n, K) logits.
LossFn = Callable[[torch.Tensor], torch.Tensor]
# staged(stage, n_stages, logits at the stage's start, detached) -> the loss L-BFGS minimises in that stage.
# Targets built from the student's own predictions (self-training terms) must stay fixed within a stage,
# or the line search would chase a moving objective.
StagedLoss = Callable[[int, int, torch.Tensor], LossFn]


def fixed(loss: LossFn) -> StagedLoss:
    """A loss that is the same in every stage."""
    return lambda stage, n_stages, start: loss


@dataclass(frozen=True, slots=True)
class HeadConfig:
    """Optimiser settings shared by every method, so methods differ only in what they train on.

    Attributes:
        max_iter: L-BFGS iterations in all, split evenly over the stages.
        stages: how many times the loss is rebuilt (a scheduled loss moves on between stages).
        l2: weight of ``||w||^2`` added to the mean loss.
    """

    max_iter: int = 50
    stages: int = 4
    l2: float = 3e-3


DEFAULT_HEAD = HeadConfig()


@dataclass(slots=True)
class LinearHead:
    """A trained linear classifier: ``softmax(x @ w + b)``."""

    w: torch.Tensor
    b: torch.Tensor

    def logits(self, x: Array) -> torch.Tensor:
        """Logits for features ``x``."""
        with torch.no_grad():
            return torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32)) @ self.w + self.b

    def probs(self, x: Array) -> Array:
        """Class probabilities for features ``x``, float32."""
        return torch.softmax(self.logits(x), -1).numpy().astype(np.float32)


def fit_head(
    x: Array,
    n_classes: int,
    loss: LossFn | StagedLoss,
    *,
    staged: bool = False,
    cfg: HeadConfig = DEFAULT_HEAD,
    seed: int = 0,
) -> LinearHead:
    """Fit a linear head full-batch with L-BFGS (scipy), gradients from torch autograd.

    Full-batch L-BFGS converges a convex head in tens of iterations, where Adam needed hundreds of
    steps, and it has no minibatch order to make runs differ.

    Args:
        x: ``(n, d)`` standardised features.
        n_classes: number of classes.
        loss: the training loss on the ``(n, n_classes)`` logits, or a ``StagedLoss`` if ``staged``.
        staged: ``loss`` is a ``StagedLoss``.
        cfg: optimiser settings.
        seed: seeds the (small, random) initial weights.

    Returns:
        The trained head.
    """
    d = x.shape[1]
    xt = torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32))
    g = torch.Generator().manual_seed(seed)
    theta = np.concatenate([(torch.randn(d * n_classes, generator=g) * 0.01).numpy(), np.zeros(n_classes)])
    n_stages = max(1, cfg.stages) if staged else 1
    per_stage = max(1, cfg.max_iter // n_stages)
    for stage in range(n_stages):
        if staged:
            with torch.no_grad():
                t0 = torch.from_numpy(theta.astype(np.float32))
                start = xt @ t0[: d * n_classes].view(d, n_classes) + t0[d * n_classes :]
            stage_loss = cast(StagedLoss, loss)(stage, n_stages, start)
        else:
            stage_loss = cast(LossFn, loss)

        def fg(th: np.ndarray, stage_loss: LossFn = stage_loss) -> tuple[float, np.ndarray]:
            t = torch.from_numpy(th.astype(np.float32)).requires_grad_()
            w, b = t[: d * n_classes].view(d, n_classes), t[d * n_classes :]
            val = stage_loss(xt @ w + b) + cfg.l2 * (w * w).sum()
            (grad,) = torch.autograd.grad(val, t)
            return float(val.detach()), grad.numpy().astype(np.float64)

        theta = minimize(fg, theta, jac=True, method="L-BFGS-B", options={"maxiter": per_stage}).x
    t = torch.from_numpy(theta.astype(np.float32))
    return LinearHead(t[: d * n_classes].view(d, n_classes).clone(), t[d * n_classes :].clone())


def soft_ce(targets: Array, weights: Array | None = None) -> LossFn:
    """Cross-entropy against fixed soft (or one-hot) targets, optionally weighted per example."""
    t = torch.from_numpy(np.ascontiguousarray(targets, dtype=np.float32))
    wt = None if weights is None else torch.from_numpy(np.asarray(weights, dtype=np.float32))

    def fn(logits: torch.Tensor) -> torch.Tensor:
        per = -(t * torch.log_softmax(logits, -1)).sum(-1)
        return per.mean() if wt is None else (per * wt).sum() / wt.sum().clamp(min=1e-8)

    return fn


def one_hot(labels: np.ndarray, n_classes: int) -> Array:
    """``(n, n_classes)`` float32 one-hot rows."""
    return np.asarray(np.eye(n_classes, dtype=np.float32)[labels], dtype=np.float32)


def fit_labels(
    x: Array,
    labels: np.ndarray,
    n_classes: int,
    *,
    weights: Array | None = None,
    cfg: HeadConfig = DEFAULT_HEAD,
    seed: int = 0,
) -> LinearHead:
    """Fit a head on hard labels (the common case)."""
    return fit_head(x, n_classes, soft_ce(one_hot(labels, n_classes), weights), cfg=cfg, seed=seed)
