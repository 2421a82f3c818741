"""The deterministic split of a task into weak_train, transfer pool, dev and final."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import numpy as np

from gpu_worker.errors import DataError
from gpu_worker.tasks.base import TaskData
from schemas.artifacts import SplitTexts, TaskLabels, TaskView


@dataclass(frozen=True, slots=True)
class SplitSizes:
    """How many examples go to each split; the pool takes the rest (capped at ``pool``, if set).

    When the task is too small, dev and final shrink together so the pool keeps at least
    ``min_pool`` examples.
    """

    weak_train: int = 500
    dev: int = 2000
    final: int = 2000
    pool: int | None = None
    min_pool: int = 1000


def _rng(task: str, split_seed: int) -> np.random.Generator:
    # Seeded by name as well as seed, so two tasks with one seed are not shuffled alike.
    digest = hashlib.sha256(f"aar-split:{task}:{split_seed}".encode()).digest()
    return np.random.default_rng(int.from_bytes(digest[:8], "little"))


def _sizes(n: int, s: SplitSizes) -> tuple[int, int, int, int]:
    weak = min(s.weak_train, n // 5)
    dev, fin = s.dev, s.final
    spare = n - weak - s.min_pool
    if dev + fin > spare:
        dev, fin = min(dev, spare // 2), min(fin, spare // 2)
    pool = n - weak - dev - fin
    if s.pool is not None:
        pool = min(pool, s.pool)
    if min(weak, dev, fin, pool) <= 0:
        raise DataError(f"{n} examples are too few for the split sizes {s}", retryable=False)
    return weak, pool, dev, fin


def make_split(
    data: TaskData, split_seed: int = 0, sizes: SplitSizes = SplitSizes()
) -> tuple[TaskView, TaskLabels]:
    """Split a task deterministically; the same data, seed and sizes always give the same split.

    Examples that share a group go to the same split. The view carries labels for weak_train only;
    pool, dev and final labels go into the returned ``TaskLabels``.

    Raises:
        DataError: the task has too few examples for the sizes.
    """
    rng = _rng(data.name, split_seed)
    groups = data.groups or data.ids
    uniq = sorted(set(groups))
    order = rng.permutation(len(uniq))
    members: dict[str, list[int]] = {}
    for i, g in enumerate(groups):
        members.setdefault(g, []).append(i)
    idx = [i for gi in order for i in members[uniq[gi]]]
    weak, pool, dev, fin = _sizes(len(data), sizes)
    cuts = np.cumsum([weak, dev, fin, pool])
    parts = [idx[: cuts[0]], idx[cuts[0] : cuts[1]], idx[cuts[1] : cuts[2]], idx[cuts[2] : cuts[3]]]

    def texts(rows: list[int]) -> SplitTexts:
        rows = sorted(rows)
        return SplitTexts(
            ids=[data.ids[i] for i in rows],
            texts=[data.texts[i] for i in rows],
            texts_b=None if data.texts_b is None else [data.texts_b[i] for i in rows],
        )

    def labels(rows: list[int]) -> dict[str, int]:
        return {data.ids[i]: int(data.labels[i]) for i in sorted(rows)}

    view = TaskView(
        task=data.name,
        kind=data.kind,
        label_names=list(data.label_names),
        split_seed=split_seed,
        weak_train=texts(parts[0]),
        weak_train_labels=[int(data.labels[i]) for i in sorted(parts[0])],
        pool=texts(parts[3]),
        dev=texts(parts[1]),
        final=texts(parts[2]),
        instruction=data.instruction,
    )
    return view, TaskLabels(
        task=data.name,
        split_seed=split_seed,
        view_digest=view.digest(),
        pool=labels(parts[3]),
        dev=labels(parts[1]),
        final=labels(parts[2]),
    )
