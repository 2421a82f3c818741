"""Operator-side helpers: accuracy, PGR and the fixed baselines. They read gold labels; workers must not."""

from __future__ import annotations

import math
from collections.abc import Mapping

import msgspec
import numpy as np

from gpu_worker.heads import DEFAULT_HEAD, HeadConfig, fit_labels
from gpu_worker.pipeline import Predictions, TaskFeatures, run_experiment
from schemas.artifacts import EVAL_SPLITS, TaskLabels, TaskView


class Baselines(msgspec.Struct, frozen=True, kw_only=True):
    """Accuracy of the weak supervisor, the strong ceiling and the naive student, per eval split."""

    weak: dict[str, float]
    ceiling: dict[str, float]
    naive: dict[str, float]

    def pgr(self, acc: float, split: str = "dev") -> float:
        """PGR of an accuracy against these baselines on ``split``."""
        return pgr(acc, self.weak[split], self.ceiling[split])


def pgr(acc: float, weak: float, ceiling: float) -> float:
    """(acc - weak) / (ceiling - weak); NaN when the ceiling does not beat the weak model."""
    gap = ceiling - weak
    return (acc - weak) / gap if gap > 0 else math.nan


def accuracy(pred: Mapping[str, int], gold: Mapping[str, int]) -> float:
    """Fraction of gold ids predicted correctly (a missing id counts as wrong)."""
    return sum(pred.get(i) == y for i, y in gold.items()) / max(1, len(gold))


def score(pred: Predictions, labels: TaskLabels) -> dict[str, float]:
    """Accuracy of predictions on dev and final."""
    return {"dev": accuracy(pred.dev, labels.dev), "final": accuracy(pred.final, labels.final)}


def baselines(
    view: TaskView, labels: TaskLabels, feats: TaskFeatures, *, seed: int = 0, head: HeadConfig = DEFAULT_HEAD
) -> Baselines:
    """Compute weak accuracy, the strong ceiling (strong head on pool gold labels) and naive accuracy.

    Args:
        view: the task view.
        labels: gold labels of pool, dev and final (operator only).
        feats: the view's features.
        seed: seed of the heads.
        head: optimiser settings, the same as the methods use.
    """
    weak, ceiling = {}, {}
    gold_pool = np.asarray([labels.pool[i] for i in view.pool.ids])
    ceil_head = fit_labels(feats.strong["pool"], gold_pool, view.n_classes, cfg=head, seed=seed)
    for split in EVAL_SPLITS:
        ids = view.split(split).ids
        gold = labels.of(split)
        weak[split] = accuracy(dict(zip(ids, feats.weak_probs[split].argmax(1).tolist(), strict=True)), gold)
        ceil_pred = ceil_head.probs(feats.strong[split]).argmax(1).tolist()
        ceiling[split] = accuracy(dict(zip(ids, ceil_pred, strict=True)), gold)
    naive = score(run_experiment(view, feats, "naive", seed=seed, head=head), labels)
    return Baselines(weak=weak, ceiling=ceiling, naive=naive)
