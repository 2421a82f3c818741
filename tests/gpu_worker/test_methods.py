"""Every method runs, returns probabilities, and is deterministic on CPU."""

from __future__ import annotations

import numpy as np
import pytest

from gpu_worker.heads import HeadConfig
from gpu_worker.methods import MethodInput, get_method, method_names


def _input(n_classes: int, seed: int = 0) -> tuple[MethodInput, np.ndarray]:
    rng = np.random.default_rng(seed)
    n, m, d = 240, 120, 12
    y = rng.integers(0, n_classes, size=n + m)
    centers = rng.standard_normal((n_classes, d)) * 1.5
    x = (centers[y] + rng.standard_normal((n + m, d))).astype(np.float32)
    # A weak supervisor that is right 70% of the time, with matching confidence.
    flip = rng.random(n + m) < 0.3
    weak_y = np.where(flip, (y + 1) % n_classes, y)
    weak = np.full((n + m, n_classes), 0.3 / max(1, n_classes - 1), dtype=np.float32)
    weak[np.arange(n + m), weak_y] = 0.7
    weak = (weak * rng.uniform(0.8, 1.2, size=weak.shape)).astype(np.float32)
    weak /= weak.sum(1, keepdims=True)
    # Prompt scores of a biased LM: informative, but favouring class 0 on every input.
    prompt = (2.0 * np.eye(n_classes)[y] + rng.standard_normal((n + m, n_classes))).astype(np.float32)
    prompt[:, 0] += 1.5
    inp = MethodInput(
        x_pool=x[:n],
        weak_pool=weak[:n],
        x_eval=x[n:],
        weak_eval=weak[n:],
        n_classes=n_classes,
        head=HeadConfig(max_iter=30, stages=2),
        prompt_pool=prompt[:n],
        prompt_eval=prompt[n:],
    )
    return inp, y[n:]


@pytest.mark.parametrize("n_classes", [2, 3])
@pytest.mark.parametrize("name", method_names())
def test_method_runs_and_is_deterministic(name: str, n_classes: int) -> None:
    spec = get_method(name)
    inp, y_eval = _input(n_classes)
    params = spec.decode({})
    a = spec.run(inp, params, 7)
    b = spec.run(inp, params, 7)
    assert a.shape == (len(inp.x_eval), n_classes)
    assert a.dtype == np.float32
    np.testing.assert_allclose(a.sum(1), 1.0, atol=1e-4)
    np.testing.assert_array_equal(a, b)
    # Clusters are well separated: every method should beat chance clearly.
    assert (a.argmax(1) == y_eval).mean() > 1.0 / n_classes + 0.15


def test_methods_never_see_gold_labels() -> None:
    fields = set(MethodInput.__dataclass_fields__)
    assert fields == {
        "x_pool",
        "weak_pool",
        "x_eval",
        "weak_eval",
        "n_classes",
        "head",
        "prompt_pool",
        "prompt_eval",
    }


def test_a_committee_averages_its_members() -> None:
    inp, _ = _input(2)
    configs: list[tuple[str, dict[str, int]]] = [("naive", {}), ("propagate", {"k": 10})]
    members = [{"method": m, "params": p} for m, p in configs]
    got = get_method("committee").run(inp, get_method("committee").decode({"members": members}), 3)
    parts = [get_method(m).run(inp, get_method(m).decode(p), 3) for m, p in configs]
    np.testing.assert_allclose(got, (parts[0] + parts[1]) / 2, atol=1e-6)


@pytest.mark.parametrize(
    ("members", "reason"),
    [
        ([{"method": "naive"}, {"method": "nope"}], "member 'nope': unknown method"),
        ([{"method": "naive"}, {"method": "committee"}], "cannot have a committee as a member"),
        (
            [{"method": "naive"}, {"method": "propagate", "params": {"k": 0}}],
            "member 'propagate': bad params",
        ),
        ([{"method": "naive"}, {"method": "zeroshot"}], "needs prompt features"),
        ([{"method": "naive"}], "length >= 2"),
    ],
)
def test_a_bad_committee_is_refused_when_decoded(members: list[dict[str, object]], reason: str) -> None:
    from gpu_worker.errors import BadParamsError

    with pytest.raises(BadParamsError, match=reason):
        get_method("committee").decode({"members": members})
