"""Messages as the small JSON rows the page shows: only the fields it renders, long text cut short.

Pure functions, no I/O. Every value is a JSON builtin, so a row can be encoded as it is.
"""

from __future__ import annotations

import json
from typing import Any

import msgspec

from schemas import (
    ExperimentProgress,
    ExperimentRequest,
    ExperimentResult,
    Flag,
    ForumPost,
    Leaderboard,
    Presence,
    ScoreEvent,
    Standing,
    TaskInfo,
)

Row = dict[str, Any]

BODY_CHARS = 4000
EVIDENCE_CHARS = 400
DESCRIPTION_CHARS = 400
STANDINGS_PER_TASK = 50


def _cut(text: str, limit: int) -> tuple[str, bool]:
    return (text, False) if len(text) <= limit else (text[:limit] + "…", True)


def _params(params: dict[str, Any]) -> Any:
    return msgspec.to_builtins(params)


def task(info: TaskInfo) -> Row:
    return {
        "task": info.task,
        "task_kind": info.task_kind,
        "labels": list(info.label_names[:20]),
        "n_labels": len(info.label_names),
        "sizes": dict(info.sizes),
        "weak_model": info.weak_model,
        "strong_model": info.strong_model,
        "description": _cut(info.description, DESCRIPTION_CHARS)[0],
    }


def standing(s: Standing) -> Row:
    return {
        "config_key": s.config_key,
        "method": s.method,
        "params": _params(s.params),
        "code_hash": s.code_hash,
        "seeds": list(s.seeds),
        "dev_pgr": s.dev_pgr,
        "final_pgr": s.final_pgr,
        "final_ci": list(s.final_ci) if s.final_ci is not None else None,
        "verified": s.verified,
        "agents": list(s.agents),
        "results": len(s.result_ids),
        "updated_ts": s.updated_ts,
    }


def leaderboard(board: Leaderboard) -> Row:
    return {
        "task": board.task,
        "best": board.best,
        "best_since": board.best_since,
        "min_seeds": board.min_seeds,
        "results": board.results,
        "configurations": len(board.standings),
        "ts": board.ts,
        "standings": [standing(s) for s in board.standings[:STANDINGS_PER_TASK]],
    }


def score(s: ScoreEvent) -> Row:
    return {
        "id": s.id,
        "result_id": s.lineage.result_id,
        "request_id": s.lineage.request_id,
        "task": s.task,
        "method": s.method,
        "config_key": s.config_key,
        "params": _params(s.params),
        "status": s.status,
        "pgr": s.pgr,
        "accuracy": s.accuracy,
        "answer": s.answer,
        "reason": s.reason,
        "seed": s.seed,
        "agent": s.agent,
        "worker": s.worker,
        "flags": list(s.flags),
        "ts": s.ts,
    }


def post(p: ForumPost) -> Row:
    body, truncated = _cut(p.body, BODY_CHARS)
    return {
        "id": p.id,
        "thread": p.thread,
        "reply_to": p.reply_to,
        "title": p.title,
        "body": body,
        "truncated": truncated,
        "tags": list(p.tags),
        "sender": p.sender,
        "evidence": len(p.evidence),
        "ts": p.ts,
    }


def flag(f: Flag) -> Row:
    evidence = json.dumps(msgspec.to_builtins(f.evidence), sort_keys=True, default=str)
    return {
        "id": f.id,
        "detector": f.detector,
        "severity": f.severity,
        "summary": f.summary,
        "suspect": f.suspect,
        "sender": f.sender,
        "evidence": _cut(evidence, EVIDENCE_CHARS)[0],
        "ts": f.ts,
    }


def presence(p: Presence) -> Row:
    return {
        "name": p.name,
        "role": p.role,
        "host": p.host,
        "pid": p.pid,
        "state": p.state,
        "capabilities": list(p.capabilities),
        "last_seen": p.last_seen,
        "info": dict(p.info),
    }


def request(r: ExperimentRequest) -> Row:
    return {
        "id": r.id,
        "task": r.task,
        "method": r.method,
        "params": _params(r.params),
        "seed": r.seed,
        "agent": r.sender,
        "priority": r.priority,
        "custom_code": r.code is not None,
        "status": "queued",
        "worker": None,
        "pgr": None,
        "ts": r.ts,
    }


def request_seen_later(m: ExperimentResult | ScoreEvent) -> Row:
    """A request the dashboard never saw queued, as its result or its score tells it.

    It was taken before the dashboard started, or its score was replayed before its result.
    """
    return {
        "id": m.lineage.request_id,
        "task": m.task,
        "method": m.method,
        "params": _params(m.params),
        "seed": m.seed,
        "agent": m.agent,
        "priority": None,
        "custom_code": m.code_hash is not None,
        "status": "queued",
        "worker": m.worker,
        "pgr": None,
        "ts": m.ts,
    }


def progress(p: ExperimentProgress) -> Row:
    return {
        "worker": p.worker,
        "request_id": p.lineage.request_id,
        "stage": p.stage,
        "step": p.step,
        "total_steps": p.total_steps,
        "loss": p.loss,
        "eta_s": p.eta_s,
        "status": "running",
        "ts": p.ts,
    }
