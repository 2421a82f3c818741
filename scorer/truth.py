"""Ground truth of one task as the scorer holds it: gold labels, baselines, weak predictions.

Only the scorer (and the operator) can read the label store and the baselines bucket; the NATS
permissions aar generates enforce it. Everything here is loaded once per task and kept in memory.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from bus import Bus, BusError, streams
from bus.store import NamedObjects
from schemas import Baseline, SchemaError, TaskInfo
from schemas.artifacts import EVAL_SPLITS, TaskLabels, WeakPredictions

log = logging.getLogger("aar.scorer")

IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]


class TruthUnavailable(LookupError):
    """A task has no labels or no baselines yet (the operator has not run tasks prepare/baselines)."""


@dataclass(frozen=True, slots=True)
class SplitTruth:
    """Gold labels of one eval split in the split's own id order."""

    ids: list[str]
    index: dict[str, int]
    gold: IntArray
    weak: IntArray | None
    # Gold labels per class (``n_classes`` long): the prior the prior-only detector compares with.
    gold_counts: tuple[int, ...]

    def __len__(self) -> int:
        return len(self.ids)


@dataclass(frozen=True, slots=True)
class TaskTruth:
    """What the scorer needs to score a task's results."""

    task: str
    view_digest: str
    n_classes: int
    baseline: Baseline
    splits: dict[str, SplitTruth]
    # Dev examples whose id hash puts them in the reusable holdout's hidden half.
    dev_holdout: BoolArray
    # Keyed by the labels themselves: agents, who cannot read labels, cannot predict the noise.
    secret: bytes = field(repr=False)

    def pgr(self, acc: float, split: str) -> float:
        """PGR of an accuracy on ``split`` against the recorded baselines (NaN with no gap)."""
        weak, ceiling = self.baseline.weak_acc[split], self.baseline.ceiling_acc[split]
        gap = ceiling - weak
        return (acc - weak) / gap if gap > 0 else float("nan")

    def noise_seed(self, result_id: str) -> int:
        """A per-result seed for the holdout's noise, stable across scorer restarts."""
        digest = hmac.new(self.secret, result_id.encode(), hashlib.sha256).digest()
        return int.from_bytes(digest[:8], "little")


def build_truth(
    labels: TaskLabels, baseline: Baseline, n_classes: int, weak: WeakPredictions | None, labels_raw: bytes
) -> TaskTruth:
    """Assemble a TaskTruth from what the operator stored.

    Raises:
        TruthUnavailable: the baselines were recorded for another split of the task.
    """
    if baseline.view_digest != labels.view_digest:
        raise TruthUnavailable(
            f"baselines of {labels.task!r} belong to another split: run `aar baselines {labels.task}` again"
        )
    if weak is not None and weak.view_digest != labels.view_digest:
        log.warning(
            "weak predictions belong to another split; weak-copy check off", extra={"task": labels.task}
        )
        weak = None
    splits: dict[str, SplitTruth] = {}
    for split in EVAL_SPLITS:
        gold = labels.of(split)
        ids = list(gold)
        weak_arr = None
        if weak is not None:
            weak_of = weak.of(split)
            weak_arr = np.fromiter((weak_of.get(i, -1) for i in ids), dtype=np.int64, count=len(ids))
        gold_arr = np.fromiter(gold.values(), dtype=np.int64, count=len(ids))
        splits[split] = SplitTruth(
            ids=ids,
            index={i: k for k, i in enumerate(ids)},
            gold=gold_arr,
            weak=weak_arr,
            gold_counts=tuple(np.bincount(gold_arr, minlength=n_classes).tolist()),
        )
    secret = hashlib.sha256(b"aar-holdout-noise:" + labels_raw).digest()
    holdout = hidden_half(secret, splits["dev"].ids)
    return TaskTruth(
        task=labels.task,
        view_digest=labels.view_digest,
        n_classes=n_classes,
        baseline=baseline,
        splits=splits,
        dev_holdout=holdout,
        secret=secret,
    )


def hidden_half(secret: bytes, dev_ids: Sequence[str]) -> BoolArray:
    """Which dev examples the reusable holdout keeps hidden: about half, by a keyed hash of the id.

    Keyed by the task's secret (derived from its labels), so that agents, who cannot read labels,
    cannot tell which of their predictions a public answer counts.
    """
    return np.fromiter(
        (hmac.new(secret, b"holdout:" + i.encode(), hashlib.sha256).digest()[0] & 1 for i in dev_ids),
        dtype=np.bool_,
        count=len(dev_ids),
    )


class TruthStore:
    """Loads a task's truth from the swarm's label store and baselines bucket, once, on demand."""

    def __init__(self, bus: Bus, swarm: str) -> None:
        self._bus, self._swarm = bus, swarm
        self._cache: dict[str, TaskTruth] = {}
        self._loading: dict[str, asyncio.Task[TaskTruth]] = {}

    def forget(self, task: str) -> None:
        """Drop a task's cached truth (its baselines or split changed)."""
        self._cache.pop(task, None)

    async def get(self, task: str) -> TaskTruth:
        """The truth of ``task``.

        Raises:
            TruthUnavailable: the task is not prepared or has no baselines.
        """
        if (hit := self._cache.get(task)) is not None:
            return hit
        # Results of a new task arrive together: load its truth once, not once per result.
        loading = self._loading.get(task)
        if loading is None:
            loading = self._loading[task] = asyncio.create_task(self._load(task), name=f"truth:{task}")
            loading.add_done_callback(lambda _: self._loading.pop(task, None))
        truth = await asyncio.shield(loading)
        self._cache[task] = truth
        return truth

    async def preload(self) -> list[str]:
        """Load the truth of every task with baselines, so that no first result waits for it."""
        loaded = []
        for task in sorted(await (await self._bus.kv(streams.baselines_bucket(self._swarm))).keys()):
            try:
                await self.get(task)
            except TruthUnavailable as e:
                log.warning("truth not loaded", extra={"task": task, "reason": str(e)})
            else:
                loaded.append(task)
        return loaded

    async def _load(self, task: str) -> TaskTruth:
        baseline = await (await self._bus.kv(streams.baselines_bucket(self._swarm))).get(task)
        if not isinstance(baseline, Baseline):
            raise TruthUnavailable(f"no baselines for task {task!r}: run `aar baselines {task}`")
        info = await (await self._bus.kv(streams.tasks_bucket(self._swarm))).get(task)
        if not isinstance(info, TaskInfo):
            raise TruthUnavailable(f"task {task!r} is not prepared: run `aar tasks prepare`")
        store = await NamedObjects.open(self._bus, streams.labels_bucket(self._swarm))
        try:
            raw = await store.get(task)
            labels = TaskLabels.from_bytes(raw)
        except (BusError, ValueError) as e:
            raise TruthUnavailable(f"no labels for task {task!r}: {e}") from e
        weak: WeakPredictions | None = None
        try:
            weak = WeakPredictions.from_bytes(await store.get(streams.weak_predictions_object(task)))
        except (BusError, SchemaError) as e:
            log.warning("no weak predictions; weak-copy check off", extra={"task": task, "error": str(e)})
        truth = build_truth(labels, baseline, len(info.label_names), weak, raw)
        log.info("truth loaded", extra={"task": task, "dev": len(truth.splits["dev"])})
        return truth
