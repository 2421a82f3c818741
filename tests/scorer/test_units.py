"""The scorer's pure parts: Thresholdout answers, intervals, config keys, prediction checks."""

from __future__ import annotations

import math

import numpy as np
import pytest

from schemas.artifacts import PredictionSet
from scorer import HoldoutConfig, config_key
from scorer.checks import Rejection, aligned
from scorer.holdout import answer
from scorer.stats import mean_ci
from scorer.truth import SplitTruth


def test_thresholdout_answers_with_the_public_half_while_the_halves_agree() -> None:
    holdout = np.arange(1000) % 2 == 0
    correct = np.arange(1000) % 20 < 14  # 70% right in both halves
    got = answer(correct, holdout, HoldoutConfig(), seed=1)
    assert got.answer == "public" and got.accuracy == pytest.approx(0.7) and got.true_accuracy == 0.7
    assert answer(correct, holdout, HoldoutConfig(), seed=1) == got  # the same result, the same answer


def test_thresholdout_answers_from_the_hidden_half_with_noise_when_the_public_half_is_overfit() -> None:
    holdout = np.arange(1000) % 2 == 0
    correct = ~holdout | (np.arange(1000) % 4 == 0)  # public half all right, hidden half half right
    answers = {answer(correct, holdout, HoldoutConfig(sigma=0.01), seed=s).accuracy for s in range(20)}
    kinds = {answer(correct, holdout, HoldoutConfig(sigma=0.01), seed=s).answer for s in range(20)}
    assert kinds == {"holdout"}
    assert all(abs(a - 0.5) < 0.1 for a in answers) and len(answers) > 1  # noisy, near the hidden 0.5


def test_answers_are_rounded_to_the_grid() -> None:
    holdout = np.zeros(1000, dtype=bool)
    holdout[::2] = True
    correct = np.arange(1000) % 1000 < 713
    got = answer(correct, holdout, HoldoutConfig(threshold=1.0, round_to=0.01), seed=0)
    assert got.answer == "public"
    assert got.accuracy * 100 == pytest.approx(round(got.accuracy * 100))


def test_honest_submissions_rarely_spend_the_holdout_budget() -> None:
    rng = np.random.default_rng(0)
    kinds = []
    for seed in range(200):
        holdout = rng.random(2000) < 0.5
        kinds.append(answer(rng.random(2000) < 0.75, holdout, HoldoutConfig(), seed=seed).answer)
    assert kinds.count("holdout") < 20  # 3 standard errors less the gate noise: ~5% measured


def test_mean_ci_is_a_t_interval() -> None:
    mean, ci = mean_ci([0.5, 0.6, 0.7])
    assert mean == pytest.approx(0.6)
    assert ci is not None and ci[0] == pytest.approx(0.6 - 4.303 * 0.1 / math.sqrt(3), abs=1e-3)
    assert mean_ci([0.5]) == (0.5, None)


def test_a_running_mean_gives_the_same_interval_value_by_value() -> None:
    from scorer.stats import RunningMean

    values = [*np.random.default_rng(3).normal(0.8, 0.05, 40).tolist(), math.nan, 0.81, 0.81]
    running = RunningMean()
    for k, v in enumerate(values, 1):
        running.add(v)
        mean, ci = mean_ci(values[:k])
        got_mean, got_ci = running.ci()
        assert got_mean == pytest.approx(mean, abs=1e-12)
        assert (got_ci is None) == (ci is None)
        if ci is not None and got_ci is not None:
            assert got_ci == pytest.approx(ci, abs=1e-12)
    same = RunningMean()
    for _ in range(3):
        same.add(0.7)  # identical seeds (deterministic methods): a zero-width interval, not a NaN
    mean, ci = same.ci()
    assert mean == pytest.approx(0.7) and ci is not None and ci == pytest.approx((0.7, 0.7))


def test_config_key_names_method_params_and_code() -> None:
    a = config_key("vote", {"k": 1, "b": 2}, None)
    assert a == config_key("vote", {"b": 2, "k": 1}, None) and a.startswith("vote-")
    assert a != config_key("vote", {"k": 2, "b": 2}, None) != config_key("vote", {"k": 1, "b": 2}, "ab")


def _split(n: int) -> SplitTruth:
    ids = [f"d{i}" for i in range(n)]
    gold = np.zeros(n, dtype=np.int64)
    return SplitTruth(
        ids=ids,
        index={i: k for k, i in enumerate(ids)},
        gold=gold,
        weak=None,
        gold_counts=tuple(np.bincount(gold).tolist()),
    )


def _preds(ids: list[str], labels: list[int], digest: str = "v") -> PredictionSet:
    return PredictionSet(task="t", split="dev", view_digest=digest, ids=ids, labels=labels)


def test_packed_predictions_must_cover_the_split() -> None:
    packed = PredictionSet.in_view_order(task="t", split="dev", view_digest="v", labels=[1, 0, 1, 1])
    assert packed.label_list() == [1, 0, 1, 1] and not packed.ids
    assert PredictionSet.from_bytes(packed.to_bytes()) == packed
    got = aligned(packed, _split(4), task="t", split="dev", view_digest="v", n_classes=2)
    assert got.tolist() == [1, 0, 1, 1]
    short = PredictionSet.in_view_order(task="t", split="dev", view_digest="v", labels=[1, 0, 1])
    with pytest.raises(Rejection, match="3 labels for the split's 4 examples"):
        aligned(short, _split(4), task="t", split="dev", view_digest="v", n_classes=2)
    with pytest.raises(ValueError, match="2 bytes each"):
        PredictionSet(task="t", split="dev", view_digest="v", packed=b"\x01")


def test_predictions_in_another_order_are_aligned() -> None:
    truth = _split(4)
    got = aligned(
        _preds(["d3", "d1", "d0", "d2"], [3, 1, 0, 2]),
        truth,
        task="t",
        split="dev",
        view_digest="v",
        n_classes=4,
    )
    assert got.tolist() == [0, 1, 2, 3]


@pytest.mark.parametrize(
    ("ids", "labels", "digest", "says"),
    [
        (["d0", "d1", "d2"], [0, 0, 0], "v", "1 missing"),
        (["d0", "d1", "d2", "d2"], [0, 0, 0, 0], "v", "1 repeated"),
        (["d0", "d1", "d2", "x9"], [0, 0, 0, 0], "v", "1 unknown"),
        (["d0", "d1", "d2", "d3"], [0, 0, 7, 0], "v", "outside 0..1"),
        (["d0", "d1", "d2", "d3"], [0, 0, 0, 0], "other", "another split"),
    ],
)
def test_malformed_predictions_are_rejected_with_the_reason(
    ids: list[str], labels: list[int], digest: str, says: str
) -> None:
    with pytest.raises(Rejection, match=says) as err:
        aligned(_preds(ids, labels, digest), _split(4), task="t", split="dev", view_digest="v", n_classes=2)
    assert err.value.detector == "invalid_predictions"
