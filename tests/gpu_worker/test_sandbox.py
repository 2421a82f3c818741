"""Custom methods run in a child that cannot reach the network, labels, other files or processes."""

from __future__ import annotations

import os

import numpy as np
import pytest

from gpu_worker.sandbox import CustomCodeError, SandboxLimits, run_custom

LIMITS = SandboxLimits(wall_s=20, cpu_s=5, memory_bytes=1 << 30)


@pytest.fixture
def inputs() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    return {
        "x_pool": rng.normal(size=(64, 8)).astype(np.float32),
        "weak_pool": rng.dirichlet([1, 1], 64).astype(np.float32),
        "x_eval": rng.normal(size=(32, 8)).astype(np.float32),
        "weak_eval": rng.dirichlet([1, 1], 32).astype(np.float32),
    }


async def test_a_custom_method_returns_probabilities_or_labels(inputs: dict[str, np.ndarray]) -> None:
    probs = "def run(inputs, n_classes, seed):\n    return inputs['weak_eval'][:, ::-1]\n"
    out = await run_custom(probs, inputs, 2, 0, LIMITS)
    np.testing.assert_allclose(out.probs, inputs["weak_eval"][:, ::-1])
    labels = "def run(inputs, n_classes, seed):\n    return (inputs['x_eval'][:, 0] > 0).astype('int64')\n"
    out = await run_custom(labels, inputs, 2, 0, LIMITS)
    assert out.probs.argmax(1).tolist() == (inputs["x_eval"][:, 0] > 0).astype(int).tolist()
    # Where the kernel lets it (root, or unprivileged user namespaces), the child has no network at all.
    assert out.network_isolation == ("namespace" if os.geteuid() == 0 else out.network_isolation)
    assert out.network_isolation in {"namespace", "audit-hook"}


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        ("import socket\n    socket.create_connection(('127.0.0.1', 4222))", "socket"),
        ("import urllib.request as u\n    u.urlopen('http://127.0.0.1:8222/healthz')", "is not allowed"),
        ("open('/etc/hostname').read()", "reading /etc/hostname is not allowed"),
        (
            "import pathlib\n    pathlib.Path.home().joinpath('.local/share/aar/x').read_bytes()",
            "is not allowed",
        ),
        ("open('/tmp/aar-escape.txt', 'w').write('x')", "writing /tmp/aar-escape.txt is not allowed"),
        ("import subprocess\n    subprocess.run(['true'])", "subprocess.Popen is not allowed"),
        ("import os\n    os.system('true')", "os.system is not allowed"),
        ("import ctypes\n    ctypes.CDLL(None)", "ctypes.dlopen is not allowed"),
        ("import os\n    return os.environ['AAR_NATS_CREDS']", "KeyError"),
        ("raise ValueError('my bug')", "ValueError: my bug"),
    ],
)
async def test_forbidden_or_failing_code_comes_back_as_a_clear_error(
    inputs: dict[str, np.ndarray], body: str, reason: str
) -> None:
    source = f"def run(inputs, n_classes, seed):\n    {body}\n"
    with pytest.raises(CustomCodeError) as info:
        await run_custom(source, inputs, 2, 0, LIMITS)
    assert reason in info.value.reason
    assert "Traceback" in info.value.reason
    assert info.value.retryable is False


async def test_limits_stop_runaway_code(inputs: dict[str, np.ndarray]) -> None:
    spin = "def run(inputs, n_classes, seed):\n    while True:\n        pass\n"
    with pytest.raises(CustomCodeError, match=r"CPU limit|wall-clock limit"):
        await run_custom(spin, inputs, 2, 0, SandboxLimits(wall_s=10, cpu_s=1, memory_bytes=1 << 30))
    sleep = "import time\ndef run(inputs, n_classes, seed):\n    time.sleep(60)\n"
    with pytest.raises(CustomCodeError, match="wall-clock limit"):
        await run_custom(sleep, inputs, 2, 0, SandboxLimits(wall_s=1, cpu_s=5, memory_bytes=1 << 30))
    hog = "import numpy as np\ndef run(inputs, n_classes, seed):\n    return np.ones(1 << 31)\n"
    with pytest.raises(CustomCodeError, match=r"Unable to allocate|memory"):
        await run_custom(hog, inputs, 2, 0, LIMITS)


@pytest.mark.parametrize(
    ("ret", "reason"),
    [
        ("np.zeros((3, 3))", "expected (32, 2) probabilities or (32,) labels"),
        ("np.full(32, 5)", "labels outside 0..1"),
        ("np.full((32, 2), np.nan)", "NaN"),
    ],
)
async def test_unusable_output_is_refused(inputs: dict[str, np.ndarray], ret: str, reason: str) -> None:
    source = f"import numpy as np\ndef run(inputs, n_classes, seed):\n    return {ret}\n"
    with pytest.raises(CustomCodeError, match=reason.replace("(", r"\(").replace(")", r"\)")):
        await run_custom(source, inputs, 2, 0, LIMITS)


async def test_code_without_run_is_refused(inputs: dict[str, np.ndarray]) -> None:
    with pytest.raises(CustomCodeError, match="must define run"):
        await run_custom("x = 1\n", inputs, 2, 0, LIMITS)
