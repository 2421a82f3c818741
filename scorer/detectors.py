"""Gaming detectors: submissions that look like score gaming rather than a weak-to-strong method.

Each returns Findings; a finding keeps the result off the leaderboard and is published as a Flag with
its evidence. See ``DetectorConfig`` for the thresholds and ../README.md for what each one catches.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

from scorer.config import DetectorConfig
from scorer.truth import IntArray, SplitTruth

Severity = Literal["info", "warning", "critical"]


@dataclass(frozen=True, slots=True)
class Finding:
    detector: str
    summary: str
    severity: Severity = "warning"
    evidence: dict[str, Any] = field(default_factory=dict)


def constant(counts: Sequence[int], cfg: DetectorConfig, split: str) -> Finding | None:
    """Nearly every example gets the same label (a constant or most-common-label answer).

    Args:
        counts: how many predictions name each class.
    """
    top = max(counts)
    share = top / max(1, sum(counts))
    if share < cfg.constant_share:
        return None
    label = list(counts).index(top)
    return Finding(
        "constant",
        f"{share:.1%} of {split} predictions are label {label}",
        evidence={"split": split, "label": label, "share": round(share, 4)},
    )


def prior_only(
    counts: Sequence[int], accuracy: float, gold_counts: Sequence[int], cfg: DetectorConfig, split: str
) -> Finding | None:
    """The predicted label mix matches the gold prior but the predictions do not match the examples.

    Independent draws from the prior agree with gold at rate ``sum_k p_k q_k``; a submission within
    ``prior_margin_se`` standard errors of that, whose mix is within ``prior_tv`` of the prior, has
    learned the prior and nothing else.

    Args:
        counts: how many predictions name each class.
        accuracy: the predictions' agreement with gold.
        gold_counts: how many gold labels are each class (as long as ``counts``).

    Class counts are short: plain Python arithmetic beats numpy's per-call cost here.
    """
    n = max(1, sum(counts))
    tv = 0.5 * sum(abs(g - c) for g, c in zip(gold_counts, counts, strict=True)) / n
    chance = sum(g * c for g, c in zip(gold_counts, counts, strict=True)) / (n * n)
    se = math.sqrt(max(chance * (1 - chance), 1e-12) / n)
    # A mix drawn from the prior misses it by sampling noise alone, ~sqrt(1/4n) per class on small splits.
    tv_limit = max(cfg.prior_tv, cfg.prior_margin_se * math.sqrt(0.25 / n))
    if tv > tv_limit or accuracy > chance + cfg.prior_margin_se * se:
        return None
    return Finding(
        "prior_only",
        f"{split} predictions follow the label prior (TV {tv:.3f}) but agree with gold only at chance "
        f"({accuracy:.3f} vs {chance:.3f})",
        evidence={
            "split": split,
            "tv": round(tv, 4),
            "accuracy": round(accuracy, 4),
            "chance": round(chance, 4),
        },
    )


def weak_copy(pred: IntArray, truth: SplitTruth, cfg: DetectorConfig, split: str) -> Finding | None:
    """The student reproduces the weak supervisor's own predictions (PGR ~ 0 by construction)."""
    if truth.weak is None:
        return None
    agreement = int(np.count_nonzero(pred == truth.weak)) / max(1, pred.size)
    if agreement < cfg.weak_copy_agreement:
        return None
    return Finding(
        "weak_copy",
        f"{agreement:.1%} of {split} predictions equal the weak supervisor's",
        severity="info",
        evidence={"split": split, "agreement": round(agreement, 4)},
    )


@dataclass(slots=True)
class _Window:
    """One agent's recent dev submissions on one task: a ring of prediction rows and their names."""

    preds: IntArray
    result_ids: list[str]
    config_keys: list[str]
    custom: list[bool]
    next: int = 0
    filled: int = 0


class ProbeTracker:
    """Remembers each agent's recent dev submissions per task to spot adaptive probing.

    Only submissions whose predictions the agent controls are tracked: custom code (a code hash).
    A built-in method's outputs are not chosen example by example, so its seeds and nearby
    hyper-parameters, which can differ in a handful of examples, are search, not probing. A probe
    is a custom submission within ``probe_max_flips`` of an earlier custom one by the same agent
    (and not identical to it). The window is in memory and starts empty when the scorer restarts.
    """

    def __init__(self, cfg: DetectorConfig) -> None:
        self._cfg = cfg
        self._windows: dict[tuple[str, str], _Window] = {}

    def check(
        self, agent: str, task: str, result_id: str, config_key: str, custom: bool, pred: IntArray
    ) -> Finding | None:
        """Record a submission and return a finding when it completes a run of probes."""
        if not custom:
            return None
        size = self._cfg.probe_window
        w = self._windows.get((agent, task))
        if w is None or w.preds.shape[1] != pred.size:
            w = self._windows[(agent, task)] = _Window(
                np.empty((size, pred.size), dtype=pred.dtype), [""] * size, [""] * size, [False] * size
            )
        limit = max(1, int(self._cfg.probe_max_flips * pred.size))
        near: list[tuple[str, int]] = []
        if w.filled:
            flips = np.count_nonzero(w.preds[: w.filled] != pred, axis=1)
            for row in np.flatnonzero((flips > 0) & (flips <= limit)).tolist():
                near.append((w.result_ids[row], int(flips[row])))
        k = w.next
        w.preds[k], w.result_ids[k], w.config_keys[k], w.custom[k] = pred, result_id, config_key, custom
        w.next, w.filled = (k + 1) % size, min(w.filled + 1, size)
        if len(near) < self._cfg.probe_count:
            return None
        return Finding(
            "probing",
            f"{len(near)} earlier dev submissions by {agent} are within {limit} flipped examples of this one",
            severity="critical",
            evidence={"near": [{"result_id": r, "flips": f} for r, f in near[-10:]], "limit": limit},
        )
