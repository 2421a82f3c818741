"""``aar server`` as a real process, ``aar up`` in-process, and what happens when a port is taken."""

from __future__ import annotations

import asyncio
import re
import signal
import socket
import sys
from pathlib import Path

import nats

from bus import Bus, list_swarms
from bus.natsd import free_port
from tests.cli.conftest import RunCli

AAR = Path(sys.executable).parent / "aar"


async def _read_until(stream: asyncio.StreamReader, pattern: str, timeout: float = 20.0) -> re.Match[str]:
    async with asyncio.timeout(timeout):
        while line := (await stream.readline()).decode():
            if match := re.search(pattern, line):
                return match
    raise AssertionError(f"output ended before {pattern!r}")


async def test_server_prints_url_serves_clients_and_stops_on_sigint(tmp_path: Path) -> None:
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

        nc = await nats.connect(url, connect_timeout=5, max_reconnect_attempts=1)
        try:
            info = await nc.jetstream().stream_info("AAR_default_FORUM")  # `aar server` made the swarm
            assert info.state.messages == 0
        finally:
            await nc.close()

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
    )
    assert result.rc == 0, result.err
    assert f"aar tail --nats nats://127.0.0.1:{port} --swarm demo" in result.out
    # Started in order, stopped in reverse: the bus closes before its server stops.
    assert result.err.index("bus closed") < result.err.index("nats-server stopped")


async def test_up_attaches_to_a_running_server_with_a_fresh_swarm(
    run_cli: RunCli, bus: Bus, nats_url: str, swarm: str
) -> None:
    result = await run_cli("up", "--nats", nats_url, "--swarm", swarm, "--fresh", "--demo-seconds", "0.2")
    assert result.rc == 0, result.err
    assert "nats-server" not in result.err  # nothing embedded
    fresh = [s for s in await list_swarms(bus) if s.startswith(f"{swarm}-")]
    assert len(fresh) == 1 and f"--swarm {fresh[0]}" in result.out


async def test_up_with_an_unreachable_server_exits_2(run_cli: RunCli) -> None:
    result = await run_cli("up", "--nats", f"nats://127.0.0.1:{free_port()}", "--demo-seconds", "1")
    assert result.rc == 2 and "cannot connect to NATS" in result.err
