"""The dashboard with authorization on: the observer's credentials are all it needs, in-process and as
``aar dashboard`` (the child process ``aar up`` starts, with the contract it relies on)."""

from __future__ import annotations

import asyncio
import logging
import os
import re
import signal
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import pytest_asyncio

from bus import Bus, BusConfig, BusError, NatsServer, ensure_swarm
from bus.auth import Role
from bus.creds import ServerAuth
from dashboard import Dashboard, FeedConfig
from scorer import Scorer
from scorer.synthetic import SyntheticTask, publish_task
from tests.conftest import TEST_RETRY, server_config
from tests.dashboard.support import EventStream, row, score_for, submit_at
from tests.scorer.conftest import TEST_CONFIG, WORKER, register

SWARM = "dashauth"
REPO = Path(__file__).resolve().parents[2]
LINE = re.compile(r"^aar: dashboard at (http://127\.0\.0\.1:(\d+)/)$")


@dataclass(slots=True)
class Swarm:
    url: str
    auth: ServerAuth
    worker: Bus
    synth: SyntheticTask

    def config(self, role: Role) -> BusConfig:
        return role_config(self.url, self.auth, role)


def role_config(url: str, auth: ServerAuth, role: Role) -> BusConfig:
    return BusConfig(
        servers=[url],
        name=f"aar-test-{role.value}",
        creds_file=str(auth.creds_path(role)),
        publish_timeout_s=10.0,
        connect_attempts=1,
    )


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def running(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Swarm]:
    """A server with authorization on, a prepared task, a worker's presence and a scorer, each with
    its own role's credentials."""
    config = server_config(tmp_path_factory.mktemp("natsd-dash-auth"))
    auth = ServerAuth(config.data_dir)
    auth.write([SWARM])
    config.include.append(auth.include_path)
    async with NatsServer(config) as server:
        url = server.config.client_url
        async with Bus.connect(role_config(url, auth, Role.ADMIN)) as admin:
            await ensure_swarm(admin, SWARM, work_retry=TEST_RETRY)
            synth = await publish_task(admin, SWARM, n_eval=400)
        async with (
            Bus.connect(role_config(url, auth, Role.WORKER)) as worker,
            Bus.connect(role_config(url, auth, Role.SCORER)) as scorer_bus,
            Scorer(scorer_bus, SWARM, TEST_CONFIG),
        ):
            await register(worker, SWARM, WORKER, "worker")
            yield Swarm(url, auth, worker, synth)


def violations(caplog: pytest.LogCaptureFixture) -> list[str]:
    """Permissions violations the server reported to any of our connections (the Bus logs them)."""
    return [
        str(getattr(r, "error", ""))
        for r in caplog.records
        if "permissions violation" in str(getattr(r, "error", "")).lower()
    ]


async def test_the_observers_credentials_are_enough(running: Swarm, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="aar.bus")
    async with (
        Bus.connect(running.config(Role.OBSERVER)) as observer,
        Dashboard(observer, SWARM, feed=FeedConfig(queue_every_s=0.2)) as dash,
        EventStream(dash.url) as stream,
    ):
        snap = await stream.next()
        assert [t["task"] for t in snap.data["tasks"]] == [running.synth.task]
        assert WORKER in {p["name"] for p in snap.data["presence"]}
        assert snap.data["queue"]["known"]  # the work queue's consumer info is readable
        result = await submit_at(running.worker, SWARM, running.synth, 0.8, seed=7)
        got = await stream.all_of(
            score=score_for(result.id),
            board=row("leaderboard", lambda b: bool(b["task"] == running.synth.task and b["results"] >= 1)),
        )
        assert got["score"]["status"] == "accepted"
    assert violations(caplog) == []


def _env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith("AAR_NATS") and k != "AAR_SWARM"}


async def _aar(*argv: str) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "cli",
        *argv,
        cwd=REPO,
        env=_env(),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )


async def test_aar_dashboard_prints_its_url_serves_and_stops_on_sigterm(running: Swarm) -> None:
    creds = str(running.auth.creds_path(Role.OBSERVER))
    proc = await _aar(
        "dashboard",
        "--nats",
        running.url,
        "--creds",
        creds,
        "--swarm",
        SWARM,
        "--port",
        "0",
        "--log-level",
        "warning",
    )
    try:
        assert proc.stdout is not None and proc.stderr is not None
        line = (await asyncio.wait_for(proc.stdout.readline(), 30)).decode().rstrip("\n")
        match = LINE.match(line)
        assert match, line
        async with EventStream(match.group(1)) as stream:
            assert (await stream.next()).name == "snapshot"
            result = await submit_at(running.worker, SWARM, running.synth, 0.82, seed=8)
            await stream.until(score_for(result.id))
            proc.send_signal(signal.SIGTERM)
            rc = await asyncio.wait_for(proc.wait(), 15)
        assert rc == 0
        assert (await proc.stdout.read()) == b""  # exactly one line on stdout
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()


async def test_aar_dashboard_for_a_swarm_it_cannot_read_says_so(running: Swarm) -> None:
    creds = str(running.auth.creds_path(Role.OBSERVER))
    proc = await _aar(
        "dashboard", "--nats", running.url, "--creds", creds, "--swarm", "elsewhere", "--port", "0"
    )
    out, err = await asyncio.wait_for(proc.communicate(), 30)
    assert proc.returncode == 2 and out == b""
    assert "aar: error: cannot follow swarm 'elsewhere'" in err.decode()


async def test_credentials_that_cannot_read_the_whole_record_are_refused_with_a_reason(
    running: Swarm,
) -> None:
    # An agent may read the public streams but not usage, progress or results.
    async with Bus.connect(running.config(Role.AGENT)) as agent:
        with pytest.raises(BusError, match="may not read"):
            await Dashboard(agent, SWARM).start()
