"""Registries of tasks, encoders and methods, and params decoding."""

from __future__ import annotations

import pytest

from gpu_worker.errors import BadParamsError, TaskFailedError, UnknownNameError
from gpu_worker.methods import get_method, method_names
from gpu_worker.models import EncoderSpec, encoder_names, get_encoder
from gpu_worker.tasks import task_names, task_spec


def test_default_tasks_are_registered() -> None:
    assert {"rt", "code", "roget"} <= set(task_names(default_only=True))
    assert task_spec("code").loader is not None
    assert task_spec("roget").weak_model == "tfidf-char"


def test_at_least_ten_methods() -> None:
    names = method_names()
    assert len(names) >= 10
    for required in (
        "naive",
        "soft",
        "conf_filter",
        "aux_conf",
        "product",
        "window",
        "bootstrap",
        "s2s",
        "knn",
        "gce",
        "sce",
        "ensemble",
        "elicit",
        "transition",
    ):
        assert required in names


def test_unknown_names_raise_non_retryable() -> None:
    for call in (lambda: task_spec("nope"), lambda: get_method("nope"), lambda: get_encoder("nope")):
        with pytest.raises(UnknownNameError) as e:
            call()
        assert isinstance(e.value, TaskFailedError)
        assert not e.value.retryable
        assert "nope" in str(e.value)


def test_encoders_registered() -> None:
    assert {"minilm", "smollm2", "hf"} <= set(encoder_names())


def test_params_decode_and_reject() -> None:
    spec = get_method("conf_filter")
    assert spec.decode({"keep": 0.3}).keep == 0.3
    assert spec.decode(None).keep == 0.5
    with pytest.raises(BadParamsError):
        spec.decode({"keep": 2.0})
    with pytest.raises(BadParamsError):
        spec.decode({"kep": 0.3})
    with pytest.raises(BadParamsError):
        get_method("s2s").decode({"mode": "bogus"})


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ("minilm", EncoderSpec("minilm")),
        ("smollm2@16:last", EncoderSpec("smollm2", 16, "last")),
        ("hf:org/model@-2:mean#128", EncoderSpec("hf:org/model", -2, "mean", 128)),
    ],
)
def test_encoder_spec_round_trip(spec: str, expected: EncoderSpec) -> None:
    parsed = EncoderSpec.parse(spec)
    assert parsed == expected
    assert str(parsed) == spec


def test_bad_encoder_spec() -> None:
    with pytest.raises(BadParamsError):
        EncoderSpec.parse("smollm2@x")
