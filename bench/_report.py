"""Shared benchmark plumbing: interleaved rounds, robust summaries, the machine's details, the table."""

from __future__ import annotations

import importlib.metadata
import os
import platform
import statistics
import subprocess
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from bus.natsd import find_binary

Run = Callable[[int], Awaitable[float]]


@dataclass(slots=True)
class Pair:
    """Repeated measurements of a baseline and a candidate, taken in alternating order.

    Attributes:
        base: one figure per round for the baseline (raw nats-py, or the default server).
        test: one figure per round for the candidate (the aar Bus, or ``sync_interval: always``).
    """

    base: list[float] = field(default_factory=list)
    test: list[float] = field(default_factory=list)

    @property
    def base_median(self) -> float:
        return statistics.median(self.base)

    @property
    def test_median(self) -> float:
        return statistics.median(self.test)

    @property
    def ratio(self) -> float:
        """test / base, as the median of the per-round ratios.

        Each round measures both sides back to back, so a slow spell on this shared machine hits
        both figures of a round alike; the ratio within a round cancels it, and the median drops
        a round where it did not.
        """
        return statistics.median(t / b for b, t in zip(self.base, self.test, strict=True) if b > 0)


async def interleave(rounds: int, warmup_n: int, n: int, base: Run, test: Run) -> Pair:
    """Warm both sides up, then run ``rounds`` rounds, swapping which side goes first each round.

    Swapping the order keeps a side from always running on a cache or server state the other
    left behind (a stream just purged, a consumer just deleted, a freshly collected heap).
    """
    await base(warmup_n)
    await test(warmup_n)
    pair = Pair()
    for r in range(rounds):
        if r % 2 == 0:
            pair.base.append(await base(n))
            pair.test.append(await test(n))
        else:
            pair.test.append(await test(n))
            pair.base.append(await base(n))
    return pair


def percentile(values: list[float], q: float) -> float:
    """The ``q``-quantile (0..1) of ``values`` by linear interpolation."""
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    pos = q * (len(ordered) - 1)
    lo = int(pos)
    hi = min(lo + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (pos - lo)


def _version(dist: str) -> str:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return "?"


def machine() -> dict[str, str | int]:
    """What the figures depend on: CPUs, interpreter, client and server versions."""
    cpu = platform.processor() or "?"
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next((line.split(":", 1)[1].strip() for line in f if line.startswith("model name")), cpu)
    except OSError:
        pass
    try:
        server = subprocess.run(
            [str(find_binary()), "--version"], capture_output=True, text=True, timeout=10, check=False
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        server = "?"
    return {
        "cpu_count": os.cpu_count() or 0,
        "cpu": cpu,
        "os": f"{platform.system()} {platform.release()}",
        "python": platform.python_version(),
        "uvloop": _version("uvloop"),
        "nats_py": _version("nats-py"),
        "msgspec": _version("msgspec"),
        "nats_server": server.removeprefix("nats-server: "),
    }


def rate(value: float) -> str:
    return f"{value:>10,.0f} msg/s"


def micros(value: float) -> str:
    return f"{value:>10,.0f} us   "


def row(label: str, base: str, test: str, ratio: float, detail: str = "") -> str:
    """One line of the table: ratio >= 0.8 is the target for every aar path."""
    return f"{label:<34} {base:>17} {test:>17} {ratio:>7.2f}  {detail}"


def header(base: str, test: str) -> str:
    return f"{'path':<34} {base:>17} {test:>17} {'ratio':>7}  per round"


def rounds(pair: Pair, fmt: str = "{:,.0f}") -> str:
    """Every round's figures, so a reader can see the spread behind a median."""
    b = " ".join(fmt.format(v) for v in pair.base)
    t = " ".join(fmt.format(v) for v in pair.test)
    return f"[{b}] vs [{t}]"
