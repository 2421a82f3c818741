"""Tasks from local JSONL/CSV/parquet files or Hugging Face dataset ids."""

from __future__ import annotations

import hashlib
import importlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd  # type: ignore[import-untyped]

from gpu_worker.errors import DataError
from gpu_worker.tasks.base import TaskData

_READERS = {".jsonl": "jsonl", ".json": "jsonl", ".csv": "csv", ".parquet": "parquet", ".pq": "parquet"}


@dataclass(frozen=True, slots=True)
class Columns:
    """Which columns hold the text(s), the label and (optionally) the example id."""

    text: str = "text"
    label: str = "label"
    text_b: str | None = None
    id: str | None = None


DEFAULT_COLUMNS = Columns()


def load_frame(frame: pd.DataFrame, name: str, columns: Columns = DEFAULT_COLUMNS) -> TaskData:
    """Turn a table into a task; labels are mapped to 0..K-1 in sorted order of their values.

    Raises:
        DataError: a named column is missing or the table is empty.
    """
    wanted = [c for c in (columns.text, columns.label, columns.text_b, columns.id) if c is not None]
    missing = [c for c in wanted if c not in frame.columns]
    if missing:
        raise DataError(
            f"task {name}: missing columns {missing}; have {list(frame.columns)}", retryable=False
        )
    frame = frame.dropna(subset=wanted)
    if frame.empty:
        raise DataError(f"task {name}: no rows with every column set", retryable=False)
    raw = frame[columns.label].to_numpy()
    values = sorted(set(raw.tolist()), key=lambda v: (str(type(v)), v))
    index = {v: i for i, v in enumerate(values)}
    labels = np.asarray([index[v] for v in raw.tolist()], dtype=np.int64)
    texts = [str(t) for t in frame[columns.text].tolist()]
    texts_b = None if columns.text_b is None else [str(t) for t in frame[columns.text_b].tolist()]
    if columns.id is not None:
        ids = [str(i) for i in frame[columns.id].tolist()]
    else:
        # Ids from content (plus the row for exact duplicates) stay stable when rows are reordered.
        seen: dict[str, int] = {}
        ids = []
        for i, t in enumerate(texts):
            key = t if texts_b is None else t + "\x00" + texts_b[i]
            h = hashlib.sha256(key.encode()).hexdigest()[:16]
            seen[h] = seen.get(h, -1) + 1
            ids.append(f"{name}-{h}" + (f"-{seen[h]}" if seen[h] else ""))
    return TaskData(
        name=name,
        kind="single" if texts_b is None else "pair",
        ids=ids,
        texts=texts,
        texts_b=texts_b,
        labels=labels,
        label_names=[str(v) for v in values],
    )


def load_file(path: str | Path, name: str | None = None, columns: Columns = DEFAULT_COLUMNS) -> TaskData:
    """Load a task from a ``.jsonl``, ``.csv`` or ``.parquet`` file.

    Raises:
        DataError: unknown extension, unreadable file, or missing columns.
    """
    p = Path(path)
    kind = _READERS.get(p.suffix.lower())
    if kind is None:
        raise DataError(
            f"{p}: unsupported file type {p.suffix!r}; use .jsonl, .csv or .parquet", retryable=False
        )
    try:
        if kind == "jsonl":
            frame = pd.read_json(p, lines=True, dtype=False)
        elif kind == "csv":
            frame = pd.read_csv(p, keep_default_na=False, na_values=[""])
        else:
            frame = pd.read_parquet(p)
    except (OSError, ValueError) as e:
        raise DataError(f"{p}: cannot read: {e}", retryable=False) from e
    return load_frame(frame, name or p.stem, columns)


def load_hf(
    dataset_id: str,
    *,
    split: str = "train",
    name: str | None = None,
    columns: Columns = DEFAULT_COLUMNS,
    config: str | None = None,
) -> TaskData:
    """Load a task from a Hugging Face dataset id (needs the optional ``datasets`` package and the hub).

    Raises:
        DataError: ``datasets`` is not installed, or the dataset cannot be loaded.
    """
    try:
        datasets: Any = importlib.import_module("datasets")
    except ImportError as e:
        raise DataError(
            f"the Hugging Face dataset {dataset_id!r} needs the 'datasets' package (pip install datasets)",
            retryable=False,
        ) from e
    try:
        ds = datasets.load_dataset(dataset_id, config, split=split)
    except Exception as e:  # datasets raises many unrelated types (network, config, file)
        raise DataError(f"cannot load Hugging Face dataset {dataset_id!r}: {e}", retryable=True) from e
    return load_frame(ds.to_pandas(), name or dataset_id.replace("/", "_"), columns)
