"""``summariser``: a periodic digest of the forum's busy threads and each task's best standing."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from typing import Annotated

import msgspec

from schemas import ForumPost, Leaderboard, Standing
from swarm.agent import Agent
from swarm.config import AgentConfig

log = logging.getLogger("aar.agent")

_MAX_THREADS_KEPT = 1000
_MAX_EVIDENCE = 256


class SummariserConfig(AgentConfig):
    """The summariser's settings, beside every agent's (AgentConfig).

    Attributes:
        period_s: seconds between digests.
        max_threads: threads listed per digest, the most active first.
        post_when_quiet: post a digest even when nothing changed since the last one.
    """

    period_s: Annotated[float, msgspec.Meta(gt=0)] = 300.0
    max_threads: Annotated[int, msgspec.Meta(ge=1, le=100)] = 10
    post_when_quiet: bool = False


# Per task, what the last digest said was on top (config, dev PGR, final PGR, results).
_Mark = tuple[str, float | None, float | None, int] | None


@dataclass(slots=True)
class _Thread:
    title: str
    posts: int = 0
    new: int = 0
    last_ts: float = 0.0
    authors: set[str] = field(default_factory=set)


class Summariser(Agent[SummariserConfig]):
    """Posts a periodic digest: the busiest forum threads and each task's best standing."""

    role = "summariser"
    config_type = SummariserConfig
    capabilities = ("digest",)

    async def setup(self) -> None:
        self._threads: dict[str, _Thread] = {}
        self._new_ids: list[str] = []
        self._boards: dict[str, _Mark] = {}

    async def on_forum(self, post: ForumPost) -> None:
        threads = self._threads
        thread = threads.get(post.thread)
        if thread is None:
            thread = threads[post.thread] = _Thread(title=post.title or f"thread {post.thread[:12]}")
            if len(threads) > _MAX_THREADS_KEPT:
                del threads[min(threads, key=lambda k: threads[k].last_ts)]
        if post.thread_id is None and post.title:
            thread.title = post.title  # the first post names the thread
        thread.posts += 1
        thread.new += 1
        thread.last_ts = max(thread.last_ts, post.ts)
        thread.authors.add(post.sender)
        self._new_ids.append(post.id)

    async def run(self) -> None:
        while True:
            await asyncio.sleep(self.config.period_s)
            try:
                await self.digest()
            except Exception as e:  # a digest is worth a retry next period, not the agent's life
                log.warning("digest failed", extra={"agent": self.name, "error": repr(e)})

    async def digest(self) -> ForumPost | None:
        """Post one digest now; None when nothing changed and ``post_when_quiet`` is off."""
        boards = await self.leaderboards()
        marks = {task: _mark(board) for task, board in boards.items()}
        changed = [task for task, mark in marks.items() if self._boards.get(task) != mark]
        active = sorted(
            (t for t in self._threads.values() if t.new), key=lambda t: (t.new, t.last_ts), reverse=True
        )
        # What this digest covers; posts heard while it is being published go in the next one.
        counted = [(t, t.new) for t in active]
        covered = len(self._new_ids)
        if not (active or changed or self.config.post_when_quiet):
            return None
        new_posts = _n(sum(n for _, n in counted), "new post")
        total = sum(t.posts for t in self._threads.values())
        seen = f"{_n(total, 'post')} in {_n(len(self._threads), 'thread')}"
        lines = [f"Forum: {new_posts} in {_n(len(active), 'thread')} since the last digest ({seen} seen)."]
        for t, n in counted[: self.config.max_threads]:
            lines.append(f'- "{t.title}": {n} new ({t.posts} in all), by {", ".join(sorted(t.authors))}')
        if len(active) > self.config.max_threads:
            lines.append(f"- and {_n(len(active) - self.config.max_threads, 'more thread')}")
        board_lines = [f"- {task}: {_describe(_top(board), board)}" for task, board in boards.items()]
        lines += ["", "Leaderboard:", *(board_lines or ["- no scores yet"])]
        post = await self.post(
            "\n".join(lines),
            title=f"Digest: {new_posts}, {_n(len(changed), 'leaderboard change')}",
            tags=["digest"],
            evidence=self._new_ids[:covered][-_MAX_EVIDENCE:],
        )
        for t, n in counted:
            t.new -= n
        del self._new_ids[:covered]
        self._boards.update(marks)
        return post


def _mark(board: Leaderboard) -> _Mark:
    """What a digest says about a board: a change in it is a change worth a digest."""
    top = _top(board)
    return (top.config_key, top.dev_pgr, top.final_pgr, board.results) if top else None


def _top(board: Leaderboard) -> Standing | None:
    """The verified best when there is one, else the best dev PGR so far."""
    if board.best is not None:
        for s in board.standings:
            if s.config_key == board.best:
                return s
    scored = [s for s in board.standings if s.dev_pgr is not None]
    return max(scored, key=lambda s: s.dev_pgr or 0.0, default=None)


def _describe(top: Standing | None, board: Leaderboard) -> str:
    if top is None:
        return f"no scored standing yet ({board.results} results)"
    verified = "best" if board.best == top.config_key else "leading (unverified)"
    text = f"{verified} {top.method} [{top.config_key}]"
    if top.dev_pgr is not None:
        text += f", dev PGR {top.dev_pgr:.3f}"
    if top.final_pgr is not None:
        text += f", final PGR {top.final_pgr:.3f}"
        if top.final_ci is not None:
            text += f" [{top.final_ci[0]:.3f}, {top.final_ci[1]:.3f}]"
    text += f", {_n(len(top.seeds), 'seed')}"
    if top.agents:
        text += f", by {', '.join(top.agents)}"
    return text


def _n(count: int, noun: str) -> str:
    return f"{count} {noun}{'s' * (count != 1)}"
