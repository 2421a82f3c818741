"""``aar leaderboard`` and ``aar budget`` against a running scorer."""

from __future__ import annotations

import json

import numpy as np

from bus import Bus, Kind, StartAt, streams
from schemas import Leaderboard, ScoreEvent
from scorer import Scorer
from scorer.synthetic import SyntheticTask, submit
from tests.cli.conftest import RunCli
from tests.helpers import Collector, eventually


async def test_leaderboard_prints_and_recomputes_from_verdicts(
    bus: Bus, swarm: str, synth: SyntheticTask, scorer: Scorer, nats_url: str, run_cli: RunCli
) -> None:
    scores: Collector[ScoreEvent] = Collector()
    await bus.subscribe(swarm, Kind.SCORES, scores, expect=ScoreEvent, start=StartAt.all())
    rng = np.random.default_rng(0)
    for seed in range(3):
        dev, final = synth.with_accuracy("dev", 0.8, rng), synth.with_accuracy("final", 0.8, rng)
        await submit(bus, swarm, synth, dev=dev, final=final, method="vote", seed=seed, agent="alice")
    await scores.wait_for(3)
    kv = await bus.kv(streams.leaderboard_bucket(swarm))

    async def written() -> bool:
        board = await kv.get(synth.task)
        return isinstance(board, Leaderboard) and board.results == 3

    await eventually(written)
    shown = await run_cli("leaderboard", "--nats", nats_url, "--swarm", swarm)
    assert shown.rc == 0, shown.err
    assert "synth: 3 results" in shown.out and "* vote-" in shown.out and "alice" in shown.out
    as_json = await run_cli("leaderboard", "--nats", nats_url, "--swarm", swarm, "--json")
    board = json.loads(as_json.out)["synth"]
    assert board["standings"][0]["verified"] and board["standings"][0]["seeds"] == [0, 1, 2]
    checked = await run_cli("leaderboard", "--nats", nats_url, "--swarm", swarm, "--recompute")
    assert checked.rc == 0 and "every leaderboard number matches its verdicts" in checked.out
    budget = await run_cli("budget", "--nats", nats_url, "--swarm", swarm, "--agent", "alice", "--json")
    assert budget.rc == 0, budget.err
    assert json.loads(budget.out)["dev_queries_used"] == 3


async def test_budget_without_a_scorer_is_a_clear_error(
    bus: Bus, swarm: str, nats_url: str, run_cli: RunCli
) -> None:
    got = await run_cli("budget", "--nats", nats_url, "--swarm", swarm)
    assert got.rc != 0 and "the scorer did not answer" in got.err
