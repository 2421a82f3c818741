"""Request/reply, typed key-value buckets and the content-addressed artifact store."""

from __future__ import annotations

import asyncio
import hashlib

import pytest

from bus import Bus, BusError, RemoteError, streams
from bus import subjects as s
from schemas import ArtifactRef, Hypothesis, Message, Presence, RpcError, encode


async def test_request_reply_round_trip(bus: Bus, swarm: str) -> None:
    async def echo(msg: Message) -> Message:
        assert isinstance(msg, Hypothesis)
        return Hypothesis(swarm=swarm, sender="echo", title=msg.title.upper())

    await bus.serve(s.rpc(swarm, "echo"), echo, swarm=swarm, name="echo")
    reply = await bus.request(s.rpc(swarm, "echo"), Hypothesis(swarm=swarm, sender="a", title="hi"))
    assert isinstance(reply, Hypothesis) and reply.title == "HI"


async def test_a_failing_endpoint_answers_with_an_error(bus: Bus, swarm: str) -> None:
    async def broken(msg: Message) -> Message:
        raise ValueError("no budget left")

    await bus.serve(s.rpc(swarm, "budget"), broken, swarm=swarm, name="budget")
    with pytest.raises(RemoteError, match="ValueError: no budget left") as info:
        await bus.request(s.rpc(swarm, "budget"), Hypothesis(swarm=swarm, sender="a", title="?"))
    assert isinstance(info.value.reply, RpcError)
    # The endpoint survives its own failure.
    with pytest.raises(RemoteError):
        await bus.request(s.rpc(swarm, "budget"), Hypothesis(swarm=swarm, sender="a", title="?"))


async def test_malformed_requests_get_an_error_reply(bus: Bus, swarm: str) -> None:
    async def never(msg: Message) -> Message:
        raise AssertionError("not reached")

    await bus.serve(s.rpc(swarm, "strict"), never, swarm=swarm, name="strict")
    reply = await bus.nc.request(s.rpc(swarm, "strict"), b"{oops", timeout=5)
    assert b'"kind":"rpc_error"' in reply.data and b"SchemaError" in reply.data


async def test_nobody_serving_is_a_clear_error(bus: Bus, swarm: str) -> None:
    with pytest.raises(BusError, match="nobody serves"):
        await bus.request(s.rpc(swarm, "ghost"), Hypothesis(swarm=swarm, sender="a", title="?"), timeout_s=1)


async def test_presence_bucket_stores_watches_and_lists(bus: Bus, swarm: str) -> None:
    kv = await bus.kv(streams.presence_bucket(swarm))
    me = Presence(swarm=swarm, sender="w1", role="worker", name="w1", host="h", pid=1, capabilities=["cpu"])
    await kv.put("w1", me)
    seen: list[tuple[str, Message | None]] = []
    changed = asyncio.Event()

    async def watch() -> None:
        async for key, value in kv.watch():
            seen.append((key, value))
            changed.set()
            if len(seen) == 3:
                return

    watching = asyncio.create_task(watch())
    await asyncio.wait_for(changed.wait(), 10)  # the current value arrives first
    assert seen == [("w1", me)]
    await kv.put("a1", Presence(swarm=swarm, sender="a1", role="agent", name="a1", host="h", pid=2))
    await kv.delete("a1")
    await asyncio.wait_for(watching, 10)
    assert [k for k, _ in seen] == ["w1", "a1", "a1"] and seen[2][1] is None
    assert await kv.get("w1") == me
    assert await kv.get("a1") is None
    assert list((await kv.items()).keys()) == ["w1"]


async def test_artifacts_are_content_addressed_and_checked(bus: Bus, swarm: str) -> None:
    store = await bus.artifacts(swarm)
    blob = bytes(range(256)) * 20_000  # 5 MB, several chunks
    ref = await store.put(blob, content_type="application/x-npy")
    assert ref.size == len(blob) and ref.name == ref.sha256
    assert await store.put(blob) == ArtifactRef(name=ref.name, sha256=ref.sha256, size=ref.size)
    assert await store.get(ref) == blob
    forged = ArtifactRef(name=ref.name, sha256="0" * 64, size=ref.size)
    with pytest.raises(BusError, match="does not match"):
        await store.get(forged)
    with pytest.raises(BusError, match="not found"):
        await store.get(ArtifactRef(name="f" * 64, sha256="f" * 64, size=1))


async def test_small_artifacts_are_one_chunk_any_object_store_client_reads(bus: Bus, swarm: str) -> None:
    from bus import streams

    store = await bus.artifacts(swarm)
    blob = b"predictions " * 1000
    ref = await store.put(blob)
    assert await store.put(blob) == ref  # a second put replaces, never duplicates
    plain = await bus.js.object_store(streams.artifacts_bucket(swarm))
    assert (await plain.get(ref.name)).data == blob  # nats-py reads it the object store's way
    info = await bus.js.stream_info(streams.object_stream(streams.artifacts_bucket(swarm)))
    assert info.state.messages == 2  # one chunk and one meta entry, however often it is put
    # An object another client stored (random chunk subject) is found through its meta entry.
    other = b"stored by someone else"
    await plain.put(hashlib.sha256(other).hexdigest(), other)
    digest = hashlib.sha256(other).hexdigest()
    assert await store.get(ArtifactRef(name=digest, sha256=digest, size=len(other))) == other


async def test_core_subscription_is_typed_and_dead_letters_bad_input(bus: Bus, swarm: str) -> None:
    from bus import Kind, StartAt
    from schemas import DeadLetter, ExperimentProgress
    from tests.helpers import Collector

    live: list[ExperimentProgress] = []
    arrived = asyncio.Event()

    async def on_progress(msg: ExperimentProgress) -> None:
        live.append(msg)
        arrived.set()

    letters: Collector[DeadLetter] = Collector()
    await bus.subscribe(swarm, Kind.DLQ, letters, expect=DeadLetter, start=StartAt.all())
    subject = s.kind_filter(swarm, Kind.PROGRESS)
    await bus.subscribe_core(subject, on_progress, expect=ExperimentProgress, swarm=swarm, name="live-view")
    await bus.nc.publish(s.subject(swarm, Kind.PROGRESS, "w1"), b"\x00garbage")
    progress = ExperimentProgress(swarm=swarm, sender="w1", worker="w1", step=3)
    await bus.publish_core(progress)
    await asyncio.wait_for(arrived.wait(), 5)
    assert live == [progress]
    dead = await letters.wait_for(1)
    assert dead[0].original == b"\x00garbage" and dead[0].consumer == "live-view"


async def test_a_caller_given_subject_is_checked_before_it_reaches_the_wire(bus: Bus, swarm: str) -> None:
    from bus import InvalidSubjectError

    msg = Presence(swarm=swarm, sender="a", role="r", name="a", host="h", pid=1)
    injected = f"aar.{swarm}.events.x 0\r\nPUB aar.{swarm}.events.y"
    with pytest.raises(InvalidSubjectError):
        await bus.publish_core(msg, subject=injected)
    with pytest.raises(InvalidSubjectError):
        await bus.request(injected, msg)

    async def never(_: Message) -> None:
        raise AssertionError("not reached")

    with pytest.raises(InvalidSubjectError):
        await bus.subscribe_core("aar.a b", never, expect=Presence, swarm=swarm, name="x")
    with pytest.raises(InvalidSubjectError):
        await bus.serve(f"aar.{swarm}.rpc.echo", never, swarm=swarm, name="x", queue="a b")  # type: ignore[arg-type]
    assert bus.connected  # the connection is still usable
    await bus.nc.flush()


async def test_a_core_payload_over_the_limit_is_dead_lettered_not_decoded(bus: Bus, swarm: str) -> None:
    from bus import Kind, StartAt
    from schemas import DeadLetter, ExperimentProgress
    from schemas.messages import DEAD_LETTER_ORIGINAL_MAX, MAX_MESSAGE_BYTES
    from tests.helpers import Collector

    assert bus.nc.max_payload > MAX_MESSAGE_BYTES  # the server would carry it; the Bus must refuse it
    letters: Collector[DeadLetter] = Collector()
    await bus.subscribe(swarm, Kind.DLQ, letters, expect=DeadLetter, start=StartAt.all())
    seen: list[ExperimentProgress] = []

    async def on_progress(msg: ExperimentProgress) -> None:
        seen.append(msg)

    await bus.subscribe_core(
        s.kind_filter(swarm, Kind.PROGRESS), on_progress, expect=ExperimentProgress, swarm=swarm, name="big"
    )
    big = ExperimentProgress(swarm=swarm, sender="w1", worker="w1", stage="x" * 1000)
    padded = encode(big)[:-1] + b', "pad": "' + b"y" * MAX_MESSAGE_BYTES + b'"}'
    await bus.nc.publish(s.subject(swarm, Kind.PROGRESS, "w1"), padded)
    [letter] = await letters.wait_for(1)
    assert "exceeds" in letter.reason and letter.consumer == "big"
    # The letter keeps the payload's start and its size, so it decodes where the payload did not.
    assert letter.original_size == len(padded) and padded.startswith(letter.original)
    assert len(letter.original) == DEAD_LETTER_ORIGINAL_MAX
    assert seen == []
