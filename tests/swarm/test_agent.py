"""The agent runtime against a real nats-server: feeds, presence, scores, failures and restarts."""

from __future__ import annotations

import asyncio
import textwrap
import uuid
from pathlib import Path

import pytest

from bus import Bus, Kind, StartAt, streams, subjects
from schemas import (
    ArtifactRef,
    BudgetQuery,
    BudgetStatus,
    DeadLetter,
    ExperimentRequest,
    ForumPost,
    Hypothesis,
    Leaderboard,
    Message,
    Presence,
    ScoreEvent,
    Standing,
    TaskInfo,
    decode_as,
)
from swarm import AgentConfig, AgentError, ScoreTimeoutError, load_role
from tests.helpers import Collector, eventually
from tests.swarm.helpers import consumer_names, forum, score
from tests.swarm.recording import Recorder

LISTENER = '''
from schemas import ForumPost, ScoreEvent
from tests.swarm.recording import Recorder


class Listener(Recorder):
    """Hears scores and forum posts."""

    role = "listener"

    async def on_score(self, score: ScoreEvent) -> None:
        self.scores.add(score)

    async def on_forum(self, post: ForumPost) -> None:
        self.posts.add(post)
'''


class ForumReader(Recorder):
    async def on_forum(self, post: ForumPost) -> None:
        if post.body == "boom":
            raise ValueError("cannot digest this")
        if post.body.startswith("slow"):
            await asyncio.sleep(0.5)
        self.posts.add(post)


class ScoreReader(Recorder):
    async def on_score(self, score: ScoreEvent) -> None:
        self.scores.add(score)


async def dead_letters(bus: Bus, swarm: str, consumer: str) -> Collector[DeadLetter]:
    got: Collector[DeadLetter] = Collector()
    await bus.subscribe(swarm, Kind.DLQ, got, expect=DeadLetter, key=consumer, start=StartAt.all())
    return got


async def test_a_role_from_a_module_file_joins_and_hears_what_follows(
    bus: Bus, swarm: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    module = f"listener_{uuid.uuid4().hex[:8]}"
    (tmp_path / f"{module}.py").write_text(textwrap.dedent(LISTENER))
    monkeypatch.syspath_prepend(str(tmp_path))
    role = load_role(f"{module}:Listener")
    assert issubclass(role, Recorder) and role.role == "listener"

    await bus.publish(score(swarm, "before"))
    await bus.publish(forum(swarm, "before"))
    async with role(bus, swarm, name="l1") as agent:
        await bus.publish(score(swarm, "after"))
        await bus.publish(forum(swarm, "after"))
        [heard_score] = await agent.scores.wait_for(1)
        [heard_post] = await agent.posts.wait_for(1)
        assert heard_score.lineage.request_id == "after" and heard_post.body == "after"
        # Only the handlers it overrides get a consumer.
        assert await consumer_names(bus, swarm, Kind.SCORES) == {"listener_l1_scores"}
        assert await consumer_names(bus, swarm, Kind.FORUM) == {"listener_l1_forum"}
        assert await consumer_names(bus, swarm, Kind.HYPOTHESES) == set()


async def test_presence_is_announced_then_removed_on_stop(bus: Bus, swarm: str) -> None:
    presence = await bus.kv(streams.presence_bucket(swarm))
    agent = ForumReader(bus, swarm, name="p1")
    async with agent:
        entry = await presence.get("p1")
        assert isinstance(entry, Presence)
        assert entry.role == "recorder" and entry.state == "ready"
        assert {"agent", "forum"} <= set(entry.capabilities) and entry.info["budget"] == "ok"
    assert await presence.get("p1") is None


async def test_await_score_resolves_on_its_own_request_only(bus: Bus, swarm: str) -> None:
    async with Recorder(bus, swarm, name="asker") as agent:
        first = await agent.request_experiment("tiny", "naive", {"k": 1}, seed=2)
        second = await agent.request_experiment("tiny", "knn", hypothesis="h-1")
        waiting = asyncio.create_task(agent.await_score(first, timeout=10))
        await bus.publish(score(swarm, "someone-elses", pgr=0.9))
        await bus.publish(score(swarm, second, agent="asker", status="rejected", reason="degenerate"))
        await bus.publish(score(swarm, first, agent="asker", pgr=0.42))
        assert (await waiting).pgr == 0.42
        # The rejection arrived before anyone awaited it: it was kept.
        rejected = await agent.await_score(second, timeout=1)
        assert rejected.status == "rejected" and rejected.reason == "degenerate"
        with pytest.raises(ScoreTimeoutError, match="no score for request never"):
            await agent.await_score("never", timeout=0.2)
        assert agent.usage.requests == 2
    stream = streams.stream_name(swarm, Kind.REQUESTS)
    sent = [decode_as((await bus.js.get_msg(stream, seq)).data or b"", ExperimentRequest) for seq in (1, 2)]
    assert [(r.id, r.sender, r.params, r.seed) for r in sent] == [
        (first, "asker", {"k": 1}, 2),
        (second, "asker", {}, 0),
    ]
    assert sent[1].lineage.hypothesis_id == "h-1"


async def test_a_failing_handler_is_dead_lettered_and_the_agent_goes_on(bus: Bus, swarm: str) -> None:
    dlq = await dead_letters(bus, swarm, "recorder_f1_forum")
    async with ForumReader(bus, swarm, name="f1") as agent:
        await bus.publish(forum(swarm, "boom"))
        await bus.publish(forum(swarm, "fine"))
        [letter] = await dlq.wait_for(1)
        assert letter.reason == "ValueError: cannot digest this" and b'"boom"' in letter.original
        assert [p.body for p in await agent.posts.wait_for(1)] == ["fine"]
        await eventually(lambda: agent.handler_errors == 1)


async def test_a_malformed_score_is_dead_lettered_and_the_agent_goes_on(bus: Bus, swarm: str) -> None:
    dlq = await dead_letters(bus, swarm, "recorder_m1_scores")
    async with ScoreReader(bus, swarm, name="m1") as agent:
        await bus.js.publish(
            subjects.subject(swarm, Kind.SCORES, "tiny"), b'{"kind": "score", "pgr": "high"}'
        )
        await bus.publish(score(swarm, "good"))
        [letter] = await dlq.wait_for(1)
        assert letter.error_type == "SchemaError"
        assert [s.lineage.request_id for s in await agent.scores.wait_for(1)] == ["good"]


async def test_a_restarted_agent_resumes_where_it_stopped(bus: Bus, swarm: str) -> None:
    async with ForumReader(bus, swarm, name="r1") as first:
        await bus.publish(forum(swarm, "one"))
        await bus.publish(forum(swarm, "slow two"))
        await first.posts.wait_for(1)
        await eventually(lambda: first.in_flight == 1)
    # The slow handler was in flight at stop: it finished and was acknowledged.
    assert [p.body for p in first.posts.items] == ["one", "slow two"]
    for body in ("three", "four"):
        await bus.publish(forum(swarm, body))
    async with ForumReader(bus, swarm, name="r1") as second:
        await bus.publish(forum(swarm, "five"))
        await second.posts.wait_for(3)
        await eventually(lambda: _settled(bus, swarm, "recorder_r1_forum"))
        assert sorted(p.body for p in second.posts.items) == ["five", "four", "three"]


async def test_a_handler_cut_short_at_stop_is_redelivered_to_the_next_run(bus: Bus, swarm: str) -> None:
    class Stuck(Recorder):
        async def on_forum(self, post: ForumPost) -> None:
            self.posts.add(post)
            await asyncio.Event().wait()

    stuck = Stuck(bus, swarm, name="s1")
    async with stuck:
        await bus.publish(forum(swarm, "endless"))
        await stuck.posts.wait_for(1)
        await stuck.close(grace_s=0.2)
    async with ForumReader(bus, swarm, name="s1") as again:
        assert [p.body for p in await again.posts.wait_for(1)] == ["endless"]


async def _settled(bus: Bus, swarm: str, durable: str) -> bool:
    """The consumer has nothing left to deliver and nothing unacknowledged."""
    info = await bus.js.consumer_info(streams.stream_name(swarm, Kind.FORUM), durable)
    return (info.num_pending, info.num_ack_pending) == (0, 0)


async def test_handlers_run_concurrently_up_to_the_limit(bus: Bus, swarm: str) -> None:
    running, peak = 0, 0

    class Slow(Recorder):
        async def on_forum(self, post: ForumPost) -> None:
            nonlocal running, peak
            running += 1
            peak = max(peak, running)
            await asyncio.sleep(0.3)
            running -= 1
            self.posts.add(post)

    async with Slow(bus, swarm, name="c1", config=AgentConfig(max_concurrency=3)) as agent:
        for i in range(6):
            await bus.publish(forum(swarm, f"p{i}"))
        await agent.posts.wait_for(6)
    assert peak == 3


async def test_posts_replies_and_hypotheses(bus: Bus, swarm: str) -> None:
    class Chatty(Recorder):
        async def on_forum(self, post: ForumPost) -> None:
            self.posts.add(post)

    async with Chatty(bus, swarm, name="chatty") as agent:
        other = forum(swarm, "a question", title="Why?")
        await bus.publish(other)
        await agent.posts.wait_for(1)
        reply = await agent.post("because", reply_to=other, evidence=["s1"])
        nested = await agent.post("and more", reply_to=reply)
        hyp = await agent.hypothesize("ensembles help", task="tiny", methods=["ens"])
        await bus.publish(forum(swarm, "thanks"))
        await agent.posts.wait_for(2)
        assert [p.body for p in agent.posts.items] == ["a question", "thanks"]  # not its own posts
    assert (reply.thread_id, reply.reply_to, reply.evidence) == (other.id, other.id, ["s1"])
    assert (nested.thread, nested.reply_to) == (other.id, reply.id)
    assert agent.usage.posts == 2 and agent.usage.hypotheses == 1
    hyps: Collector[Hypothesis] = Collector()
    await bus.subscribe(swarm, Kind.HYPOTHESES, hyps, expect=Hypothesis, start=StartAt.all())
    [stored] = await hyps.wait_for(1)
    assert stored.id == hyp.id and stored.sender == "chatty" and stored.methods == ["ens"]


async def test_leaderboard_tasks_and_budget_read_the_swarm(bus: Bus, swarm: str) -> None:
    board = Leaderboard(
        swarm=swarm,
        sender="scorer",
        task="tiny",
        standings=[Standing(config_key="c1", method="naive", dev_pgr=0.3)],
        results=1,
    )
    await (await bus.kv(streams.leaderboard_bucket(swarm))).put("tiny", board)
    view = ArtifactRef(name="v", sha256="0" * 64, size=1)
    info = TaskInfo(
        swarm=swarm,
        sender="op",
        task="tiny",
        task_kind="binary",
        label_names=["n", "y"],
        view=view,
        view_digest="d",
    )
    await (await bus.kv(streams.tasks_bucket(swarm))).put("tiny", info)

    async def answer(query: Message) -> Message:
        assert isinstance(query, BudgetQuery)
        return BudgetStatus(
            swarm=swarm,
            sender="scorer",
            agent=query.agent or query.sender,
            dev_queries_used=3,
            dev_queries_limit=10,
            swarm_dev_queries_used=50,
            swarm_dev_queries_limit=52,
        )

    await bus.serve(subjects.rpc(swarm, "budget"), answer, swarm=swarm, name="scorer")
    async with Recorder(bus, swarm, name="reader") as agent:
        assert await agent.leaderboard("tiny") == board
        assert await agent.leaderboard("other") is None
        assert [t.task for t in await agent.tasks()] == ["tiny"]
        status = await agent.budget()
        assert status.agent == "reader" and status.left == 2


async def test_two_agents_cannot_share_a_name(bus: Bus, swarm: str) -> None:
    async with ForumReader(bus, swarm, name="twin"):
        with pytest.raises(AgentError, match="is another recorder agent named twin running"):
            async with ForumReader(bus, swarm, name="twin"):
                pass


async def test_an_agent_needs_its_swarm(bus: Bus, swarm: str) -> None:
    with pytest.raises(AgentError, match="does not exist on this server"):
        async with Recorder(bus, f"{swarm}x", name="lost"):
            pass
