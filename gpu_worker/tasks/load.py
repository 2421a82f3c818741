"""One entry point for every task source: registry names, Hugging Face ids and local files."""

from __future__ import annotations

from pathlib import Path

from gpu_worker.tasks.base import TaskData, task_spec
from gpu_worker.tasks.files import DEFAULT_COLUMNS, Columns, load_file, load_hf


def load_task(source: str, columns: Columns = DEFAULT_COLUMNS) -> TaskData:
    """Load a task by registry name, ``hf:<dataset id>``, or a path to a JSONL/CSV/parquet file.

    Raises:
        UnknownNameError: not a registered name, not ``hf:`` and not an existing file.
        DataError: the data cannot be fetched, verified or parsed.
    """
    if source.startswith("hf:"):
        return load_hf(source[3:], columns=columns)
    if Path(source).suffix and Path(source).exists():
        return load_file(source, columns=columns)
    return task_spec(source).loader()
