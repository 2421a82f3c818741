"""``aar up``'s child processes: a crash is reported and restarted; a stop is final and in order."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path

from bus import Bus
from cli.children import Child, ChildSpec, supervised
from tests.helpers import eventually


def _follower(name: str, nats_url: str, swarm: str) -> ChildSpec:
    # An agent runs until it is told to stop, and says when it has joined: a stand-in for any child.
    return ChildSpec(
        name, ["agent", "run", "summariser", "--name", name, "--nats", nats_url, "--swarm", swarm]
    )


def _joined(lines: list[tuple[str, str]]) -> int:
    return sum("joined swarm" in line for _, line in lines)


async def test_a_child_that_dies_is_reported_and_restarted(
    tmp_path: Path, nats_url: str, swarm: str, bus: Bus
) -> None:
    lines: list[tuple[str, str]] = []
    child = Child(
        _follower("sum", nats_url, swarm),
        tmp_path,
        lambda n, line: lines.append((n, line)),
        first_backoff_s=0.1,
    )
    child.start()
    try:
        await eventually(lambda: _joined(lines) == 1, timeout=30)
        first = child.pid
        child.kill()
        await eventually(lambda: child.pid is not None and child.pid != first, timeout=20)
        assert child.restarts == 1
        want = f"aar: sum exited with status -9; restarting in 0.1s (restart 1; log {child.log_path})"
        assert ("sum", want) in lines
        await eventually(lambda: _joined(lines) == 2, timeout=30)  # the new one is up
    finally:
        rc = await child.stop()
    assert rc == 0  # SIGTERM: the agent stops cleanly
    assert ("sum", "aar: agent sum stopped") in lines
    assert child.pid is None and child.restarts == 1  # stopped for good: no restart after a stop
    assert "bus closed" in child.log_path.read_text()  # its stderr went to its log file


async def test_a_child_that_fails_at_once_backs_off(tmp_path: Path) -> None:
    lines: list[str] = []
    unreachable = ChildSpec("bad", ["status", "--nats", "nats://127.0.0.1:9"])  # exits 2 in a moment
    child = Child(unreachable, tmp_path, lambda _, line: lines.append(line), first_backoff_s=0.05)
    child.start()
    try:
        await eventually(lambda: child.restarts >= 3, timeout=60)
    finally:
        await child.stop()
    waits = [line.split("restarting in ")[1].split("s ")[0] for line in lines if "restarting in" in line]
    assert waits[:3] == ["0.05", "0.1", "0.2"]  # doubling, so a crash loop does not spin
    assert all("exited with status 2" in line for line in lines if "restarting" in line)


async def test_supervised_stops_children_in_reverse_order(
    tmp_path: Path, nats_url: str, swarm: str, bus: Bus
) -> None:
    specs = [_follower(f"c{i}", nats_url, swarm) for i in range(3)]
    async with supervised(specs, tmp_path, lambda *_: None) as children:
        await eventually(lambda: all(c.pid is not None for c in children), timeout=30)
        stopped: list[str] = []
        for c in children:
            original = c.stop

            async def record(
                c: Child = c, original: Callable[[], Awaitable[int | None]] = original
            ) -> int | None:
                stopped.append(c.spec.name)
                return await original()

            c.stop = record  # type: ignore[method-assign]
    assert stopped == ["c2", "c1", "c0"]
    assert all(c.pid is None for c in children)


async def test_cancelling_the_stop_kills_what_is_left(
    tmp_path: Path, nats_url: str, swarm: str, bus: Bus
) -> None:
    specs = [_follower(f"c{i}", nats_url, swarm) for i in range(2)]
    children: list[Child] = []

    async def run() -> None:
        async with supervised(specs, tmp_path, lambda *_: None) as started:
            children.extend(started)
            await asyncio.Event().wait()

    task = asyncio.create_task(run())
    await eventually(lambda: len(children) == 2 and all(c.pid is not None for c in children), timeout=30)
    task.cancel()  # stopping begins: the last child gets SIGTERM
    await asyncio.sleep(0)
    task.cancel()  # a second interruption while stopping: the rest are killed at once
    await asyncio.gather(task, return_exceptions=True)
    await eventually(lambda: all(c.pid is None for c in children), timeout=10)
