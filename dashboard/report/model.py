"""The report's content as plain data, computed from a Snapshot without I/O.

The verified numbers are the scorer's own: the verdicts are replayed into a ``scorer.Ledger``, the
same bookkeeping ``aar leaderboard --recompute`` uses, so the report and the leaderboard cannot
disagree. (The report runs as the operator; Ledger and stats read no labels.)
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from dashboard.report.collect import Snapshot
from dashboard.report.costs import AgentCost, agent_costs
from schemas import (
    Baseline,
    BudgetEvent,
    Envelope,
    ExperimentRequest,
    ExperimentResult,
    Flag,
    ForumPost,
    Hypothesis,
    ScoreEvent,
    Standing,
    TaskInfo,
    Verdict,
)
from scorer import Ledger, ScorerConfig
from scorer.stats import mean_ci

# What each of the scorer's detectors catches (README, "Gaming detectors").
DETECTORS: dict[str, str] = {
    "constant": "one label for (nearly) every example: a constant or most-common-label answer",
    "prior_only": "the gold label mix on the wrong examples: the prior learned and nothing else",
    "weak_copy": "a copy of the weak supervisor's own predictions",
    "probing": "custom code a few flipped examples away from earlier submissions: probing the scorer",
    "forged_result": "a result from a sender that is not a worker, or in another worker's name",
    "forged_score": "a score event the scorer did not publish",
    "invalid_predictions": "predictions that miss or repeat examples, or labels out of range",
}


@dataclass(frozen=True, slots=True)
class Trace:
    """One result's lineage: hypothesis -> request -> result -> score -> verdict, and its flags."""

    result_id: str
    task: str
    method: str
    params: dict[str, Any]
    seed: int
    agent: str | None
    worker: str | None
    hypothesis_id: str | None
    request_id: str | None
    hypothesis: Hypothesis | None = None
    request: ExperimentRequest | None = None
    result: ExperimentResult | None = None
    score: ScoreEvent | None = None
    verdict: Verdict | None = None
    flags: tuple[Flag, ...] = ()

    @property
    def ts(self) -> float:
        """When the result arrived (or the earliest record of it the report has)."""
        known = [m.ts for m in (self.result, self.score, self.verdict) if m is not None]
        return min(known, default=0.0)


@dataclass(frozen=True, slots=True)
class SeedRun:
    """One seed of a configuration: the result that counts for it and its final-split PGR."""

    seed: int
    result_id: str
    final_pgr: float


@dataclass(frozen=True, slots=True)
class ConfigSummary:
    """A method configuration on one task: its seeds and final-split PGR with a t-interval."""

    task: str
    config_key: str
    method: str
    params: dict[str, Any]
    code_hash: str | None
    runs: tuple[SeedRun, ...]
    seeds: tuple[int, ...]
    mean: float | None
    ci: tuple[float, float] | None
    dev_pgr: float | None
    verified: bool
    best: bool
    agents: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class TimePoint:
    ts: float
    pgr: float
    result_id: str
    flagged: bool = False


@dataclass(frozen=True, slots=True)
class TaskSummary:
    task: str
    info: TaskInfo | None
    baseline: Baseline | None
    configs: tuple[ConfigSummary, ...]
    best: ConfigSummary | None
    # Dev answers agents saw (accepted scores) and the final-split PGR of leaderboard verdicts.
    dev_points: tuple[TimePoint, ...]
    final_points: tuple[TimePoint, ...]
    results: int

    @property
    def verified(self) -> tuple[ConfigSummary, ...]:
        return tuple(c for c in self.configs if c.verified)


@dataclass(frozen=True, slots=True)
class FlagTally:
    detector: str
    count: int
    critical: int
    suspects: tuple[str, ...]
    kept_off: int  # flagged results the scorer kept off the leaderboard


@dataclass(frozen=True, slots=True)
class Report:
    swarm: str
    generated_ts: float
    first_ts: float | None
    last_ts: float | None
    counts: dict[str, int]
    tasks: tuple[TaskSummary, ...]
    traces: dict[str, Trace]
    flags: tuple[Flag, ...]
    tally: tuple[FlagTally, ...]
    costs: tuple[AgentCost, ...]
    forum: tuple[ForumPost, ...]
    hypotheses: tuple[Hypothesis, ...]
    budget: tuple[BudgetEvent, ...]
    min_seeds: int
    confidence: float

    @property
    def empty(self) -> bool:
        return not (self.traces or self.counts.get("hypotheses") or self.counts.get("forum posts"))


def build(snap: Snapshot) -> Report:
    """Everything the report shows, from what the swarm's records hold."""
    cfg = _ledger_config(snap)
    ledger = Ledger(cfg)
    for verdict in snap.verdicts:
        ledger.apply(verdict)
    traces = _traces(snap)
    tasks = tuple(
        _task(snap, ledger, traces, task)
        for task in sorted({*snap.tasks, *ledger.tasks(), *(t.task for t in traces.values())})
    )
    workers = {r.worker for r in snap.results} | {p.name for p in snap.presence if p.role == "worker"}
    every: list[Envelope] = [
        *snap.hypotheses,
        *snap.queued_requests,
        *snap.results,
        *snap.scores,
        *snap.verdicts,
        *snap.flags,
        *snap.forum,
        *snap.usage,
        *snap.budget,
    ]
    stamps = [m.ts for m in every]
    costs = agent_costs(snap, exclude=workers | {v.sender for v in snap.verdicts})
    return Report(
        swarm=snap.swarm,
        generated_ts=snap.taken_ts,
        first_ts=min(stamps, default=None),
        last_ts=max(stamps, default=None),
        counts=_counts(snap, traces, costs, workers),
        tasks=tasks,
        traces=traces,
        flags=tuple(snap.flags),
        tally=_tally(snap.flags, traces),
        costs=costs,
        forum=tuple(snap.forum),
        hypotheses=tuple(snap.hypotheses),
        budget=tuple(snap.budget),
        min_seeds=cfg.min_seeds,
        confidence=cfg.confidence,
    )


def _ledger_config(snap: Snapshot) -> ScorerConfig:
    # The stored boards say which min_seeds the scorer used; recompute with the same rule.
    min_seeds = next((b.min_seeds for b in snap.boards.values()), ScorerConfig().min_seeds)
    return ScorerConfig(min_seeds=max(2, min_seeds))


def _traces(snap: Snapshot) -> dict[str, Trace]:
    hypotheses = {h.id: h for h in snap.hypotheses}
    requests = {r.id: r for r in snap.queued_requests}
    results = {r.id: r for r in snap.results}
    verdicts: dict[str, Verdict] = {}
    for v in snap.verdicts:
        if v.lineage.result_id:
            verdicts.setdefault(v.lineage.result_id, v)
    scores: dict[str, list[ScoreEvent]] = defaultdict(list)
    for s in snap.scores:
        if s.lineage.result_id:
            scores[s.lineage.result_id].append(s)
    flags: dict[str, list[Flag]] = defaultdict(list)
    for f in snap.flags:
        if f.lineage.result_id:
            flags[f.lineage.result_id].append(f)
    out: dict[str, Trace] = {}
    for rid in dict.fromkeys([*results, *verdicts, *scores, *flags]):
        result, verdict = results.get(rid), verdicts.get(rid)
        score = _score_of(scores.get(rid, []), verdict)
        source: ExperimentResult | Verdict | ScoreEvent | None = result or verdict or score
        lineage = source.lineage if source is not None else flags[rid][0].lineage
        request_id = lineage.request_id
        hypothesis_id = lineage.hypothesis_id
        out[rid] = Trace(
            result_id=rid,
            task=source.task if source is not None else str(flags[rid][0].evidence.get("task", "?")),
            method=source.method if source is not None else str(flags[rid][0].evidence.get("method", "?")),
            params=dict(source.params) if source is not None else {},
            seed=source.seed if source is not None else 0,
            agent=source.agent if source is not None else flags[rid][0].suspect,
            worker=source.worker if source is not None else None,
            hypothesis_id=hypothesis_id,
            request_id=request_id,
            hypothesis=hypotheses.get(hypothesis_id) if hypothesis_id else None,
            request=requests.get(request_id) if request_id else None,
            result=result,
            score=score,
            verdict=verdict,
            flags=tuple(flags.get(rid, [])),
        )
    return out


def _score_of(scores: list[ScoreEvent], verdict: Verdict | None) -> ScoreEvent | None:
    # The verdict names the score the scorer published; anything else on the subject is a forgery.
    if verdict is not None and verdict.score_id:
        return next((s for s in scores if s.id == verdict.score_id), None)
    return scores[0] if scores else None


def _task(snap: Snapshot, ledger: Ledger, traces: dict[str, Trace], task: str) -> TaskSummary:
    board = ledger.board(task, snap.swarm, "report") if task in ledger.tasks() else None
    standings = board.standings if board else []
    best = board.best if board else None
    configs = tuple(_config(task, s, ledger, s.config_key == best) for s in standings)
    mine = [t for t in traces.values() if t.task == task]
    dev = [
        TimePoint(t.score.ts, t.score.pgr, t.result_id, flagged=bool(t.flags or t.score.flags))
        for t in mine
        if t.score is not None
        and t.score.status == "accepted"
        and t.score.pgr is not None
        and math.isfinite(t.score.pgr)
    ]
    final = [
        TimePoint(t.verdict.ts, t.verdict.pgr["final"], t.result_id)
        for t in mine
        if t.verdict is not None and t.verdict.leaderboard and _finite(t.verdict.pgr.get("final"))
    ]
    return TaskSummary(
        task=task,
        info=snap.tasks.get(task),
        baseline=snap.baselines.get(task),
        configs=configs,
        best=next((c for c in configs if c.best), None),
        dev_points=tuple(sorted(dev, key=lambda p: p.ts)),
        final_points=tuple(sorted(final, key=lambda p: p.ts)),
        results=len(mine),
    )


def _config(task: str, s: Standing, ledger: Ledger, best: bool) -> ConfigSummary:
    runs = tuple(
        SeedRun(v.seed, rid, v.pgr["final"])
        for rid in s.result_ids
        if (v := ledger.verdicts.get(rid)) is not None and _finite(v.pgr.get("final"))
    )
    if s.verified:
        # The scorer's own numbers, exactly as the leaderboard shows them.
        mean, ci = s.final_pgr, s.final_ci
    else:
        m, interval = mean_ci([r.final_pgr for r in runs], ledger.cfg.confidence)
        mean = m if math.isfinite(m) else None
        ci = interval
    return ConfigSummary(
        task=task,
        config_key=s.config_key,
        method=s.method,
        params=dict(s.params),
        code_hash=s.code_hash,
        runs=runs,
        seeds=tuple(s.seeds),
        mean=mean,
        ci=ci,
        dev_pgr=s.dev_pgr,
        verified=s.verified,
        best=best,
        agents=tuple(s.agents),
    )


def _finite(value: float | None) -> bool:
    return value is not None and math.isfinite(value)


def _counts(
    snap: Snapshot, traces: dict[str, Trace], costs: Iterable[AgentCost], workers: set[str]
) -> dict[str, int]:
    request_ids = {r.lineage.request_id for r in snap.results} | {q.id for q in snap.queued_requests}
    official = [t.score for t in traces.values() if t.score is not None]
    return {
        "hypotheses": len(snap.hypotheses),
        "experiment requests": len(request_ids - {None}),
        "requests still queued": len(snap.queued_requests),
        "results": len(snap.results),
        "failed results": sum(r.status == "failed" for r in snap.results),
        "scores accepted": sum(s.status == "accepted" for s in official),
        "scores rejected": sum(s.status == "rejected" for s in official),
        "verdicts": len(snap.verdicts),
        "flags": len(snap.flags),
        "forum posts": len(snap.forum),
        "usage reports": len(snap.usage),
        "agents": sum(1 for _ in costs),
        "workers": len(workers),
    }


def _tally(flags: Iterable[Flag], traces: dict[str, Trace]) -> tuple[FlagTally, ...]:
    by: dict[str, list[Flag]] = defaultdict(list)
    for f in flags:
        by[f.detector].append(f)
    out = []
    for detector, found in sorted(by.items(), key=lambda kv: (-len(kv[1]), kv[0])):
        flagged = {f.lineage.result_id for f in found if f.lineage.result_id}
        kept_off = sum(
            1
            for rid in flagged
            if (t := traces.get(rid)) is not None and t.verdict is not None and not t.verdict.leaderboard
        )
        out.append(
            FlagTally(
                detector=detector,
                count=len(found),
                critical=sum(f.severity == "critical" for f in found),
                suspects=tuple(sorted({f.suspect for f in found if f.suspect})),
                kept_off=kept_off,
            )
        )
    return tuple(out)
