"""code: does this code implement this description? Pairs from reasoning-gym 0.1.25's CodeIO items."""

from __future__ import annotations

import gzip
import json

import numpy as np

from gpu_worker.cache import REASONING_GYM, wheel_member
from gpu_worker.tasks.base import TaskData, register_task

_MEMBER = "reasoning_gym/data/codeio.jsonl.gz"


@register_task(
    "code",
    "description/code matching: label 1 if the code belongs to the description",
    tags=("pair",),
    eval_size=1000,
)
def load_code() -> TaskData:
    """Load one matching and one mismatching pair per CodeIO item (6,004 pairs, balanced).

    The mismatching code is drawn at random from the other items, with a fixed seed. Both pairs of an
    item share a group, so a description never appears in two splits.
    """
    with gzip.open(wheel_member(REASONING_GYM, _MEMBER), "rt", encoding="utf-8") as f:
        items = [json.loads(line) for line in f if line.strip()]
    descs = [str(it["task_description"]) for it in items]
    codes = [str(it["code_sample"]) for it in items]
    n = len(items)
    rng = np.random.default_rng(0)
    # A random non-zero shift gives every item a partner other than itself.
    other = (np.arange(n) + rng.integers(1, n, size=n)) % n
    ids, a, b, labels, groups = [], [], [], [], []
    for i in range(n):
        for lab, j in ((1, i), (0, int(other[i]))):
            ids.append(f"code-{i:05d}-{lab}")
            a.append(descs[i])
            b.append(codes[j])
            labels.append(lab)
            groups.append(f"item-{i}")
    return TaskData(
        name="code",
        kind="pair",
        ids=ids,
        texts=a,
        texts_b=b,
        labels=np.asarray(labels, dtype=np.int64),
        label_names=["mismatch", "match"],
        groups=groups,
        instruction="Does the code (second text) solve the task description (first text)?",
    )
