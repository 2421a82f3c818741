"""Local JSONL/CSV/parquet tasks, the Hugging Face path, and pinned-wheel checksums."""

from __future__ import annotations

import hashlib
import importlib.util
import json
import zipfile
from pathlib import Path

import pandas as pd  # type: ignore[import-untyped]
import pytest

from gpu_worker.cache import PinnedWheel, fetch_wheel, wheel_member
from gpu_worker.errors import ChecksumError, DataError
from gpu_worker.tasks import Columns, load_file, load_task

ROWS = [
    {"review": "a fine film", "other": "x", "stars": "pos", "key": "r1"},
    {"review": "dull and long", "other": "y", "stars": "neg", "key": "r2"},
    {"review": "lovely cast", "other": "z", "stars": "pos", "key": "r3"},
]


def test_jsonl(tmp_path: Path) -> None:
    p = tmp_path / "reviews.jsonl"
    p.write_text(
        "\n".join(json.dumps({"text": r["review"], "label": int(r["stars"] == "pos")}) for r in ROWS)
    )
    data = load_task(str(p))
    assert data.name == "reviews" and data.kind == "single"
    assert data.texts == [r["review"] for r in ROWS]
    assert data.labels.tolist() == [1, 0, 1]
    assert data.ids == load_file(p).ids  # content ids are stable


def test_csv_with_named_columns(tmp_path: Path) -> None:
    p = tmp_path / "reviews.csv"
    pd.DataFrame(ROWS).to_csv(p, index=False)
    data = load_file(p, columns=Columns(text="review", label="stars", id="key"))
    assert data.ids == ["r1", "r2", "r3"]
    assert data.label_names == ["neg", "pos"]
    assert data.labels.tolist() == [1, 0, 1]


def test_parquet_pairs(tmp_path: Path) -> None:
    p = tmp_path / "pairs.parquet"
    pd.DataFrame(ROWS).to_parquet(p)
    data = load_file(p, name="pairs", columns=Columns(text="review", text_b="other", label="stars"))
    assert data.kind == "pair"
    assert data.texts_b == ["x", "y", "z"]


def test_missing_column_and_bad_type(tmp_path: Path) -> None:
    p = tmp_path / "reviews.csv"
    pd.DataFrame(ROWS).to_csv(p, index=False)
    with pytest.raises(DataError, match="missing columns"):
        load_file(p)
    with pytest.raises(DataError, match="unsupported"):
        load_file(tmp_path / "x.txt")


@pytest.mark.skipif(importlib.util.find_spec("datasets") is not None, reason="datasets is installed")
def test_hf_without_datasets_is_a_clear_error() -> None:
    with pytest.raises(DataError, match="datasets"):
        load_task("hf:some/dataset")


def _fake_wheel(root: Path, member: str, payload: bytes) -> PinnedWheel:
    (root / "wheels").mkdir(parents=True)
    path = root / "wheels" / "fake-1.0-py3-none-any.whl"
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr(member, payload)
    return PinnedWheel("fake", "1.0", path.name, hashlib.sha256(path.read_bytes()).hexdigest())


def test_wheel_member_extracts_once(tmp_path: Path) -> None:
    wheel = _fake_wheel(tmp_path, "fake/data/x.csv", b"text,label\nhi,1\n")
    out = wheel_member(wheel, "fake/data/x.csv", tmp_path)
    assert out.read_bytes() == b"text,label\nhi,1\n"
    (tmp_path / "wheels" / wheel.filename).unlink()  # a second call must not need the wheel
    assert wheel_member(wheel, "fake/data/x.csv", tmp_path) == out


def test_checksum_mismatch_raises_and_removes(tmp_path: Path) -> None:
    good = _fake_wheel(tmp_path, "fake/x", b"data")
    bad = PinnedWheel(good.package, good.version, good.filename, "0" * 64)
    with pytest.raises(ChecksumError) as e:
        fetch_wheel(bad, tmp_path)
    assert e.value.expected == "0" * 64 and e.value.actual == good.sha256
    assert "sha256 mismatch" in str(e.value)
    assert not (tmp_path / "wheels" / good.filename).exists()


def test_missing_member(tmp_path: Path) -> None:
    wheel = _fake_wheel(tmp_path, "fake/x", b"data")
    with pytest.raises(DataError, match="not in"):
        wheel_member(wheel, "fake/y", tmp_path)
