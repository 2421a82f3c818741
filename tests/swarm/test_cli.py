"""``aar agent run`` and ``aar agent list``: a real process stopped by SIGTERM, and clear failures."""

from __future__ import annotations

import asyncio
import json
import signal
import sys
from pathlib import Path

from bus import Bus, streams
from schemas import Presence
from swarm.agent import default_name
from tests.cli.conftest import RunCli
from tests.swarm.recording import Recorder

AAR = Path(sys.executable).parent / "aar"

CRASHER = '''
from swarm import Agent, AgentConfig


class Crasher(Agent[AgentConfig]):
    """Fails in its run loop."""

    role = "crasher"

    async def run(self) -> None:
        raise RuntimeError("lost the plot")
'''


async def test_agent_run_joins_and_stops_cleanly_on_sigterm(
    nats_url: str, bus: Bus, swarm: str, tmp_path: Path
) -> None:
    config = tmp_path / "summariser.toml"
    config.write_text("period_s = 0.2\n")
    proc = await asyncio.create_subprocess_exec(
        str(AAR),
        "agent",
        "run",
        "summariser",
        "--name",
        "digest-1",
        "--swarm",
        swarm,
        "--nats",
        nats_url,
        "--config",
        str(config),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    presence = await bus.kv(streams.presence_bucket(swarm))
    try:
        assert proc.stdout is not None
        line = await asyncio.wait_for(proc.stdout.readline(), 20)
        assert line.decode().strip() == f"aar: agent digest-1 (summariser) joined swarm '{swarm}'"
        entry = await presence.get("digest-1")
        assert isinstance(entry, Presence) and entry.role == "summariser" and entry.state == "ready"
        proc.send_signal(signal.SIGTERM)
        out, err = await asyncio.wait_for(proc.communicate(), 20)
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.communicate()
    assert proc.returncode == 0, err.decode()
    assert b"aar: agent digest-1 stopped" in out
    assert b"agent stopped" in err and b"Traceback" not in err
    assert await presence.get("digest-1") is None


async def test_agent_list_shows_roles_and_the_agents_present(
    run_cli: RunCli, nats_url: str, bus: Bus, swarm: str
) -> None:
    async with Recorder(bus, swarm, name="rec-1"):
        result = await run_cli("agent", "list", "--swarm", swarm, "--nats", nats_url)
        as_json = await run_cli("agent", "list", "--swarm", swarm, "--nats", nats_url, "--json")
    assert result.rc == 0, result.err
    assert result.lines[0] == "roles:"
    assert any(line.split()[:2] == ["summariser", "Posts"] for line in result.lines)
    assert f"agents present in swarm {swarm}:" in result.lines
    [row] = [line.split() for line in result.lines if "rec-1" in line]
    assert row[:2] == ["recorder", "rec-1"] and "ready" in row
    doc = json.loads(as_json.out)
    assert [a["name"] for a in doc["agents"]] == ["rec-1"]
    assert "summariser" in {r["name"] for r in doc["roles"]}


async def test_agent_list_without_a_server_still_lists_roles(run_cli: RunCli) -> None:
    result = await run_cli("agent", "list", "--nats", "nats://127.0.0.1:1")
    assert result.rc == 0
    assert any(line.split()[:1] == ["summariser"] for line in result.lines)
    assert "aar: live agents not shown: cannot connect to NATS" in result.err


async def test_unknown_roles_and_bad_configs_fail_in_one_line(
    run_cli: RunCli, nats_url: str, swarm: str, tmp_path: Path
) -> None:
    unknown = await run_cli("agent", "run", "nope", "--nats", nats_url, "--swarm", swarm)
    assert unknown.rc == 2
    assert unknown.err.startswith("aar: error: unknown role 'nope'; known roles: ")
    assert "summariser" in unknown.err and unknown.err.count("\n") == 1
    bad = tmp_path / "bad.toml"
    bad.write_text("period_s = -1\n")
    config = await run_cli("agent", "run", "summariser", "--config", str(bad), "--nats", nats_url)
    assert config.rc == 2
    assert config.err == f"aar: error: bad config {bad}: Expected `float` > 0.0 - at `$.period_s`\n"


async def test_a_crashed_run_loop_stops_the_agent_with_status_1(
    run_cli: RunCli, nats_url: str, bus: Bus, swarm: str, tmp_path: Path
) -> None:
    path = tmp_path / "crasher.py"
    path.write_text(CRASHER)
    result = await run_cli("agent", "run", f"{path}:Crasher", "--nats", nats_url, "--swarm", swarm)
    assert result.rc == 1
    assert "run() crashed: RuntimeError('lost the plot')" in result.err
    # It left the swarm as a clean stop would.
    presence = await bus.kv(streams.presence_bucket(swarm))
    assert await presence.get(default_name("crasher")) is None
