"""Formats of the large payloads kept in object stores (msgpack), shared by their writers and readers."""

from __future__ import annotations

from typing import Annotated, Self

import msgspec

from schemas.errors import SchemaError

MAX_ARTIFACT_BYTES = 512 * 1024 * 1024


class _Artifact(msgspec.Struct, frozen=True, kw_only=True):
    v: int = 1

    def to_bytes(self) -> bytes:
        return msgspec.msgpack.encode(self)

    @classmethod
    def from_bytes(cls, data: bytes) -> Self:
        """Decode and validate.

        Raises:
            SchemaError: the bytes are not this artifact.
        """
        if len(data) > MAX_ARTIFACT_BYTES:
            raise SchemaError(f"{cls.__name__} of {len(data)} bytes is over the limit", size=len(data))
        try:
            return msgspec.msgpack.decode(data, type=cls)
        except msgspec.DecodeError as e:
            raise SchemaError(f"invalid {cls.__name__}: {e}", size=len(data)) from e


class PredictionSet(_Artifact, frozen=True, kw_only=True):
    """A worker's predicted labels on one split, by example id (what the scorer scores)."""

    task: str
    split: str
    view_digest: str
    ids: list[str]
    labels: list[Annotated[int, msgspec.Meta(ge=0)]]

    def __post_init__(self) -> None:
        if len(self.ids) != len(self.labels):
            raise ValueError(f"{len(self.ids)} ids but {len(self.labels)} labels")
