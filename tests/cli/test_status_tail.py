"""``aar status`` and ``aar tail`` against the session's real nats-server."""

from __future__ import annotations

import asyncio
import json

from bus import Bus, Kind, streams
from bus.natsd import free_port
from schemas import ExperimentRequest, ForumPost, Hypothesis, Message, Presence, ScoreEvent, encode
from tests.cli.conftest import RunCli


def _flags(url: str, swarm: str) -> list[str]:
    return ["--nats", url, "--swarm", swarm]


async def test_status_lists_streams_counts_and_consumers(
    run_cli: RunCli, bus: Bus, nats_url: str, swarm: str
) -> None:
    for i in range(2):
        await bus.publish(Hypothesis(swarm=swarm, sender="alice", title=f"h{i}"))
    await bus.publish(ExperimentRequest(swarm=swarm, sender="alice", task="rt", method="ft"))

    result = await run_cli("status", *_flags(nats_url, swarm))

    assert result.rc == 0, result.err
    rows = {line.split()[0]: line.split() for line in result.lines if line.strip()}
    assert rows[f"AAR_{swarm}_HYPOTHESES"][1] == "2"
    assert rows[f"AAR_{swarm}_REQUESTS"][1] == "1"
    assert rows["workers"][1:3] == [f"AAR_{swarm}_REQUESTS", "1"]  # one request pending
    assert "no live agents or workers" in result.out

    doc = json.loads((await run_cli("status", *_flags(nats_url, swarm), "--json")).out)
    counts = {s["name"]: s["messages"] for s in doc["streams"]}
    assert counts[f"AAR_{swarm}_HYPOTHESES"] == 2 and counts[f"AAR_{swarm}_FORUM"] == 0


async def test_status_shows_presence(run_cli: RunCli, bus: Bus, nats_url: str, swarm: str) -> None:
    kv = await bus.kv(streams.presence_bucket(swarm))
    await kv.put(
        "gpu1",
        Presence(
            swarm=swarm, sender="gpu1", role="worker", name="gpu1", host="box", pid=42, capabilities=["cuda"]
        ),
    )
    result = await run_cli("status", *_flags(nats_url, swarm))
    assert any(line.split()[:5] == ["worker", "gpu1", "box", "42", "ready"] for line in result.lines), (
        result.out
    )

    everything = json.loads((await run_cli("status", "--nats", nats_url, "--all-swarms", "--json")).out)
    assert swarm in [s["swarm"] for s in everything["swarms"]]


async def test_status_unreachable_server_is_one_line_exit_2(run_cli: RunCli) -> None:
    result = await run_cli("status", "--nats", f"nats://127.0.0.1:{free_port()}")
    assert result.rc == 2
    assert result.err.count("\n") == 1 and result.err.startswith("aar: error: cannot connect to NATS")


async def test_status_unknown_swarm_exit_1(run_cli: RunCli, bus: Bus, nats_url: str) -> None:
    result = await run_cli("status", *_flags(nats_url, "no-such-swarm"))
    assert result.rc == 1 and "no streams" in result.err


async def test_tail_json_replays_history_as_wire_json(
    run_cli: RunCli, bus: Bus, nats_url: str, swarm: str
) -> None:
    sent: list[Message] = [
        Hypothesis(swarm=swarm, sender="alice", title="calibrate the weak labels"),
        ForumPost(swarm=swarm, sender="bob", body="first post"),
        ScoreEvent(swarm=swarm, sender="scorer", task="rt", method="ft", status="accepted", pgr=0.3),
    ]
    for msg in sent:
        await bus.publish(msg)

    result = await run_cli(
        "tail",
        "hypotheses",
        "forum",
        "scores",
        *_flags(nats_url, swarm),
        "--all",
        "--json",
        "--count",
        "3",
        "--timeout",
        "10",
    )

    assert result.rc == 0, result.err
    docs = [json.loads(line) for line in result.lines]
    assert sorted(d["kind"] for d in docs) == ["forum_post", "hypothesis", "score"]
    assert set(result.lines) == {encode(m).decode() for m in sent}

    recent = await run_cli(
        "tail",
        "scores",
        *_flags(nats_url, swarm),
        "--since",
        "10m",
        "--json",
        "--count",
        "1",
        "--timeout",
        "10",
    )
    assert json.loads(recent.out)["id"] == sent[2].id


async def test_tail_unknown_swarm_exit_2(run_cli: RunCli, bus: Bus, nats_url: str) -> None:
    result = await run_cli("tail", "requests", *_flags(nats_url, "no-such-swarm"), "--all", "--timeout", "5")
    assert result.rc == 2 and "'no-such-swarm' has no streams" in result.err


async def test_tail_text_lines_and_a_bad_payload(
    run_cli: RunCli, bus: Bus, nats_url: str, swarm: str
) -> None:
    await bus.js.publish(f"aar.{swarm}.forum.t1", b'{"kind": "nonsense"}')
    await bus.publish(ForumPost(swarm=swarm, sender="bob", title="Findings", body="weak labels\nare noisy"))

    result = await run_cli(
        "tail", "forum", *_flags(nats_url, swarm), "--all", "--count", "1", "--timeout", "10"
    )

    assert result.rc == 0, result.err
    [line] = result.lines
    assert " forum_post " in line and "bob" in line and "Findings: weak labels are noisy" in line
    assert "skipped undecodable message" in result.err  # reported, not fatal, and not re-filed


async def test_tail_requests_does_not_consume_the_work_queue(
    run_cli: RunCli, bus: Bus, nats_url: str, swarm: str
) -> None:
    sent = [ExperimentRequest(swarm=swarm, sender="alice", task="rt", method="ft", seed=s) for s in (1, 2)]
    for msg in sent:
        await bus.publish(msg)

    result = await run_cli(
        "tail", "requests", *_flags(nats_url, swarm), "--all", "--json", "--count", "2", "--timeout", "10"
    )

    assert result.rc == 0, result.err
    assert [json.loads(line)["id"] for line in result.lines] == [m.id for m in sent]
    stream = streams.stream_name(swarm, Kind.REQUESTS)
    assert (await bus.js.stream_info(stream)).state.messages == 2
    assert (await bus.js.consumer_info(stream, "workers")).num_pending == 2


async def test_tail_follows_live_traffic(run_cli: RunCli, bus: Bus, nats_url: str, swarm: str) -> None:
    tail = asyncio.create_task(
        run_cli(
            "tail", "requests", "forum", *_flags(nats_url, swarm), "--json", "--count", "4", "--timeout", "15"
        )
    )
    # Live only: keep publishing until the tail, which subscribes at some point, has seen enough.
    while not tail.done():
        await bus.publish(ExperimentRequest(swarm=swarm, sender="alice", task="rt", method="ft"))
        await bus.publish(ForumPost(swarm=swarm, sender="bob", body="live"))
        await asyncio.wait({tail}, timeout=0.2)
    result = tail.result()
    assert result.rc == 0, result.err
    assert {json.loads(line)["kind"] for line in result.lines} == {"experiment_request", "forum_post"}


async def test_tail_presence_and_timeout(run_cli: RunCli, bus: Bus, nats_url: str, swarm: str) -> None:
    kv = await bus.kv(streams.presence_bucket(swarm))
    await kv.put("a1", Presence(swarm=swarm, sender="a1", role="agent", name="a1", host="h", pid=1))

    replay = await run_cli(
        "tail", "presence", *_flags(nats_url, swarm), "--all", "--json", "--count", "1", "--timeout", "10"
    )
    assert replay.rc == 0 and json.loads(replay.out)["name"] == "a1"

    # Live only and nothing happens: --timeout ends it, and status 1 says --count was not reached.
    quiet = await run_cli(
        "tail", "presence", "flags", *_flags(nats_url, swarm), "--count", "1", "--timeout", "0.5"
    )
    assert (quiet.rc, quiet.out) == (1, "")
