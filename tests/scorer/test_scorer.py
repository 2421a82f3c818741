"""The scorer through a real nats-server: scores, rejections, gaming detectors, budgets, leaderboard."""

from __future__ import annotations

import asyncio
import json

import msgspec
import nats
import numpy as np
import pytest
from nats.aio.msg import Msg

from bus import Bus, Kind, StartAt, replay, streams, subjects
from schemas import (
    BudgetEvent,
    BudgetQuery,
    BudgetStatus,
    Flag,
    ForumPost,
    Leaderboard,
    Lineage,
    ScoreEvent,
    Verdict,
)
from schemas.artifacts import DEV_HIDDEN
from scorer import BUDGET_SERVICE, Scorer, ScorerConfig
from scorer.synthetic import SyntheticTask, submit
from scorer.truth import TruthStore
from tests.helpers import Collector, eventually
from tests.scorer.conftest import TEST_CONFIG, WORKER, register

pytestmark = pytest.mark.usefixtures("scorer")


async def collect(bus: Bus, swarm: str, kind: Kind, expect: type) -> Collector:  # type: ignore[type-arg]
    got: Collector = Collector()  # type: ignore[type-arg]
    await bus.subscribe(swarm, kind, got, expect=expect, start=StartAt.all())
    return got


async def score_of(scores: Collector[ScoreEvent], result_id: str, timeout: float = 10.0) -> ScoreEvent:
    await eventually(lambda: any(s.lineage.result_id == result_id for s in scores.messages), timeout)
    return next(s for s in scores.messages if s.lineage.result_id == result_id)


def rng(seed: int = 0) -> np.random.Generator:
    return np.random.default_rng(seed)


async def test_predictions_become_a_score_a_plain_nats_client_reads_as_json(
    bus: Bus, swarm: str, synth: SyntheticTask, nats_url: str
) -> None:
    plain = await nats.connect(nats_url)
    heard: asyncio.Queue[bytes] = asyncio.Queue()

    async def on_msg(msg: Msg) -> None:
        await heard.put(msg.data)

    await plain.subscribe(subjects.kind_filter(swarm, Kind.SCORES), cb=on_msg)
    r = rng()
    dev, final = synth.with_accuracy("dev", 0.8, r), synth.with_accuracy("final", 0.8, r)
    result = await submit(bus, swarm, synth, dev=dev, final=final)
    wire = json.loads(await asyncio.wait_for(heard.get(), 10))
    await plain.close()
    assert wire["kind"] == "score" and wire["status"] == "accepted" and wire["split"] == "dev"
    assert wire["lineage"] == {"request_id": result.lineage.request_id, "result_id": result.id}
    assert wire["agent"] == "agent" and wire["worker"] == WORKER and wire["answer"] in ("public", "holdout")
    # The answer is the public half's accuracy (rounded to 0.005), or the hidden half's with noise.
    hidden = (await TruthStore(bus, swarm).get(synth.task)).dev_holdout
    right = np.asarray(dev) == synth.gold("dev")
    half = right[hidden if wire["answer"] == "holdout" else ~hidden].mean()
    assert abs(wire["accuracy"] - half) <= (0.0025 + 1e-9 if wire["answer"] == "public" else 0.1)
    assert wire["pgr"] == pytest.approx((wire["accuracy"] - 0.7) / 0.2, abs=1e-3)
    assert "final" not in json.dumps(wire)  # the sealed split's score never goes to agents
    [verdict] = [
        v for v in await replay(bus, swarm, Kind.VERDICTS, Verdict) if v.lineage.result_id == result.id
    ]
    expected = float((np.asarray(final) == synth.gold("final")).mean())
    assert verdict.accuracy["final"] == pytest.approx(expected, abs=1e-6)
    assert verdict.pgr["final"] == pytest.approx((verdict.accuracy["final"] - 0.7) / 0.2, abs=1e-4)


@pytest.mark.parametrize(
    ("case", "reason", "inline"),
    [
        ("missing", "1 missing", False),
        ("repeated", "1 repeated", False),
        ("unknown", "1 unknown", False),
        ("out_of_range", "outside 0..1", False),
        ("short_labels", "not a prediction set", False),
        # The same checks hold for prediction sets carried in the result itself.
        ("missing", "1 missing", True),
        ("out_of_range", "outside 0..1", True),
        ("short_packed", "399 labels for the split's 400", True),
    ],
)
async def test_malformed_predictions_are_rejected_flagged_and_the_scorer_goes_on(
    bus: Bus, swarm: str, synth: SyntheticTask, case: str, reason: str, inline: bool
) -> None:
    scores = await collect(bus, swarm, Kind.SCORES, ScoreEvent)
    flags = await collect(bus, swarm, Kind.FLAGS, Flag)
    dev, final = synth.with_accuracy("dev", 0.8, rng()), synth.with_accuracy("final", 0.8, rng())
    ids = synth.ids("dev")
    if case == "missing":
        ids, dev = ids[1:], dev[1:]
    elif case == "repeated":
        ids = [ids[1], *ids[1:]]
    elif case == "unknown":
        ids = ["nope", *ids[1:]]
    elif case == "out_of_range":
        dev = [5, *dev[1:]]
    if case == "short_labels":
        # A worker bug: ids and labels of different lengths never make a valid PredictionSet.
        raw = msgspec.msgpack.encode(
            {
                "task": synth.task,
                "split": "dev",
                "view_digest": synth.view_digest,
                "ids": ids,
                "labels": dev[1:],
            }
        )
        good = await submit(bus, swarm, synth, dev=dev, final=final, publish=False)
        ref = await (await bus.artifacts(swarm)).put(raw)
        bad = msgspec.structs.replace(good, predictions={**good.predictions, "dev": ref})
        await bus.publish(bad)
    elif case == "short_packed":
        bad = await submit(bus, swarm, synth, dev=dev[1:], final=final, inline=inline)
    else:
        bad = await submit(bus, swarm, synth, dev=dev, final=final, ids={"dev": ids}, inline=inline)
    assert bool(bad.inline_predictions) == inline and bool(bad.predictions) != inline
    score = await score_of(scores, bad.id)
    assert score.status == "rejected" and reason in (score.reason or "") and score.pgr is None
    await eventually(lambda: any(f.lineage.result_id == bad.id for f in flags.messages))
    [flag] = [f for f in flags.messages if f.lineage.result_id == bad.id]
    assert flag.detector == "invalid_predictions" and flag.suspect == "agent"
    good = await submit(bus, swarm, synth, dev=synth.with_accuracy("dev", 0.8, rng()), final=final)
    assert (await score_of(scores, good.id)).status == "accepted"


async def test_a_failed_experiment_is_rejected_without_a_flag(
    bus: Bus, swarm: str, synth: SyntheticTask
) -> None:
    from schemas import ExperimentResult

    scores = await collect(bus, swarm, Kind.SCORES, ScoreEvent)
    failed = ExperimentResult(
        swarm=swarm,
        sender=WORKER,
        worker=WORKER,
        task=synth.task,
        method="vote",
        status="failed",
        error="CUDA out of memory",
        lineage=Lineage(request_id="req1"),
    )
    await bus.publish(failed)
    score = await score_of(scores, failed.id)
    assert score.status == "rejected" and "CUDA out of memory" in (score.reason or "") and not score.flags


async def _flagged(bus: Bus, swarm: str, result_id: str) -> tuple[ScoreEvent, list[Flag]]:
    scores = await collect(bus, swarm, Kind.SCORES, ScoreEvent)
    score = await score_of(scores, result_id)
    flags = await collect(bus, swarm, Kind.FLAGS, Flag)
    await eventually(lambda: any(f.lineage.result_id == result_id for f in flags.messages))
    return score, [f for f in flags.messages if f.lineage.result_id == result_id]


async def test_constant_predictions_are_flagged_and_kept_off_the_leaderboard(
    bus: Bus, swarm: str, synth: SyntheticTask
) -> None:
    n = len(synth.ids("dev"))
    result = await submit(bus, swarm, synth, dev=[1] * n, final=[1] * n, method="constant")
    score, flags = await _flagged(bus, swarm, result.id)
    assert [f.detector for f in flags] == ["constant"] and score.flags == ["constant"]
    assert flags[0].evidence["share"] == 1.0 and "leaderboard" in (score.reason or "")
    [verdict] = [
        v for v in await replay(bus, swarm, Kind.VERDICTS, Verdict) if v.lineage.result_id == result.id
    ]
    assert not verdict.leaderboard


async def test_predictions_that_only_match_the_label_prior_are_flagged(
    bus: Bus, swarm: str, synth: SyntheticTask
) -> None:
    r = rng(5)
    dev = r.permutation(synth.gold("dev")).tolist()  # the right label mix, on the wrong examples
    final = r.permutation(synth.gold("final")).tolist()
    result = await submit(bus, swarm, synth, dev=dev, final=final, method="shuffle")
    _, flags = await _flagged(bus, swarm, result.id)
    assert [f.detector for f in flags] == ["prior_only"]


async def test_copying_the_weak_labels_is_flagged(bus: Bus, swarm: str, synth: SyntheticTask) -> None:
    dev = [synth.weak.dev[i] for i in synth.ids("dev")]
    final = [synth.weak.final[i] for i in synth.ids("final")]
    result = await submit(bus, swarm, synth, dev=dev, final=final, method="copy")
    score, flags = await _flagged(bus, swarm, result.id)
    assert [f.detector for f in flags] == ["weak_copy"] and abs(score.pgr or 0) < 0.2


async def test_adaptive_probing_is_flagged(bus: Bus, swarm: str, synth: SyntheticTask) -> None:
    base = np.asarray(synth.with_accuracy("dev", 0.75, rng(2)))
    final = synth.with_accuracy("final", 0.75, rng(2))
    ids = []
    for k in range(4):  # flip one different example each time, as a prober reading the score would
        probe = base.copy()
        probe[k] = 1 - probe[k]
        ids.append(
            (
                await submit(
                    bus, swarm, synth, dev=probe.tolist(), final=final, code_hash=f"c{k}", method="probe"
                )
            ).id
        )
    flags = await collect(bus, swarm, Kind.FLAGS, Flag)
    # Scored concurrently: whichever of the four is judged last completes the run of probes.
    await eventually(lambda: any(f.detector == "probing" for f in flags.messages))
    [flag] = [f for f in flags.messages if f.detector == "probing"]
    assert flag.lineage.result_id in ids and len(flag.evidence["near"]) == 3 and flag.suspect == "agent"


async def test_seeds_of_a_builtin_method_are_not_probes(bus: Bus, swarm: str, synth: SyntheticTask) -> None:
    scores = await collect(bus, swarm, Kind.SCORES, ScoreEvent)
    base = np.asarray(synth.with_accuracy("dev", 0.75, rng(3)))
    final = synth.with_accuracy("final", 0.75, rng(3))
    for seed in range(4):
        probe = base.copy()
        probe[seed] = 1 - probe[seed]
        await submit(bus, swarm, synth, dev=probe.tolist(), final=final, seed=seed, method="vote")
    await scores.wait_for(4)
    assert all(not s.flags for s in scores.messages)


async def test_results_from_someone_not_a_worker_are_rejected_and_flagged(
    bus: Bus, swarm: str, synth: SyntheticTask
) -> None:
    await register(bus, swarm, "mallory", "agent")
    dev, final = synth.with_accuracy("dev", 0.99, rng()), synth.with_accuracy("final", 0.99, rng())
    as_agent = await submit(bus, swarm, synth, dev=dev, final=final, worker="mallory")
    score, flags = await _flagged(bus, swarm, as_agent.id)
    assert score.status == "rejected" and [f.detector for f in flags] == ["forged_result"]
    assert flags[0].severity == "critical" and "agent" in flags[0].summary
    impersonated = await submit(bus, swarm, synth, dev=dev, final=final, sender="mallory", worker=WORKER)
    score, flags = await _flagged(bus, swarm, impersonated.id)
    assert score.status == "rejected" and "in the name of" in (score.reason or "")


async def test_a_score_event_the_scorer_did_not_publish_is_flagged(bus: Bus, swarm: str) -> None:
    flags = await collect(bus, swarm, Kind.FLAGS, Flag)
    forged = ScoreEvent(swarm=swarm, sender="scorer", task="synth", method="x", status="accepted", pgr=1.0)
    await bus.publish(forged)
    await eventually(lambda: any(f.detector == "forged_score" for f in flags.messages))
    [flag] = [f for f in flags.messages if f.detector == "forged_score"]
    assert flag.evidence["score_id"] == forged.id and flag.suspect == "scorer"


async def test_three_seeds_make_a_verified_entry_and_a_new_best_is_announced(
    bus: Bus, swarm: str, synth: SyntheticTask
) -> None:
    forum = await collect(bus, swarm, Kind.FORUM, ForumPost)
    scores = await collect(bus, swarm, Kind.SCORES, ScoreEvent)
    for seed in range(3):
        r = rng(10 + seed)
        dev, final = synth.with_accuracy("dev", 0.8, r), synth.with_accuracy("final", 0.8, r)
        await submit(bus, swarm, synth, dev=dev, final=final, method="good", seed=seed)
    for seed in range(2):  # better, but not verified: no announcement, no final column
        r = rng(20 + seed)
        dev, final = synth.with_accuracy("dev", 0.88, r), synth.with_accuracy("final", 0.88, r)
        await submit(bus, swarm, synth, dev=dev, final=final, method="better", seed=seed)
    await scores.wait_for(5)
    [post] = await forum.wait_for(1)
    assert "new-best" in post.tags and "good" in post.title and len(post.evidence) == 3
    kv = await bus.kv(streams.leaderboard_bucket(swarm))

    async def board() -> Leaderboard | None:
        b = await kv.get(synth.task)
        return b if isinstance(b, Leaderboard) and b.results == 5 else None

    async def written() -> bool:
        return await board() is not None

    await eventually(written)
    lb = await board()
    assert lb is not None
    good, better = lb.standings  # verified first
    assert good.verified and good.method == "good" and good.seeds == [0, 1, 2] and lb.best == good.config_key
    assert good.final_pgr is not None and good.final_ci is not None
    assert good.final_ci[0] < good.final_pgr < good.final_ci[1] and abs(good.final_pgr - 0.5) < 0.2
    assert not better.verified and better.final_pgr is None and better.final_ci is None
    verdicts = [
        v for v in await replay(bus, swarm, Kind.VERDICTS, Verdict) if v.config_key == good.config_key
    ]
    assert good.final_pgr == pytest.approx(np.mean([v.pgr["final"] for v in verdicts]), abs=1e-4)


async def test_the_dev_budget_runs_out_with_budget_events(bus: Bus, swarm: str, synth: SyntheticTask) -> None:
    scores = await collect(bus, swarm, Kind.SCORES, ScoreEvent)
    events = await collect(bus, swarm, Kind.BUDGET, BudgetEvent)
    async with Scorer(bus, swarm, ScorerConfig(name="tight", dev_queries_per_agent=3, concurrency=1)):
        pass  # only TEST_CONFIG's scorer runs below; this checks a second config starts and stops
    for _ in range(3):
        await submit(
            bus,
            swarm,
            synth,
            dev=synth.with_accuracy("dev", 0.8, rng()),
            final=synth.gold("final").tolist(),
            agent="eve",
        )
    await scores.wait_for(3)
    status = await bus.request(subjects.rpc(swarm, BUDGET_SERVICE), BudgetQuery(swarm=swarm, sender="eve"))
    assert isinstance(status, BudgetStatus)
    assert status.agent == "eve" and status.dev_queries_used == 3
    assert status.left == TEST_CONFIG.dev_queries_per_agent - 3 and "thresholdout" in status.rule
    assert not events.messages


async def test_an_agent_over_its_budget_gets_no_dev_answer(
    bus: Bus, swarm: str, synth: SyntheticTask, scorer: Scorer
) -> None:
    await scorer.close()
    scores = await collect(bus, swarm, Kind.SCORES, ScoreEvent)
    events = await collect(bus, swarm, Kind.BUDGET, BudgetEvent)
    async with Scorer(bus, swarm, ScorerConfig(dev_queries_per_agent=5, warn_at=0.6, concurrency=1)):
        for _ in range(6):
            r = rng()
            await submit(
                bus,
                swarm,
                synth,
                dev=synth.with_accuracy("dev", 0.8, r),
                final=synth.with_accuracy("final", 0.8, r),
                agent="eve",
            )
        got = await scores.wait_for(6)
        await events.wait_for(2)
    answered = [s for s in got if s.answer in ("public", "holdout")]
    withheld = [s for s in got if s.answer == "withheld"]
    assert len(answered) == 5 and len(withheld) == 1
    assert withheld[0].pgr is None and withheld[0].accuracy is None and withheld[0].status == "accepted"
    assert "budget" in (withheld[0].reason or "") and withheld[0].budget_left == 0
    assert [(e.level, e.scope, e.target, e.used) for e in events.messages] == [
        ("warn", "agent", "eve", 3),
        ("stop", "agent", "eve", 5),
    ]


async def test_a_restarted_scorer_loses_and_double_counts_nothing(
    bus: Bus, swarm: str, synth: SyntheticTask, scorer: Scorer
) -> None:
    scores = await collect(bus, swarm, Kind.SCORES, ScoreEvent)
    final = synth.with_accuracy("final", 0.8, rng())
    for seed in range(2):
        await submit(
            bus, swarm, synth, dev=synth.with_accuracy("dev", 0.8, rng(seed)), final=final, seed=seed
        )
    await scores.wait_for(2)
    await scorer.close()
    for seed in range(2, 5):  # published while no scorer runs
        await submit(
            bus, swarm, synth, dev=synth.with_accuracy("dev", 0.8, rng(seed)), final=final, seed=seed
        )
    async with Scorer(bus, swarm, TEST_CONFIG) as again:
        await scores.wait_for(5)
        status = await bus.request(
            subjects.rpc(swarm, BUDGET_SERVICE), BudgetQuery(swarm=swarm, sender="agent")
        )
        assert isinstance(status, BudgetStatus) and status.dev_queries_used == 5
        # Counted once all of a result's messages are stored, which can be after its score is seen.
        await eventually(lambda: again.scored == 3)
        assert again.scored == 3
    verdicts = await replay(bus, swarm, Kind.VERDICTS, Verdict)
    assert len(verdicts) == 5 and len({v.lineage.result_id for v in verdicts}) == 5
    await asyncio.sleep(0.3)
    assert len(scores.messages) == 5 and len({s.id for s in scores.messages}) == 5


async def test_reported_spending_crosses_warn_throttle_and_stop(
    bus: Bus, swarm: str, synth: SyntheticTask, scorer: Scorer
) -> None:
    from schemas import UsageReport
    from scorer.spending import SpendLimits

    await scorer.close()
    events = await collect(bus, swarm, Kind.BUDGET, BudgetEvent)
    limits = SpendLimits(agent_tokens=1000, swarm_tokens=0, agent_usd=0, swarm_usd=0)
    config = ScorerConfig(spending=limits, concurrency=1)
    await bus.publish(UsageReport(swarm=swarm, sender="carol", agent="carol", input_tokens=500))
    async with Scorer(bus, swarm, config) as first:
        await eventually(lambda: first.spending.by_agent["tokens"]["carol"] == 500)
        for tokens in (400, 150):
            await bus.publish(UsageReport(swarm=swarm, sender="carol", agent="carol", output_tokens=tokens))
        got = await events.wait_for(3)
    assert [(e.level, e.resource, e.scope, e.target, e.used) for e in got] == [
        ("warn", "tokens", "agent", "carol", 900),
        ("throttle", "tokens", "agent", "carol", 900),
        ("stop", "tokens", "agent", "carol", 1050),
    ]
    async with Scorer(bus, swarm, config) as again:  # sums come back; no event is sent twice
        await eventually(lambda: again.spending.by_agent["tokens"]["carol"] == 1050)
        await asyncio.sleep(0.3)
    assert len(events.messages) == 3


async def test_a_verdict_keeps_the_hidden_dev_half_apart(bus: Bus, swarm: str, synth: SyntheticTask) -> None:
    # Right exactly on the hidden half: there, where public answers never come from, it scores 1.0.
    hidden = (await TruthStore(bus, swarm).get(synth.task)).dev_holdout  # as the scorer loads it
    gold = synth.gold("dev")
    dev = np.where(hidden, gold, (gold + 1) % synth.n_classes).tolist()
    verdicts: Collector[Verdict] = Collector()
    await bus.subscribe(swarm, Kind.VERDICTS, verdicts, expect=Verdict, start=StartAt.all())
    result = await submit(bus, swarm, synth, dev=dev, final=synth.gold("final").tolist())
    await eventually(lambda: any(v.lineage.result_id == result.id for v in verdicts.messages), 10)
    [verdict] = [v for v in verdicts.messages if v.lineage.result_id == result.id]
    assert 0.3 < hidden.mean() < 0.7
    assert verdict.accuracy[DEV_HIDDEN] == 1.0
    assert verdict.accuracy["dev"] == pytest.approx(hidden.mean(), abs=1e-6)
    assert verdict.pgr[DEV_HIDDEN] == pytest.approx((1.0 - 0.7) / 0.2, abs=1e-4)
