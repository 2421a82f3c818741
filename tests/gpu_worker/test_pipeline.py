"""End to end on a synthetic task: features, cache, experiments, baselines."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from gpu_worker.errors import BadParamsError, UnknownNameError
from gpu_worker.features import FeatureTable, encode_cached
from gpu_worker.pipeline import Predictions, prepare_features, run_experiment
from gpu_worker.scoring import accuracy, baselines, pgr, score
from gpu_worker.splits import SplitSizes, make_split

from .conftest import synthetic_task

SIZES = SplitSizes(weak_train=60, dev=80, final=80, min_pool=100)


def test_features_are_cached_per_text(cache_root: Path) -> None:
    texts = ["a b", "c d", "a b"]
    x = encode_cached("test-bow", "t", texts)
    assert x.shape == (3, 32)
    np.testing.assert_array_equal(x[0], x[2])
    assert len(FeatureTable("test-bow", "t")) == 2
    assert (cache_root / "features" / "test-bow" / "t" / "emb.npy").exists()
    y = encode_cached("test-bow", "t", ["c d", "e f"])
    np.testing.assert_array_equal(y[0], x[1])
    assert len(FeatureTable("test-bow", "t")) == 3


@pytest.mark.parametrize("pair", [False, True])
def test_experiment_and_baselines(cache_root: Path, pair: bool) -> None:
    data = synthetic_task(500, pair=pair)
    view, labels = make_split(data, 0, SIZES)
    feats = prepare_features(view, "tfidf", "test-bow")
    assert feats.strong["pool"].shape[1] == (128 if pair else 32)
    p1 = run_experiment(view, feats, "conf_filter", {"keep": 0.5}, seed=1)
    p2 = run_experiment(view, feats, "conf_filter", {"keep": 0.5}, seed=1)
    assert isinstance(p1, Predictions)
    assert p1.dev == p2.dev and p1.final == p2.final
    assert list(p1.dev) == view.dev.ids and list(p1.final) == view.final.ids
    base = baselines(view, labels, feats)
    for split in ("dev", "final"):
        assert 0.0 <= base.weak[split] <= 1.0 and 0.0 <= base.ceiling[split] <= 1.0
    if not pair:
        # The sentiment words are in the text, so both models beat chance.
        assert base.ceiling["dev"] > 0.7 and base.weak["dev"] > 0.6
    acc = score(p1, labels)
    assert set(acc) == {"dev", "final"}


def test_weak_model_from_an_encoder(cache_root: Path) -> None:
    view, _ = make_split(synthetic_task(400), 0, SIZES)
    feats = prepare_features(view, "test-bow", "test-bow")
    assert feats.weak_probs["dev"].shape == (len(view.dev), 2)


def test_bad_method_and_params(cache_root: Path) -> None:
    view, _ = make_split(synthetic_task(400), 0, SIZES)
    feats = prepare_features(view, "tfidf", "test-bow")
    with pytest.raises(UnknownNameError):
        run_experiment(view, feats, "nope")
    with pytest.raises(BadParamsError):
        run_experiment(view, feats, "knn", {"k": 0})


def test_pgr_and_accuracy() -> None:
    assert pgr(0.7, 0.6, 0.8) == pytest.approx(0.5)
    assert np.isnan(pgr(0.7, 0.8, 0.8))
    assert accuracy({"a": 1, "b": 0}, {"a": 1, "b": 1, "c": 0}) == pytest.approx(1 / 3)
