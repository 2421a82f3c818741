"""Any NATS client can read the bus: a plain nats-py script, importing nothing of aar, reads every kind."""

from __future__ import annotations

import asyncio
import json
import sys
import textwrap
from pathlib import Path

import pytest

from bus import Bus, Kind, subjects
from bus import streams as st
from schemas import (
    Baseline,
    BudgetQuery,
    BudgetStatus,
    Leaderboard,
    Message,
    Presence,
    RpcError,
    TaskInfo,
    kind_of,
)
from tests.schemas.test_codec import one_of_each

PLAIN_READER = textwrap.dedent("""
    import asyncio, json, sys
    import nats
    import nats.js.errors

    async def main(url, swarm):
        nc = await nats.connect(url)
        js = nc.jetstream()
        kinds = set()
        # Every stored kind, key-value buckets included (they are streams too): read by sequence.
        prefixes = (f"AAR_{swarm}_", f"KV_aar_{swarm}_")
        streams = []
        while page := await js.streams_info(offset=len(streams)):  # the server lists 256 at a time
            streams += page
        streams = [s for s in streams if s.config.name.startswith(prefixes)]
        for info in (s for s in streams if s.state.messages):
            for seq in range(info.state.first_seq, info.state.last_seq + 1):
                try:
                    msg = await js.get_msg(info.config.name, seq)
                except nats.js.errors.NotFoundError:
                    continue  # a gap: a message removed by a limit or a rollup
                if msg.data:
                    kinds.add(json.loads(msg.data)["kind"])
        reply = await nc.request(f"aar.{swarm}.rpc.leaderboard", b"{}", timeout=5)
        kinds.add(json.loads(reply.data)["kind"])
        query = {"kind": "budget_query", "swarm": swarm, "sender": "plain"}
        reply = await nc.request(f"aar.{swarm}.rpc.budget", json.dumps(query).encode(), timeout=5)
        kinds.add(json.loads(reply.data)["kind"])
        await nc.close()
        print(json.dumps(sorted(kinds)))

    asyncio.run(main(sys.argv[1], sys.argv[2]))
""")


async def test_a_plain_nats_client_reads_every_kind_as_json(
    nats_url: str, bus: Bus, swarm: str, tmp_path: Path
) -> None:
    async def unavailable(msg: Message) -> Message:
        raise LookupError("no leaderboard yet")

    async def budget(msg: Message) -> Message:
        assert isinstance(msg, BudgetQuery)
        return next(m for m in one_of_each(swarm) if isinstance(m, BudgetStatus))

    # Replies (rpc_error, budget_status) travel on request/reply; presence, tasks, baselines and
    # leaderboards in buckets; the rest in streams. A budget_query is what the client itself sends.
    await bus.serve(subjects.rpc(swarm, "leaderboard"), unavailable, swarm=swarm, name="board")
    await bus.serve(subjects.rpc(swarm, "budget"), budget, swarm=swarm, name="budget")
    expected = set()
    for msg in one_of_each(swarm):
        if not isinstance(msg, BudgetQuery):
            expected.add(kind_of(type(msg)))
        if isinstance(msg, Presence):
            await (await bus.kv(st.presence_bucket(swarm))).put(msg.name, msg)
        elif isinstance(msg, TaskInfo):
            await (await bus.kv(st.tasks_bucket(swarm))).put(msg.task, msg)
        elif isinstance(msg, Baseline):
            await (await bus.kv(st.baselines_bucket(swarm))).put(msg.task, msg)
        elif isinstance(msg, Leaderboard):
            await (await bus.kv(st.leaderboard_bucket(swarm))).put(msg.task, msg)
        elif not isinstance(msg, (RpcError, BudgetQuery, BudgetStatus)):
            await bus.publish(msg)
    script = tmp_path / "plain_reader.py"
    script.write_text(PLAIN_READER)
    # -I: isolated mode, so nothing of aar (the cwd, PYTHONPATH) is importable in the reader.
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-I",
        str(script),
        nats_url,
        swarm,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        cwd=tmp_path,
    )
    out, err = await asyncio.wait_for(proc.communicate(), 30)
    assert proc.returncode == 0, err.decode()
    assert set(json.loads(out)) == expected


async def test_kinds_without_a_stream_are_refused_at_once(bus: Bus, swarm: str) -> None:
    from bus import PublishError

    assert Kind.EVENTS not in st.STREAMS
    with pytest.raises(PublishError, match="not stored in a stream"):
        await bus.publish(RpcError(swarm=swarm, sender="a", reason="x"))
