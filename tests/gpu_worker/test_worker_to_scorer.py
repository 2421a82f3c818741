"""A real worker's predictions become a ScoreEvent through the real scorer, heard by a plain client."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import nats
from nats.aio.msg import Msg

from bus import Bus, Kind, replay, subjects
from gpu_worker import catalog
from gpu_worker.service import Worker
from gpu_worker.splits import SplitSizes
from gpu_worker.tasks import Columns
from schemas import ExperimentRequest, Verdict
from scorer import Scorer, ScorerConfig


async def test_a_workers_predictions_are_scored_against_recorded_baselines(
    bus: Bus, swarm: str, task_file: Path, cache_root: Path, nats_url: str
) -> None:
    sizes = SplitSizes(weak_train=80, dev=100, final=100, min_pool=50)
    await catalog.prepare(
        bus, swarm, str(task_file), sizes=sizes, strong_model="test-bow", columns=Columns(id="id")
    )
    baseline = await catalog.record_baselines(bus, swarm, "tiny", seeds=2)
    plain = await nats.connect(nats_url)
    heard: asyncio.Queue[dict[str, object]] = asyncio.Queue()

    async def on_score(msg: Msg) -> None:
        await heard.put(json.loads(msg.data))

    await plain.subscribe(subjects.kind_filter(swarm, Kind.SCORES), cb=on_score)
    try:
        async with (
            Worker(bus, swarm, name="w1", device="cpu") as _,
            Scorer(bus, swarm, ScorerConfig(leaderboard_every_s=0.05)),
        ):
            req = ExperimentRequest(swarm=swarm, sender="alice", task="tiny", method="naive", seed=1)
            await bus.publish(req)
            score = await asyncio.wait_for(heard.get(), 90)
    finally:
        await plain.close()
    assert score["kind"] == "score" and score["status"] == "accepted", score
    assert score["agent"] == "alice" and score["worker"] == "w1" and score["method"] == "naive"
    assert isinstance(score["lineage"], dict) and score["lineage"]["request_id"] == req.id
    assert score["data_hash"] == baseline.view_digest and "final" not in json.dumps(score)
    [verdict] = await replay(bus, swarm, Kind.VERDICTS, Verdict)
    gap = baseline.ceiling_acc["final"] - baseline.weak_acc["final"]
    assert abs(verdict.pgr["final"] - (verdict.accuracy["final"] - baseline.weak_acc["final"]) / gap) < 1e-4
    assert verdict.lineage.request_id == req.id and verdict.status == "accepted"
