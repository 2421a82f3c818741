"""Frozen features, computed once per (model, task, text) and kept as .npy files in the user cache."""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from gpu_worker.cache import cache_dir
from gpu_worker.models.base import Array, get_encoder


def _slug(s: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", s)


def _text_keys(texts: Sequence[str]) -> np.ndarray:
    return np.asarray([hashlib.sha256(t.encode()).digest()[:16] for t in texts], dtype="S16")


class FeatureTable:
    """Encoder outputs for one (model, task), keyed by a hash of each text.

    Stored as ``<cache>/features/<model>/<task>/{keys,emb}.npy``. Splits drawn with any seed reuse it,
    so each text is encoded once however the task is split.
    """

    def __init__(self, model: str, task: str, root: Path | None = None) -> None:
        self.model, self.task = model, task
        self.dir = (root or cache_dir()) / "features" / _slug(model) / _slug(task)
        self._keys: np.ndarray = np.zeros(0, dtype="S16")
        self._emb: Array | None = None
        self._index: dict[bytes, int] = {}
        if (self.dir / "keys.npy").exists() and (self.dir / "emb.npy").exists():
            self._keys = np.load(self.dir / "keys.npy")
            self._emb = np.load(self.dir / "emb.npy")
            self._index = {bytes(k): i for i, k in enumerate(self._keys)}

    def __len__(self) -> int:
        return len(self._index)

    def missing(self, texts: Sequence[str]) -> list[str]:
        """The distinct texts not in the table yet."""
        out: dict[bytes, str] = {}
        for k, t in zip(_text_keys(texts), texts, strict=True):
            if bytes(k) not in self._index:
                out.setdefault(bytes(k), t)
        return list(out.values())

    def add(self, texts: Sequence[str], emb: Array) -> None:
        """Append encoded texts and write the table atomically."""
        keys = _text_keys(texts)
        self._keys = np.concatenate([self._keys, keys])
        self._emb = emb if self._emb is None else np.concatenate([self._emb, emb])
        self._index = {bytes(k): i for i, k in enumerate(self._keys)}
        self.dir.mkdir(parents=True, exist_ok=True)
        # Write under a temporary name and rename, so a reader never sees half a table.
        for name, arr in (("emb", self._emb), ("keys", self._keys)):
            tmp = self.dir / f"{name}.{os.getpid()}.tmp.npy"
            np.save(tmp, arr)
            tmp.replace(self.dir / f"{name}.npy")

    def get(self, texts: Sequence[str]) -> Array:
        """Rows for texts that are all in the table, in order."""
        if self._emb is None:
            raise KeyError("empty feature table")
        rows = [self._index[bytes(k)] for k in _text_keys(texts)]
        return np.asarray(self._emb[rows], dtype=np.float32)


def encode_cached(
    model: str,
    task: str,
    texts: Sequence[str],
    *,
    root: Path | None = None,
    progress: bool = False,
    batch_size: int = 32,
) -> Array:
    """Encode texts with a registered encoder, computing only those not cached yet.

    Args:
        model: an encoder spec, e.g. ``minilm`` or ``smollm2@16:last``.
        task: the task name (names the cache folder).
        texts: texts to encode.
        root: cache root (default: ``cache_dir()``).
        progress: show a progress bar while encoding.
        batch_size: texts per forward pass.

    Returns:
        An ``(len(texts), dim)`` float32 array.
    """
    table = FeatureTable(model, task, root)
    todo = table.missing(texts)
    if todo:
        table.add(todo, get_encoder(model).encode(todo, batch_size=batch_size, progress=progress))
    return table.get(texts)
