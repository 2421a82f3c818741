"""``aar tasks prepare|list``, ``aar baselines`` and ``aar worker`` against a real server."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
from pathlib import Path

import pytest

from bus import Bus, Kind, StartAt, streams
from cli.main import main
from schemas import Baseline, ExperimentRequest, ExperimentResult
from tests.helpers import Collector


async def aar(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    capsys.readouterr()
    rc = await asyncio.to_thread(main, list(argv))
    out = capsys.readouterr()
    return rc, out.out, out.err


def flags(url: str, swarm: str) -> list[str]:
    return ["--nats", url, "--swarm", swarm, "--log-level", "warning"]


async def test_prepare_list_and_baselines(
    capsys: pytest.CaptureFixture[str], nats_url: str, bus: Bus, swarm: str, task_file: Path, cache_root: Path
) -> None:
    rc, out, err = await aar(
        capsys,
        "tasks",
        "prepare",
        str(task_file),
        "--id-column",
        "id",
        "--weak-train",
        "80",
        "--dev",
        "100",
        "--final",
        "100",
        "--min-pool",
        "50",
        "--strong-model",
        "test-bow",
        *flags(nats_url, swarm),
    )
    assert rc == 0, err
    assert out.startswith("tiny: weak_train=80 pool=220 dev=100 final=100 view=")
    rc, out, _ = await aar(capsys, "tasks", "list", *flags(nats_url, swarm))
    assert rc == 0 and out.split()[:2] == ["tiny", "single"]
    rc, out, err = await aar(capsys, "baselines", "--seeds", "2", "--json", *flags(nats_url, swarm))
    assert rc == 0, err
    record = json.loads(out)
    assert record["kind"] == "baseline" and record["seeds"] == [0, 1]
    assert 0.5 < record["ceiling_acc"]["dev"] <= 1.0
    stored = await (await bus.kv(streams.baselines_bucket(swarm))).get("tiny")
    assert isinstance(stored, Baseline) and stored.weak_acc == record["weak_acc"]


async def test_prepare_reports_bad_sources_clearly(
    capsys: pytest.CaptureFixture[str], nats_url: str, bus: Bus, swarm: str, tmp_path: Path
) -> None:
    rc, _, err = await aar(capsys, "tasks", "prepare", "no-such-task", *flags(nats_url, swarm))
    assert rc != 0 and "unknown task 'no-such-task'" in err
    bad = tmp_path / "bad.csv"
    bad.write_text("words,stars\nhello,1\n")
    rc, _, err = await aar(capsys, "tasks", "prepare", str(bad), *flags(nats_url, swarm))
    assert rc != 0 and "bad.csv" in err
    rc, _, err = await aar(capsys, "baselines", *flags(nats_url, swarm))
    assert rc != 0 and "no tasks prepared" in err


async def test_aar_worker_process_runs_requests_and_stops_on_sigint(
    nats_url: str, bus: Bus, swarm: str, task_file: Path, cache_root: Path
) -> None:
    from gpu_worker import catalog
    from gpu_worker.splits import SplitSizes
    from gpu_worker.tasks import Columns

    # The real command in its own process; the task uses the built-in tfidf weak model and, as its
    # strong model, a second tfidf-free encoder only the tests register, so it runs via a wrapper.
    await catalog.prepare(
        bus,
        swarm,
        str(task_file),
        sizes=SplitSizes(weak_train=80, dev=100, final=100, min_pool=50),
        strong_model="test-bow",
        columns=Columns(id="id"),
    )
    wrapper = "import sys, tests.gpu_worker.conftest; from cli.main import main; sys.exit(main(sys.argv[1:]))"
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        wrapper,
        "worker",
        "--device",
        "cpu",
        "--name",
        "w-cli",
        *flags(nats_url, swarm),
        stdout=asyncio.subprocess.PIPE,
        cwd=os.getcwd(),
        env={**os.environ, "AAR_CACHE_DIR": str(cache_root)},
    )
    try:
        assert proc.stdout is not None
        banner = await asyncio.wait_for(proc.stdout.readline(), 60)
        assert b"worker w-cli on cpu" in banner
        results: Collector[ExperimentResult] = Collector()
        await bus.subscribe(swarm, Kind.RESULTS, results, expect=ExperimentResult, start=StartAt.all())
        await bus.publish(ExperimentRequest(swarm=swarm, sender="a", task="tiny", method="soft"))
        [result] = await results.wait_for(1, timeout=60)
        assert result.status == "ok" and result.worker == "w-cli"
    finally:
        proc.send_signal(signal.SIGINT)
        rc = await asyncio.wait_for(proc.wait(), 30)
    assert rc == 0
