"""Operator commands: put prepared tasks on the bus and record their baselines.

These run with the operator's rights: they read raw datasets (``prepare``) and gold labels
(``record_baselines``). Workers only ever get what ``prepare`` publishes: label-free views.
"""

from __future__ import annotations

import asyncio
import logging
import statistics

from bus import Bus, streams
from bus.store import NamedObjects
from gpu_worker.errors import DataError
from gpu_worker.pipeline import prepare_features
from gpu_worker.scoring import baselines
from gpu_worker.splits import SplitSizes, make_split
from gpu_worker.tasks import Columns, load_task, task_names, task_spec
from gpu_worker.tasks.files import DEFAULT_COLUMNS
from schemas import Baseline, TaskInfo
from schemas.artifacts import EVAL_SPLITS, TaskLabels, TaskView, WeakPredictions

log = logging.getLogger("aar.tasks")

DEFAULT_WEAK, DEFAULT_STRONG = "tfidf", "minilm"


async def prepare(
    bus: Bus,
    swarm: str,
    source: str,
    *,
    split_seed: int = 0,
    sizes: SplitSizes | None = None,
    weak_model: str | None = None,
    strong_model: str | None = None,
    prompt_model: str = "smollm2",
    columns: Columns = DEFAULT_COLUMNS,
    sender: str = "operator",
) -> TaskInfo:
    """Split a task and publish it: the view to the artifact store, the labels to the label store.

    Args:
        bus: a connected bus with the operator's rights.
        swarm: the swarm the task is for.
        source: a registered task name, ``hf:<dataset id>`` or a JSONL/CSV/parquet path.
        split_seed: seeds the deterministic split.
        sizes: split sizes (default: ``SplitSizes()``, with a registered task's own eval size).
        weak_model, strong_model: the model pair workers use unless a request names others
            (default: the registered task's pair, else tfidf and minilm).
        prompt_model: the LM scorer for methods that prompt (``zeroshot``, ``prompt_consistency``).
        columns: column names for file and hub sources.
        sender: who the TaskInfo says published it.

    Returns:
        The TaskInfo now in the swarm's tasks bucket.
    """
    spec = task_spec(source) if source in task_names() else None
    if sizes is None:
        sizes = SplitSizes() if spec is None else SplitSizes(dev=spec.eval_size, final=spec.eval_size)
    weak_model = weak_model or (spec.weak_model if spec else DEFAULT_WEAK)
    strong_model = strong_model or (spec.strong_model if spec else DEFAULT_STRONG)
    data = await asyncio.to_thread(load_task, source, columns)
    view, labels = make_split(data, split_seed, sizes)
    artifacts = await bus.artifacts(swarm)
    ref = await artifacts.put(view.to_bytes(), content_type="application/x-aar-task-view+msgpack")
    label_store = await NamedObjects.open(bus, streams.labels_bucket(swarm))
    await label_store.put(view.task, labels.to_bytes())
    info = TaskInfo(
        swarm=swarm,
        sender=sender,
        task=view.task,
        task_kind=data.kind,
        label_names=list(view.label_names),
        view=ref,
        view_digest=view.digest(),
        weak_model=weak_model,
        strong_model=strong_model,
        prompt_model=prompt_model,
        sizes={s: len(view.split(s)) for s in ("weak_train", "pool", "dev", "final")},
        description=view.instruction,
    )
    tasks = await bus.kv(streams.tasks_bucket(swarm))
    await tasks.put(view.task, info)
    log.info("task prepared", extra={"task": view.task, "sizes": info.sizes, "view": ref.sha256[:12]})
    return info


async def load_prepared(bus: Bus, swarm: str, task: str) -> tuple[TaskInfo, TaskView, TaskLabels]:
    """The operator's view of a prepared task, labels included."""
    tasks = await bus.kv(streams.tasks_bucket(swarm))
    info = await tasks.get(task)
    if not isinstance(info, TaskInfo):
        raise LookupError(f"task {task!r} is not prepared in swarm {swarm!r} (run `aar tasks prepare`)")
    view = TaskView.from_bytes(await (await bus.artifacts(swarm)).get(info.view))
    label_store = await NamedObjects.open(bus, streams.labels_bucket(swarm))
    labels = TaskLabels.from_bytes(await label_store.get(task))
    if labels.view_digest != info.view_digest:
        raise LookupError(f"labels of {task!r} belong to another split; prepare the task again")
    return info, view, labels


async def record_baselines(
    bus: Bus,
    swarm: str,
    task: str,
    *,
    seeds: int = 5,
    weak_model: str | None = None,
    strong_model: str | None = None,
    sender: str = "operator",
    progress: bool = False,
) -> Baseline:
    """Compute weak, ceiling and naive accuracy over ``seeds`` seeds and store the means.

    The weak supervisor's own dev and final predictions go to the label store beside the gold labels
    (the scorer's weak-copy detector compares submissions with them).

    ``spread`` holds the seed standard deviations (``weak_dev``, ``ceiling_dev``, ``naive_pgr_dev``...).
    ``progress`` shows progress bars while the feature cache is built.

    Raises:
        LookupError: the task is not prepared.
        DataError: the strong ceiling does not beat the weak supervisor on some seed and split.
    """
    info, view, labels = await load_prepared(bus, swarm, task)
    weak, strong = weak_model or info.weak_model, strong_model or info.strong_model
    feats = await asyncio.to_thread(prepare_features, view, weak, strong, progress=progress)
    runs = [await asyncio.to_thread(baselines, view, labels, feats, seed=s) for s in range(seeds)]
    for r in runs:
        for s in EVAL_SPLITS:
            if r.ceiling[s] <= r.weak[s]:
                raise DataError(
                    f"task {task}: the strong ceiling ({r.ceiling[s]:.3f} on {s}) does not beat the weak "
                    f"supervisor ({r.weak[s]:.3f}), so PGR is undefined; pick a harder task or another "
                    "model pair",
                    retryable=False,
                )
    weak_acc = {s: statistics.fmean(r.weak[s] for r in runs) for s in EVAL_SPLITS}
    ceiling_acc = {s: statistics.fmean(r.ceiling[s] for r in runs) for s in EVAL_SPLITS}
    naive_acc = {s: statistics.fmean(r.naive[s] for r in runs) for s in EVAL_SPLITS}
    naive_pgrs = {s: [r.pgr(r.naive[s], s) for r in runs] for s in EVAL_SPLITS}
    spread: dict[str, float] = {}
    for s in EVAL_SPLITS:
        spread[f"weak_{s}"] = _std([r.weak[s] for r in runs])
        spread[f"ceiling_{s}"] = _std([r.ceiling[s] for r in runs])
        spread[f"naive_pgr_{s}"] = _std(naive_pgrs[s])
    record = Baseline(
        swarm=swarm,
        sender=sender,
        task=task,
        weak_model=weak,
        strong_model=strong,
        view_digest=info.view_digest,
        seeds=list(range(seeds)),
        weak_acc=weak_acc,
        ceiling_acc=ceiling_acc,
        naive_acc=naive_acc,
        naive_pgr={s: statistics.fmean(v) for s, v in naive_pgrs.items()},
        spread=spread,
    )
    weak_preds = WeakPredictions(
        task=task,
        view_digest=info.view_digest,
        weak_model=weak,
        dev=dict(zip(view.dev.ids, feats.weak_probs["dev"].argmax(1).tolist(), strict=True)),
        final=dict(zip(view.final.ids, feats.weak_probs["final"].argmax(1).tolist(), strict=True)),
    )
    label_store = await NamedObjects.open(bus, streams.labels_bucket(swarm))
    await label_store.put(streams.weak_predictions_object(task), weak_preds.to_bytes())
    await (await bus.kv(streams.baselines_bucket(swarm))).put(task, record)
    return record


def _std(values: list[float]) -> float:
    return statistics.stdev(values) if len(values) > 1 else 0.0
