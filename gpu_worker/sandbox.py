"""Run an agent's custom W2S method (Python source) in a locked-down child process.

The contract, documented for agents: the source defines

    def run(inputs: dict[str, numpy.ndarray], n_classes: int, seed: int) -> numpy.ndarray

where ``inputs`` holds ``x_pool`` (strong features of the transfer pool), ``weak_pool`` (the weak
supervisor's probabilities on it), ``x_eval`` and ``weak_eval`` (the same for the dev and final
texts, unlabelled), and the return value is ``(n_eval, n_classes)`` probabilities or ``(n_eval,)``
labels. numpy and the standard library are available; no gold label exists anywhere the child can
reach.

What the child cannot do: use the network (a fresh network namespace where the kernel allows one,
and an audit hook refusing sockets either way), start processes, load native libraries, read files
outside the Python installation and its own scratch dir (so not the JetStream store, the label store
or any cache), write outside that scratch dir, exceed its memory or CPU limits, or outlive its
wall-clock limit. It also gets an empty environment, so it holds no bus credentials. The audit hook
is a guard for honest mistakes and casual tampering; the process boundary, the namespace, the
limits and the absence of labels on the worker are what the isolation rests on.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from gpu_worker.errors import TaskFailedError

CHILD = Path(__file__).with_name("sandbox_child.py")
INPUT_ARRAYS = ("x_pool", "weak_pool", "x_eval", "weak_eval")


@dataclass(frozen=True, slots=True)
class SandboxLimits:
    """Resource limits of one custom-method run."""

    wall_s: float = 120.0
    cpu_s: int = 120
    memory_bytes: int = 4 << 30


@dataclass(frozen=True, slots=True)
class SandboxRun:
    """What a custom method returned, as ``(n_eval, n_classes)`` probabilities."""

    probs: np.ndarray
    seconds: float
    network_isolation: str


class CustomCodeError(TaskFailedError):
    """The custom method failed, broke a rule of the sandbox, or returned something unusable.

    Not retryable: the same code on the same inputs fails the same way. ``reason`` carries the
    child's traceback.
    """

    def __init__(self, reason: str) -> None:
        super().__init__(reason, retryable=False)


async def run_custom(
    source: str,
    inputs: dict[str, np.ndarray],
    n_classes: int,
    seed: int,
    limits: SandboxLimits | None = None,
) -> SandboxRun:
    """Run ``source``'s ``run`` on ``inputs`` in a sandboxed child and check what it returns.

    Raises:
        CustomCodeError: it raised, timed out, ran out of memory or CPU, or returned a wrong shape.
    """
    limits = limits or SandboxLimits()
    missing = [k for k in INPUT_ARRAYS if k not in inputs]
    if missing:
        raise ValueError(f"sandbox inputs lack {missing}")
    n_eval = int(inputs["x_eval"].shape[0])
    with tempfile.TemporaryDirectory(prefix="aar-sandbox-") as tmp:
        work = Path(tmp)
        for name in INPUT_ARRAYS:
            np.save(work / f"{name}.npy", np.ascontiguousarray(inputs[name]), allow_pickle=False)
        (work / "method.py").write_text(source)
        (work / "job.json").write_text(
            json.dumps(
                {
                    "arrays": list(INPUT_ARRAYS),
                    "n_classes": n_classes,
                    "seed": seed,
                    "memory_bytes": limits.memory_bytes,
                    "cpu_s": limits.cpu_s,
                }
            )
        )
        t0 = time.perf_counter()
        rc = await _run_child(work, limits.wall_s)
        seconds = time.perf_counter() - t0
        if rc != 0:
            raise CustomCodeError(_failure(work, rc, limits))
        out = np.load(work / "out.npy", allow_pickle=False)
        isolation = (work / "isolation.txt").read_text()
    return SandboxRun(_as_probs(out, n_eval, n_classes), seconds, isolation)


async def _run_child(work: Path, wall_s: float) -> int:
    with (work / "stderr.txt").open("wb") as stderr:
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-I",
            str(CHILD),
            str(work),
            cwd=work,
            env={"PATH": "/usr/bin:/bin", "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1"},
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=stderr,
            start_new_session=True,
        )
    try:
        return await asyncio.wait_for(proc.wait(), wall_s)
    except TimeoutError:
        return -9
    finally:
        if proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            await proc.wait()


def _failure(work: Path, rc: int, limits: SandboxLimits) -> str:
    error = work / "error.txt"
    if error.exists():
        return "custom method raised:\n" + error.read_text()[-8000:]
    stderr_file = work / "stderr.txt"
    stderr = stderr_file.read_text(errors="replace")[-4000:] if stderr_file.exists() else ""
    if rc == -9:
        return f"custom method exceeded its {limits.wall_s:.0f}s wall-clock limit and was killed"
    if rc in (-24, 152):  # SIGXCPU
        return f"custom method exceeded its {limits.cpu_s}s CPU limit"
    if "MemoryError" in stderr:
        return f"custom method exceeded its {limits.memory_bytes >> 20} MiB memory limit"
    return f"custom method's process exited with {rc}:\n{stderr}"


def _as_probs(out: np.ndarray, n_eval: int, n_classes: int) -> np.ndarray:
    if out.ndim == 1 and out.shape[0] == n_eval and np.issubdtype(out.dtype, np.integer):
        if out.min(initial=0) < 0 or out.max(initial=0) >= n_classes:
            raise CustomCodeError(f"custom method returned labels outside 0..{n_classes - 1}")
        return np.asarray(np.eye(n_classes, dtype=np.float32)[out])
    if out.shape != (n_eval, n_classes):
        raise CustomCodeError(
            f"custom method returned shape {out.shape}; expected ({n_eval}, {n_classes}) probabilities"
            f" or ({n_eval},) labels"
        )
    if not np.all(np.isfinite(out)):
        raise CustomCodeError("custom method returned NaN or infinite values")
    return out.astype(np.float32)
