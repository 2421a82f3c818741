"""Fixtures for the W2S engine tests: a synthetic task and a cheap deterministic encoder."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest

from gpu_worker.models.base import Array, EncoderSpec, register_encoder
from gpu_worker.tasks.base import TaskData

WORDS_POS = ["good", "great", "fine", "superb", "lovely", "bright", "warm", "happy"]
WORDS_NEG = ["bad", "awful", "poor", "dull", "grim", "cold", "sad", "weak"]
FILLER = ["the", "film", "plot", "actor", "scene", "story", "music", "ending", "cast", "day"]


class BagOfWordsEncoder:
    """Hashes words into a fixed random space: fast, deterministic, and semantically blind."""

    def __init__(self, spec: EncoderSpec) -> None:
        self._name = str(spec)

    @property
    def name(self) -> str:
        return self._name

    def encode(self, texts: Sequence[str], *, batch_size: int = 32, progress: bool = False) -> Array:
        out = np.zeros((len(texts), 32), dtype=np.float32)
        for i, t in enumerate(texts):
            for w in t.split():
                seed = int.from_bytes(hashlib.sha256(w.encode()).digest()[:4], "little")
                out[i] += np.random.default_rng(seed).standard_normal(32).astype(np.float32)
        return out


register_encoder("test-bow")(BagOfWordsEncoder)


def synthetic_task(n: int = 400, *, pair: bool = False, seed: int = 0, n_classes: int = 2) -> TaskData:
    """Short texts whose label shows in a few sentiment words, with label noise-free gold."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, n_classes, size=n)
    vocab = [WORDS_NEG, WORDS_POS, ["odd", "weird", "strange", "quirky"]][:n_classes]
    texts, texts_b = [], []
    for i, y in enumerate(labels):
        words = list(rng.choice(FILLER, size=6)) + list(rng.choice(vocab[y], size=2))
        texts.append(" ".join(rng.permutation(words)) + f" n{i}")
        texts_b.append(" ".join(rng.choice(FILLER, size=4)) + f" m{i}")
    return TaskData(
        name=f"synthetic{'-pair' if pair else ''}",
        kind="pair" if pair else "single",
        ids=[f"s{i:05d}" for i in range(n)],
        texts=texts,
        texts_b=texts_b if pair else None,
        labels=labels.astype(np.int64),
        label_names=[f"c{k}" for k in range(n_classes)],
        groups=[f"g{i // 2}" for i in range(n)] if pair else None,
    )


@pytest.fixture
def cache_root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A private cache dir for one test (set through AAR_CACHE_DIR)."""
    root = tmp_path / "cache"
    monkeypatch.setenv("AAR_CACHE_DIR", str(root))
    return root


@pytest.fixture
def task_file(tmp_path: Path) -> Path:
    """A 500-example synthetic task as a JSONL file (``tiny``), the way a user brings their own data."""
    data = synthetic_task(500)
    path = tmp_path / "tiny.jsonl"
    with path.open("w") as f:
        for i, text, label in zip(data.ids, data.texts, data.labels.tolist(), strict=True):
            f.write(json.dumps({"id": i, "text": text, "label": label}) + "\n")
    return path
