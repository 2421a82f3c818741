"""The dashboard's model on its own: typed messages in, rows and deltas out, bounded in size."""

from __future__ import annotations

from typing import Literal

import msgspec
import pytest

from dashboard import rows
from dashboard.state import DashboardState, Delta, Limits, QueueStats
from schemas import (
    BudgetEvent,
    ExperimentProgress,
    ExperimentRequest,
    ExperimentResult,
    Flag,
    ForumPost,
    Hypothesis,
    Leaderboard,
    Lineage,
    Presence,
    ScoreEvent,
    Standing,
    TaskInfo,
    UsageReport,
)
from schemas.messages import ArtifactRef

SWARM = "s"


def score(result_id: str, *, pgr: float | None = 0.5, ts: float = 100.0, **fields: object) -> ScoreEvent:
    values: dict[str, object] = {
        "swarm": SWARM,
        "sender": "scorer",
        "id": f"score-{result_id}",
        "task": "rt",
        "method": "finetune",
        "status": "accepted",
        "pgr": pgr,
        "accuracy": 0.8,
        "agent": "a1",
        "worker": "w1",
        "budget_left": 42,
        "ts": ts,
        "lineage": Lineage(request_id=f"req-{result_id}", result_id=result_id),
    }
    values.update(fields)
    return ScoreEvent(**values)  # type: ignore[arg-type]


def types(deltas: list[Delta]) -> list[str]:
    return [d.type for d in deltas]


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_a_score_becomes_a_point_of_its_task_and_updates_the_agents_budget() -> None:
    state = DashboardState(SWARM)
    deltas = state.apply(score("r1", params={"lr": 0.1}, flags=["weak_copy"]))
    assert types(deltas) == ["score", "budget", "request"]
    point = deltas[0].data
    assert point["result_id"] == "r1" and point["request_id"] == "req-r1" and point["pgr"] == 0.5
    assert point["params"] == {"lr": 0.1} and point["flags"] == ["weak_copy"]
    assert deltas[1].data == {"target": "a1", "scope": "agent", "dev_left": 42, "levels": {}, "usage": None}
    state.apply(score("r1"))  # the same score again (a replay): one point, counted once
    snap = state.snapshot()
    assert [p["result_id"] for p in snap["scores"]["rt"]] == ["r1"] and snap["totals"]["scores"] == 1
    msgspec.json.encode(snap)  # the snapshot is plain JSON


def test_collections_keep_only_the_newest_entries() -> None:
    state = DashboardState(SWARM, limits=Limits(scores_per_task=3, posts=2, flags=2))
    for i in range(5):
        state.apply(score(f"r{i}", ts=float(i)))
        state.apply(ForumPost(swarm=SWARM, sender="a1", id=f"p{i}", body=f"post {i}"))
        state.apply(Flag(swarm=SWARM, sender="scorer", id=f"f{i}", detector="constant", summary="s"))
    snap = state.snapshot()
    assert [p["result_id"] for p in snap["scores"]["rt"]] == ["r2", "r3", "r4"]
    assert [p["id"] for p in snap["posts"]] == ["p3", "p4"]
    assert [f["id"] for f in snap["flags"]] == ["f3", "f4"]
    assert snap["totals"] == {"scores": 5, "posts": 5, "flags": 5, "results": 0}


def test_forum_rows_keep_threads_replies_and_untrusted_text_as_it_is() -> None:
    state = DashboardState(SWARM)
    root = ForumPost(swarm=SWARM, sender="a1", id="p1", title="<b>idea</b>", body="<script>x()</script>")
    reply = ForumPost(
        swarm=SWARM, sender="a2", id="p2", body="x" * 5000, thread_id="p1", reply_to="p1", tags=["t1"]
    )
    [d1] = state.apply(root)
    [d2] = state.apply(reply)
    assert d1.data["thread"] == "p1" and d1.data["reply_to"] is None
    # The page renders text with textContent: the model keeps it verbatim, never escaped twice.
    assert d1.data["title"] == "<b>idea</b>" and d1.data["body"] == "<script>x()</script>"
    assert d2.data["thread"] == "p1" and d2.data["reply_to"] == "p1" and d2.data["tags"] == ["t1"]
    assert d2.data["truncated"] and len(d2.data["body"]) == rows.BODY_CHARS + 1


def test_a_request_moves_from_queued_to_running_to_done_to_scored_and_never_back() -> None:
    state = DashboardState(SWARM)
    req = ExperimentRequest(swarm=SWARM, sender="a1", id="q1", task="rt", method="vanilla", seed=3)
    [queued] = state.apply(req)
    assert queued.data["status"] == "queued" and queued.data["agent"] == "a1" and queued.data["seed"] == 3
    assert state.apply(req) == []  # its stored copy, read after the live one

    def progress(step: int, ts: float) -> ExperimentProgress:
        return ExperimentProgress(
            swarm=SWARM,
            sender="w1",
            worker="w1",
            step=step,
            total_steps=10,
            stage="train",
            ts=ts,
            lineage=Lineage(request_id="q1"),
        )

    deltas = state.apply(progress(2, 10.0))
    assert types(deltas) == ["worker", "request"]
    assert deltas[0].data["status"] == "running" and deltas[0].data["task"] == "rt"
    assert deltas[1].data["status"] == "running" and deltas[1].data["worker"] == "w1"
    assert types(state.apply(progress(3, 11.0))) == ["worker"]  # still running: the request is unchanged
    result = ExperimentResult(
        swarm=SWARM,
        sender="w1",
        worker="w1",
        task="rt",
        method="vanilla",
        status="ok",
        ts=12.0,
        lineage=Lineage(request_id="q1"),
    )
    deltas = state.apply(result)
    assert types(deltas) == ["request", "worker"]
    assert deltas[0].data["status"] == "done" and deltas[1].data["status"] == "idle"
    assert deltas[1].data["step"] == 3
    assert state.apply(progress(9, 11.5)) == []  # a heartbeat replayed after the result
    deltas = state.apply(score("r1", lineage=Lineage(request_id="q1", result_id="r1"), pgr=0.7))
    assert types(deltas) == ["score", "budget", "request"]
    assert deltas[2].data["status"] == "scored" and deltas[2].data["pgr"] == 0.7


def test_a_request_never_seen_queued_is_known_by_its_result_or_its_score() -> None:
    state = DashboardState(SWARM)
    failed = ExperimentResult(
        swarm=SWARM,
        sender="w2",
        worker="w2",
        task="code",
        method="m",
        status="failed",
        error="boom",
        agent="a9",
        lineage=Lineage(request_id="q7"),
    )
    deltas = state.apply(failed)
    assert types(deltas) == ["request", "worker"]
    row = deltas[0].data
    assert row["id"] == "q7" and row["status"] == "failed" and row["error"] == "boom" and row["agent"] == "a9"
    assert deltas[1].data["stage"] == "failed"
    # Replayed by separate consumers, a score can come before its result: the result moves nothing back.
    [_, _, scored] = state.apply(score("r8", lineage=Lineage(request_id="q8", result_id="r8"), pgr=0.6))
    assert scored.data["id"] == "q8" and scored.data["status"] == "scored" and scored.data["pgr"] == 0.6
    late = ExperimentResult(
        swarm=SWARM,
        sender="w1",
        worker="w1",
        task="rt",
        method="m",
        status="ok",
        lineage=Lineage(request_id="q8"),
    )
    assert types(state.apply(late)) == ["worker"]
    assert state.requests["q8"]["status"] == "scored"


def test_presence_comes_goes_and_times_out_by_when_it_was_last_heard() -> None:
    clock = FakeClock()
    state = DashboardState(SWARM, presence_ttl_s=30.0, clock=clock)

    def beat(name: str, role: str = "agent") -> Presence:
        return Presence(swarm=SWARM, sender=name, role=role, name=name, host="h", pid=1)

    assert types(state.apply(beat("a1"))) == ["presence"]
    state.apply(beat("w1", "worker"))
    assert state.forget_presence("a1") == [Delta("presence_gone", {"name": "a1"})]
    assert state.forget_presence("a1") == []
    clock.now += 20
    state.apply(beat("a2"))
    clock.now += 15  # w1 last heard 35 s ago, a2 15 s ago
    assert state.prune() == [Delta("presence_gone", {"name": "w1"})]
    assert [p["name"] for p in state.snapshot()["presence"]] == ["a2"]


def test_budget_events_and_usage_add_up_per_target() -> None:
    state = DashboardState(SWARM)

    def event(scope: Literal["agent", "swarm"], target: str, level: Literal["warn", "stop"]) -> BudgetEvent:
        return BudgetEvent(
            swarm=SWARM,
            sender="scorer",
            scope=scope,
            target=target,
            resource="usd",
            used=20.0,
            limit=25.0,
            level=level,
        )

    state.apply(event("agent", "a1", "warn"))
    state.apply(event("swarm", "a1", "stop"))  # a swarm-wide budget with the same name: its own row
    for usd in (0.5, 0.25):
        state.apply(
            UsageReport(swarm=SWARM, sender="a1", agent="a1", input_tokens=100, output_tokens=10, usd=usd)
        )
    budgets = {b["target"]: b for b in state.snapshot()["budgets"]}
    assert budgets["a1"]["levels"]["usd"]["level"] == "warn"
    assert budgets["a1"]["usage"] == {"input_tokens": 200, "output_tokens": 20, "usd": 0.75, "requests": 0}
    assert budgets["swarm:a1"]["scope"] == "swarm" and budgets["swarm:a1"]["levels"]["usd"]["level"] == "stop"


def test_leaderboard_rows_carry_dev_and_verified_pgr_with_the_interval() -> None:
    state = DashboardState(SWARM)
    standings = [
        Standing(
            config_key=f"c{i}",
            method="m",
            seeds=[0, 1, 2],
            dev_pgr=0.5,
            final_pgr=0.4,
            final_ci=(0.3, 0.5),
            verified=True,
            result_ids=["r1", "r2", "r3"],
        )
        for i in range(rows.STANDINGS_PER_TASK + 5)
    ]
    board = Leaderboard(swarm=SWARM, sender="scorer", task="rt", standings=standings, best="c0", results=9)
    [delta] = state.apply(board)
    row = delta.data
    assert row["best"] == "c0" and row["configurations"] == len(standings)
    assert len(row["standings"]) == rows.STANDINGS_PER_TASK
    top = row["standings"][0]
    assert (
        top["final_ci"] == [0.3, 0.5]
        and top["verified"]
        and top["results"] == 3
        and top["seeds"] == [0, 1, 2]
    )
    assert "result_ids" not in top


def test_tasks_queue_counts_and_other_kinds() -> None:
    state = DashboardState(SWARM)
    ref = ArtifactRef(name="v", sha256="0" * 64, size=1)
    info = TaskInfo(
        swarm=SWARM,
        sender="op",
        task="rt",
        task_kind="single",
        label_names=["neg", "pos"],
        view=ref,
        view_digest="d",
    )
    assert state.apply(info)[0].data["labels"] == ["neg", "pos"]
    assert state.apply(Hypothesis(swarm=SWARM, sender="a1", title="h")) == []
    assert types(state.set_queue(QueueStats(pending=2, in_flight=1))) == ["queue"]
    assert state.set_queue(QueueStats(pending=2, in_flight=1)) == []  # unchanged: no delta
    assert state.snapshot()["queue"] == {
        "pending": 2,
        "in_flight": 1,
        "redelivered": 0,
        "waiting": 0,
        "known": True,
    }


@pytest.mark.parametrize("cap", [1, 3])
def test_requests_and_workers_are_capped(cap: int) -> None:
    state = DashboardState(SWARM, limits=Limits(requests=cap, workers=cap))
    for i in range(cap + 4):
        state.apply(ExperimentRequest(swarm=SWARM, sender="a", id=f"q{i}", task="rt", method="m"))
        state.apply(
            ExperimentProgress(
                swarm=SWARM, sender=f"w{i}", worker=f"w{i}", lineage=Lineage(request_id=f"q{i}")
            )
        )
    snap = state.snapshot()
    assert len(snap["requests"]) == cap and len(snap["workers"]) == cap
    assert snap["requests"][-1]["id"] == f"q{cap + 3}"
