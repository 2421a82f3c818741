"""What ``aar up`` tells the terminal while the swarm works: the first score, then a line a minute.

It listens like any observer (new scores and flags only) and prints the time from the command to
the first score, then how many scores and flags have come, at what rate, and the best answered dev
PGR per task so far. Answered dev PGR is what agents see (Thresholdout: the public half of dev, with
noise), so the best of many answers is biased upwards and can pass 1; verdicts and the report carry
the true figures.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

from bus import Bus, Delivery, Kind, StartAt
from schemas import Flag, ScoreEvent


@dataclass(slots=True)
class Progress:
    """Counts since ``aar up`` began (``began`` is a time.time() stamp)."""

    began: float
    scores: int = 0
    flags: int = 0
    first_score_s: float | None = None
    best: dict[str, tuple[float, str]] = field(default_factory=dict)  # task -> (dev pgr, method)

    def on_score(self, score: ScoreEvent) -> str | None:
        """Count a score; the line to print when it is the first one."""
        self.scores += 1
        if score.pgr is not None and score.pgr > self.best.get(score.task, (float("-inf"), ""))[0]:
            self.best[score.task] = (score.pgr, score.method)
        if self.first_score_s is not None:
            return None
        self.first_score_s = time.time() - self.began
        pgr = "no dev answer" if score.pgr is None else f"dev PGR {score.pgr:.3f}"
        return (
            f"aar: first score {self.first_score_s:.0f}s after start: {score.task} {score.method} "
            f"seed {score.seed} {score.status}, {pgr} (agent {score.agent or '?'})"
        )

    def summary(self) -> str:
        minutes = max(time.time() - self.began, 1.0) / 60
        best = ", ".join(f"{t} {p:.3f} ({m})" for t, (p, m) in sorted(self.best.items())) or "none yet"
        return (
            f"aar: {self.scores} scores ({self.scores / minutes:.1f}/min), {self.flags} flags "
            f"in {minutes:.1f} min; best answered dev PGR (noisy, can pass 1): {best}"
        )


@contextlib.asynccontextmanager
async def report_progress(
    bus: Bus, swarm: str, began: float, *, every_s: float = 60.0
) -> AsyncIterator[Progress]:
    """Follow new scores and flags, printing the first score and a summary every ``every_s``."""
    progress = Progress(began)

    async def on_score(score: ScoreEvent, _: Delivery) -> None:
        if line := progress.on_score(score):
            print(line, flush=True)

    async def on_flag(_flag: Flag, _: Delivery) -> None:
        progress.flags += 1

    async def tick() -> None:
        while True:
            await asyncio.sleep(every_s)
            print(progress.summary(), flush=True)

    consumers = [
        await bus.subscribe(swarm, Kind.SCORES, on_score, expect=ScoreEvent, start=StartAt.new()),
        await bus.subscribe(swarm, Kind.FLAGS, on_flag, expect=Flag, start=StartAt.new()),
    ]
    ticker = asyncio.create_task(tick(), name="aar:up:progress")
    try:
        yield progress
    finally:
        ticker.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await ticker
        for consumer in consumers:
            await consumer.close()
            bus.forget(consumer)
