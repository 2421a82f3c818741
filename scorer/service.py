"""``Scorer``: the service that turns results into score events, verdicts, flags and leaderboards.

It is the only process with the rights to read labels and to publish scores (see bus/auth.py). Its
state (budgets, leaderboards, results seen) is a function of the verdicts it has stored, replayed at
start, so a restart loses nothing and scores nothing twice; a result is acknowledged only after its
score and verdict are stored.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import time
from collections.abc import Callable
from typing import Self

from nats.aio.subscription import Subscription

from bus import (
    Bus,
    BusError,
    CoreSubscription,
    Delivery,
    HandlerError,
    Kind,
    StartAt,
    replay,
    streams,
    subjects,
)
from bus.consume import Consumer
from bus.presence import Heartbeat
from bus.store import TypedKV
from schemas import (
    BudgetEvent,
    BudgetQuery,
    ExperimentResult,
    Flag,
    ForumPost,
    Message,
    Presence,
    SchemaError,
    ScoreEvent,
    UsageReport,
    Verdict,
)
from schemas.artifacts import EVAL_SPLITS, PredictionSet
from scorer import stats
from scorer.checks import Rejection
from scorer.config import ScorerConfig
from scorer.detectors import ProbeTracker
from scorer.judge import Outcome, judge
from scorer.ledger import BestChange, Ledger
from scorer.spending import Crossing, Level, Spending, crossings
from scorer.truth import TaskTruth, TruthStore, TruthUnavailable

log = logging.getLogger("aar.scorer")

BUDGET_SERVICE = "budget"


class Scorer:
    """``async with Scorer(bus, swarm, config)``: scores every result of ``swarm`` until closed."""

    def __init__(self, bus: Bus, swarm: str, config: ScorerConfig | None = None) -> None:
        self.bus, self.swarm = bus, swarm
        self.cfg = config or ScorerConfig()
        self.name = subjects.token(self.cfg.name)
        self.ledger = Ledger(self.cfg)
        self.truths = TruthStore(bus, swarm)
        self.probes = ProbeTracker(self.cfg.detectors)
        self.spending = Spending(self.cfg.spending, swarm)
        self._usage_caught_up = 0
        self.scored = 0
        self._started_ts = 0.0
        self._workers: set[str] = set()
        self._not_workers: dict[str, str] = {}
        self._published_scores: set[str] = set()
        self._in_flight: set[str] = set()
        self._unpublished: dict[str, list[Message]] = {}
        self._dirty: set[str] = set()
        self._leaderboard: TypedKV | None = None
        self._consumers: list[Consumer] = []
        self._tasks: list[asyncio.Task[None]] = []
        self._rpc: Subscription | None = None
        self._score_watch: CoreSubscription[ScoreEvent] | None = None
        self._heartbeat = Heartbeat(bus, swarm, name=self.name, role="scorer", describe=self._describe)

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    # -- lifecycle ----------------------------------------------------------------------------

    async def start(self) -> None:
        """Rebuild state from stored verdicts, then consume results and answer budget queries."""
        self._started_ts = time.time()
        verdicts = await replay(self.bus, self.swarm, Kind.VERDICTS, Verdict)
        for v in verdicts:
            if self.ledger.seen(v.lineage.result_id or ""):
                continue
            self.ledger.apply(v)
            self.spending.add(v.agent or "unknown", "gpu_minutes", v.timings.get("total", 0.0) / 60)
            if v.score_id:
                self._published_scores.add(v.score_id)
        self._dirty.update(self.ledger.tasks())
        self._leaderboard = await self.bus.kv(streams.leaderboard_bucket(self.swarm))
        await self._heartbeat.start()
        # Who is a worker must be known before the first result is judged; the watch keeps it fresh.
        presence = await self.bus.kv(streams.presence_bucket(self.swarm))
        for value in (await presence.items()).values():
            if isinstance(value, Presence):
                self._saw(value)
        self._tasks.append(
            asyncio.create_task(
                self._follow(streams.presence_bucket(self.swarm), self._on_presence), name="scorer:presence"
            )
        )
        self._tasks.append(
            asyncio.create_task(
                self._follow(streams.baselines_bucket(self.swarm), self._on_baselines, history=False),
                name="scorer:baselines",
            )
        )
        self._tasks.append(asyncio.create_task(self._write_leaderboards(), name="scorer:leaderboard"))
        # Live, as a core subscription: every score the scorer publishes comes back here, and a
        # JetStream consumer would cost it more per result than judging does.
        self._score_watch = await self.bus.subscribe_core(
            subjects.kind_filter(self.swarm, Kind.SCORES),
            self._check_score,
            expect=ScoreEvent,
            swarm=self.swarm,
            name=self.name,
        )
        # One ordered pass over the usage stream: what was stored before this start only rebuilds
        # the sums (its budget events went out then); what comes after may cross a level.
        usage_info = await self.bus.js.stream_info(streams.stream_name(self.swarm, Kind.USAGE))
        self._usage_caught_up = usage_info.state.last_seq
        self._consumers.append(
            await self.bus.subscribe(
                self.swarm, Kind.USAGE, self._on_usage, expect=UsageReport, start=StartAt.all()
            )
        )
        self._rpc = await self.bus.serve(
            subjects.rpc(self.swarm, BUDGET_SERVICE), self._answer_budget, swarm=self.swarm, name=self.name
        )
        # Warm before the first result: truths of the tasks known so far, and the interval maths.
        stats.preload()
        preloaded = await self.truths.preload()
        self._consumers.append(
            await self.bus.subscribe(
                self.swarm,
                Kind.RESULTS,
                self._handle,
                expect=ExperimentResult,
                durable=streams.consumer_durable("scorer", self.name, "results"),
                start=StartAt.all(),
                concurrency=self.cfg.concurrency,
            )
        )
        log.info(
            "scorer started",
            extra={
                "swarm": self.swarm,
                "verdicts": len(verdicts),
                "tasks": self.ledger.tasks(),
                "truths": preloaded,
            },
        )

    async def close(self, grace_s: float = 10.0) -> None:
        """Finish the results in hand, write the leaderboards, leave. Safe to call twice."""
        consumers, self._consumers = self._consumers, []
        for c in reversed(consumers):
            await c.close(grace_s)
        for sub in (self._rpc, self._score_watch):
            if sub is not None:
                with contextlib.suppress(Exception):
                    await sub.unsubscribe()
        self._rpc = self._score_watch = None
        tasks, self._tasks = self._tasks, []
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if self._leaderboard is not None:
            with contextlib.suppress(Exception):
                await self._flush_leaderboards()
        await self._heartbeat.close()
        log.info("scorer stopped", extra={"swarm": self.swarm, "scored": self.scored})

    def _describe(self) -> dict[str, object]:
        return {
            "capabilities": ["score", BUDGET_SERVICE],
            "info": {"scored": str(self.scored), "tasks": ",".join(self.ledger.tasks())[:1000]},
        }

    # -- one result ---------------------------------------------------------------------------

    async def _handle(self, result: ExperimentResult, delivery: Delivery) -> None:
        rid = result.id
        if (pending := self._unpublished.get(rid)) is not None:
            await self._publish(rid, pending)
            return
        if self.ledger.seen(rid) or rid in self._in_flight:
            return  # scored already (a redelivery, or a worker that finished a job twice)
        self._in_flight.add(rid)
        try:
            outcome = await self._judge(result, delivery)
            before = self.ledger.dev_used[result.agent or "unknown"], self.ledger.swarm_dev_used
            change = self.ledger.apply(outcome.verdict)  # reserves the budget before any await
            messages: list[Message] = [outcome.score, outcome.verdict, *outcome.flags]
            messages += self._budget_messages(self._dev_query_crossings(result.agent or "unknown", *before))
            minutes = result.timings.get("total", 0.0) / 60
            messages += self._budget_messages(
                self.spending.add(result.agent or "unknown", "gpu_minutes", minutes)
            )
            if change is not None:
                messages.append(self._announce(change))
            self._published_scores.add(outcome.score.id)
            if outcome.verdict.leaderboard:
                self._dirty.add(result.task)
            await self._publish(rid, messages)
            self.scored += 1
        finally:
            self._in_flight.discard(rid)

    async def _judge(self, result: ExperimentResult, delivery: Delivery) -> Outcome:
        truth: TaskTruth | None = None
        preds: dict[str, PredictionSet] | None = None
        rejection = self._check_sender(result, delivery)
        if rejection is None and result.status == "ok":
            try:
                truth = await self.truths.get(result.task)
                preds = await self._fetch(result)
            except TruthUnavailable as e:
                rejection = Rejection(str(e), detector="")
            except Rejection as e:
                rejection = e
        return judge(
            result, preds, truth, self.ledger, self.probes, self.cfg, sender=self.name, rejection=rejection
        )

    async def _fetch(self, result: ExperimentResult) -> dict[str, PredictionSet]:
        given = result.predictions.keys() | result.inline_predictions.keys()
        missing = [s for s in EVAL_SPLITS if s not in given]
        if missing:
            raise Rejection(f"the result has no {' or '.join(missing)} predictions", missing=missing)
        artifacts = await self.bus.artifacts(self.swarm)
        try:
            return await artifacts.prediction_sets(result)
        except BusError as e:
            raise HandlerError(str(e), retryable=True) from e
        except SchemaError as e:
            raise Rejection(e.reason) from e

    def _check_sender(self, result: ExperimentResult, delivery: Delivery) -> Rejection | None:
        """Results come from workers. The server's permissions enforce it; this catches the rest."""
        if result.sender != result.worker:
            return Rejection(
                f"{result.sender} published a result in the name of worker {result.worker}",
                detector="forged_result",
                sender=result.sender,
                worker=result.worker,
            )
        if (role := self._not_workers.get(result.sender)) is not None:
            return Rejection(
                f"{result.sender}, a {role}, published a result",
                detector="forged_result",
                sender=result.sender,
                role=role,
            )
        if result.sender not in self._workers and result.ts >= self._started_ts:
            # A backlog from before this scorer started may come from workers long gone.
            return Rejection(
                f"{result.sender} published a result but is not a worker of this swarm",
                detector="forged_result",
                sender=result.sender,
            )
        return None

    async def _publish(self, rid: str, messages: list[Message]) -> None:
        try:
            await self.bus.publish_many(messages)
        except BusError as e:
            # The ledger already counts it: keep what to say, and say it on the redelivery.
            self._unpublished[rid] = messages
            raise HandlerError(f"could not store the verdict: {e}", retryable=True) from e
        self._unpublished.pop(rid, None)

    def _dev_query_crossings(self, agent: str, agent_before: int, swarm_before: int) -> list[Crossing]:
        shares: tuple[tuple[Level, float], ...] = (("warn", self.cfg.warn_at), ("stop", 1.0))
        used, limit = self.ledger.dev_used[agent], self.cfg.dev_queries_per_agent
        swarm_used, swarm_limit = self.ledger.swarm_dev_used, self.cfg.dev_queries_per_swarm
        return crossings("agent", agent, "dev_queries", agent_before, used, limit, shares) + crossings(
            "swarm", self.swarm, "dev_queries", swarm_before, swarm_used, swarm_limit, shares
        )

    def _budget_messages(self, found: list[Crossing]) -> list[Message]:
        return [
            BudgetEvent(
                id="b"
                + hashlib.sha256(f"{c.scope}:{c.target}:{c.resource}:{c.level}".encode()).hexdigest()[:40],
                swarm=self.swarm,
                sender=self.name,
                scope=c.scope,
                target=c.target,
                resource=c.resource,
                used=round(c.used, 6),
                limit=c.limit,
                level=c.level,
            )
            for c in found
        ]

    async def _on_usage(self, report: UsageReport, delivery: Delivery) -> None:
        tokens = (
            report.input_tokens + report.output_tokens + report.cache_read_tokens + report.cache_write_tokens
        )
        found = self.spending.add(report.agent, "tokens", tokens) + self.spending.add(
            report.agent, "usd", report.usd
        )
        if found and (delivery.stream_seq or 0) > self._usage_caught_up:
            await self.bus.publish_many(self._budget_messages(found))

    def _announce(self, change: BestChange) -> ForumPost:
        best = change.best
        prev = f" (previous best: {change.previous.config_key})" if change.previous else ""
        return ForumPost(
            id=f"b{best.config_key}-{len(best.seeds)}"[:64],
            swarm=self.swarm,
            sender=self.name,
            title=f"New verified best on {change.task}: {best.method}",
            body=(
                f"{best.config_key} ({best.method}, params {best.params}) is the new verified best on "
                f"{change.task} over {len(best.seeds)} seeds; dev PGR {best.dev_pgr}. Its final-split "
                f"interval cleared the previous best{prev}: see the leaderboard's verified column."
            ),
            tags=["leaderboard", "new-best", change.task],
            evidence=best.result_ids[:32],
        )

    # -- watchers and services ----------------------------------------------------------------

    async def _check_score(self, score: ScoreEvent) -> None:
        if score.id in self._published_scores:
            return
        flag = Flag(
            swarm=self.swarm,
            sender=self.name,
            detector="forged_score",
            severity="critical",
            summary=f"a score event the scorer did not publish, sent as {score.sender!r}",
            suspect=score.sender,
            evidence={
                "score_id": score.id,
                "subject": subjects.subject_for(score),
                "task": score.task,
                "pgr": score.pgr,
            },
        )
        log.warning("forged score", extra={"sender": score.sender, "score_id": score.id})
        await self.bus.publish(flag)

    async def _answer_budget(self, msg: Message) -> Message:
        if not isinstance(msg, BudgetQuery):
            raise ValueError(f"the budget service answers budget_query, not {type(msg).__name__}")
        return self.ledger.budget(self.swarm, self.name, msg.agent or msg.sender)

    async def _follow(
        self, bucket: str, on_entry: Callable[[str, Message | None], None], *, history: bool = True
    ) -> None:
        """Apply every change of a bucket; a server restart ends a watch, so start it again."""
        kv = await self.bus.kv(bucket)
        while True:
            try:
                async for key, value in kv.watch(history=history):
                    on_entry(key, value)
            except asyncio.CancelledError:
                raise
            except Exception as e:
                log.debug("watch ended; restarting", extra={"bucket": bucket, "error": repr(e)})
                await asyncio.sleep(0.5)

    def _on_presence(self, _: str, value: Message | None) -> None:
        if isinstance(value, Presence):
            self._saw(value)

    def _saw(self, presence: Presence) -> None:
        if presence.role == "worker":
            self._workers.add(presence.name)
            self._not_workers.pop(presence.name, None)
        elif presence.name not in self._workers:
            self._not_workers[presence.name] = presence.role

    def _on_baselines(self, task: str, _: Message | None) -> None:
        self.truths.forget(task)
        log.info("baselines changed; truth reloads", extra={"task": task})

    async def _write_leaderboards(self) -> None:
        while True:
            await asyncio.sleep(self.cfg.leaderboard_every_s)
            try:
                await self._flush_leaderboards()
            except asyncio.CancelledError:
                raise
            except Exception as e:
                log.warning("leaderboard not written", extra={"error": repr(e)})

    async def _flush_leaderboards(self) -> None:
        assert self._leaderboard is not None
        dirty, self._dirty = self._dirty, set()
        for task in sorted(dirty):
            try:
                await self._leaderboard.put(task, self.ledger.board(task, self.swarm, self.name))
            except Exception:
                self._dirty.add(task)
                raise
