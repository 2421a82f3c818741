"""The in-memory form of a labelled task and the registry of named tasks."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import numpy.typing as npt

from gpu_worker.errors import DataError, UnknownNameError

TaskKind = Literal["single", "pair"]


@dataclass(frozen=True, slots=True)
class TaskData:
    """Every example of one task, with gold labels; only the split function and the scorer see this.

    Attributes:
        name: the task's registry name.
        kind: ``single`` (one text) or ``pair`` (``texts`` and ``texts_b`` side by side).
        ids: a stable id per example; the same data always gives the same ids.
        texts: the text, or the first text of a pair.
        labels: gold labels in ``0..n_classes-1``.
        label_names: a readable name per class, e.g. for zero-shot prompts.
        texts_b: the second text of each pair (``pair`` tasks only).
        groups: examples that share a group always land in the same split (e.g. pairs made from one item).
        instruction: a one-line description of what the label means.
    """

    name: str
    kind: TaskKind
    ids: list[str]
    texts: list[str]
    labels: npt.NDArray[np.int64]
    label_names: list[str]
    texts_b: list[str] | None = None
    groups: list[str] | None = None
    instruction: str = ""

    def __post_init__(self) -> None:
        n = len(self.ids)
        if len(self.texts) != n or len(self.labels) != n:
            raise DataError(f"task {self.name}: ids, texts and labels differ in length", retryable=False)
        if (self.kind == "pair") != (self.texts_b is not None):
            raise DataError(
                f"task {self.name}: a pair task needs texts_b, a single task must not have it",
                retryable=False,
            )
        if self.texts_b is not None and len(self.texts_b) != n:
            raise DataError(f"task {self.name}: texts_b differs in length", retryable=False)
        if len(set(self.ids)) != n:
            raise DataError(f"task {self.name}: example ids are not unique", retryable=False)
        if n and (self.labels.min() < 0 or self.labels.max() >= len(self.label_names)):
            raise DataError(
                f"task {self.name}: labels outside 0..{len(self.label_names) - 1}", retryable=False
            )

    @property
    def n_classes(self) -> int:
        """Number of classes."""
        return len(self.label_names)

    def __len__(self) -> int:
        return len(self.ids)


TaskLoader = Callable[[], TaskData]


@dataclass(frozen=True, slots=True)
class TaskSpec:
    """A registered task: how to load it and what it is."""

    name: str
    loader: TaskLoader
    description: str
    default: bool = True
    tags: tuple[str, ...] = field(default_factory=tuple)
    weak_model: str = "tfidf"
    strong_model: str = "minilm"
    eval_size: int = 2000


_TASKS: dict[str, TaskSpec] = {}


def register_task(
    name: str,
    description: str,
    *,
    default: bool = True,
    tags: Sequence[str] = (),
    weak_model: str = "tfidf",
    strong_model: str = "minilm",
    eval_size: int = 2000,
) -> Callable[[TaskLoader], TaskLoader]:
    """Register a loader under ``name``; use as a decorator on a zero-argument function.

    ``weak_model``/``strong_model`` are the task's default model pair; ``eval_size`` the default size
    of dev and of final (smaller for small tasks, so the pool stays large enough).
    """

    def deco(fn: TaskLoader) -> TaskLoader:
        _TASKS[name] = TaskSpec(
            name, fn, description, default, tuple(tags), weak_model, strong_model, eval_size
        )
        return fn

    return deco


def task_spec(name: str) -> TaskSpec:
    """Return the spec of a registered task.

    Raises:
        UnknownNameError: no task has that name.
    """
    try:
        return _TASKS[name]
    except KeyError:
        raise UnknownNameError("task", name, list(_TASKS)) from None


def task_names(*, default_only: bool = False) -> list[str]:
    """Names of the registered tasks, in registration order."""
    return [s.name for s in _TASKS.values() if s.default or not default_only]


def balance(
    labels: npt.NDArray[np.int64], rng: np.random.Generator, per_class: int | None = None
) -> npt.NDArray[np.int64]:
    """Return sorted indices that keep ``per_class`` (default: the rarest class's count) of each class."""
    classes = np.unique(labels)
    k = per_class or min(int((labels == c).sum()) for c in classes)
    keep = [rng.permutation(np.flatnonzero(labels == c))[:k] for c in classes]
    return np.sort(np.concatenate(keep))
