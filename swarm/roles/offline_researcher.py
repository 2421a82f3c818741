"""``offline-researcher``: successive halving over the library's methods and their parameters, no LLM.

Round 1 runs one seed of each config in its own slice of the catalogue (its ``families`` first,
the rest shuffled by ``shuffle_seed``, so researchers start apart), skipping configs another agent
claimed, posted as a finding, or has on the leaderboard. The top ``keep_fraction`` by dev PGR
survive, are posted as findings (with their result ids as evidence) and get more seeds until the
leaderboard can verify them. Then it grows committees from the best standing (anyone's) and tries
the neighbours of the best standing, and goes again, until its catalogue and ``max_rounds`` are spent.

A committee averages the predictions of several configs, a config no single method reaches. They are
grown greedily, as in ensemble selection (Caruana et al., 2004): the best standing, single config or
committee, plus each of the next-best verified library configs it lacks, one experiment each; the
best of those on the leaderboard is grown again the next round.
"""

from __future__ import annotations

import asyncio
import logging
import math
import random
from dataclasses import dataclass, field
from typing import Annotated, Any

import msgspec

from schemas import ForumPost, Standing
from swarm import findings
from swarm.agent import Agent
from swarm.config import AgentConfig
from swarm.findings import Finding, config_id

log = logging.getLogger("aar.agent")

# The search space, as data: method -> parameter grid (each list is ordered, so "neighbour" means
# the adjacent value). An empty dict is the method's defaults. Names match gpu_worker's registry.
SPACE: dict[str, dict[str, list[Any]]] = {
    "naive": {},
    "soft": {"temperature": [0.5, 1.0, 2.0]},
    "conf_filter": {"keep": [0.3, 0.5, 0.7]},
    "aux_conf": {},
    "product": {},
    "window": {},
    "bootstrap": {},
    "s2s": {"mode": ["filter"]},
    "knn": {"mode": ["filter", "soft"]},
    "gce": {},
    "sce": {},
    "ensemble": {},
    "elicit": {"mode": ["pca"]},
    "transition": {},
    "propagate": {"k": [10, 25, 100, 200], "keep": [0.5, 1.0], "alpha": [0.99], "include_eval": [True]},
}
# A committee averages the predictions of configs of SPACE (gpu_worker/methods/committee.py).
COMMITTEE = "committee"
MAX_COMMITTEE = 8


def catalogue(space: dict[str, dict[str, list[Any]]] | None = None) -> list[tuple[str, dict[str, Any]]]:
    """Every config of the space: each method's defaults, then one parameter varied at a time."""
    out: list[tuple[str, dict[str, Any]]] = []
    for method, grid in (space or SPACE).items():
        out.append((method, {}))
        for name, values in grid.items():
            out.extend((method, {name: v}) for v in values)
    return out


def neighbours(
    method: str, params: dict[str, Any], space: dict[str, dict[str, list[Any]]] | None = None
) -> list[dict[str, Any]]:
    """Params one grid step away from ``params`` in one parameter (unset parameters: any value)."""
    grid = (space or SPACE).get(method, {})
    out: list[dict[str, Any]] = []
    for name, values in grid.items():
        here = params.get(name)
        if here in values:
            i = values.index(here)
            steps = [values[j] for j in (i - 1, i + 1) if 0 <= j < len(values)]
        else:
            steps = list(values)
        out.extend({**params, name: v} for v in steps)
    return out


class OfflineResearcherConfig(AgentConfig):
    """Settings of the offline researcher.

    Attributes:
        task: the task searched; None: the first task the swarm has prepared.
        families: methods to start with (in this order); the rest of the catalogue follows.
        shuffle_seed: orders the rest of the catalogue, so researchers differ where families do not.
        round_size: configs run (one seed each) per round.
        keep_fraction: the share of a round that survives to more seeds.
        seeds: seeds per survivor (the leaderboard verifies at 3).
        max_rounds: rounds before the researcher stops (its handlers go on).
        parallel: experiments in flight at once.
        score_timeout_s: how long to wait for one score before moving on.
        only_catalogue: methods allowed (empty: all of SPACE).
        start_delay_s: seconds spent listening to peers' claims before the first round.
        committee_breadth: committees tried per round, each the best standing plus one of the
            next-best verified library configs (0: none).
    """

    task: str | None = None
    families: list[str] = msgspec.field(default_factory=list)
    shuffle_seed: int = 0
    round_size: Annotated[int, msgspec.Meta(ge=1)] = 6
    keep_fraction: Annotated[float, msgspec.Meta(gt=0, le=1)] = 0.34
    seeds: Annotated[int, msgspec.Meta(ge=1, le=16)] = 3
    max_rounds: Annotated[int, msgspec.Meta(ge=1)] = 3
    parallel: Annotated[int, msgspec.Meta(ge=1, le=64)] = 2
    score_timeout_s: Annotated[float, msgspec.Meta(gt=0)] = 300.0
    only_catalogue: list[str] = msgspec.field(default_factory=list)
    start_delay_s: Annotated[float, msgspec.Meta(ge=0)] = 0.0
    committee_breadth: Annotated[int, msgspec.Meta(ge=0, le=16)] = 4


@dataclass(slots=True)
class _Run:
    method: str
    params: dict[str, Any]
    pgrs: dict[int, float] = field(default_factory=dict)
    result_ids: list[str] = field(default_factory=list)

    @property
    def mean(self) -> float | None:
        return sum(self.pgrs.values()) / len(self.pgrs) if self.pgrs else None


class OfflineResearcher(Agent[OfflineResearcherConfig]):
    """Searches methods x parameters by successive halving, sharing findings on the forum."""

    role = "offline-researcher"
    config_type = OfflineResearcherConfig
    capabilities = ("search",)

    async def setup(self) -> None:
        self.others: dict[str, Finding] = {}  # config id -> what another agent claimed or found
        self.runs: dict[str, _Run] = {}  # config id -> what this researcher ran
        self.skipped: list[str] = []
        self.posted: list[ForumPost] = []
        self.done = asyncio.Event()

    async def on_forum(self, post: ForumPost) -> None:
        if not {"finding", "claim"} & set(post.tags):
            return
        if (f := findings.decode(post)) is not None:
            self.others.setdefault(config_id(f.method, f.params), f)

    # -- the search ------------------------------------------------------------------------

    async def run(self) -> None:
        try:
            await asyncio.sleep(self.config.start_delay_s)
            task = self.config.task or await self._first_task()
            if task is None:
                log.warning("no task to search", extra={"agent": self.name})
                return
            queue = self._order()
            for _ in range(self.config.max_rounds):
                batch = await self._next_batch(task, queue)
                if not batch:
                    break
                await self._run_all(task, [(m, p, 0) for m, p in batch])
                ranked = sorted(
                    (r for m, p in batch if (r := self.runs[config_id(m, p)]).mean is not None),
                    key=lambda r: r.mean or 0.0,
                    reverse=True,
                )
                survivors = ranked[: max(1, math.ceil(self.config.keep_fraction * len(batch)))]
                for r in survivors:
                    await self._post_finding(task, r)
                more = [(r.method, r.params, s) for r in survivors for s in range(1, self.config.seeds)]
                await self._run_all(task, more)
                queue[:0] = await self._build_on_best(task)
        finally:
            self.done.set()

    async def _first_task(self) -> str | None:
        tasks = await self.tasks()
        return tasks[0].task if tasks else None

    def _order(self) -> list[tuple[str, dict[str, Any]]]:
        allowed = set(self.config.only_catalogue)
        items = [(m, p) for m, p in catalogue() if not allowed or m in allowed]
        first = [c for fam in self.config.families for c in items if c[0] == fam]
        rest = [c for c in items if c[0] not in self.config.families]
        random.Random(self.config.shuffle_seed).shuffle(rest)
        return first + rest

    async def _taken(self, task: str) -> set[str]:
        """Configs someone already has: others' claims and findings, and the leaderboard's standings."""
        taken = {k for k, f in self.others.items() if f.task == task}
        board = await self.leaderboard(task)
        if board is not None:
            taken |= {config_id(s.method, s.params) for s in board.standings}
        return taken

    async def _next_batch(
        self, task: str, queue: list[tuple[str, dict[str, Any]]]
    ) -> list[tuple[str, dict[str, Any]]]:
        batch: list[tuple[str, dict[str, Any]]] = []
        while queue and len(batch) < self.config.round_size:
            method, params = queue.pop(0)
            key = config_id(method, params)
            if key in self.runs or any(config_id(m, p) == key for m, p in batch):
                continue
            if key in await self._taken(task):
                self.skipped.append(key)
                log.info("config skipped: another agent has it", extra={"agent": self.name, "config": key})
                continue
            # Claim it before running it, so a researcher starting later skips it.
            await self.post(
                findings.encode(Finding(task=task, method=method, params=params), "running this config"),
                title=f"claim: {key} on {task}"[:1024],
                tags=["claim", task, method],
            )
            batch.append((method, params))
        return batch

    async def _run_all(self, task: str, jobs: list[tuple[str, dict[str, Any], int]]) -> None:
        slots = asyncio.Semaphore(self.config.parallel)

        async def one(method: str, params: dict[str, Any], seed: int) -> None:
            async with slots:
                await self._run_one(task, method, params, seed)

        await asyncio.gather(*(one(m, p, s) for m, p, s in jobs))

    async def _run_one(self, task: str, method: str, params: dict[str, Any], seed: int) -> None:
        run = self.runs.setdefault(config_id(method, params), _Run(method, dict(params)))
        rid = await self.request_experiment(task, method, params, seed=seed)
        try:
            score = await self.await_score(rid, timeout=self.config.score_timeout_s)
        except TimeoutError:
            log.warning("no score in time; moving on", extra={"agent": self.name, "request": rid})
            return
        if score.pgr is None:
            log.info("no dev answer", extra={"agent": self.name, "request": rid, "reason": score.reason})
            return
        run.pgrs[seed] = score.pgr
        if score.lineage.result_id:
            run.result_ids.append(score.lineage.result_id)

    async def _post_finding(self, task: str, run: _Run) -> None:
        if run.mean is None:
            return
        finding = Finding(
            task=task, method=run.method, params=run.params, seeds=sorted(run.pgrs), dev_pgr=run.mean
        )
        key = config_id(run.method, run.params)
        text = f"{key} reached dev PGR {run.mean:.4f} over seeds {sorted(run.pgrs)} on {task}."
        post = await self.post(
            findings.encode(finding, text),
            title=f"finding: {key} on {task}, dev PGR {run.mean:.3f}",
            tags=["finding", task, run.method],
            evidence=run.result_ids[:256],
        )
        self.posted.append(post)

    async def _build_on_best(self, task: str) -> list[tuple[str, dict[str, Any]]]:
        """Committees grown from the best standing, then neighbours of the best two (anyone's)."""
        board = await self.leaderboard(task)
        if board is None:
            return []
        scored = sorted(
            (s for s in board.standings if s.dev_pgr is not None),
            key=lambda s: s.dev_pgr or 0.0,
            reverse=True,
        )
        allowed = set(self.config.only_catalogue)
        out: list[tuple[str, dict[str, Any]]] = []
        if not allowed or COMMITTEE in allowed:
            out.extend((COMMITTEE, p) for p in self._grown_committees(scored))
        for s in scored[:2]:
            if allowed and s.method not in allowed:
                continue
            out.extend((s.method, p) for p in neighbours(s.method, dict(s.params)))
        return out

    def _grown_committees(self, scored: list[Standing]) -> list[dict[str, Any]]:
        """The best standing plus each of the next-best verified library configs it does not have."""
        ready = [s for s in scored if len(s.seeds) >= self.config.seeds and s.code_hash is None]
        members = [(s.method, dict(s.params)) for s in ready if s.method in SPACE]
        best = next((s for s in ready if s.method in SPACE or s.method == COMMITTEE), None)
        if best is None or self.config.committee_breadth == 0:
            return []
        if best.method == COMMITTEE:
            base = [(m["method"], dict(m.get("params", {}))) for m in best.params.get("members", [])]
        else:
            base = [(best.method, dict(best.params))]
        if len(base) >= MAX_COMMITTEE:
            return []
        have = {config_id(*m) for m in base}
        out = []
        for extra in [m for m in members if config_id(*m) not in have][: self.config.committee_breadth]:
            chosen = sorted([*base, extra], key=lambda m: config_id(*m))
            out.append({"members": [{"method": m, "params": p} for m, p in chosen]})
        return out
