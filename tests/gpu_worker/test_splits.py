"""Deterministic splits, and labels kept out of the worker's view."""

from __future__ import annotations

import msgspec
import pytest

from gpu_worker.errors import DataError
from gpu_worker.splits import SplitSizes, make_split
from schemas.artifacts import TaskLabels, TaskView

from .conftest import synthetic_task

SIZES = SplitSizes(weak_train=50, dev=60, final=60, min_pool=50)


def test_split_is_deterministic_and_seeded() -> None:
    data = synthetic_task(400)
    v1, l1 = make_split(data, 3, SIZES)
    v2, l2 = make_split(data, 3, SIZES)
    assert v1.to_bytes() == v2.to_bytes()
    assert l1 == l2
    v3, _ = make_split(data, 4, SIZES)
    assert v3.dev.ids != v1.dev.ids


def test_splits_partition_the_ids() -> None:
    data = synthetic_task(400)
    view, labels = make_split(data, 0, SIZES)
    parts = [set(view.split(s).ids) for s in ("weak_train", "pool", "dev", "final")]
    assert sum(map(len, parts)) == len(data)
    assert set().union(*parts) == set(data.ids)
    assert (len(view.weak_train), len(view.dev), len(view.final), len(view.pool)) == (50, 60, 60, 230)
    assert set(labels.pool) == parts[1] and set(labels.dev) == parts[2] and set(labels.final) == parts[3]


def test_view_carries_no_pool_dev_final_labels() -> None:
    data = synthetic_task(400)
    view, labels = make_split(data, 0, SIZES)
    raw = msgspec.msgpack.decode(view.to_bytes())
    assert set(raw) == {
        "task",
        "kind",
        "label_names",
        "split_seed",
        "weak_train",
        "weak_train_labels",
        "pool",
        "dev",
        "final",
        "instruction",
        "v",
    }
    for split in ("pool", "dev", "final"):
        assert set(raw[split]) == {"ids", "texts", "texts_b"}
    assert len(raw["weak_train_labels"]) == len(view.weak_train)
    gold = dict(zip(data.ids, data.labels.tolist(), strict=True))
    assert view.weak_train_labels == [gold[i] for i in view.weak_train.ids]
    assert labels.view_digest == view.digest()


def test_view_and_labels_round_trip() -> None:
    view, labels = make_split(synthetic_task(300, pair=True), 1, SIZES)
    assert TaskView.from_bytes(view.to_bytes()) == view
    assert TaskLabels.from_bytes(labels.to_bytes()) == labels
    with pytest.raises(msgspec.ValidationError):
        TaskView.from_bytes(labels.to_bytes())


def test_groups_stay_together() -> None:
    data = synthetic_task(400, pair=True)
    view, _ = make_split(data, 0, SIZES)
    where = {i: s for s in ("weak_train", "pool", "dev", "final") for i in view.split(s).ids}
    assert data.groups is not None
    by_group: dict[str, set[str]] = {}
    for i, g in zip(data.ids, data.groups, strict=True):
        by_group.setdefault(g, set()).add(where[i])
    assert all(len(s) == 1 for s in by_group.values())


def test_small_task_shrinks_eval_splits() -> None:
    view, _ = make_split(synthetic_task(200), 0, SplitSizes(weak_train=20, dev=500, final=500, min_pool=100))
    assert len(view.dev) == len(view.final) == 40
    assert len(view.pool) == 100


def test_too_small_task_raises() -> None:
    with pytest.raises(DataError):
        make_split(synthetic_task(4), 0, SplitSizes(weak_train=1, dev=1, final=1, min_pool=10))
