"""The base every agent role stands on: lifecycle, presence, typed event handlers and bus helpers.

Delivery. Each handler a role overrides (``on_score``, ``on_forum``, ``on_hypothesis``,
``on_budget``, ``on_flag``) gets a durable push consumer named ``<role>_<name>_<purpose>``: a new
agent sees what is published after it first joined, and one restarted under the same name resumes
where it stopped. Handlers run concurrently (``max_concurrency`` at once across feeds, so the
stream's order is not kept), and a message is acknowledged when its handler returns: a graceful
stop lets handlers in flight finish (and cancels them after the grace period; those, and what was
not started, are redelivered to the next run), and a killed agent's unfinished messages come back
too (so a handler may, rarely, see a message twice). A handler that raises is logged and
dead-lettered at once (a handler may raise ``HandlerError(retryable=True)`` to be redelivered with
backoff instead); a payload that does not decode is dead-lettered by the bus. Either way the agent
goes on.

Budgets (see ``swarm.budget`` for where levels come from). The agent replays the swarm's budget
stream at start, so it knows the level in force before ``run`` starts, and follows it after. Under
"throttle", ``request_experiment`` spaces requests ``throttle_interval_s`` apart; under "stop" it
raises BudgetExhaustedError and ``run`` is cancelled (and started again if the level is lifted).
Handlers keep running: a role that spends in a handler calls ``check_budget()`` first.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import socket
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, ClassVar, Generic, Literal, Self, cast

import nats.js.errors

from bus import Bus, Delivery, Kind, streams, subjects
from bus.consume import Handler
from bus.presence import Heartbeat, State
from bus.store import TypedKV
from schemas import (
    ArtifactRef,
    BudgetEvent,
    BudgetQuery,
    BudgetStatus,
    Envelope,
    ExperimentRequest,
    Flag,
    ForumPost,
    Hypothesis,
    Leaderboard,
    Lineage,
    ScoreEvent,
    TaskInfo,
)
from swarm.budget import BudgetGate, Level, Limit, Usage
from swarm.config import AgentConfig, C
from swarm.errors import AgentError
from swarm.feeds import FEEDS, SCORES, Feed, Feeds
from swarm.pool import HandlerSlots
from swarm.scores import ScoreWaiters

log = logging.getLogger("aar.agent")

_BUDGET_CATCH_UP_S = 5.0


def default_name(role: str) -> str:
    """``<role>-<short host name>``: stable across restarts on one machine, so a restart resumes."""
    host = re.sub(r"[^A-Za-z0-9_-]", "-", socket.gethostname().split(".")[0])[:24] or "host"
    return f"{role}-{host}"


class Agent(Generic[C]):
    """One agent of a swarm; ``async with Role(bus, swarm, name=...) as agent:`` runs it.

    A role subclasses this, sets ``role`` (and ``config_type`` for settings of its own), and
    overrides the handlers it needs, ``setup`` for its state and ``run`` for periodic work.
    Handlers run as tasks, at most ``config.max_concurrency`` at once; they must not block the
    loop (use ``asyncio.to_thread``). Construct it inside the event loop.

    Attributes:
        role: the role's name, a subject token (``summariser``).
        config_type: the role's config Struct, a subclass of AgentConfig.
        capabilities: tags shown in presence.
        hear_own_messages: whether handlers also get what this agent itself published (off, so a
            role that answers forum posts does not answer itself forever).
        usage: what this agent has spent (requests, posts, hypotheses, tokens, usd).
        crashed: resolved with the exception when ``run`` crashes.
    """

    role: ClassVar[str]
    config_type: ClassVar[type[AgentConfig]] = AgentConfig
    capabilities: ClassVar[tuple[str, ...]] = ()
    hear_own_messages: ClassVar[bool] = False

    def __init__(self, bus: Bus, swarm: str, *, name: str | None = None, config: C | None = None) -> None:
        role = getattr(type(self), "role", None)
        if not isinstance(role, str):
            raise TypeError(f"{type(self).__name__} must set the class attribute `role`")
        if config is not None and not isinstance(config, self.config_type):
            raise TypeError(f"{type(self).__name__} takes a {self.config_type.__name__}, not {config!r}")
        self.bus, self.swarm = bus, subjects.token(swarm)
        self.name = subjects.token(name or default_name(subjects.token(role)))
        self.config: C = config if config is not None else cast(C, self.config_type())
        self._feeds = Feeds(bus, self.swarm, role, self.name, self.config.max_concurrency)
        # Dead letters name their consumer in a token of at most 64 characters.
        if max(len(self._feeds.durable(f)) for f in FEEDS) > 64:
            raise AgentError(f"agent name {self.name!r} is too long for role {role!r}; use a shorter --name")
        self._gate = BudgetGate(self.name, self.config, self._budget_changed)
        self.usage: Usage = self._gate.usage
        self._slots = HandlerSlots(self.config.max_concurrency)
        self._scores = ScoreWaiters()
        self._heartbeat = Heartbeat(bus, self.swarm, name=self.name, role=role, describe=self._presence)
        self._beats: set[asyncio.Task[None]] = set()
        self._buckets: dict[str, TypedKV] = {}
        self._run_task: asyncio.Task[None] | None = None
        self._run_stopped_by_budget = False
        self._state: Literal["new", "running", "closing", "closed"] = "new"
        self.crashed: asyncio.Future[BaseException] = asyncio.get_running_loop().create_future()

    # -- what a role overrides -----------------------------------------------------------

    async def setup(self) -> None:
        """Called once at start, before any handler or ``run``: set up the role's state here."""

    async def run(self) -> None:
        """The role's own work (a loop, usually); cancelled on stop and on a "stop" budget level.

        Returning ends only this loop: the handlers go on. Raising is logged and resolves
        ``crashed`` (``aar agent run`` then stops the agent and exits 1).
        """

    async def on_score(self, score: ScoreEvent) -> None:
        """Every score the scorer publishes (every agent's; ``score.agent`` says whose)."""

    async def on_forum(self, post: ForumPost) -> None:
        """Every forum post."""

    async def on_hypothesis(self, hypothesis: Hypothesis) -> None:
        """Every hypothesis an agent publishes."""

    async def on_budget(self, event: BudgetEvent) -> None:
        """Every budget event in the swarm; when it concerns this agent, it is obeyed already."""

    async def on_flag(self, flag: Flag) -> None:
        """Every integrity flag."""

    # -- lifecycle -----------------------------------------------------------------------

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    async def start(self) -> None:
        """Learn the budget level in force, start the feeds, announce presence, start ``run``.

        Raises:
            AgentError: the swarm is missing, or another agent of this role runs under this name.
            BusError: the bus failed.
        """
        if self._state != "new":
            raise AgentError(f"agent {self.name} was already started")
        self._state = "running"
        try:
            await self.setup()
            await self._watch_budget()
            for feed in FEEDS:
                if _overrides(type(self), feed.method):
                    await self._start_feed(feed)
            await self._heartbeat.start()
        except BaseException:
            await self.close(grace_s=1.0)
            raise
        self._start_run()
        log.info(
            "agent started",
            extra={"agent": self.name, "role": self.role, "swarm": self.swarm, "feeds": self._feeds.started},
        )

    async def close(self, grace_s: float = 30.0) -> None:
        """Stop ``run``, let handlers in flight finish (up to ``grace_s``), then leave. Idempotent."""
        if self._state in ("closing", "closed"):
            return
        self._state = "closing"
        self._gate.close()
        self._slots.stop_intake()
        with contextlib.suppress(Exception):
            await self._heartbeat.beat()  # says "draining"
        if (task := self._run_task) is not None:
            task.cancel()
            await asyncio.wait({task})
        await self._feeds.close(grace_s)
        self._scores.fail_all(f"agent {self.name} stopped before the score arrived")
        await self._heartbeat.close()
        self._state = "closed"
        log.info(
            "agent stopped",
            extra={"agent": self.name, "handled": self._slots.handled, "failed": self._slots.failed},
        )

    @property
    def running(self) -> bool:
        return self._state == "running"

    # -- publishing ------------------------------------------------------------------------

    async def post(
        self,
        body: str,
        *,
        title: str = "",
        reply_to: ForumPost | str | None = None,
        thread_id: str | None = None,
        tags: Sequence[str] = (),
        evidence: Sequence[str] = (),
    ) -> ForumPost:
        """Publish a forum post and return it.

        Args:
            reply_to: the post answered. Given a ForumPost, the reply joins its thread; given an id
                alone, that id is taken as the thread's first post unless ``thread_id`` says otherwise.
            evidence: ids of messages (scores, results, posts) the post rests on.
        """
        parent = reply_to.id if isinstance(reply_to, ForumPost) else reply_to
        if isinstance(reply_to, ForumPost):
            thread_id = thread_id or reply_to.thread
        elif reply_to is not None:
            thread_id = thread_id or reply_to
        post = ForumPost(
            swarm=self.swarm,
            sender=self.name,
            title=title,
            body=body,
            thread_id=thread_id,
            reply_to=parent,
            tags=list(tags),
            evidence=list(evidence),
            lineage=Lineage(post_id=parent),
        )
        await self.bus.publish(post)
        self.usage.posts += 1
        return post

    async def hypothesize(
        self,
        title: str,
        text: str = "",
        *,
        task: str | None = None,
        methods: Sequence[str] = (),
        tags: Sequence[str] = (),
    ) -> Hypothesis:
        """Publish a hypothesis and return it (pass it to ``request_experiment`` to test it)."""
        hyp = Hypothesis(
            swarm=self.swarm,
            sender=self.name,
            title=title,
            text=text,
            task=task,
            methods=list(methods),
            tags=list(tags),
        )
        await self.bus.publish(hyp)
        self.usage.hypotheses += 1
        return hyp

    async def request_experiment(
        self,
        task: str,
        method: str,
        params: dict[str, Any] | None = None,
        seed: int = 0,
        hypothesis: Hypothesis | str | None = None,
        *,
        code: ArtifactRef | None = None,
        weak_model: str | None = None,
        strong_model: str | None = None,
        priority: int = 5,
        max_gpu_seconds: float | None = None,
    ) -> str:
        """Queue one experiment for the workers and return the request's id (for ``await_score``).

        Under a "throttle" budget level this first waits until ``throttle_interval_s`` has passed
        since the previous request.

        Raises:
            BudgetExhaustedError: the budget level is "stop" (or became so while waiting).
            AgentError: the agent is stopping.
            PublishError: the request could not be stored.
        """
        await self._gate.admit_request()
        # The score feed must exist before the request does, or a fast score could slip past it.
        await self._start_feed(SCORES)
        req = ExperimentRequest(
            swarm=self.swarm,
            sender=self.name,
            task=task,
            method=method,
            params=dict(params or {}),
            seed=seed,
            code=code,
            weak_model=weak_model,
            strong_model=strong_model,
            priority=priority,
            max_gpu_seconds=max_gpu_seconds,
            lineage=Lineage(
                hypothesis_id=hypothesis.id if isinstance(hypothesis, Hypothesis) else hypothesis
            ),
        )
        self._scores.expect(req.id)
        try:
            await self.bus.publish(req)
        except BaseException:
            self._scores.forget(req.id)
            raise
        self.usage.requests += 1
        self._gate.account()
        log.info("experiment requested", extra={"agent": self.name, "request": req.id, "task": task})
        return req.id

    async def await_score(self, request_id: str, timeout: float = 900.0) -> ScoreEvent:
        """The scorer's answer to a request (``status`` "rejected" and a ``reason`` when refused).

        A score that arrives between ``request_experiment`` and this call is kept for it.

        Raises:
            ScoreTimeoutError: no score within ``timeout`` seconds (a TimeoutError).
            AgentError: the agent is not running, or stopped first.
        """
        if not self.running:
            raise AgentError(f"agent {self.name} is not running")
        await self._start_feed(SCORES)
        return await self._scores.wait(request_id, timeout)

    # -- reading the swarm's state -----------------------------------------------------------

    async def leaderboard(self, task: str) -> Leaderboard | None:
        """The task's leaderboard as the scorer keeps it, or None when it has none yet."""
        value = await (await self._kv(streams.leaderboard_bucket(self.swarm))).get(subjects.token(task))
        return value if isinstance(value, Leaderboard) else None

    async def leaderboards(self) -> dict[str, Leaderboard]:
        """Every task's leaderboard, by task."""
        items = await (await self._kv(streams.leaderboard_bucket(self.swarm))).items()
        return {k: v for k, v in sorted(items.items()) if isinstance(v, Leaderboard)}

    async def tasks(self) -> list[TaskInfo]:
        """The tasks prepared in this swarm, by name."""
        items = await (await self._kv(streams.tasks_bucket(self.swarm))).items()
        return [v for _, v in sorted(items.items()) if isinstance(v, TaskInfo)]

    async def budget(self, timeout: float = 5.0) -> BudgetStatus:
        """Ask the scorer how many dev queries this agent (and the swarm) has left.

        Raises:
            BusError: nobody answers the budget service in time.
            RemoteError: the scorer refused the query.
            AgentError: the answer was not a BudgetStatus.
        """
        query = BudgetQuery(swarm=self.swarm, sender=self.name, agent=self.name)
        answer = await self.bus.request(subjects.rpc(self.swarm, "budget"), query, timeout_s=timeout)
        if not isinstance(answer, BudgetStatus):
            raise AgentError(f"the budget service answered with a {type(answer).__name__}")
        return answer

    # -- budget, for roles -------------------------------------------------------------------

    def record_usage(self, *, tokens: int = 0, usd: float = 0.0) -> None:
        """Add what the role spent (model tokens, dollars) to this agent's counters and caps."""
        self.usage.tokens += tokens
        self.usage.usd += usd
        self._gate.account()

    def check_budget(self) -> None:
        """Raise BudgetExhaustedError when the level in force is "stop" (call before spending)."""
        self._gate.check()

    @property
    def budget_level(self) -> Level:
        """The budget level in force: ok, info, warn, throttle or stop."""
        return self._gate.level

    @property
    def budget_limit(self) -> Limit | None:
        """The limit that sets ``budget_level``, with its figures."""
        return self._gate.binding

    @property
    def in_flight(self) -> int:
        """Handlers running now."""
        return self._slots.in_flight

    @property
    def handled(self) -> int:
        """Handler calls that returned."""
        return self._slots.handled

    @property
    def handler_errors(self) -> int:
        """Handler calls that raised (their messages were dead-lettered or redelivered)."""
        return self._slots.failed

    # -- internals ---------------------------------------------------------------------------

    async def _start_feed(self, feed: Feed) -> None:
        if self.running:
            await self._feeds.start(feed, self._receiver(feed))

    def _receiver(self, feed: Feed) -> Handler[Envelope]:
        handles = _overrides(type(self), feed.method)

        async def receive(msg: Envelope, delivery: Delivery) -> None:
            # Acknowledged when this returns; dead-lettered or redelivered when it raises.
            if isinstance(msg, ScoreEvent):
                self._scores.resolve(msg)
            elif isinstance(msg, BudgetEvent):
                self._gate.apply(msg, delivery.stream_seq)
            if not handles or (msg.sender == self.name and not self.hear_own_messages):
                return
            handler: Callable[[Any], Awaitable[None]] = getattr(self, feed.method)
            await self._slots.run(msg.id, lambda: handler(msg), delivery)

        return receive

    async def _watch_budget(self) -> None:
        # The budget stream is small (thresholds crossed): replaying it at each start is how a
        # restarted agent learns a "stop" it was told before.
        stream = streams.stream_name(self.swarm, Kind.BUDGET)
        try:
            info = await self.bus.js.stream_info(stream)
        except nats.js.errors.NotFoundError as e:
            raise AgentError(
                f"swarm {self.swarm!r} does not exist on this server (no stream {stream}): "
                "create it first (`aar server` / `aar up`)"
            ) from e
        last = info.state.last_seq if info.state.messages else 0
        caught_up = asyncio.Event()

        async def watch(event: BudgetEvent, delivery: Delivery) -> None:
            self._gate.apply(event, delivery.stream_seq)
            if (delivery.stream_seq or 0) >= last:
                caught_up.set()

        await self._feeds.watch_budget(watch)
        if last:
            try:
                await asyncio.wait_for(caught_up.wait(), _BUDGET_CATCH_UP_S)
            except TimeoutError:
                log.warning("budget history not replayed in time", extra={"agent": self.name})

    def _budget_changed(self, before: Level, after: Level) -> None:
        self._beat_soon()
        if after == "stop" and self._run_task is not None and not self._run_task.done():
            self._run_stopped_by_budget = True
            self._run_task.cancel()
        elif before == "stop" and self._run_stopped_by_budget:
            self._start_run()

    def _start_run(self) -> None:
        if not self.running or self._gate.level == "stop":
            self._run_stopped_by_budget = self._gate.level == "stop"
            return
        self._run_stopped_by_budget = False
        self._run_task = task = asyncio.create_task(self.run(), name=f"agent:{self.name}:run")
        task.add_done_callback(self._run_done)

    def _run_done(self, task: asyncio.Task[None]) -> None:
        if task.cancelled() or (exc := task.exception()) is None:
            return
        log.error("run loop crashed", exc_info=exc, extra={"agent": self.name, "role": self.role})
        if not self.crashed.done():
            self.crashed.set_result(exc)

    async def _kv(self, bucket: str) -> TypedKV:
        if (kv := self._buckets.get(bucket)) is None:
            try:
                kv = self._buckets[bucket] = await self.bus.kv(bucket)
            except nats.js.errors.NotFoundError as e:
                raise AgentError(f"swarm {self.swarm!r} has no bucket {bucket}: is it created?") from e
        return kv

    def _beat_soon(self) -> None:
        if self._state != "running":
            return
        task = asyncio.create_task(self._heartbeat.beat(), name=f"agent:{self.name}:beat")
        self._beats.add(task)
        task.add_done_callback(self._beat_done)

    def _beat_done(self, task: asyncio.Task[None]) -> None:
        self._beats.discard(task)
        if not task.cancelled() and (exc := task.exception()) is not None:
            log.debug("presence update failed", extra={"agent": self.name, "error": repr(exc)})

    def _presence(self) -> dict[str, object]:
        state: State = "busy" if self._slots.in_flight else "ready"
        if self._state == "closing":
            state = "draining"
        u = self.usage
        info = {
            "budget": self._gate.level,
            "requests": str(u.requests),
            "posts": str(u.posts),
            "tokens": str(u.tokens),
            "usd": f"{u.usd:.4f}",
            "handled": str(self._slots.handled),
            "failed": str(self._slots.failed),
            "in_flight": str(self._slots.in_flight),
        }
        capabilities = ["agent", *self.capabilities, *self._feeds.started][:32]
        return {"state": state, "capabilities": capabilities, "info": info}


def _overrides(cls: type[Agent[Any]], method: str) -> bool:
    return getattr(cls, method) is not getattr(Agent, method)
