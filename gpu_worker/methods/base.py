"""What a W2S method receives and returns, and the registry of methods by name."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

import msgspec
import numpy as np

from gpu_worker.errors import BadParamsError, UnknownNameError
from gpu_worker.heads import DEFAULT_HEAD, HeadConfig
from gpu_worker.models.base import Array


class Params(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Base of every method's params; unknown fields are refused so a typo cannot pass silently."""


P = TypeVar("P", bound=Params)


@dataclass(frozen=True, slots=True)
class MethodInput:
    """Everything a method may use. There are no gold labels here by construction.

    Attributes:
        x_pool: ``(n, d)`` standardised strong features of the transfer pool.
        weak_pool: ``(n, K)`` the weak supervisor's class probabilities on the pool.
        x_eval: ``(m, d)`` strong features of the dev and final texts (unlabelled; usable transductively).
        weak_eval: ``(m, K)`` weak probabilities on those texts.
        n_classes: ``K``.
        head: optimiser settings for linear heads.
        prompt_pool: ``(n, K)`` the strong LM's zero/few-shot verbalizer log-probabilities on the pool, when
            the features were prepared with a ``PromptSpec`` (see ``gpu_worker.prompting``); else None.
        prompt_eval: ``(m, K)`` the same on the dev and final texts.
    """

    x_pool: Array
    weak_pool: Array
    x_eval: Array
    weak_eval: Array
    n_classes: int
    head: HeadConfig = DEFAULT_HEAD
    prompt_pool: Array | None = None
    prompt_eval: Array | None = None

    @property
    def weak_labels(self) -> np.ndarray:
        """The weak supervisor's hard labels on the pool."""
        return np.asarray(self.weak_pool.argmax(1))

    @property
    def weak_conf(self) -> Array:
        """The weak supervisor's confidence (max probability) on the pool."""
        return np.asarray(self.weak_pool.max(1), dtype=np.float32)


# run(input, params, seed) -> (m, K) class probabilities for x_eval
RunFn = Callable[[MethodInput, P, int], Array]


@dataclass(frozen=True, slots=True)
class MethodSpec(Generic[P]):
    """A registered method: its params type, its function and a one-line description.

    ``uses_prompt``: the method reads ``MethodInput.prompt_pool``/``prompt_eval``, so features must be
    prepared with a ``PromptSpec`` (slow on CPU the first time, then cached).
    """

    name: str
    params_type: type[P]
    run: RunFn[P]
    description: str
    uses_prompt: bool = False

    def decode(self, params: Mapping[str, Any] | None) -> P:
        """Validate plain params (e.g. from JSON) into this method's Struct.

        Raises:
            BadParamsError: unknown field, wrong type, or out of range.
        """
        try:
            return msgspec.convert(dict(params or {}), self.params_type)
        except msgspec.ValidationError as e:
            raise BadParamsError(f"bad params for method {self.name!r}: {e}") from e


_METHODS: dict[str, MethodSpec[Any]] = {}


def register_method(
    name: str, params_type: type[P], description: str, *, uses_prompt: bool = False
) -> Callable[[RunFn[P]], RunFn[P]]:
    """Register a method function under ``name``; use as a decorator."""

    def deco(fn: RunFn[P]) -> RunFn[P]:
        _METHODS[name] = MethodSpec(name, params_type, fn, description, uses_prompt)
        return fn

    return deco


def get_method(name: str) -> MethodSpec[Any]:
    """Return a registered method.

    Raises:
        UnknownNameError: no method has that name.
    """
    try:
        return _METHODS[name]
    except KeyError:
        raise UnknownNameError("method", name, list(_METHODS)) from None


def method_names() -> list[str]:
    """Registered method names, in registration order."""
    return list(_METHODS)
