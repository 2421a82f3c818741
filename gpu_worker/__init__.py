"""The weak-to-strong engine: tasks, label-free views, frozen features, methods and direct-call experiments.

Plain Python, numpy and torch: no asyncio and no NATS (the worker service wraps this). Typical use::

    data = load_task("rt")
    view, labels = make_split(data, split_seed=0)          # labels stay with the scorer
    feats = prepare_features(view, "tfidf", "minilm")      # cached in the user cache dir
    preds = run_experiment(view, feats, "knn", {"k": 25}, seed=0)

Prompting methods (``zeroshot``, ``prompt_consistency``) also need the strong LM's prompt scores::

    feats = prepare_features(view, "tfidf", "minilm", prompt=PromptSpec(k=0))   # SmolLM2, cached
"""

from gpu_worker.errors import BadParamsError, ChecksumError, DataError, GpuWorkerError, TaskFailedError
from gpu_worker.methods import get_method, method_names
from gpu_worker.pipeline import (
    Predictions,
    TaskFeatures,
    prepare_features,
    run_experiment,
    run_finetune_experiment,
)
from gpu_worker.prompting import PromptSpec
from gpu_worker.splits import SplitSizes, make_split
from gpu_worker.tasks import load_task, task_names, task_spec
from schemas.artifacts import SplitTexts, TaskLabels, TaskView

__all__ = [
    "BadParamsError",
    "ChecksumError",
    "DataError",
    "GpuWorkerError",
    "Predictions",
    "PromptSpec",
    "SplitSizes",
    "SplitTexts",
    "TaskFailedError",
    "TaskFeatures",
    "TaskLabels",
    "TaskView",
    "get_method",
    "load_task",
    "make_split",
    "method_names",
    "prepare_features",
    "run_experiment",
    "run_finetune_experiment",
    "task_names",
    "task_spec",
]
