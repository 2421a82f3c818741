"""The red-teamer against a real worker (sandboxed custom code) and the real scorer on the tiny task."""

from __future__ import annotations

import asyncio
from pathlib import Path

from bus import Bus, Kind, StartAt
from gpu_worker import catalog
from gpu_worker.service import Worker
from gpu_worker.splits import SplitSizes
from gpu_worker.tasks import Columns
from schemas import Flag, ForumPost
from scorer import Scorer, ScorerConfig
from swarm.registry import load_role
from swarm.roles.red_teamer import RedTeamer, RedTeamerConfig
from tests.helpers import Collector


async def test_the_red_teamer_reports_which_tricks_the_scorer_caught(
    bus: Bus, swarm: str, task_file: Path, cache_root: Path
) -> None:
    assert load_role("red-teamer") is RedTeamer
    sizes = SplitSizes(weak_train=80, dev=100, final=100, min_pool=50)
    await catalog.prepare(
        bus, swarm, str(task_file), sizes=sizes, strong_model="test-bow", columns=Columns(id="id")
    )
    await catalog.record_baselines(bus, swarm, "tiny", seeds=2)
    posts: Collector[ForumPost] = Collector()
    flags: Collector[Flag] = Collector()
    await bus.subscribe(swarm, Kind.FORUM, posts, expect=ForumPost, start=StartAt.all())
    await bus.subscribe(swarm, Kind.FLAGS, flags, expect=Flag, start=StartAt.all())
    config = RedTeamerConfig(task="tiny", probes=1, score_timeout_s=120, flag_wait_s=1.0)
    async with (
        Worker(bus, swarm, name="w1", device="cpu") as _,
        Scorer(bus, swarm, ScorerConfig(leaderboard_every_s=0.05)),
        RedTeamer(bus, swarm, name="rt1", config=config) as agent,
    ):
        await asyncio.wait_for(agent.done.wait(), 240)
        assert not agent.crashed.done()
    attempts = {a.trick: a for a in agent.attempts}
    assert list(attempts) == ["constant", "weak_copy", "prior_shuffle", "probing", "forged_score"]
    for a in agent.attempts:
        print(a.line())
    # Constant predictions are the textbook trick: the scorer must catch them.
    assert attempts["constant"].caught
    # Without auth the server stores the forged score; the scorer's watcher flags it.
    forged = attempts["forged_score"]
    assert forged.caught and any("forged_score" in e for e in forged.evidence), forged
    report = agent.report
    assert report is not None and "red-team" in report.tags and report.sender == "rt1"
    for trick in attempts:
        assert f"- {trick}: " in report.body
    assert any(p.id == report.id for p in await posts.wait_for(1))
