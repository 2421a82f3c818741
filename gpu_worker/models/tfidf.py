"""The TF-IDF weak supervisor: logistic regression on n-grams, or on two overlap scalars for pairs."""

from __future__ import annotations

from typing import Literal

import numpy as np
import scipy.sparse as sp  # type: ignore[import-untyped]
from sklearn.feature_extraction.text import TfidfVectorizer  # type: ignore[import-untyped]
from sklearn.linear_model import LogisticRegression  # type: ignore[import-untyped]

from gpu_worker.models.base import Array
from schemas.artifacts import SPLITS, TaskView

Analyzer = Literal["word", "char_wb"]


def _vectorizer(analyzer: Analyzer) -> TfidfVectorizer:
    if analyzer == "char_wb":
        return TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 5), sublinear_tf=True, lowercase=True)
    return TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True, lowercase=True)


def _overlap(vec: TfidfVectorizer, a: list[str], b: list[str]) -> np.ndarray:
    # An elementwise overlap vector made LogisticRegression predict one class on `code` (TESTBED);
    # two scalars (weighted overlap and shared-term count) do not.
    xa, xb = vec.transform(a), vec.transform(b)
    prod = sp.csr_matrix(xa.multiply(xb))
    count = sp.csr_matrix((xa > 0).multiply(xb > 0))
    return np.column_stack([np.asarray(prod.sum(1)).ravel(), np.log1p(np.asarray(count.sum(1)).ravel())])


def tfidf_weak_probs(view: TaskView, analyzer: Analyzer = "word", c: float = 1.0) -> dict[str, Array]:
    """Train the weak model on weak_train gold labels and return class probabilities for every split.

    Args:
        view: the task view; only weak_train labels are read.
        analyzer: ``word`` (1-2 grams) or ``char_wb`` (2-5 char grams, for words and short phrases).
        c: inverse L2 strength of the logistic regression.

    Returns:
        ``{split: (n, n_classes) float32}`` for every split in ``SPLITS``.
    """
    y = np.asarray(view.weak_train_labels)
    train = view.weak_train
    vec = _vectorizer(analyzer)
    clf = LogisticRegression(C=c, max_iter=2000)
    if view.kind == "pair":
        assert train.texts_b is not None
        vec.fit(train.texts + train.texts_b)

        def feats(name: str) -> np.ndarray:
            s = view.split(name)
            assert s.texts_b is not None
            return _overlap(vec, s.texts, s.texts_b)
    else:
        vec.fit(train.texts)

        def feats(name: str) -> np.ndarray:
            return vec.transform(view.split(name).texts)  # type: ignore[no-any-return]

    clf.fit(feats("weak_train"), y)
    out: dict[str, Array] = {}
    for name in SPLITS:
        probs = np.zeros((len(view.split(name)), view.n_classes), dtype=np.float32)
        # Columns follow clf.classes_, which may miss a class absent from a tiny weak_train.
        probs[:, clf.classes_] = clf.predict_proba(feats(name))
        out[name] = probs
    return out
