"""What a worker may see of a task (``TaskView``) and what only the scorer holds (``TaskLabels``)."""

from __future__ import annotations

import hashlib

import msgspec

SPLITS = ("weak_train", "pool", "dev", "final")
EVAL_SPLITS = ("dev", "final")


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
