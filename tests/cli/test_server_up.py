"""``aar server`` as a real process, ``aar up`` in-process, and what happens when a port is taken.

Both run the embedded server with authorization on unless ``--no-auth``.
"""

from __future__ import annotations

import asyncio
import re
import signal
import socket
import sys
from pathlib import Path

import pytest

from bus import Bus, BusConfig, BusError, PublishError, ensure_swarm, list_swarms
from bus.auth import Role
from bus.natsd import free_port
from schemas import Hypothesis, Message
from tests.cli.conftest import RunCli
from tests.helpers import eventually

AAR = Path(sys.executable).parent / "aar"
# `aar up` with nothing beside the server and the bus: no task, no child processes.
BARE = ("--no-prepare", "--no-scorer", "--workers", "0", "--agents", "0", "--no-reviewer", "--no-dashboard")


async def _read_until(stream: asyncio.StreamReader, pattern: str, timeout: float = 20.0) -> re.Match[str]:
    async with asyncio.timeout(timeout):
        while line := (await stream.readline()).decode():
            if match := re.search(pattern, line):
                return match
    raise AssertionError(f"output ended before {pattern!r}")


async def test_server_prints_url_and_creds_enforces_roles_and_stops_on_sigint(
    run_cli: RunCli, tmp_path: Path
) -> None:
    port, monitor = free_port(), free_port()
    proc = await asyncio.create_subprocess_exec(
        str(AAR),
        "server",
        "--data-dir",
        str(tmp_path),
        "--port",
        str(port),
        "--monitor-port",
        str(monitor),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        assert proc.stdout is not None
        url = (await _read_until(proc.stdout, r"NATS ready at (nats://\S+)")).group(1)
        assert url == f"nats://127.0.0.1:{port}"
        creds = {
            m.group(2): m.group(1)
            for m in [await _read_until(proc.stdout, r"--creds (\S+/(\w+)\.creds)") for _ in Role]
        }
        assert creds == {r.value: str(tmp_path / "creds" / f"{r.value}.creds") for r in Role}

        with pytest.raises(BusError):  # authorization is on: no credentials, no entry
            await Bus.connect(BusConfig(servers=[url], connect_attempts=1)).start()

        admin = BusConfig(servers=[url], creds_file=creds["admin"], connect_attempts=1)
        agent = BusConfig(servers=[url], creds_file=creds["agent"], connect_attempts=1, publish_timeout_s=0.5)
        async with Bus.connect(admin) as op, Bus.connect(agent) as ag:
            info = await op.js.stream_info("AAR_default_FORUM")  # `aar server` made the swarm
            assert info.state.messages == 0
            await ag.publish(Hypothesis(swarm="default", sender="a1", title="hi"))
            # The observer's credentials are enough for status and tail; verdicts stay hidden.
            status = await run_cli("status", "--nats", url, "--creds", creds["observer"])
            assert status.rc == 0, status.err
            assert "AAR_default_HYPOTHESES" in status.out and "VERDICTS" not in status.out
            tail = await run_cli("tail", "--nats", url, "--creds", creds["observer"], "--all", "--count", "1")
            assert tail.rc == 0 and "hi" in tail.out, tail.err
            # A swarm made while the server runs is authorized once its streams appear.
            await ensure_swarm(op, "later")
            later = Hypothesis(swarm="later", sender="a1", title="hi")
            await eventually(lambda: _published(ag, later), timeout=15)

        proc.send_signal(signal.SIGINT)
        async with asyncio.timeout(20):
            out, err = await proc.communicate()
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.communicate()
    assert proc.returncode == 0, err.decode()
    assert b"NATS stopped" in out
    assert b"nats-server stopped" in err


async def _published(bus: Bus, msg: Message) -> bool:
    try:
        await bus.publish(msg)
    except PublishError:
        return False
    return True


async def test_server_with_a_busy_port_fails_in_one_line(run_cli: RunCli, tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = await run_cli(
            "server", "--data-dir", str(tmp_path), "--port", str(port), "--monitor-port", str(free_port())
        )
    assert result.rc == 2
    assert f"client port {port} on 127.0.0.1 is already in use" in result.err
    assert "Traceback" not in result.err and result.err.count("\n") == 1


async def test_up_embedded_runs_for_demo_seconds(run_cli: RunCli, tmp_path: Path) -> None:
    port = free_port()
    result = await run_cli(
        "up",
        "--data-dir",
        str(tmp_path),
        "--port",
        str(port),
        "--monitor-port",
        str(free_port()),
        "--swarm",
        "demo",
        "--demo-seconds",
        "1",
        "--log-level",
        "info",
        *BARE,
    )
    assert result.rc == 0, result.err
    observer = tmp_path / "creds" / "observer.creds"
    assert f"aar tail --nats nats://127.0.0.1:{port} --swarm demo --creds {observer}" in result.out
    assert (
        f"aar worker --nats nats://127.0.0.1:{port} --swarm demo --creds {tmp_path}/creds/worker.creds"
        in (result.out)
    )
    # Started in order, stopped in reverse: the bus closes before its server stops.
    assert result.err.index("bus closed") < result.err.index("nats-server stopped")


async def test_up_embedded_without_auth_says_so(run_cli: RunCli, tmp_path: Path) -> None:
    port = free_port()
    result = await run_cli(
        "up",
        "--data-dir",
        str(tmp_path),
        "--port",
        str(port),
        "--monitor-port",
        str(free_port()),
        "--no-auth",
        "--demo-seconds",
        "0.2",
        *BARE,
    )
    assert result.rc == 0, result.err
    assert "authorization off" in result.out and "--creds" not in result.out
    assert f"aar tail --nats nats://127.0.0.1:{port} --swarm default\n" in result.out
    assert not (tmp_path / "creds").exists()


async def test_up_attaches_to_a_running_server_with_a_fresh_swarm(
    run_cli: RunCli, bus: Bus, nats_url: str, swarm: str
) -> None:
    result = await run_cli(
        "up", "--nats", nats_url, "--swarm", swarm, "--fresh", "--demo-seconds", "0.2", *BARE
    )
    assert result.rc == 0, result.err
    assert "nats-server" not in result.err  # nothing embedded
    fresh = [s for s in await list_swarms(bus) if s.startswith(f"{swarm}-")]
    assert len(fresh) == 1 and f"--swarm {fresh[0]}" in result.out


async def test_up_with_an_unreachable_server_exits_2(run_cli: RunCli) -> None:
    result = await run_cli("up", "--nats", f"nats://127.0.0.1:{free_port()}", "--demo-seconds", "1", *BARE)
    assert result.rc == 2 and "cannot connect to NATS" in result.err


async def test_up_refuses_claude_researchers_without_an_api_key(
    run_cli: RunCli, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("ANTHROPIC_API_KEY", raising=False)
    result = await run_cli("up", "--nats", f"nats://127.0.0.1:{free_port()}", "--claude", "2")
    assert result.rc == 2 and "--claude needs ANTHROPIC_API_KEY" in result.err


async def test_up_refuses_an_unknown_task_before_starting_any_process(
    run_cli: RunCli, bus: Bus, nats_url: str, swarm: str
) -> None:
    result = await run_cli("up", "--nats", nats_url, "--swarm", swarm, "--task", "nosuch", "--no-dashboard")
    assert result.rc == 2
    assert "unknown task 'nosuch': not a registered task" in result.err and "Traceback" not in result.err
