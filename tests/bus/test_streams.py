"""Publish and consume through real JetStream: replay, de-duplication, dead letters, resuming."""

from __future__ import annotations

import asyncio
import time

import pytest

from bus import Bus, Delivery, HandlerError, Kind, PublishError, StartAt
from bus import subjects as s
from bus.streams import stream_name
from schemas import DeadLetter, Envelope, ForumPost, Hypothesis, ScoreEvent
from tests.conftest import TEST_RETRY
from tests.helpers import Collector, eventually


def hyp(swarm: str, title: str) -> Hypothesis:
    return Hypothesis(swarm=swarm, sender="agent-1", title=title)


async def stored(bus: Bus, swarm: str, kind: Kind) -> int:
    return (await bus.js.stream_info(stream_name(swarm, kind))).state.messages


async def test_published_messages_reach_a_typed_subscriber(bus: Bus, swarm: str) -> None:
    got: Collector[Hypothesis] = Collector()
    await bus.subscribe(swarm, Kind.HYPOTHESES, got, expect=Hypothesis)
    sent = [hyp(swarm, f"h{i}") for i in range(20)]
    for msg in sent:
        await bus.publish(msg)
    assert await got.wait_for(20) == sent


async def test_replay_from_a_time_and_from_a_sequence(bus: Bus, swarm: str) -> None:
    for i in range(3):
        await bus.publish(hyp(swarm, f"old{i}"))
    await asyncio.sleep(0.05)
    cut = time.time()
    await asyncio.sleep(0.05)
    for i in range(2):
        await bus.publish(hyp(swarm, f"new{i}"))

    since: Collector[Hypothesis] = Collector()
    await bus.subscribe(swarm, Kind.HYPOTHESES, since, expect=Hypothesis, start=StartAt.at_time(cut))
    assert [m.title for m in await since.wait_for(2)] == ["new0", "new1"]

    from_seq: Collector[Hypothesis] = Collector()
    await bus.subscribe(swarm, Kind.HYPOTHESES, from_seq, expect=Hypothesis, start=StartAt.at_seq(3))
    assert [m.title for m in await from_seq.wait_for(3)] == ["old2", "new0", "new1"]

    everything: Collector[Hypothesis] = Collector()
    await bus.subscribe(swarm, Kind.HYPOTHESES, everything, expect=Hypothesis, start=StartAt.all())
    assert len(await everything.wait_for(5)) == 5


async def test_a_retried_publish_is_stored_once(bus: Bus, swarm: str) -> None:
    msg = hyp(swarm, "once")
    first = await bus.publish(msg)
    again = await bus.publish(msg)
    assert again.duplicate and again.seq == first.seq
    await bus.publish_many([msg, msg, hyp(swarm, "twice")])
    assert await stored(bus, swarm, Kind.HYPOTHESES) == 2


async def test_publish_many_pipelines_and_keeps_order(bus: Bus, swarm: str) -> None:
    msgs = [hyp(swarm, f"p{i}") for i in range(500)]
    acks = await bus.publish_many(msgs)
    assert [a.seq for a in acks] == list(range(1, 501))


async def test_subscribers_only_see_their_swarm(bus: Bus, swarm: str) -> None:
    other = f"{swarm}x"
    from bus import ensure_swarm

    await ensure_swarm(bus, other)
    mine: Collector[Hypothesis] = Collector()
    await bus.subscribe(swarm, Kind.HYPOTHESES, mine, expect=Hypothesis, start=StartAt.all())
    await bus.publish(hyp(other, "theirs"))
    await bus.publish(hyp(swarm, "mine"))
    assert [m.title for m in await mine.wait_for(1)] == ["mine"]
    await asyncio.sleep(0.2)
    assert len(mine.messages) == 1


async def test_malformed_input_is_dead_lettered_and_the_consumer_goes_on(bus: Bus, swarm: str) -> None:
    good: Collector[ForumPost] = Collector()
    await bus.subscribe(swarm, Kind.FORUM, good, expect=ForumPost, durable="reader")
    letters: Collector[DeadLetter] = Collector()
    await bus.subscribe(swarm, Kind.DLQ, letters, expect=DeadLetter, start=StartAt.all())

    subject = s.subject(swarm, Kind.FORUM, "t1")
    wrong_kind = hyp(swarm, "a hypothesis on the forum subject")
    from schemas import encode

    await bus.js.publish(subject, b"{not json")
    await bus.js.publish(subject, b'{"kind": "forum_post", "swarm": "x", "sender": "a"}')
    await bus.js.publish(subject, encode(wrong_kind))
    await bus.publish(ForumPost(swarm=swarm, sender="a", body="fine", thread_id="t1"))

    assert [p.body for p in await good.wait_for(1)] == ["fine"]
    dead = await letters.wait_for(3)
    assert [d.original for d in dead] == [
        b"{not json",
        b'{"kind": "forum_post", "swarm": "x", "sender": "a"}',
        encode(wrong_kind),
    ]
    assert "malformed" in dead[0].reason
    assert "missing required field `body`" in dead[1].reason
    assert "expected a 'forum_post' message, got 'hypothesis'" in dead[2].reason
    assert {d.consumer for d in dead} == {"reader"}
    assert all(d.original_subject == subject and d.error_type == "SchemaError" for d in dead)

    async def settled() -> bool:
        # Terminated, not waiting for redelivery: the durable consumer has nothing outstanding.
        info = await bus.js.consumer_info(stream_name(swarm, Kind.FORUM), "reader")
        return bool(info.num_pending == 0 and info.num_ack_pending == 0)

    await eventually(settled)


async def test_failing_handler_is_retried_then_dead_lettered(bus: Bus, swarm: str) -> None:
    calls: list[int] = []

    async def flaky(msg: ScoreEvent, delivery: Delivery) -> None:
        calls.append(delivery.deliveries)
        if msg.method == "always-fails":
            raise RuntimeError("boom")
        if delivery.deliveries < 2:
            raise RuntimeError("transient")

    await bus.subscribe(swarm, Kind.SCORES, flaky, expect=ScoreEvent, durable="scorer-view", retry=TEST_RETRY)
    letters: Collector[DeadLetter] = Collector()
    await bus.subscribe(swarm, Kind.DLQ, letters, expect=DeadLetter, start=StartAt.all())

    def score(method: str) -> ScoreEvent:
        return ScoreEvent(swarm=swarm, sender="scorer", task="rt", method=method, status="accepted")

    await bus.publish(score("recovers"))
    await eventually(lambda: calls == [1, 2])
    await bus.publish(score("always-fails"))
    dead = await letters.wait_for(1)
    assert calls[2:] == [1, 2, 3]  # max_deliver deliveries, then given up
    assert dead[0].reason == "boom" and dead[0].deliveries == 3 and dead[0].error_type == "RuntimeError"


async def test_non_retryable_handler_error_is_dead_lettered_at_once(bus: Bus, swarm: str) -> None:
    calls = 0

    async def refuse(msg: Envelope, delivery: Delivery) -> None:
        nonlocal calls
        calls += 1
        raise HandlerError("unknown task", retryable=False)

    await bus.subscribe(swarm, Kind.HYPOTHESES, refuse, expect=Envelope, durable="strict", retry=TEST_RETRY)
    letters: Collector[DeadLetter] = Collector()
    await bus.subscribe(swarm, Kind.DLQ, letters, expect=DeadLetter, start=StartAt.all())
    await bus.publish(hyp(swarm, "x"))
    dead = await letters.wait_for(1)
    assert dead[0].reason == "unknown task" and calls == 1


async def test_a_durable_consumer_resumes_without_reprocessing(nats_url: str, bus: Bus, swarm: str) -> None:
    from tests.conftest import bus_config

    for i in range(3):
        await bus.publish(hyp(swarm, f"a{i}"))
    async with Bus.connect(bus_config(nats_url, name="first-run")) as first:
        seen: Collector[Hypothesis] = Collector()
        await first.subscribe(
            swarm, Kind.HYPOTHESES, seen, expect=Hypothesis, durable="agent-7", start=StartAt.all()
        )
        await seen.wait_for(3)
    for i in range(2):
        await bus.publish(hyp(swarm, f"b{i}"))
    async with Bus.connect(bus_config(nats_url, name="second-run")) as second:
        resumed: Collector[Hypothesis] = Collector()
        await second.subscribe(
            swarm, Kind.HYPOTHESES, resumed, expect=Hypothesis, durable="agent-7", start=StartAt.all()
        )
        assert [m.title for m in await resumed.wait_for(2)] == ["b0", "b1"]
        await asyncio.sleep(0.3)
        assert len(resumed.messages) == 2


async def test_publishing_where_no_stream_listens_fails_clearly(nats_url: str, swarm: str) -> None:
    from tests.conftest import bus_config

    async with Bus.connect(bus_config(nats_url, publish_timeout_s=0.5)) as bare:
        with pytest.raises(PublishError, match="does a stream cover the subject"):
            await bare.publish(hyp(f"{swarm}-never-created", "lost?"))


async def test_swarms_are_listed_past_one_page_of_streams(bus: Bus, swarm: str) -> None:
    from bus import ensure_swarm, list_swarms
    from bus.admin import swarm_exists

    # 18 swarms hold 270 streams: more than the 256 the server lists per page.
    many = [f"{swarm}p{i}" for i in range(18)]
    for name in many:
        await ensure_swarm(bus, name)
    assert set(many) <= set(await list_swarms(bus))
    assert await swarm_exists(bus, many[-1]) and not await swarm_exists(bus, f"{swarm}-never")
