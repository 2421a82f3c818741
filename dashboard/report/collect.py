"""Read everything a report needs from a swarm's streams and buckets into one plain snapshot.

Operator rights are needed: the verified numbers come from the scorer's verdicts, which only the
operator and the scorer may read.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import TypeVar

import nats.errors
import nats.js.errors

from bus import Bus, BusError, Kind, peek_stored, replay, streams
from bus.admin import swarm_exists
from dashboard.report.errors import ReportError
from schemas import (
    Baseline,
    BudgetEvent,
    Envelope,
    ExperimentRequest,
    ExperimentResult,
    Flag,
    ForumPost,
    Hypothesis,
    Leaderboard,
    Presence,
    SchemaError,
    ScoreEvent,
    TaskInfo,
    UsageReport,
    Verdict,
    decode_as,
)

M = TypeVar("M", bound=Envelope)

# Queued requests are read one direct get at a time; past this many the report counts no further.
MAX_QUEUED_REQUESTS = 10_000


@dataclass(slots=True)
class Snapshot:
    """What a swarm's records held when the report read them, each list oldest first."""

    swarm: str
    taken_ts: float
    hypotheses: list[Hypothesis] = field(default_factory=list)
    # Requests still waiting in the work queue; a request a worker took is removed from the queue
    # and survives only as its result's lineage (request id, method, params, seed, agent).
    queued_requests: list[ExperimentRequest] = field(default_factory=list)
    results: list[ExperimentResult] = field(default_factory=list)
    scores: list[ScoreEvent] = field(default_factory=list)
    verdicts: list[Verdict] = field(default_factory=list)
    flags: list[Flag] = field(default_factory=list)
    forum: list[ForumPost] = field(default_factory=list)
    usage: list[UsageReport] = field(default_factory=list)
    budget: list[BudgetEvent] = field(default_factory=list)
    presence: list[Presence] = field(default_factory=list)
    tasks: dict[str, TaskInfo] = field(default_factory=dict)
    baselines: dict[str, Baseline] = field(default_factory=dict)
    boards: dict[str, Leaderboard] = field(default_factory=dict)


async def collect(bus: Bus, swarm: str, *, timeout_s: float = 60.0) -> Snapshot:
    """Read every stored record of ``swarm`` (operator rights).

    Args:
        bus: a connected Bus with the admin's (or the scorer's) rights.
        swarm: the swarm to read.
        timeout_s: how long each stream may take to replay.

    Raises:
        ReportError: the swarm does not exist, or a stream cannot be read (rights, timeouts).
    """
    try:
        if not await swarm_exists(bus, swarm):
            raise ReportError(f"swarm {swarm!r} has no streams on this server")
        snap = Snapshot(swarm=swarm, taken_ts=time.time())
        snap.hypotheses = await _read(bus, swarm, Kind.HYPOTHESES, Hypothesis, timeout_s)
        snap.results = await _read(bus, swarm, Kind.RESULTS, ExperimentResult, timeout_s)
        snap.scores = await _read(bus, swarm, Kind.SCORES, ScoreEvent, timeout_s)
        snap.verdicts = await _read(bus, swarm, Kind.VERDICTS, Verdict, timeout_s)
        snap.flags = await _read(bus, swarm, Kind.FLAGS, Flag, timeout_s)
        snap.forum = await _read(bus, swarm, Kind.FORUM, ForumPost, timeout_s)
        snap.usage = await _read(bus, swarm, Kind.USAGE, UsageReport, timeout_s)
        snap.budget = await _read(bus, swarm, Kind.BUDGET, BudgetEvent, timeout_s)
        snap.queued_requests = await _queued_requests(bus, swarm)
        snap.presence = list((await _bucket(bus, streams.presence_bucket(swarm), Presence)).values())
        snap.tasks = await _bucket(bus, streams.tasks_bucket(swarm), TaskInfo)
        snap.baselines = await _bucket(bus, streams.baselines_bucket(swarm), Baseline)
        snap.boards = await _bucket(bus, streams.leaderboard_bucket(swarm), Leaderboard)
    except (BusError, nats.errors.Error) as e:
        raise ReportError(f"cannot read swarm {swarm!r} (operator rights needed): {e}") from e
    return snap


async def _read(bus: Bus, swarm: str, kind: Kind, expect: type[M], timeout_s: float) -> list[M]:
    # Another kind published on the same stream (a forged score is still a score) is skipped by
    # the typed replay; what remains is exactly the stream's messages of this kind.
    return await replay(bus, swarm, kind, expect, timeout_s=timeout_s)


async def _queued_requests(bus: Bus, swarm: str) -> list[ExperimentRequest]:
    """The requests waiting in the work queue, by direct reads that take nothing from it.

    A work-queue stream admits no consumer but the workers' one, so ``replay`` cannot read it.
    """
    out: list[ExperimentRequest] = []
    async for stored in peek_stored(bus, swarm, Kind.REQUESTS):
        if len(out) >= MAX_QUEUED_REQUESTS:
            break
        try:
            out.append(decode_as(stored.data or b"", ExperimentRequest))
        except SchemaError:
            continue  # the workers' consumer dead-letters it
    return out


async def _bucket(bus: Bus, bucket: str, expect: type[M]) -> dict[str, M]:
    try:
        kv = await bus.kv(bucket)
    except nats.js.errors.BucketNotFoundError:
        return {}
    return {k: v for k, v in (await kv.items()).items() if isinstance(v, expect)}
