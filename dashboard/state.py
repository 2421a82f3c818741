"""What the dashboard shows, as a pure model: fed typed messages, it answers with small deltas.

No I/O and no event loop: ``apply`` takes one message and returns the rows it changed, each as a
``Delta`` the page applies by upsert; ``snapshot`` is everything at once, for a page that has just
connected. Every collection is capped (``Limits``), dropping the oldest first, so a swarm that runs
for weeks does not grow the process.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

from bus.streams import PRESENCE_TTL_S
from dashboard import rows
from dashboard.rows import Row
from schemas import (
    BudgetEvent,
    ExperimentProgress,
    ExperimentRequest,
    ExperimentResult,
    Flag,
    ForumPost,
    Leaderboard,
    Message,
    Presence,
    ScoreEvent,
    TaskInfo,
    UsageReport,
)

# A request only moves forward: a progress replayed after its result must not make it run again.
_RANK = {"queued": 0, "running": 1, "done": 2, "failed": 2, "scored": 3, "rejected": 3}
_ERROR_CHARS = 300


@dataclass(frozen=True, slots=True)
class Delta:
    """One changed row: ``type`` names the collection, ``data`` is the whole new row."""

    type: str
    data: Row

    def as_json(self) -> Row:
        return {"t": self.type, "d": self.data}


@dataclass(frozen=True, slots=True)
class Limits:
    """How much of each collection is kept (the oldest entries go first)."""

    scores_per_task: int = 500
    tasks: int = 100
    posts: int = 400
    flags: int = 200
    requests: int = 300
    workers: int = 200
    budgets: int = 500
    presence: int = 1000


@dataclass(frozen=True, slots=True)
class QueueStats:
    """The work queue as its consumer reports it."""

    pending: int  # stored, not yet taken by a worker
    in_flight: int  # taken, not yet acknowledged
    redelivered: int = 0
    waiting: int = 0  # workers' pull requests waiting for work: idle capacity


def _put(table: dict[str, Row], key: str, row: Row, cap: int) -> None:
    """Insert or replace ``key`` as the newest entry, dropping the oldest beyond ``cap``."""
    table.pop(key, None)
    table[key] = row
    while len(table) > cap:
        del table[next(iter(table))]


class DashboardState:
    """The dashboard's view of one swarm."""

    def __init__(
        self,
        swarm: str,
        *,
        limits: Limits | None = None,
        presence_ttl_s: float = PRESENCE_TTL_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.swarm = swarm
        self.limits = limits or Limits()
        self._presence_ttl_s = presence_ttl_s
        self._clock = clock
        self.tasks: dict[str, Row] = {}
        self.leaderboards: dict[str, Row] = {}
        self.scores: dict[str, dict[str, Row]] = {}  # task -> score id -> point, oldest first
        self.posts: dict[str, Row] = {}
        self.flags: dict[str, Row] = {}
        self.presence: dict[str, Row] = {}
        self._heard: dict[str, float] = {}  # presence name -> when its last beat arrived (clock)
        self.budgets: dict[str, Row] = {}
        self.workers: dict[str, Row] = {}
        self.requests: dict[str, Row] = {}
        self.queue: Row = asdict(QueueStats(0, 0)) | {"known": False}
        self.totals: Row = {"scores": 0, "posts": 0, "flags": 0, "results": 0}

    # -- messages ------------------------------------------------------------------------------

    def apply(self, msg: Message) -> list[Delta]:
        """Take one message into the model; returns the rows it changed (none for other kinds)."""
        match msg:
            case ScoreEvent():
                return self._score(msg)
            case ForumPost():
                return self._post(msg)
            case Flag():
                return self._flag(msg)
            case Leaderboard():
                return self._leaderboard(msg)
            case TaskInfo():
                _put(self.tasks, msg.task, rows.task(msg), self.limits.tasks)
                return [Delta("task", self.tasks[msg.task])]
            case Presence():
                return self._presence(msg)
            case BudgetEvent():
                return self._budget_event(msg)
            case UsageReport():
                return self._usage(msg)
            case ExperimentRequest():
                return self._request(msg)
            case ExperimentProgress():
                return self._progress(msg)
            case ExperimentResult():
                return self._result(msg)
            case _:
                return []

    def _score(self, s: ScoreEvent) -> list[Delta]:
        points = self.scores.get(s.task)
        if points is None:
            points = self.scores[s.task] = {}
            while len(self.scores) > self.limits.tasks:
                del self.scores[next(iter(self.scores))]
        fresh = s.id not in points
        _put(points, s.id, rows.score(s), self.limits.scores_per_task)
        self.totals["scores"] += fresh
        out = [Delta("score", points[s.id])]
        if s.agent is not None and s.budget_left is not None:
            budget = self._budget_row(s.agent, "agent")
            budget["dev_left"] = s.budget_left
            out.append(Delta("budget", budget))
        if (rid := s.lineage.request_id) is not None:
            # Scores and results are replayed by separate consumers: the score may come first.
            if (req := self.requests.get(rid)) is None:
                req = rows.request_seen_later(s)
                _put(self.requests, rid, req, self.limits.requests)
            self._advance(req, "scored" if s.status == "accepted" else "rejected")
            req["pgr"] = s.pgr
            out.append(Delta("request", req))
        return out

    def _post(self, p: ForumPost) -> list[Delta]:
        self.totals["posts"] += p.id not in self.posts
        _put(self.posts, p.id, rows.post(p), self.limits.posts)
        return [Delta("post", self.posts[p.id])]

    def _flag(self, f: Flag) -> list[Delta]:
        self.totals["flags"] += f.id not in self.flags
        _put(self.flags, f.id, rows.flag(f), self.limits.flags)
        return [Delta("flag", self.flags[f.id])]

    def _leaderboard(self, board: Leaderboard) -> list[Delta]:
        self.leaderboards[board.task] = rows.leaderboard(board)
        while len(self.leaderboards) > self.limits.tasks:
            del self.leaderboards[next(iter(self.leaderboards))]
        return [Delta("leaderboard", self.leaderboards[board.task])]

    def _presence(self, p: Presence) -> list[Delta]:
        _put(self.presence, p.name, rows.presence(p), self.limits.presence)
        self._heard[p.name] = self._clock()
        for gone in set(self._heard) - set(self.presence):
            del self._heard[gone]
        return [Delta("presence", self.presence[p.name])]

    def _budget_row(self, target: str, scope: str) -> Row:
        row = self.budgets.get(target)
        if row is None:
            row = {"target": target, "scope": scope, "dev_left": None, "levels": {}, "usage": None}
        _put(self.budgets, target, row, self.limits.budgets)
        return row

    def _budget_event(self, e: BudgetEvent) -> list[Delta]:
        # A swarm-wide budget and an agent of the same name must not share a row.
        row = self._budget_row(e.target if e.scope == "agent" else f"swarm:{e.target}", e.scope)
        row["levels"][e.resource] = {"used": e.used, "limit": e.limit, "level": e.level, "ts": e.ts}
        return [Delta("budget", row)]

    def _usage(self, u: UsageReport) -> list[Delta]:
        row = self._budget_row(u.agent, "agent")
        usage = row["usage"] or {"input_tokens": 0, "output_tokens": 0, "usd": 0.0, "requests": 0}
        usage["input_tokens"] += u.input_tokens
        usage["output_tokens"] += u.output_tokens
        usage["usd"] = round(usage["usd"] + u.usd, 6)
        usage["requests"] += u.requests
        row["usage"] = usage
        return [Delta("budget", row)]

    def _request(self, r: ExperimentRequest) -> list[Delta]:
        if r.id in self.requests:
            return []  # seen already (live and stored copies of one request)
        _put(self.requests, r.id, rows.request(r), self.limits.requests)
        return [Delta("request", self.requests[r.id])]

    def _progress(self, p: ExperimentProgress) -> list[Delta]:
        rid = p.lineage.request_id
        req = self.requests.get(rid) if rid else None
        if req is not None and _RANK[req["status"]] >= _RANK["done"]:
            return []  # a heartbeat that arrived after the result
        current = self.workers.get(p.worker)
        if current is not None and current["ts"] > p.ts:
            return []
        row = rows.progress(p)
        if req is not None:
            row["task"], row["method"] = req["task"], req["method"]
        elif current is not None and current.get("request_id") == rid:
            row["task"], row["method"] = current.get("task"), current.get("method")
        _put(self.workers, p.worker, row, self.limits.workers)
        out = [Delta("worker", row)]
        if req is not None and self._advance(req, "running", worker=p.worker):
            out.append(Delta("request", req))
        return out

    def _result(self, r: ExperimentResult) -> list[Delta]:
        self.totals["results"] += 1
        out: list[Delta] = []
        rid = r.lineage.request_id
        assert rid is not None  # ExperimentResult checks this when decoded
        req = self.requests.get(rid)
        if req is None:
            req = rows.request_seen_later(r)
            _put(self.requests, rid, req, self.limits.requests)
        if self._advance(req, "done" if r.status == "ok" else "failed", worker=r.worker):
            if r.error:
                req["error"] = r.error[:_ERROR_CHARS]
            out.append(Delta("request", req))
        current = self.workers.get(r.worker)
        same = current is not None and current.get("request_id") == rid
        if current is None or same or current["ts"] <= r.ts:
            row = {
                "worker": r.worker,
                "request_id": rid,
                "task": r.task,
                "method": r.method,
                "stage": "finished" if r.status == "ok" else "failed",
                "step": current["step"] if current is not None and same else 0,
                "total_steps": current["total_steps"] if current is not None and same else None,
                "loss": None,
                "eta_s": None,
                "status": "idle",
                "ts": r.ts,
            }
            _put(self.workers, r.worker, row, self.limits.workers)
            out.append(Delta("worker", row))
        return out

    @staticmethod
    def _advance(req: Row, status: str, *, worker: str | None = None) -> bool:
        """Move a request forward to ``status``; False when it is there or further already."""
        if worker is not None:
            req["worker"] = worker
        if _RANK[status] <= _RANK[req["status"]]:
            return False
        req["status"] = status
        return True

    # -- other inputs --------------------------------------------------------------------------

    def forget_presence(self, name: str) -> list[Delta]:
        """A presence entry was deleted (the process stopped)."""
        self._heard.pop(name, None)
        if self.presence.pop(name, None) is None:
            return []
        return [Delta("presence_gone", {"name": name})]

    def prune(self) -> list[Delta]:
        """Drop presence entries not refreshed within the bucket's TTL.

        The bucket expires them silently (a KV watcher hears no delete when an entry ages out), so
        the dashboard times them out itself, by when it last heard each one rather than by the
        sender's clock.
        """
        cutoff = self._clock() - self._presence_ttl_s
        out: list[Delta] = []
        for name in [n for n, t in self._heard.items() if t < cutoff]:
            out += self.forget_presence(name)
        return out

    def set_queue(self, stats: QueueStats) -> list[Delta]:
        """The work queue's counts; a delta only when they changed."""
        row = asdict(stats) | {"known": True}
        if row == self.queue:
            return []
        self.queue = row
        return [Delta("queue", row)]

    # -- the whole picture ---------------------------------------------------------------------

    def snapshot(self) -> dict[str, Any]:
        """Everything the page shows, as JSON builtins."""
        return {
            "swarm": self.swarm,
            "ts": time.time(),
            "limits": asdict(self.limits),
            "totals": dict(self.totals),
            "tasks": list(self.tasks.values()),
            "leaderboards": list(self.leaderboards.values()),
            "scores": {task: list(points.values()) for task, points in self.scores.items()},
            "posts": list(self.posts.values()),
            "flags": list(self.flags.values()),
            "presence": list(self.presence.values()),
            "budgets": list(self.budgets.values()),
            "workers": list(self.workers.values()),
            "requests": list(self.requests.values()),
            "queue": dict(self.queue),
        }
