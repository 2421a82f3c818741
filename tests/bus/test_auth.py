"""Roles enforced by the server: what each role may do works through the Bus; the rest is refused.

One nats-server with authorization on for the module, one swarm made by the admin. A refusal is
checked by what the server did: the message is not stored, the server reported a permissions
violation to the client, the request got no answer.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import nats.errors
import nats.js.errors
import pytest
import pytest_asyncio
from nats.js import api

from bus import Bus, BusConfig, BusError, Kind, NatsServer, PublishError, StartAt, ensure_swarm, streams
from bus import subjects as s
from bus.auth import Role, inbox_prefix, permissions
from bus.creds import ServerAuth, read_credentials
from bus.errors import CredentialsError
from bus.store import NamedObjects
from schemas import (
    Baseline,
    BudgetEvent,
    DeadLetter,
    Envelope,
    ExperimentProgress,
    ExperimentRequest,
    ExperimentResult,
    Flag,
    ForumPost,
    Hypothesis,
    Leaderboard,
    Lineage,
    Message,
    Presence,
    ScoreEvent,
    TaskInfo,
    Verdict,
    decode,
    new_id,
)
from tests.conftest import TEST_RETRY, server_config
from tests.helpers import Collector, eventually

SWARM = "authz"
# A refused JetStream publish gets no ack; give up on it quickly.
REFUSED_PUBLISH_S = 0.5


@dataclass(slots=True)
class Authd:
    server: NatsServer
    auth: ServerAuth

    def config(self, role: Role, **overrides: Any) -> BusConfig:
        fields: dict[str, Any] = {
            "servers": [self.server.config.client_url],
            "name": f"aar-test-{role.value}",
            "creds_file": str(self.auth.creds_path(role)),
            "publish_timeout_s": 10.0,
            "connect_attempts": 1,
        }
        fields.update(overrides)
        return BusConfig(**fields)

    @contextlib.asynccontextmanager
    async def bus(self, role: Role, **overrides: Any) -> AsyncIterator[Bus]:
        async with Bus.connect(self.config(role, **overrides)) as bus:
            yield bus


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def authd(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Authd]:
    config = server_config(tmp_path_factory.mktemp("natsd-auth"))
    auth = ServerAuth(config.data_dir)
    auth.write([SWARM])
    config.include.append(auth.include_path)
    async with NatsServer(config) as server:
        yield Authd(server, auth)


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def admin(authd: Authd) -> AsyncIterator[Bus]:
    async with authd.bus(Role.ADMIN) as bus:
        await ensure_swarm(bus, SWARM, work_retry=TEST_RETRY)
        yield bus


@pytest.fixture
def violations(caplog: pytest.LogCaptureFixture) -> Violations:
    caplog.set_level(logging.WARNING, logger="aar.bus")
    return Violations(caplog)


@dataclass(slots=True)
class Violations:
    """The permissions violations the server reported to our connections (the Bus logs them)."""

    caplog: pytest.LogCaptureFixture

    def seen(self, op: str, subject: str) -> bool:
        # nats-py lowercases the server's error line, subject included.
        needle = f'permissions violation for {op} to "{subject}"'.lower()
        return any(needle in str(getattr(r, "error", "")) for r in self.caplog.records)

    async def wait(self, op: str, subject: str) -> None:
        await eventually(lambda: self.seen(op, subject), timeout=5)


async def stored(admin: Bus, kind: Kind, key: str) -> int:
    """Messages the server holds on ``aar.<swarm>.<kind>.<key>`` (asked as the admin)."""
    subject = s.subject(SWARM, kind, key)
    info = await admin.js.stream_info(streams.stream_name(SWARM, kind), subjects_filter=subject)
    return sum((info.state.subjects or {}).values())


async def fails(op: Awaitable[object]) -> BaseException:
    """Run ``op``, which must fail, and return its error."""
    try:
        await op
    except (BusError, nats.errors.Error, nats.js.errors.Error) as e:
        return e
    raise AssertionError("the server allowed it")


def tag() -> str:
    return f"k{new_id()[-10:]}"


def result(key: str, *, sender: str = "w1", **fields: Any) -> ExperimentResult:
    return ExperimentResult(
        swarm=SWARM,
        sender=sender,
        worker="w1",
        task=key,
        method="m",
        status="ok",
        lineage=Lineage(request_id=new_id()),
        **fields,
    )


# -- refusals -------------------------------------------------------------------------------------


async def test_agent_cannot_publish_scores_results_verdicts_flags_or_budget(
    authd: Authd, admin: Bus, violations: Violations
) -> None:
    key = tag()
    forged: list[Message] = [
        ScoreEvent(swarm=SWARM, sender="a1", task=key, method="m", status="accepted", accuracy=1.0),
        result(key, sender="a1"),
        Verdict(swarm=SWARM, sender="a1", task=key, method="m", config_key="c", status="accepted"),
        Flag(swarm=SWARM, sender="a1", detector=key, summary="all clear"),
        BudgetEvent(
            swarm=SWARM, sender="a1", scope="agent", target=key, resource="usd", used=0, limit=9, level="info"
        ),
    ]
    async with authd.bus(Role.AGENT, publish_timeout_s=REFUSED_PUBLISH_S) as agent:
        errors = await asyncio.gather(*(fails(agent.publish(m)) for m in forged))
    assert all(isinstance(e, PublishError) for e in errors)
    for msg in forged:
        await violations.wait("publish", s.subject_for(msg))
        assert await stored(admin, s.kind_for(msg), key) == 0


async def test_agent_cannot_read_labels_baselines_or_verdicts(
    authd: Authd, admin: Bus, violations: Violations
) -> None:
    labels = streams.labels_bucket(SWARM)
    baselines = streams.baselines_bucket(SWARM)
    verdicts = streams.stream_name(SWARM, Kind.VERDICTS)
    await NamedObjects(await admin.js.object_store(labels), labels).put("t1", b"gold labels")
    async with authd.bus(Role.AGENT) as agent:
        js = agent.nc.jetstream(timeout=1.0)
        refused = [
            NamedObjects.open(agent, labels),
            agent.kv(baselines),
            agent.subscribe(
                SWARM, Kind.VERDICTS, Collector[Envelope](), expect=Envelope, start=StartAt.all()
            ),
            agent.subscribe(SWARM, Kind.VERDICTS, Collector[Envelope](), expect=Envelope, durable="peek"),
            js.add_consumer(streams.object_stream(labels), api.ConsumerConfig(name="peek")),
            js.get_last_msg(streams.kv_stream(baselines), "$KV.x.>", direct=True),
            js.get_msg(verdicts, seq=1),
        ]
        errors = await asyncio.gather(*(fails(op) for op in refused))
        # Nor may it listen on the subjects they are stored under.
        core = [
            *streams.object_subjects(labels),
            streams.kv_keys(baselines),
            s.kind_filter(SWARM, Kind.VERDICTS),
        ]
        for subject in core:
            await agent.nc.subscribe(subject)
        for subject in core:
            await violations.wait("subscription", subject)
    assert all(isinstance(e, nats.errors.TimeoutError | BusError) for e in errors), errors
    await violations.wait("publish", f"$JS.API.STREAM.INFO.{streams.object_stream(labels)}")
    await violations.wait("publish", f"$JS.API.CONSUMER.CREATE.{verdicts}")
    await violations.wait("publish", f"$JS.API.CONSUMER.INFO.{verdicts}.peek")
    for stream in (streams.object_stream(labels), streams.kv_stream(baselines), verdicts):
        assert await admin.js.consumers_info(stream) == []  # no consumer was made


async def test_no_role_can_listen_on_another_roles_inbox(
    authd: Authd, admin: Bus, violations: Violations
) -> None:
    for role in (Role.AGENT, Role.WORKER, Role.OBSERVER, Role.SCORER):
        async with authd.bus(role) as bus:
            assert bytes(bus.nc._inbox_prefix).decode() == inbox_prefix(role)
            others = ["_INBOX.>", *(f"{inbox_prefix(r)}.>" for r in Role if r is not role)]
            subs = [await bus.nc.subscribe(subject) for subject in others]
            for subject in others:
                await violations.wait("subscription", subject)
            # The scorer's label reads arrive on its inbox: show nothing from there gets through.
            await admin.nc.publish(f"{inbox_prefix(Role.SCORER)}.snoop", b"label bytes")
            await admin.nc.publish("_INBOX.snoop", b"reply")
            await admin.nc.flush()
            await bus.nc.flush()  # anything the server delivered is read before its PONG
            assert [sub.pending_msgs for sub in subs] == [0] * len(subs)


async def test_worker_cannot_publish_scores_or_read_the_truth(
    authd: Authd, admin: Bus, violations: Violations
) -> None:
    key = tag()
    score = ScoreEvent(swarm=SWARM, sender="w1", task=key, method="m", status="accepted", accuracy=1.0)
    async with authd.bus(Role.WORKER, publish_timeout_s=REFUSED_PUBLISH_S) as worker:
        errors = await asyncio.gather(
            fails(worker.publish(score)),
            fails(worker.kv(streams.baselines_bucket(SWARM))),
            fails(NamedObjects.open(worker, streams.labels_bucket(SWARM))),
        )
    assert isinstance(errors[0], PublishError)
    await violations.wait("publish", s.subject_for(score))
    assert await stored(admin, Kind.SCORES, key) == 0


async def test_observer_publishes_nothing(authd: Authd, admin: Bus, violations: Violations) -> None:
    key = tag()
    msgs: list[Message] = [
        Hypothesis(swarm=SWARM, sender=key, title="x"),
        ExperimentRequest(swarm=SWARM, sender=key, task=key, method="m"),
        ForumPost(swarm=SWARM, sender="o", thread_id=key, body="x"),
        ScoreEvent(swarm=SWARM, sender="o", task=key, method="m", status="accepted"),
        result(key, sender="o"),
        ExperimentProgress(swarm=SWARM, sender="o", worker=key),
        DeadLetter(
            swarm=SWARM,
            sender="o",
            consumer=key,
            reason="x",
            error_type="E",
            original_subject="x",
            original=b"",
        ),
    ]
    async with authd.bus(Role.OBSERVER, publish_timeout_s=REFUSED_PUBLISH_S) as observer:
        presence = await observer.kv(streams.presence_bucket(SWARM))  # reading is allowed
        artifacts = await observer.artifacts(SWARM)
        me = Presence(swarm=SWARM, sender="o", role="observer", name=key, host="h", pid=1)
        errors = await asyncio.gather(
            *(fails(observer.publish(m)) for m in msgs),
            fails(presence.put(key, me)),
            fails(artifacts.put(b"observer bytes")),
            fails(
                observer.request(
                    s.rpc(SWARM, "budget"), Hypothesis(swarm=SWARM, sender="o", title="?"), timeout_s=1.0
                )
            ),
        )
    assert all(isinstance(e, PublishError) for e in errors[: len(msgs)])
    for msg in msgs:
        await violations.wait("publish", s.subject_for(msg))
        assert await stored(admin, s.kind_for(msg), key) == 0
    await violations.wait("publish", f"$KV.{streams.presence_bucket(SWARM)}.{key}")
    await violations.wait("publish", s.rpc(SWARM, "budget"))
    assert await (await admin.kv(streams.presence_bucket(SWARM))).get(key) is None


async def test_only_the_admin_administers_streams_and_buckets(
    authd: Authd, admin: Bus, violations: Violations
) -> None:
    forum = streams.stream_name(SWARM, Kind.FORUM)
    scores = streams.stream_name(SWARM, Kind.SCORES)
    requests = streams.stream_name(SWARM, Kind.REQUESTS)
    leaderboard = streams.leaderboard_bucket(SWARM)
    await admin.publish(ForumPost(swarm=SWARM, sender="op", thread_id=tag(), body="keep me"))
    before = {name: (await admin.js.stream_info(name)).state.messages for name in (forum, scores)}
    async with contextlib.AsyncExitStack() as stack:
        buses = [await stack.enter_async_context(authd.bus(r)) for r in Role if r is not Role.ADMIN]
        attempts: list[Awaitable[object]] = []
        for bus in buses:
            js = bus.nc.jetstream(timeout=1.0)
            attempts += [
                js.delete_stream(forum),
                js.purge_stream(scores),
                js.update_stream(api.StreamConfig(name=forum, subjects=["stolen.>"])),
                js.add_stream(api.StreamConfig(name=f"AAR_{SWARM}_MINE", subjects=["mine.>"])),
                js.delete_consumer(requests, "workers"),
                js.delete_key_value(leaderboard),
                js.delete_object_store(streams.labels_bucket(SWARM)),
            ]
        await asyncio.gather(*(fails(a) for a in attempts))
    for verb in ("DELETE", "PURGE", "UPDATE"):
        await violations.wait("publish", f"$JS.API.STREAM.{verb}.{forum if verb != 'PURGE' else scores}")
    await violations.wait("publish", f"$JS.API.CONSUMER.DELETE.{requests}.workers")
    after = {name: (await admin.js.stream_info(name)).state.messages for name in (forum, scores)}
    assert after == before
    assert (await admin.js.stream_info(forum)).config.subjects == [s.kind_filter(SWARM, Kind.FORUM)]
    assert (await admin.js.consumer_info(requests, "workers")).name == "workers"
    await admin.kv(leaderboard)
    with pytest.raises(nats.js.errors.NotFoundError):
        await admin.js.stream_info(f"AAR_{SWARM}_MINE")


async def test_agent_cannot_take_work_or_list_consumers(authd: Authd, violations: Violations) -> None:
    requests = streams.stream_name(SWARM, Kind.REQUESTS)
    scores = streams.stream_name(SWARM, Kind.SCORES)
    async with authd.bus(Role.AGENT) as agent:
        errors = await asyncio.gather(
            fails(agent.work(SWARM, Collector[ExperimentRequest](), expect=ExperimentRequest)),
            # Consumer names would let it find, and change, the scorer's consumer on the scores.
            fails(agent.nc.jetstream(timeout=1.0).consumers_info(scores)),
        )
    assert all(isinstance(e, nats.errors.TimeoutError | BusError) for e in errors)
    await violations.wait("publish", f"$JS.API.CONSUMER.INFO.{requests}.workers")
    await violations.wait("publish", f"$JS.API.CONSUMER.LIST.{scores}")


# -- what each role may do ------------------------------------------------------------------------


async def test_agent_publishes_reads_scores_and_leaderboard_and_calls_rpc(authd: Authd, admin: Bus) -> None:
    key = tag()
    async with authd.bus(Role.AGENT) as agent, authd.bus(Role.SCORER) as scorer:
        await agent.publish(Hypothesis(swarm=SWARM, sender=key, title="transfer helps"))
        await agent.publish(ExperimentRequest(swarm=SWARM, sender="a1", task=key, method="m"))
        await agent.publish(ForumPost(swarm=SWARM, sender="a1", thread_id=key, body="results soon"))
        assert await stored(admin, Kind.HYPOTHESES, key) == 1
        assert await stored(admin, Kind.FORUM, key) == 1
        # Requests wait in the work queue for the worker test; any worker acks them.

        scores = Collector[ScoreEvent]()
        await agent.subscribe(
            SWARM,
            Kind.SCORES,
            scores,
            expect=ScoreEvent,
            key=key,
            durable=f"agent_{key}",
            start=StartAt.all(),
        )
        await scorer.publish(
            ScoreEvent(swarm=SWARM, sender="scorer", task=key, method="m", status="accepted", accuracy=0.7)
        )
        assert (await scores.wait_for(1))[0].accuracy == 0.7

        board = Leaderboard(swarm=SWARM, sender="scorer", task=key, results=3)
        await (await scorer.kv(streams.leaderboard_bucket(SWARM))).put(key, board)
        assert await (await agent.kv(streams.leaderboard_bucket(SWARM))).get(key) == board

        async def echo(msg: Message) -> Message:
            assert isinstance(msg, Hypothesis)
            return Hypothesis(swarm=SWARM, sender="scorer", title=msg.title.upper())

        await scorer.serve(s.rpc(SWARM, "echo"), echo, swarm=SWARM, name="scorer")
        await scorer.nc.flush()  # the server knows the responder before the agent asks
        reply = await agent.request(s.rpc(SWARM, "echo"), Hypothesis(swarm=SWARM, sender="a1", title="hi"))
        assert isinstance(reply, Hypothesis) and reply.title == "HI"

        me = Presence(swarm=SWARM, sender="a1", role="agent", name=key, host="h", pid=1)
        await (await agent.kv(streams.presence_bucket(SWARM))).put(key, me)
        code = await (await agent.artifacts(SWARM)).put(b"def method(): ...")
        assert await (await admin.artifacts(SWARM)).get(code) == b"def method(): ..."


async def test_worker_pulls_acks_publishes_and_reads_tasks_and_artifacts(authd: Authd, admin: Bus) -> None:
    key = tag()
    view = await (await admin.artifacts(SWARM)).put(b"label-free view")
    info = TaskInfo(
        swarm=SWARM,
        sender="op",
        task=key,
        task_kind="classification",
        label_names=["no", "yes"],
        view=view,
        view_digest=view.sha256,
    )
    await (await admin.kv(streams.tasks_bucket(SWARM))).put(key, info)
    async with authd.bus(Role.AGENT) as agent, authd.bus(Role.WORKER) as worker:
        request = ExperimentRequest(swarm=SWARM, sender="a1", task=key, method="m")
        await agent.publish(request)
        taken = Collector[ExperimentRequest]()
        await worker.work(SWARM, taken, expect=ExperimentRequest, heartbeat_s=1.0)
        await eventually(lambda: any(r.id == request.id for r in taken.messages))
        # Acked: a work queue drops what was acknowledged, so the server holds it no more.
        await eventually(lambda: _gone(admin, key))

        assert await (await worker.kv(streams.tasks_bucket(SWARM))).get(key) == info
        artifacts = await worker.artifacts(SWARM)
        assert await artifacts.get(view) == b"label-free view"
        preds = await artifacts.put(b"predictions")
        await worker.publish(ExperimentProgress(swarm=SWARM, sender="w1", worker=key, step=1))
        await worker.publish(result(key, predictions={"dev": preds}))
    assert await stored(admin, Kind.PROGRESS, key) == 1
    assert await stored(admin, Kind.RESULTS, key) == 1


async def _gone(admin: Bus, key: str) -> bool:
    return await stored(admin, Kind.REQUESTS, key) == 0


async def test_scorer_reads_the_truth_consumes_results_and_publishes_scores(authd: Authd, admin: Bus) -> None:
    key = tag()
    labels = streams.labels_bucket(SWARM)
    await NamedObjects(await admin.js.object_store(labels), labels).put(key, b"1,0,1")
    baseline = Baseline(
        swarm=SWARM,
        sender="op",
        task=key,
        weak_model="tfidf",
        strong_model="minilm",
        view_digest="d",
        seeds=[0],
        weak_acc={"dev": 0.6},
        ceiling_acc={"dev": 0.9},
    )
    await (await admin.kv(streams.baselines_bucket(SWARM))).put(key, baseline)
    async with authd.bus(Role.SCORER) as scorer, authd.bus(Role.WORKER) as worker:
        assert await (await NamedObjects.open(scorer, labels)).get(key) == b"1,0,1"
        assert await (await scorer.kv(streams.baselines_bucket(SWARM))).get(key) == baseline

        results = Collector[ExperimentResult]()
        await scorer.subscribe(
            SWARM, Kind.RESULTS, results, expect=ExperimentResult, key=key, durable=f"scorer_{key}"
        )
        await worker.publish(result(key))
        assert (await results.wait_for(1))[0].task == key

        # Pipelined: the acks come back on the scorer's own inbox.
        await scorer.publish_many(
            [
                ScoreEvent(swarm=SWARM, sender="sc", task=key, method="m", status="accepted"),
                Verdict(swarm=SWARM, sender="sc", task=key, method="m", config_key="c", status="accepted"),
                Flag(swarm=SWARM, sender="sc", detector=key, summary="clean"),
            ]
        )
    assert await stored(admin, Kind.SCORES, key) == 1
    assert await stored(admin, Kind.VERDICTS, key) == 1
    assert await stored(admin, Kind.FLAGS, key) == 1


async def test_observer_replays_scores_and_a_long_thread_and_watches_the_leaderboard(
    authd: Authd, admin: Bus
) -> None:
    key = tag()
    await admin.publish_many(
        [
            ScoreEvent(swarm=SWARM, sender="scorer", task=key, method=f"m{i}", status="accepted")
            for i in range(3)
        ]
    )
    # Several MB: the server pauses delivery until the client answers its flow-control requests.
    posts = [ForumPost(swarm=SWARM, sender="a1", thread_id=key, body="x" * 60_000) for _ in range(80)]
    await admin.publish_many(posts)
    async with authd.bus(Role.OBSERVER) as observer:
        scores, thread = Collector[ScoreEvent](), Collector[ForumPost]()
        await observer.subscribe(SWARM, Kind.SCORES, scores, expect=ScoreEvent, key=key, start=StartAt.all())
        await observer.subscribe(SWARM, Kind.FORUM, thread, expect=ForumPost, key=key, start=StartAt.all())
        assert [m.method for m in await scores.wait_for(3)] == ["m0", "m1", "m2"]
        assert len(await thread.wait_for(len(posts), timeout=20)) == len(posts)

        board = Leaderboard(swarm=SWARM, sender="sc", task=key)
        await (await admin.kv(streams.leaderboard_bucket(SWARM))).put(key, board)
        async with asyncio.timeout(10):
            async for name, value in (await observer.kv(streams.leaderboard_bucket(SWARM))).watch():
                if name == key:
                    assert value == board
                    break


async def test_a_swarm_made_later_is_usable_once_authorized(authd: Authd, admin: Bus) -> None:
    later = f"t{new_id()[-10:]}"
    await ensure_swarm(admin, later)
    hello = Hypothesis(swarm=later, sender="a1", title="hello")
    async with authd.bus(Role.AGENT, publish_timeout_s=REFUSED_PUBLISH_S) as agent:
        with pytest.raises(PublishError):
            await agent.publish(hello)  # nobody authorized the new swarm yet
        assert authd.auth.write([later])  # what `aar server` does when it sees the new streams
        await authd.server.reload()
        # The same connection, with the new rights.
        ack = await agent.publish(hello)
    assert ack.stream == streams.stream_name(later, Kind.HYPOTHESES)
    assert SWARM in authd.auth.swarms  # earlier swarms stay authorized


# -- credentials -----------------------------------------------------------------------------------


def test_credentials_files_name_their_role_and_stay_private(authd: Authd) -> None:
    auth = authd.auth
    for role in Role:
        path = auth.creds_path(role)
        assert path.stat().st_mode & 0o777 == 0o600
        creds = read_credentials(path)
        assert creds.role is role and creds.seed is not None and creds.seed.startswith("SU")
        assert creds.connect_options() == {"nkeys_seed_str": creds.seed}
        assert (auth.auth_dir / f"{role.value}.nk").stat().st_mode & 0o777 == 0o600
    assert auth.include_path.stat().st_mode & 0o777 == 0o600
    cfg = authd.config(Role.WORKER)
    assert cfg.auth_options()["inbox_prefix"] == "_INBOX_worker"
    assert (
        authd.config(Role.WORKER, inbox_prefix="_INBOX_mine").auth_options()["inbox_prefix"] == "_INBOX_mine"
    )


def test_keys_are_made_once_and_kept(tmp_path: Path) -> None:
    first = ServerAuth(tmp_path)
    assert first.write(["a"])
    seeds = {r: read_credentials(first.creds_path(r)).seed for r in Role}
    again = ServerAuth(tmp_path)  # a restart
    again.write(["a"])
    assert {r: read_credentials(again.creds_path(r)).seed for r in Role} == seeds
    assert len(set(seeds.values())) == len(Role)
    assert not first.write(["a"]) and first.write(["b"]) and first.swarms == {"a", "b"}
    assert ServerAuth(tmp_path).swarms == {"a", "b"}  # a restart serves them from the start


def test_a_nats_creds_file_is_used_as_such(tmp_path: Path) -> None:
    jwt_creds = tmp_path / "user.creds"
    jwt_creds.write_text(
        "-----BEGIN NATS USER JWT-----\neyJ0eXAiOiJKV1QifQ.e30.sig\n------END NATS USER JWT------\n\n"
        "-----BEGIN USER NKEY SEED-----\nSUAIBDPBAUTWCWBKIO6XHQNINK5FWJW4OHLXC3HQ2KFE4PEJUA44CNHTC4\n"
        "------END USER NKEY SEED------\n"
    )
    creds = read_credentials(jwt_creds)
    assert creds.seed is None and creds.role is None
    assert creds.connect_options() == {"user_credentials": str(jwt_creds)}
    assert "inbox_prefix" not in BusConfig(creds_file=str(jwt_creds)).auth_options()
    junk = tmp_path / "junk.creds"
    junk.write_text("hello\n")
    with pytest.raises(CredentialsError, match="neither"):
        read_credentials(junk)
    with pytest.raises(CredentialsError, match="cannot read"):
        read_credentials(tmp_path / "missing.creds")


def test_the_admin_has_no_limits_and_no_role_publishes_what_it_must_not() -> None:
    assert permissions(Role.ADMIN, [SWARM]) is None
    for role in (Role.AGENT, Role.WORKER, Role.OBSERVER):
        p = permissions(role, [SWARM])
        assert p is not None
        for kind in (Kind.SCORES, Kind.VERDICTS, Kind.FLAGS, Kind.BUDGET):
            assert s.kind_filter("*", kind) in p.publish_deny
        assert "$JS.API.STREAM.DELETE.>" in p.publish_deny and "$JS.API.STREAM.PURGE.>" in p.publish_deny


async def test_a_plain_nats_client_with_a_roles_seed_hears_what_the_role_may_read(
    authd: Authd, admin: Bus
) -> None:
    # No aar code on the client side: nats-py with the seed from the role's credentials file.
    text = authd.auth.creds_path(Role.OBSERVER).read_text()
    seed = next(line for line in text.splitlines() if line.startswith("SU"))
    refused: list[Exception] = []

    async def on_error(e: Exception) -> None:
        refused.append(e)

    nc = await nats.connect(authd.server.config.client_url, nkeys_seed_str=seed, error_cb=on_error)
    try:
        scores = await nc.subscribe(s.kind_filter(SWARM, Kind.SCORES))
        await nc.subscribe(s.kind_filter(SWARM, Kind.VERDICTS))
        await eventually(lambda: any("verdicts" in str(e) for e in refused))  # refused
        score = ScoreEvent(swarm=SWARM, sender="scorer", task="t", method="naive", status="accepted")
        await admin.publish(score)
        msg = await scores.next_msg(timeout=5)
        assert decode(msg.data) == score
    finally:
        await nc.close()
