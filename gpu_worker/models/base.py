"""Model specs and the registry of text encoders (frozen feature extractors)."""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal, Protocol

import numpy as np
import numpy.typing as npt

from gpu_worker.errors import BadParamsError, UnknownNameError

Pool = Literal["mean", "last"]
Array = npt.NDArray[np.float32]

# name[@layer][:pool][#max_length], e.g. "minilm", "smollm2@16:last", "hf:org/model@8:mean#128".
_SPEC = re.compile(
    r"^(?P<base>[A-Za-z0-9_./:-]+?)(?:@(?P<layer>-?\d+))?(?::(?P<pool>mean|last))?(?:#(?P<len>\d+))?$"
)


@dataclass(frozen=True, slots=True)
class EncoderSpec:
    """A parsed encoder name: which model, which hidden layer, how to pool, how many tokens."""

    base: str
    layer: int | None = None
    pool: Pool | None = None
    max_length: int | None = None

    @classmethod
    def parse(cls, spec: str) -> EncoderSpec:
        """Parse ``base[@layer][:pool][#max_length]``.

        Raises:
            BadParamsError: the spec does not match that form.
        """
        m = _SPEC.match(spec)
        if m is None:
            raise BadParamsError(f"bad model spec {spec!r}; expected name[@layer][:mean|last][#max_length]")
        pool = m["pool"]
        return cls(
            base=m["base"],
            layer=None if m["layer"] is None else int(m["layer"]),
            pool="mean" if pool == "mean" else "last" if pool == "last" else None,
            max_length=None if m["len"] is None else int(m["len"]),
        )

    def __str__(self) -> str:
        out = self.base
        if self.layer is not None:
            out += f"@{self.layer}"
        if self.pool is not None:
            out += f":{self.pool}"
        if self.max_length is not None:
            out += f"#{self.max_length}"
        return out


class Encoder(Protocol):
    """Maps texts to fixed-size float32 vectors, deterministically."""

    @property
    def name(self) -> str:
        """The full spec this encoder was built from (used as its cache key)."""
        ...

    def encode(self, texts: Sequence[str], *, batch_size: int = 32, progress: bool = False) -> Array:
        """Encode texts into an ``(n, dim)`` float32 array."""
        ...


EncoderFactory = Callable[[EncoderSpec], Encoder]
_ENCODERS: dict[str, EncoderFactory] = {}
_LOADED: dict[str, Encoder] = {}


def register_encoder(base: str) -> Callable[[EncoderFactory], EncoderFactory]:
    """Register a factory for encoder specs whose base name is ``base`` (``hf`` matches ``hf:<id>``)."""

    def deco(fn: EncoderFactory) -> EncoderFactory:
        _ENCODERS[base] = fn
        return fn

    return deco


def encoder_names() -> list[str]:
    """Registered encoder base names."""
    return sorted(_ENCODERS)


def get_encoder(spec: str) -> Encoder:
    """Return the encoder for a spec, loading the model once per process.

    Raises:
        UnknownNameError: the base name is not registered.
        BadParamsError: the spec is malformed.
    """
    parsed = EncoderSpec.parse(spec)
    key = str(parsed)
    if key not in _LOADED:
        base = "hf" if parsed.base.startswith("hf:") else parsed.base
        if base not in _ENCODERS:
            raise UnknownNameError("model", parsed.base, [*list(_ENCODERS), "hf:<model id>"])
        _LOADED[key] = _ENCODERS[base](parsed)
    return _LOADED[key]
