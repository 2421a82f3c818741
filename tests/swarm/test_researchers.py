"""Two offline researchers and a reviewer against a real worker and the real scorer, on a tiny task."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

from bus import Bus
from gpu_worker import catalog
from gpu_worker.methods.base import method_names
from gpu_worker.service import Worker
from gpu_worker.splits import SplitSizes
from gpu_worker.tasks import Columns
from schemas import ForumPost
from scorer import HoldoutConfig, Scorer, ScorerConfig
from swarm.agent import Agent
from swarm.findings import config_id
from swarm.registry import load_role
from swarm.roles.offline_researcher import (
    SPACE,
    OfflineResearcher,
    OfflineResearcherConfig,
    catalogue,
    neighbours,
)
from swarm.roles.reviewer import Reviewer, ReviewerConfig
from tests.gpu_worker.conftest import cache_root, task_file

__all__ = ["cache_root", "task_file"]


def test_the_search_space_names_registered_methods_and_roles_are_registered() -> None:
    import gpu_worker.methods  # noqa: F401  (registers the methods)

    assert set(SPACE) <= set(method_names())
    assert ("soft", {"temperature": 0.5}) in catalogue()
    assert neighbours("soft", {"temperature": 1.0}) == [{"temperature": 0.5}, {"temperature": 2.0}]
    assert load_role("offline-researcher") is OfflineResearcher and load_role("reviewer") is Reviewer


class _Listener(Agent):  # type: ignore[type-arg]
    role = "listener"

    async def setup(self) -> None:
        self.posts: list[ForumPost] = []

    async def on_forum(self, post: ForumPost) -> None:
        self.posts.append(post)


async def test_two_researchers_and_a_reviewer_reach_a_verified_standing(
    bus: Bus, swarm: str, task_file: Path, cache_root: Path
) -> None:
    sizes = SplitSizes(weak_train=80, dev=100, final=100, min_pool=50)
    await catalog.prepare(
        bus, swarm, str(task_file), sizes=sizes, strong_model="test-bow", columns=Columns(id="id")
    )
    await catalog.record_baselines(bus, swarm, "tiny", seeds=2)
    only = ["naive", "soft", "conf_filter"]
    first = OfflineResearcherConfig(
        task="tiny",
        families=["naive", "soft"],
        only_catalogue=only,
        round_size=3,
        max_rounds=1,
        parallel=3,
        score_timeout_s=60,
    )
    second = OfflineResearcherConfig(
        task="tiny",
        families=["naive", "conf_filter"],
        only_catalogue=only,
        round_size=2,
        max_rounds=1,
        parallel=2,
        score_timeout_s=60,
        start_delay_s=3.0,
    )
    scorer_config = ScorerConfig(concurrency=8, leaderboard_every_s=0.05, holdout=HoldoutConfig(budget=1000))
    async with (
        Worker(bus, swarm, name="w1", device="cpu"),
        Worker(bus, swarm, name="w2", device="cpu"),
        Scorer(bus, swarm, scorer_config),
        _Listener(bus, swarm, name="listener") as listener,
        Reviewer(bus, swarm, name="rev", config=ReviewerConfig(score_timeout_s=60)) as reviewer,
        OfflineResearcher(bus, swarm, name="r1", config=first) as r1,
        OfflineResearcher(bus, swarm, name="r2", config=second) as r2,
    ):
        await asyncio.wait_for(asyncio.gather(r1.done.wait(), r2.done.wait()), 60)
        deadline = time.monotonic() + 40
        while time.monotonic() < deadline and len(reviewer.replies) < 2:  # noqa: ASYNC110
            await asyncio.sleep(0.2)
        board = await r1.leaderboard("tiny")
    # The first researcher claimed naive; the second, starting there too, skipped it.
    naive = config_id("naive", {})
    assert naive in r1.runs and naive not in r2.runs and naive in r2.skipped
    assert not set(r1.runs) & set(r2.runs)
    assert r1.posted and r2.posted
    # More seeds for the survivors: the leaderboard verifies a standing with a final PGR.
    assert board is not None
    verified = [s for s in board.standings if s.verified]
    assert verified and all(s.final_pgr is not None for s in verified)
    # The reviewer replied to findings, in their threads, with a verdict and the fresh results.
    findings = {p.id: p for p in r1.posted + r2.posted}
    assert reviewer.replies
    for reply in reviewer.replies:
        assert reply.reply_to in findings and reply.thread_id == findings[reply.reply_to].thread
        assert reply.body.startswith(("confirmed", "not reproduced", "inconclusive"))
        assert len(reply.evidence) == 2
    heard = [p for p in listener.posts if "review" in p.tags]
    assert heard


async def test_a_researcher_grows_committees_from_the_best_standing(bus: Bus, swarm: str) -> None:
    from bus import streams
    from schemas import Leaderboard, Standing

    def standing(
        method: str, params: dict[str, object], dev: float, seeds: int = 3, code: str | None = None
    ) -> Standing:
        return Standing(
            config_key=f"{method}-{len(params)}-{dev}",
            method=method,
            params=params,
            code_hash=code,
            seeds=list(range(seeds)),
            dev_pgr=dev,
        )

    def member(method: str, **params: object) -> dict[str, object]:
        return {"method": method, "params": params}

    singles = [
        standing("soft", {}, 0.5),
        standing("propagate", {"k": 100}, 0.9),
        standing("knn", {}, 0.95, seeds=1),  # not enough seeds to be a member
        standing("naive", {}, 0.99, code="abc"),  # custom code: never a member
        standing("propagate", {}, 0.8),
    ]
    kv = await bus.kv(streams.leaderboard_bucket(swarm))
    researcher = OfflineResearcher(
        bus, swarm, name="r", config=OfflineResearcherConfig(task="t", committee_breadth=2)
    )

    async def proposed(standings: list[Standing]) -> list[dict[str, object]]:
        await kv.put("t", Leaderboard(swarm=swarm, sender="scorer", task="t", standings=standings))
        return [p for m, p in await researcher._build_on_best("t") if m == "committee"]

    # The best verified library config, with each of the next two (members in canonical order).
    first = await proposed(singles)
    assert first == [
        {"members": [member("propagate", k=100), member("propagate")]},
        {"members": [member("propagate", k=100), member("soft")]},
    ]
    # Once a committee leads, it grows by the members it lacks.
    grown = await proposed([*singles, standing("committee", first[0], 0.95)])
    assert grown == [{"members": [member("propagate", k=100), member("propagate"), member("soft")]}]
    import gpu_worker.methods  # noqa: F401  (registers the methods)
    from gpu_worker.methods.base import get_method

    for params in first + grown:
        get_method("committee").decode(params)  # what the researcher proposes, a worker accepts
