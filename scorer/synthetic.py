"""A synthetic task with known truth, and results with chosen accuracy: for tests, benchmarks, demos.

``publish_task`` writes what the operator writes for a real task (view, labels, weak predictions,
baselines) with the operator's rights; ``submit`` does what a worker does for one request (stores
prediction sets, publishes the result). Nothing here is used by the scorer itself.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from bus import Bus, streams
from bus.store import NamedObjects
from schemas import Baseline, ExperimentResult, Lineage, TaskInfo, new_id
from schemas.artifacts import (
    INLINE_PREDICTIONS_MAX_BYTES,
    PredictionSet,
    SplitTexts,
    TaskLabels,
    TaskView,
    WeakPredictions,
)


@dataclass(frozen=True, slots=True)
class SyntheticTask:
    task: str
    n_classes: int
    view_digest: str
    labels: TaskLabels
    weak: WeakPredictions
    baseline: Baseline

    def ids(self, split: str) -> list[str]:
        return list(self.labels.of(split))

    def gold(self, split: str) -> np.ndarray:
        return np.fromiter(self.labels.of(split).values(), dtype=np.int64)

    def with_accuracy(self, split: str, accuracy: float, rng: np.random.Generator) -> list[int]:
        """Labels right on a random ``accuracy`` share of ``split``, wrong (another class) elsewhere."""
        gold = self.gold(split)
        wrong = rng.random(gold.size) >= accuracy
        shift = rng.integers(1, self.n_classes, size=gold.size)
        out: list[int] = np.where(wrong, (gold + shift) % self.n_classes, gold).tolist()
        return out


async def publish_task(
    bus: Bus,
    swarm: str,
    *,
    task: str = "synth",
    n_eval: int = 2000,
    n_classes: int = 2,
    weak_acc: float = 0.7,
    ceiling_acc: float = 0.9,
    seed: int = 0,
) -> SyntheticTask:
    """Store a synthetic task's view, labels, weak predictions and baselines (operator rights)."""
    rng = np.random.default_rng(seed)

    def split(prefix: str, n: int) -> SplitTexts:
        ids = [f"{prefix}{i:06d}" for i in range(n)]
        return SplitTexts(ids=ids, texts=[f"text {i}" for i in ids])

    view = TaskView(
        task=task,
        kind="single",
        label_names=[f"c{k}" for k in range(n_classes)],
        split_seed=seed,
        weak_train=split("w", 20),
        weak_train_labels=rng.integers(0, n_classes, 20).tolist(),
        pool=split("p", 20),
        dev=split("d", n_eval),
        final=split("f", n_eval),
    )
    digest = view.digest()
    labels = TaskLabels(
        task=task,
        split_seed=seed,
        view_digest=digest,
        pool={i: int(y) for i, y in zip(view.pool.ids, rng.integers(0, n_classes, 20), strict=True)},
        dev={i: int(y) for i, y in zip(view.dev.ids, rng.integers(0, n_classes, n_eval), strict=True)},
        final={i: int(y) for i, y in zip(view.final.ids, rng.integers(0, n_classes, n_eval), strict=True)},
    )
    baseline = Baseline(
        swarm=swarm,
        sender="operator",
        task=task,
        weak_model="synthetic-weak",
        strong_model="synthetic-strong",
        view_digest=digest,
        seeds=[0],
        weak_acc={"dev": weak_acc, "final": weak_acc},
        ceiling_acc={"dev": ceiling_acc, "final": ceiling_acc},
    )
    synth = SyntheticTask(
        task, n_classes, digest, labels, _weak(labels, digest, weak_acc, n_classes, rng), baseline
    )
    ref = await (await bus.artifacts(swarm)).put(view.to_bytes())
    store = await NamedObjects.open(bus, streams.labels_bucket(swarm))
    await store.put(task, labels.to_bytes())
    await store.put(streams.weak_predictions_object(task), synth.weak.to_bytes())
    info = TaskInfo(
        swarm=swarm,
        sender="operator",
        task=task,
        task_kind="single",
        label_names=list(view.label_names),
        view=ref,
        view_digest=digest,
        sizes={"dev": n_eval, "final": n_eval},
    )
    await (await bus.kv(streams.tasks_bucket(swarm))).put(task, info)
    await (await bus.kv(streams.baselines_bucket(swarm))).put(task, baseline)
    return synth


def _weak(
    labels: TaskLabels, digest: str, acc: float, n_classes: int, rng: np.random.Generator
) -> WeakPredictions:
    out: dict[str, dict[str, int]] = {}
    for split in ("dev", "final"):
        gold = labels.of(split)
        out[split] = {
            i: y if rng.random() < acc else int((y + rng.integers(1, n_classes)) % n_classes)
            for i, y in gold.items()
        }
    return WeakPredictions(
        task=labels.task, view_digest=digest, weak_model="synthetic-weak", dev=out["dev"], final=out["final"]
    )


async def submit(
    bus: Bus,
    swarm: str,
    synth: SyntheticTask,
    *,
    dev: list[int],
    final: list[int],
    worker: str = "synthetic-worker",
    agent: str = "agent",
    method: str = "synthetic",
    params: dict[str, object] | None = None,
    seed: int = 0,
    code_hash: str | None = None,
    ids: dict[str, list[str]] | None = None,
    packed: bool = True,
    sender: str | None = None,
    publish: bool = True,
    inline: bool = False,
) -> ExperimentResult:
    """Store two prediction sets and publish the result a worker would.

    Prediction sets are packed in the view's order, as the worker writes them, unless ``packed`` is
    False or ``ids`` names the ids of a split. They are stored as artifacts, or with ``inline``
    placed as the worker places them (in the message when small).
    """
    artifacts = await bus.artifacts(swarm)
    sets = {}
    for split, labels in (("dev", dev), ("final", final)):
        if packed and split not in (ids or {}):
            ps = PredictionSet.in_view_order(
                task=synth.task, split=split, view_digest=synth.view_digest, labels=labels
            )
        else:
            ps = PredictionSet(
                task=synth.task,
                split=split,
                view_digest=synth.view_digest,
                ids=(ids or {}).get(split, synth.ids(split)),
                labels=labels,
            )
        sets[split] = ps
    limit = INLINE_PREDICTIONS_MAX_BYTES if inline else -1
    placed = await artifacts.place_predictions(sets, inline_max=limit)
    result = ExperimentResult(
        swarm=swarm,
        sender=sender or worker,
        worker=worker,
        agent=agent,
        task=synth.task,
        method=method,
        status="ok",
        params=dict(params or {}),
        seed=seed,
        **placed,
        code_hash=code_hash,
        data_hash=synth.view_digest,
        lineage=Lineage(request_id=new_id()),
    )
    if publish:
        await bus.publish(result)
    return result
