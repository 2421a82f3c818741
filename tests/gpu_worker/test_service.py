"""The worker service end to end through a real nats-server: prepare, request, progress, result."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
import textwrap
from collections.abc import AsyncIterator
from pathlib import Path

import pytest_asyncio

from bus import Bus, Kind, StartAt, streams
from bus.store import NamedObjects
from gpu_worker import catalog
from gpu_worker.service import Worker
from gpu_worker.splits import SplitSizes
from schemas import ExperimentProgress, ExperimentRequest, ExperimentResult, Presence, TaskInfo
from schemas.artifacts import TaskLabels, TaskView
from tests.conftest import TEST_RETRY
from tests.helpers import Collector, eventually

SIZES = SplitSizes(weak_train=80, dev=100, final=100, min_pool=50)


@pytest_asyncio.fixture(loop_scope="session")
async def prepared(bus: Bus, swarm: str, task_file: Path, cache_root: Path) -> TaskInfo:
    from gpu_worker.tasks import Columns

    return await catalog.prepare(
        bus,
        swarm,
        str(task_file),
        sizes=SIZES,
        strong_model="test-bow",
        prompt_model="test-prompt",
        columns=Columns(id="id"),
    )


@pytest_asyncio.fixture(loop_scope="session")
async def worker(bus: Bus, swarm: str, prepared: TaskInfo) -> AsyncIterator[Worker]:
    async with Worker(bus, swarm, name="w1", device="cpu", heartbeat_s=0.5) as w:
        yield w


def request(swarm: str, method: str = "naive", **fields: object) -> ExperimentRequest:
    return ExperimentRequest(swarm=swarm, sender="agent-1", task="tiny", method=method, **fields)  # type: ignore[arg-type]


async def results_of(bus: Bus, swarm: str) -> Collector[ExperimentResult]:
    got: Collector[ExperimentResult] = Collector()
    await bus.subscribe(swarm, Kind.RESULTS, got, expect=ExperimentResult, start=StartAt.all())
    return got


async def test_prepare_splits_views_from_labels(bus: Bus, swarm: str, prepared: TaskInfo) -> None:
    view = TaskView.from_bytes(await (await bus.artifacts(swarm)).get(prepared.view))
    assert prepared.sizes == {"weak_train": 80, "pool": 220, "dev": 100, "final": 100}
    assert view.digest() == prepared.view_digest
    assert len(view.weak_train_labels) == 80  # the only labels a worker gets
    labels = TaskLabels.from_bytes(
        await (await NamedObjects.open(bus, streams.labels_bucket(swarm))).get("tiny")
    )
    assert set(labels.dev) == set(view.dev.ids) and set(labels.final) == set(view.final.ids)
    assert not {"label", "labels"} & set(json.dumps(view.dev.ids))  # ids only, no label leaks in


async def test_a_request_becomes_progress_and_predictions(bus: Bus, swarm: str, worker: Worker) -> None:
    results = await results_of(bus, swarm)
    progress: Collector[ExperimentProgress] = Collector()
    await bus.subscribe(swarm, Kind.PROGRESS, progress, expect=ExperimentProgress, start=StartAt.all())
    req = request(swarm, seed=3)
    await bus.publish(req)
    [result] = await results.wait_for(1, timeout=60)
    assert result.status == "ok", result.error
    assert result.lineage.request_id == req.id and result.seed == 3 and result.worker == "w1"
    assert result.data_hash is not None and {"prepare", "method", "total"} <= result.timings.keys()
    # 100 examples a split: small enough to ride in the result itself, with nothing stored.
    assert set(result.inline_predictions) == {"dev", "final"} and not result.predictions
    sets = await (await bus.artifacts(swarm)).prediction_sets(result)
    for split in ("dev", "final"):
        preds = sets[split]
        labels = preds.label_list()  # packed, in the view's order of the split
        assert preds.split == split and len(labels) == 100 and set(labels) <= {0, 1}
        assert preds.view_digest == result.data_hash
    stages = [p.stage for p in await progress.wait_for(3)]
    assert stages == ["preparing", "running", "uploading"]


async def test_hopeless_requests_fail_with_a_reason_and_leave_the_queue(
    bus: Bus, swarm: str, worker: Worker
) -> None:
    results = await results_of(bus, swarm)
    await bus.publish(ExperimentRequest(swarm=swarm, sender="a", task="nonexistent", method="naive"))
    await bus.publish(request(swarm, method="no-such-method"))
    await bus.publish(request(swarm, method="conf_filter", params={"keep": "lots"}))
    failed = await results.wait_for(3, timeout=60)
    reasons = sorted(r.error or "" for r in failed)
    assert all(r.status == "failed" for r in failed)
    assert any("unknown task 'nonexistent'; prepared tasks: tiny" in r for r in reasons)
    assert any("unknown method 'no-such-method'" in r for r in reasons)
    assert any("keep" in r for r in reasons)

    async def drained() -> bool:
        return (await bus.js.stream_info(streams.stream_name(swarm, Kind.REQUESTS))).state.messages == 0

    await eventually(drained)


async def test_custom_code_runs_sandboxed_and_its_failures_come_back(
    bus: Bus, swarm: str, worker: Worker
) -> None:
    artifacts = await bus.artifacts(swarm)
    good = await artifacts.put(b"def run(inputs, n_classes, seed):\n    return inputs['weak_eval']\n")
    evil = await artifacts.put(b"import socket\ndef run(inputs, n_classes, seed):\n    socket.socket()\n")
    results = await results_of(bus, swarm)
    await bus.publish(request(swarm, method="custom", code=good))
    await bus.publish(request(swarm, method="custom", code=evil))
    done = {r.code_hash: r for r in await results.wait_for(2, timeout=60)}
    assert done[good.sha256].status == "ok"
    assert done[evil.sha256].status == "failed"
    assert "socket.__new__ is not allowed" in (done[evil.sha256].error or "")


async def test_presence_advertises_the_worker(bus: Bus, swarm: str, worker: Worker) -> None:
    presence = await (await bus.kv(streams.presence_bucket(swarm))).get("w1")
    assert isinstance(presence, Presence)
    assert presence.role == "worker" and presence.info["device"] == "cpu" and "cpu" in presence.capabilities


async def test_a_killed_worker_s_job_is_finished_once_by_another(
    nats_url: str, bus: Bus, swarm: str, prepared: TaskInfo, cache_root: Path
) -> None:
    # A real worker process whose experiment hangs; it is killed mid-job, without acking.
    script = textwrap.dedent(f"""
        import asyncio, threading
        import tests.gpu_worker.conftest  # registers the test encoder
        import gpu_worker.service as service
        from bus import Bus, BusConfig

        def hang(*args, **kwargs):
            print("running", flush=True)
            threading.Event().wait()

        service.run_experiment = hang

        async def main():
            async with Bus.connect(BusConfig(servers=[{nats_url!r}])) as bus:
                async with service.Worker(bus, {swarm!r}, name="doomed", device="cpu", heartbeat_s=0.5):
                    await asyncio.Event().wait()

        asyncio.run(main())
    """)
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        script,
        stdout=asyncio.subprocess.PIPE,
        cwd=os.getcwd(),
        env={**os.environ, "AAR_CACHE_DIR": str(cache_root)},
    )
    results = await results_of(bus, swarm)
    req = request(swarm, seed=7)
    try:
        await bus.publish(req)
        assert proc.stdout is not None
        assert (await asyncio.wait_for(proc.stdout.readline(), 60)).strip() == b"running"
    finally:
        proc.send_signal(signal.SIGKILL)
        await proc.wait()
    async with Worker(bus, swarm, name="survivor", device="cpu", heartbeat_s=0.5):
        [result] = await results.wait_for(1, timeout=TEST_RETRY.ack_wait_s + 60)
        assert result.status == "ok" and result.worker == "survivor"
        assert result.lineage.request_id == req.id
        await asyncio.sleep(TEST_RETRY.ack_wait_s + 0.5)
    assert len(results.messages) == 1


async def test_finetune_requests_stream_loss_and_eta(bus: Bus, swarm: str, worker: Worker) -> None:
    results = await results_of(bus, swarm)
    progress: Collector[ExperimentProgress] = Collector()
    await bus.subscribe(swarm, Kind.PROGRESS, progress, expect=ExperimentProgress, start=StartAt.all())
    tiny = {"batch_size": 8, "max_length": 16, "max_examples": 16, "lr": 1e-4, "epochs": 2}
    req = request(swarm, method="finetune", params=tiny)
    await bus.publish(req)
    await bus.publish(request(swarm, method="finetune", params={"epochs": 1, "warp_speed": True}))
    done = {r.lineage.request_id: r for r in await results.wait_for(2, timeout=120)}
    ok = done[req.id]
    assert ok.status == "ok", ok.error
    assert set(ok.inline_predictions) == {"dev", "final"}
    steps = [p for p in progress.messages if p.stage == "finetune" and p.lineage.request_id == req.id]
    assert steps and steps[-1].step == steps[-1].total_steps == 4
    assert all(p.loss is not None and p.eta_s is not None for p in steps)
    [bad] = [r for r in done.values() if r.lineage.request_id != req.id]
    assert bad.status == "failed" and "unknown params ['warp_speed']" in (bad.error or "")


async def test_a_request_from_any_nats_client_is_run(bus: Bus, swarm: str, worker: Worker) -> None:
    # What a client in another language sends: hand-written JSON, only the required fields.
    results = await results_of(bus, swarm)
    raw = {
        "kind": "experiment_request",
        "swarm": swarm,
        "sender": "go-client",
        "id": "req-from-go",
        "task": "tiny",
        "method": "knn",
        "params": {"k": 5},
        "seed": 1,
    }
    await bus.js.publish(f"aar.{swarm}.requests.tiny", json.dumps(raw).encode())
    [result] = await results.wait_for(1, timeout=60)
    assert result.status == "ok", result.error
    assert result.lineage.request_id == "req-from-go" and result.params == {"k": 5}


async def test_prompting_methods_get_prompt_scores(bus: Bus, swarm: str, worker: Worker) -> None:
    import tests.gpu_worker.test_prompting  # noqa: F401  (registers the stand-in LM "test-prompt")

    results = await results_of(bus, swarm)
    await bus.publish(request(swarm, method="zeroshot"))
    await bus.publish(request(swarm, method="prompt_consistency", params={"mode": "agree"}))
    done = await results.wait_for(2, timeout=60)
    assert [r.status for r in done] == ["ok", "ok"], [r.error for r in done]
