"""``reviewer``: re-runs a claimed config with fresh seeds and replies "confirmed" or "not reproduced"."""

from __future__ import annotations

import asyncio
import logging
from typing import Annotated

import msgspec

from schemas import ForumPost
from swarm import findings
from swarm.agent import Agent
from swarm.config import AgentConfig
from swarm.findings import Finding, config_id

log = logging.getLogger("aar.agent")


class ReviewerConfig(AgentConfig):
    """Settings of the reviewer.

    Attributes:
        fresh_seeds: seeds run per review, none of them among the claim's.
        first_seed: fresh seeds are taken upward from here.
        tolerance: the largest |fresh mean - claimed| dev PGR still "confirmed".
        score_timeout_s: how long to wait for one score.
    """

    fresh_seeds: Annotated[int, msgspec.Meta(ge=1, le=8)] = 2
    first_seed: Annotated[int, msgspec.Meta(ge=0)] = 1000
    tolerance: Annotated[float, msgspec.Meta(ge=0)] = 0.15
    score_timeout_s: Annotated[float, msgspec.Meta(gt=0)] = 300.0


class Reviewer(Agent[ReviewerConfig]):
    """Re-runs findings (and the scorer's new-best posts) with fresh seeds and replies with a verdict."""

    role = "reviewer"
    config_type = ReviewerConfig
    capabilities = ("review",)

    async def setup(self) -> None:
        self._queue: asyncio.Queue[tuple[ForumPost, Finding]] = asyncio.Queue()
        self._seen: set[str] = set()
        self.replies: list[ForumPost] = []

    async def on_forum(self, post: ForumPost) -> None:
        # Queued for ``run``: a review takes minutes, longer than a handler should hold a message.
        finding: Finding | None = None
        if "finding" in post.tags:
            finding = findings.decode(post)
        elif "new-best" in post.tags and len(post.tags) >= 3:
            finding = await self._from_board(post.tags[2])
        if finding is not None and finding.dev_pgr is not None:
            await self._queue.put((post, finding))

    async def run(self) -> None:
        while True:
            post, finding = await self._queue.get()
            key = f"{finding.task}/{config_id(finding.method, finding.params)}"
            if key in self._seen:
                continue
            self._seen.add(key)
            try:
                await self.review(post, finding)
            except TimeoutError as e:
                log.warning("review abandoned", extra={"agent": self.name, "post": post.id, "error": repr(e)})

    async def review(self, post: ForumPost, finding: Finding) -> ForumPost:
        """Run ``fresh_seeds`` new seeds of the claimed config and reply to ``post`` with the verdict."""
        claimed = set(finding.seeds)
        seeds: list[int] = []
        s = self.config.first_seed
        while len(seeds) < self.config.fresh_seeds:
            if s not in claimed:
                seeds.append(s)
            s += 1
        rids = [
            await self.request_experiment(finding.task, finding.method, finding.params, seed=x) for x in seeds
        ]
        scores = await asyncio.gather(
            *(self.await_score(r, timeout=self.config.score_timeout_s) for r in rids)
        )
        pgrs = [sc.pgr for sc in scores if sc.pgr is not None]
        results = [sc.lineage.result_id for sc in scores if sc.lineage.result_id]
        key = config_id(finding.method, finding.params)
        if not pgrs:
            verdict, text = "inconclusive", "the fresh runs got no dev answer (rejected or budget withheld)"
        else:
            mean = sum(pgrs) / len(pgrs)
            gap = abs(mean - (finding.dev_pgr or 0.0))
            verdict = "confirmed" if gap <= self.config.tolerance else "not reproduced"
            text = (
                f"fresh seeds {seeds}: dev PGR {', '.join(f'{p:.4f}' for p in pgrs)} (mean {mean:.4f}) "
                f"vs claimed {finding.dev_pgr:.4f}; |diff| {gap:.4f}, tolerance {self.config.tolerance}"
            )
        reply = await self.post(
            f"{verdict}: {key} on {finding.task}. {text}. Results: {', '.join(results) or 'none'}.",
            title=f"review: {verdict}",
            reply_to=post,
            tags=["review", verdict.replace(" ", "-"), finding.task],
            evidence=results,
        )
        self.replies.append(reply)
        return reply

    async def _from_board(self, task: str) -> Finding | None:
        board = await self.leaderboard(task)
        if board is None or board.best is None:
            return None
        for s in board.standings:
            if s.config_key == board.best:
                return Finding(
                    task=task, method=s.method, params=dict(s.params), seeds=list(s.seeds), dev_pgr=s.dev_pgr
                )
        return None
