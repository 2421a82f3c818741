"""Direct-call W2S experiments: features for a view and one method run (baselines live in scoring.py)."""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import msgspec
import numpy as np

import gpu_worker.methods  # noqa: F401  (registers every method)
from gpu_worker.features import encode_cached
from gpu_worker.heads import DEFAULT_HEAD, HeadConfig, fit_labels
from gpu_worker.methods.base import MethodInput, get_method
from gpu_worker.models.base import Array
from gpu_worker.models.finetune import FinetuneConfig, Progress, finetune_student
from gpu_worker.models.tfidf import tfidf_weak_probs
from gpu_worker.prompting import PromptSpec, prompt_scores
from schemas.artifacts import EVAL_SPLITS, SPLITS, TaskView


@dataclass(frozen=True, slots=True)
class TaskFeatures:
    """Everything head-only experiments need for one view, computed once.

    Attributes:
        weak_probs: the weak supervisor's ``(n, K)`` probabilities on every split.
        strong: standardised strong features on every split (pairs as ``[u, v, u*v, |u-v|]``).
        weak_model: the weak model's spec.
        strong_model: the strong model's spec.
        timings: seconds spent on each stage.
        prompt: the strong LM's verbalizer log-probabilities on pool, dev and final, when asked for.
        prompt_spec: how ``prompt`` was computed.
    """

    weak_probs: dict[str, Array]
    strong: dict[str, Array]
    weak_model: str
    strong_model: str
    timings: dict[str, float] = field(default_factory=dict)
    prompt: dict[str, Array] | None = None
    prompt_spec: PromptSpec | None = None


class Predictions(msgspec.Struct, frozen=True, kw_only=True):
    """A method's predicted labels on dev and final, by example id, and what it cost."""

    task: str
    method: str
    seed: int
    dev: dict[str, int]
    final: dict[str, int]
    timings: dict[str, float] = {}


def encode_view(
    view: TaskView, model: str, *, root: Path | None = None, progress: bool = False
) -> dict[str, Array]:
    """Raw encoder features for every split; pair splits give ``(n, 2, d)``, single ones ``(n, d)``."""
    out: dict[str, Array] = {}
    for name in SPLITS:
        s = view.split(name)
        x = encode_cached(model, view.task, s.all_texts(), root=root, progress=progress)
        out[name] = x if s.texts_b is None else np.stack([x[: len(s)], x[len(s) :]], 1)
    return out


def _combine(raw: dict[str, Array]) -> dict[str, Array]:
    def pair(x: Array) -> Array:
        if x.ndim == 2:
            return x
        u, v = x[:, 0], x[:, 1]
        return np.concatenate([u, v, u * v, np.abs(u - v)], 1)

    feats = {k: pair(v) for k, v in raw.items()}
    # Unlabelled statistics over every split: no label is involved, so this leaks nothing.
    allx = np.concatenate(list(feats.values()))
    mu, sd = allx.mean(0), allx.std(0) + 1e-6
    return {k: np.ascontiguousarray((v - mu) / sd, dtype=np.float32) for k, v in feats.items()}


def weak_probs(
    view: TaskView, weak_model: str, *, root: Path | None = None, seed: int = 0
) -> dict[str, Array]:
    """Train the weak supervisor on weak_train gold labels and return its probabilities on every split.

    ``tfidf`` and ``tfidf-char`` are n-gram models; any other name is an encoder spec whose frozen
    features get a linear head (e.g. a small model, or a strong model's early layer).
    """
    if weak_model in ("tfidf", "tfidf-char"):
        return tfidf_weak_probs(view, "char_wb" if weak_model == "tfidf-char" else "word")
    x = _combine(encode_view(view, weak_model, root=root))
    head = fit_labels(x["weak_train"], np.asarray(view.weak_train_labels), view.n_classes, seed=seed)
    return {k: head.probs(v) for k, v in x.items()}


def prepare_features(
    view: TaskView,
    weak_model: str = "tfidf",
    strong_model: str = "minilm",
    *,
    root: Path | None = None,
    progress: bool = False,
    prompt: PromptSpec | None = None,
) -> TaskFeatures:
    """Compute (or load from the cache) the weak probabilities and strong features of a view.

    Args:
        view: the label-free task view.
        weak_model: ``tfidf``, ``tfidf-char`` or an encoder spec.
        strong_model: an encoder spec, e.g. ``minilm`` or ``smollm2@16:mean``.
        root: cache root (default: the user cache dir).
        progress: show encoding progress bars.
        prompt: also score zero/few-shot prompts with a strong LM (slow on CPU, cached per prompt); methods
            such as ``zeroshot`` need it.

    Returns:
        The features for ``run_experiment`` and ``baselines``.
    """
    t0 = time.perf_counter()
    wp = weak_probs(view, weak_model, root=root)
    t1 = time.perf_counter()
    strong = _combine(encode_view(view, strong_model, root=root, progress=progress))
    t2 = time.perf_counter()
    timings = {"weak": t1 - t0, "strong_features": t2 - t1}
    scores = None if prompt is None else prompt_scores(view, prompt, root=root, progress=progress)
    if prompt is not None:
        timings["prompt_scores"] = time.perf_counter() - t2
    return TaskFeatures(wp, strong, weak_model, strong_model, timings, scores, prompt)


def method_input(feats: TaskFeatures, n_classes: int, head: HeadConfig = DEFAULT_HEAD) -> MethodInput:
    """Build the label-free input of a method from a view's features."""
    return MethodInput(
        x_pool=feats.strong["pool"],
        weak_pool=feats.weak_probs["pool"],
        x_eval=np.concatenate([feats.strong[s] for s in EVAL_SPLITS]),
        weak_eval=np.concatenate([feats.weak_probs[s] for s in EVAL_SPLITS]),
        n_classes=n_classes,
        head=head,
        prompt_pool=None if feats.prompt is None else feats.prompt["pool"],
        prompt_eval=None if feats.prompt is None else np.concatenate([feats.prompt[s] for s in EVAL_SPLITS]),
    )


def run_experiment(
    view: TaskView,
    feats: TaskFeatures,
    method: str,
    params: Mapping[str, Any] | None = None,
    seed: int = 0,
    *,
    head: HeadConfig = DEFAULT_HEAD,
) -> Predictions:
    """Run one head-only W2S experiment and return dev and final predictions by example id.

    Args:
        view: the label-free task view.
        feats: its features from ``prepare_features``.
        method: a registered method name.
        params: the method's params as plain data (validated against its params Struct).
        seed: seeds every random choice; the same inputs and seed give the same predictions on CPU.
        head: optimiser settings for linear heads.

    Raises:
        UnknownNameError: no such method.
        BadParamsError: the params do not fit the method.
    """
    spec = get_method(method)
    p = spec.decode(params)
    t0 = time.perf_counter()
    probs = spec.run(method_input(feats, view.n_classes, head), p, seed)
    return predictions_from_probs(view, probs, method, seed, {"method": time.perf_counter() - t0})


def predictions_from_probs(
    view: TaskView, probs: Array, method: str, seed: int, timings: dict[str, float]
) -> Predictions:
    """Predicted labels by example id from ``(n_dev + n_final, K)`` probabilities, dev rows first."""
    pred = probs.argmax(1).tolist()
    n_dev = len(view.dev)
    return Predictions(
        task=view.task,
        method=method,
        seed=seed,
        dev=dict(zip(view.dev.ids, pred[:n_dev], strict=True)),
        final=dict(zip(view.final.ids, pred[n_dev:], strict=True)),
        timings=timings,
    )


def run_finetune_experiment(
    view: TaskView,
    feats: TaskFeatures,
    cfg: FinetuneConfig,
    seed: int = 0,
    *,
    stop: threading.Event | None = None,
    progress: Progress | None = None,
) -> Predictions:
    """Fine-tune the strong encoder on the weak pool labels (CUDA when present) and predict dev and final.

    Args:
        view: the label-free task view.
        feats: its features; only the weak probabilities are used.
        cfg: fine-tuning settings (model, epochs, LoRA rank, confidence filter...).
        seed: seeds init and batch order.
        stop: set it to abort between steps (raises a retryable ``TaskFailedError``).
        progress: called as ``progress(step, total_steps, loss)`` after every step.
    """
    t0 = time.perf_counter()
    probs = finetune_student(view, feats.weak_probs["pool"], cfg, seed, stop=stop, progress=progress)
    method = f"finetune:{cfg.model}" + (f":lora{cfg.lora_r}" if cfg.lora_r else "")
    return predictions_from_probs(view, probs, method, seed, {"finetune": time.perf_counter() - t0})
