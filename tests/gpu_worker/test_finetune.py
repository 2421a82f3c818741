"""The fine-tuning path on a tiny CPU run (and on CUDA when there is one)."""

from __future__ import annotations

import threading

import numpy as np
import pytest
import torch

from gpu_worker.errors import TaskFailedError
from gpu_worker.models.finetune import FinetuneConfig, finetune_student
from gpu_worker.pipeline import prepare_features, run_finetune_experiment
from gpu_worker.splits import SplitSizes, make_split

from .conftest import synthetic_task

SIZES = SplitSizes(weak_train=10, dev=8, final=8, min_pool=16)
TINY = FinetuneConfig(batch_size=8, max_length=16, max_examples=16, lr=1e-4)


def _weak(n: int, k: int) -> np.ndarray:
    return np.eye(k, dtype=np.float32)[np.arange(n) % k] * 0.8 + 0.1


@pytest.mark.parametrize(("pair", "lora"), [(False, 0), (True, 4)])
def test_tiny_cpu_finetune(pair: bool, lora: int) -> None:
    view, _ = make_split(synthetic_task(60, pair=pair), 0, SIZES)
    steps: list[int] = []
    cfg = FinetuneConfig(batch_size=8, max_length=16, max_examples=16, lr=1e-4, lora_r=lora)
    probs = finetune_student(
        view, _weak(len(view.pool), 2), cfg, seed=0, progress=lambda s, total, loss: steps.append(s)
    )
    assert probs.shape == (len(view.dev) + len(view.final), 2)
    np.testing.assert_allclose(probs.sum(1), 1.0, atol=1e-4)
    assert steps == [1, 2]


def test_finetune_stops_on_request() -> None:
    view, _ = make_split(synthetic_task(60), 0, SIZES)
    stop = threading.Event()
    stop.set()
    with pytest.raises(TaskFailedError) as e:
        finetune_student(view, _weak(len(view.pool), 2), TINY, stop=stop)
    assert e.value.retryable


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_finetune_on_cuda() -> None:
    view, _ = make_split(synthetic_task(200), 0, SplitSizes(weak_train=20, dev=40, final=40, min_pool=100))
    probs = finetune_student(
        view, _weak(len(view.pool), 2), FinetuneConfig(batch_size=16, max_length=32), seed=0
    )
    assert probs.shape == (80, 2)


def test_finetune_experiment_returns_predictions(cache_root: object) -> None:
    view, _ = make_split(synthetic_task(60), 0, SIZES)
    feats = prepare_features(view, "tfidf", "test-bow")
    preds = run_finetune_experiment(view, feats, TINY, seed=1)
    assert list(preds.dev) == view.dev.ids and list(preds.final) == view.final.ids
    assert preds.method == "finetune:minilm"
    assert set(preds.dev.values()) <= {0, 1}
