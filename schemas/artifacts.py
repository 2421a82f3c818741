"""Formats of the large payloads kept in object stores (msgpack), shared by their writers and readers.

``TaskView`` is what a worker may see of a task; ``TaskLabels`` and ``WeakPredictions`` live in the
label store, which only the scorer and the operator can read.
"""

from __future__ import annotations

import array
import hashlib
import sys
from collections.abc import Sequence
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
    """A worker's predicted labels on one split (what the scorer scores), in one of two layouts.

    - ``ids`` with ``labels``: one label per named example, in any order;
    - ``packed``: little-endian uint16 labels in the split's own order in the view that
      ``view_digest`` names, and no ids: 2 bytes an example, read without a Python object per
      example (a scorer reads thousands of these a second; see bench.scorer).
    """

    task: str
    split: str
    view_digest: str
    ids: list[str] = msgspec.field(default_factory=list)
    labels: list[Annotated[int, msgspec.Meta(ge=0)]] = msgspec.field(default_factory=list)
    packed: bytes = b""

    def __post_init__(self) -> None:
        if self.packed:
            if self.ids or self.labels:
                raise ValueError("packed predictions carry no ids or labels lists")
            if len(self.packed) % 2:
                raise ValueError(f"packed labels are 2 bytes each, not {len(self.packed)} bytes in all")
        elif len(self.ids) != len(self.labels):
            raise ValueError(f"{len(self.ids)} ids but {len(self.labels)} labels")

    @classmethod
    def in_view_order(cls, *, task: str, split: str, view_digest: str, labels: Sequence[int]) -> Self:
        """Packed predictions, one label per example of the split in the view's order.

        Raises:
            OverflowError: a label is negative or over 65535.
        """
        packed = array.array("H", labels)
        if sys.byteorder == "big":
            packed.byteswap()
        return cls(task=task, split=split, view_digest=view_digest, packed=packed.tobytes())

    def label_list(self) -> list[int]:
        """The labels, in ``ids`` order or (packed) in the view's order of the split."""
        if not self.packed:
            return list(self.labels)
        out = array.array("H")
        out.frombytes(self.packed)
        if sys.byteorder == "big":
            out.byteswap()
        return out.tolist()


SPLITS = ("weak_train", "pool", "dev", "final")
EVAL_SPLITS = ("dev", "final")
# A verdict's key for the dev examples whose labels only the scorer's reusable holdout uses (the
# hidden half): public dev answers never come from them, so they can judge what agents tuned on dev.
DEV_HIDDEN = "dev_hidden"
# Prediction sets up to this size (their msgpack bytes, all splits together) ride inside the result
# message; larger ones are stored as artifacts and referenced. Inline, a result is one stored message
# instead of five (the result, two chunks, two metas) and the scorer reads it with no further request.
INLINE_PREDICTIONS_MAX_BYTES = 256 * 1024


class SplitTexts(msgspec.Struct, frozen=True, kw_only=True):
    """The examples of one split, without labels; ``texts_b`` is set for pair tasks."""

    ids: list[str]
    texts: list[str]
    texts_b: list[str] | None = None

    def __len__(self) -> int:
        return len(self.ids)

    def all_texts(self) -> list[str]:
        """Every text of the split, first texts then second texts."""
        return self.texts + (self.texts_b or [])


class TaskView(msgspec.Struct, frozen=True, kw_only=True):
    """A label-free view of one split task: texts of every split plus the weak model's gold training labels.

    Serialised with msgpack (``to_bytes``/``from_bytes``) for the object store.
    """

    task: str
    kind: str
    label_names: list[str]
    split_seed: int
    weak_train: SplitTexts
    weak_train_labels: list[int]
    pool: SplitTexts
    dev: SplitTexts
    final: SplitTexts
    instruction: str = ""
    v: int = 1

    @property
    def n_classes(self) -> int:
        """Number of classes."""
        return len(self.label_names)

    def split(self, name: str) -> SplitTexts:
        """The split called ``name`` (one of ``SPLITS``)."""
        if name not in SPLITS:
            raise KeyError(name)
        out: SplitTexts = getattr(self, name)
        return out

    def to_bytes(self) -> bytes:
        """Encode as msgpack."""
        return msgspec.msgpack.encode(self)

    @classmethod
    def from_bytes(cls, data: bytes) -> TaskView:
        """Decode msgpack produced by ``to_bytes``.

        Raises:
            msgspec.ValidationError: the bytes are not a TaskView.
        """
        return msgspec.msgpack.decode(data, type=cls)

    def digest(self) -> str:
        """sha256 of the serialised view: names exactly this data for caches and results."""
        return hashlib.sha256(self.to_bytes()).hexdigest()


class TaskLabels(msgspec.Struct, frozen=True, kw_only=True):
    """Gold labels of the pool, dev and final splits by example id: for the scorer and operator only."""

    task: str
    split_seed: int
    view_digest: str
    pool: dict[str, int]
    dev: dict[str, int]
    final: dict[str, int]

    def of(self, split: str) -> dict[str, int]:
        """Labels of one of ``pool``, ``dev``, ``final``."""
        if split not in ("pool", "dev", "final"):
            raise KeyError(split)
        out: dict[str, int] = getattr(self, split)
        return out

    def to_bytes(self) -> bytes:
        """Encode as msgpack."""
        return msgspec.msgpack.encode(self)

    @classmethod
    def from_bytes(cls, data: bytes) -> TaskLabels:
        """Decode msgpack produced by ``to_bytes``."""
        return msgspec.msgpack.decode(data, type=cls)


class WeakPredictions(_Artifact, frozen=True, kw_only=True):
    """The weak supervisor's own predictions on dev and final, by example id: for the scorer only.

    Written by ``aar baselines`` beside the gold labels; the scorer compares a submission with them to
    catch a student that merely copies its teacher.
    """

    task: str
    view_digest: str
    weak_model: str
    dev: dict[str, int]
    final: dict[str, int]

    def of(self, split: str) -> dict[str, int]:
        """Predictions on ``dev`` or ``final``."""
        if split not in ("dev", "final"):
            raise KeyError(split)
        out: dict[str, int] = getattr(self, split)
        return out
