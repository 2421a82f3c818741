"""Is a worker's prediction set a well-formed answer for a split? Anything else is rejected, with why."""

from __future__ import annotations

from collections import Counter
from typing import Any

import numpy as np

from schemas.artifacts import PredictionSet
from scorer.truth import IntArray, SplitTruth


class Rejection(Exception):
    """A result that cannot be scored; ``detector`` names the check, ``evidence`` says what it saw."""

    def __init__(self, reason: str, *, detector: str = "invalid_predictions", **evidence: Any) -> None:
        super().__init__(reason)
        self.reason, self.detector, self.evidence = reason, detector, evidence


def aligned(
    preds: PredictionSet, truth: SplitTruth, *, task: str, split: str, view_digest: str, n_classes: int
) -> IntArray:
    """The predicted labels in the split's id order.

    Raises:
        Rejection: wrong task, split or data; an id missing, repeated or unknown; a label out of range.
    """
    if preds.task != task or preds.split != split:
        raise Rejection(
            f"prediction set is for {preds.task}/{preds.split}, not {task}/{split}",
            task=preds.task,
            split=preds.split,
        )
    if preds.view_digest != view_digest:
        raise Rejection(
            f"{split} predictions were made on another split of the task (data {preds.view_digest[:12]})",
            view_digest=preds.view_digest,
        )
    if preds.packed:
        labels = np.frombuffer(preds.packed, dtype="<u2").astype(np.int64)
        if labels.size != len(truth):
            raise Rejection(
                f"{split} predictions have {labels.size} labels for the split's {len(truth)} examples",
                labels=int(labels.size),
                examples=len(truth),
            )
    else:
        labels = np.asarray(preds.labels, dtype=np.int64)
    if labels.size and int(labels.max()) >= n_classes:
        bad = int(np.count_nonzero(labels >= n_classes))
        raise Rejection(f"{bad} {split} labels are outside 0..{n_classes - 1}", out_of_range=bad)
    if preds.packed or preds.ids == truth.ids:  # in the split's own order: no lookups needed
        return labels
    index = truth.index
    positions = np.fromiter((index.get(i, -1) for i in preds.ids), dtype=np.int64, count=len(preds.ids))
    unknown = int(np.count_nonzero(positions < 0))
    counts = np.bincount(positions[positions >= 0], minlength=len(truth))
    repeated, missing = int(np.count_nonzero(counts > 1)), int(np.count_nonzero(counts == 0))
    if unknown or repeated or missing:
        examples = [i for i, n in Counter(preds.ids).items() if n > 1][:5] if repeated else []
        raise Rejection(
            f"{split} predictions must name every example once: {missing} missing, {repeated} repeated, "
            f"{unknown} unknown ids",
            missing=missing,
            repeated=repeated,
            unknown=unknown,
            repeated_ids=examples,
        )
    out = np.empty(len(truth), dtype=np.int64)
    out[positions] = labels
    return out
