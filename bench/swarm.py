"""Swarm bench: (a) reaction latency of N agents to scores; (b, with --w2s) the offline swarm vs one method.

    python -m bench.swarm [--agents 100] [--events 20] [--w2s --task roget --minutes 4]

(a) N tiny agents in one process, one embedded nats-server; ScoreEvents published as the scorer
would, each stamped with its send time; latency = when ``on_score`` ran - when it was published.
(b) three offline researchers + a reviewer + real workers and a real scorer for ``--minutes`` on a
prepared task; then, on a fresh swarm with at most as many experiments, every library method at its
default params with 3 seeds each. Reports the final-split mean PGR of the swarm's best config
(>= 3 seeds) against that of the best single method (chosen the same way), read from the verdicts.
Both are chosen by their PGR on the hidden half of dev (ties by whole-dev PGR): researchers tune on
the public dev answers, so the half those answers never come from is the part of dev that can still
judge what they found (the reusable-holdout argument of Dwork et al., 2015); the final split is
only reported.
The last line printed is one JSON object; figures not measured are null.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import statistics
import tempfile
import time
from collections.abc import Callable
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

from bus import Bus, BusConfig, Delivery, Kind, NatsServer, ServerConfig, StartAt, ensure_swarm, replay
from bus.natsd import free_port
from schemas import Lineage, ScoreEvent, Verdict
from schemas.artifacts import DEV_HIDDEN
from swarm.agent import Agent


class Ear(Agent):  # type: ignore[type-arg]
    """Records when each score reached its handler."""

    role = "ear"

    async def setup(self) -> None:
        self.heard: dict[str, float] = {}

    async def on_score(self, score: ScoreEvent) -> None:
        self.heard[score.id] = time.time()


def _pct(xs: list[float], q: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(q * len(xs)))]


async def reaction(bus: Bus, swarm: str, agents: int, events: int) -> tuple[float, float]:
    async with AsyncExitStack() as stack:
        ears = [await stack.enter_async_context(Ear(bus, swarm, name=f"ear{i}")) for i in range(agents)]
        await asyncio.sleep(1.0)
        sent: dict[str, float] = {}
        for i in range(events):
            ev = ScoreEvent(
                swarm=swarm,
                sender="scorer",
                task="bench",
                method="naive",
                status="accepted",
                pgr=0.5,
                agent="someone",
                lineage=Lineage(request_id=f"req{i}", result_id=f"res{i}"),
            )
            sent[ev.id] = ev.ts
            await bus.publish(ev)
            await asyncio.sleep(0.05)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and sum(len(e.heard) for e in ears) < agents * events:  # noqa: ASYNC110
            await asyncio.sleep(0.1)
        lat = [(t - sent[k]) * 1000 for e in ears for k, t in e.heard.items() if k in sent]
    return _pct(lat, 0.5), _pct(lat, 0.99)


async def w2s(
    bus: Bus, swarm: str, task: str, minutes: float, workers: int
) -> tuple[float | None, float | None]:
    from gpu_worker import catalog
    from gpu_worker.service import Worker
    from scorer import HoldoutConfig, Scorer, ScorerConfig
    from swarm.roles.offline_researcher import OfflineResearcher, OfflineResearcherConfig
    from swarm.roles.reviewer import Reviewer

    await catalog.prepare(bus, swarm, task)
    await catalog.record_baselines(bus, swarm, task, seeds=2)
    cfg = ScorerConfig(leaderboard_every_s=0.5, holdout=HoldoutConfig(budget=100000))
    async with AsyncExitStack() as stack:
        for i in range(workers):
            await stack.enter_async_context(Worker(bus, swarm, name=f"w{i}", device="cpu"))
        await stack.enter_async_context(Scorer(bus, swarm, cfg))
        await stack.enter_async_context(Reviewer(bus, swarm, name="rev"))
        for i, fams in enumerate((["soft", "conf_filter"], ["propagate", "knn"], ["naive", "gce"])):
            rc = OfflineResearcherConfig(
                task=task, families=fams, shuffle_seed=i, max_rounds=10, start_delay_s=i
            )
            await stack.enter_async_context(OfflineResearcher(bus, swarm, name=f"res{i}", config=rc))
        await asyncio.sleep(minutes * 60)
    swarm_verdicts = [v for v in await replay(bus, swarm, Kind.VERDICTS, Verdict) if v.status == "accepted"]
    swarm_best = _best_final(swarm_verdicts)
    n = len(swarm_verdicts)
    print(f"swarm: {n} experiments in {minutes} min; its pick's final PGR {swarm_best}", flush=True)
    _print_top(swarm_verdicts)
    print(
        f"  (chosen by whole-dev mean instead: final {_best_final(swarm_verdicts, by=_dev_mean)})", flush=True
    )
    single = await best_single_method(bus, f"{swarm}n", task, workers, budget=max(n, 1), cfg=cfg)
    return swarm_best, single


def _print_top(verdicts: list[Verdict], n: int = 8, min_seeds: int = 3) -> None:
    """The configs that selection ranks first (hidden-half dev), beside their whole-dev and final means."""
    ready = sorted(_seeded_configs(verdicts, min_seeds), key=_selection_key, reverse=True)
    methods = [v.method for v in verdicts]
    print(f"  {methods.count('committee')} committee experiments; top configs by hidden dev:", flush=True)
    for vs in ready[:n]:
        dev, final = (statistics.fmean(v.pgr[s] for v in vs) for s in ("dev", "final"))
        params = json.dumps(vs[0].params, sort_keys=True)[:150]
        print(
            f"    hidden {_hidden_mean(vs):.3f} dev {dev:.3f} final {final:.3f} seeds {len(vs)} "
            f"{vs[0].method} {params}",
            flush=True,
        )


def _seeded_configs(verdicts: list[Verdict], min_seeds: int) -> list[list[Verdict]]:
    """Verdicts by config, for configs with ``min_seeds`` seeds scored on dev (both halves) and final."""
    by_config: dict[str, list[Verdict]] = {}
    for v in verdicts:
        by_config.setdefault(v.config_key, []).append(v)
    return [
        vs
        for vs in by_config.values()
        if len(vs) >= min_seeds and all({"dev", DEV_HIDDEN, "final"} <= v.pgr.keys() for v in vs)
    ]


def _hidden_mean(verdicts: list[Verdict]) -> float:
    return statistics.fmean(v.pgr[DEV_HIDDEN] for v in verdicts)


def _selection_key(verdicts: list[Verdict]) -> tuple[float, float]:
    """Hidden-half dev mean, then the whole-dev mean: on 500 examples, PGRs often tie."""
    return _hidden_mean(verdicts), _dev_mean(verdicts)


def _dev_mean(verdicts: list[Verdict]) -> float:
    return statistics.fmean(v.pgr["dev"] for v in verdicts)


def _best_final(
    verdicts: list[Verdict], min_seeds: int = 3, by: Callable[[list[Verdict]], Any] = _selection_key
) -> float | None:
    """Final-split mean PGR of the config ranked first ``by`` (the selection key), of ``min_seeds``+ seeds."""
    best = max(_seeded_configs(verdicts, min_seeds), key=by, default=None)
    return statistics.fmean(v.pgr["final"] for v in best) if best else None


async def best_single_method(
    bus: Bus, swarm: str, task: str, workers: int, *, budget: int, cfg: Any, seeds: int = 3
) -> float | None:
    """Every library method at its default params, ``seeds`` seeds each, within ``budget`` experiments.

    The method a careful person would pick without a swarm: the one with the best mean PGR on the
    hidden dev half (the swarm's rule); its final-split mean is what the swarm has to beat.
    """
    from gpu_worker import catalog
    from gpu_worker.service import Worker
    from schemas import ExperimentRequest
    from scorer import Scorer
    from swarm.roles.offline_researcher import SPACE

    methods = list(SPACE)[: max(1, budget // seeds)]
    await ensure_swarm(bus, swarm)
    await catalog.prepare(bus, swarm, task)
    await catalog.record_baselines(bus, swarm, task, seeds=2)
    want = len(methods) * seeds
    got: list[Verdict] = []
    enough = asyncio.Event()

    async def on_verdict(verdict: Verdict, _: Delivery) -> None:
        got.append(verdict)
        if len(got) >= want:
            enough.set()

    async with AsyncExitStack() as stack:
        for i in range(workers):
            await stack.enter_async_context(Worker(bus, swarm, name=f"w{i}", device="cpu"))
        await stack.enter_async_context(Scorer(bus, swarm, cfg))
        # Counted as they come: polling the stream's state can time out while a worker trains.
        await bus.subscribe(swarm, Kind.VERDICTS, on_verdict, expect=Verdict, start=StartAt.all())
        for method in methods:
            for s in range(seeds):
                await bus.publish(
                    ExperimentRequest(swarm=swarm, sender="single", task=task, method=method, seed=s)
                )
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(enough.wait(), 30 * 60)
    accepted = [v for v in got if v.status == "accepted"]
    best = _best_final(accepted, min_seeds=seeds)
    whole_dev = _best_final(accepted, min_seeds=seeds, by=_dev_mean)
    print(
        f"single methods: {len(methods)} methods x {seeds} seeds ({len(got)} scored), best {best} "
        f"(by whole-dev mean: {whole_dev})",
        flush=True,
    )
    return best


async def main(args: argparse.Namespace) -> dict[str, Any]:
    out: dict[str, Any] = {
        "agents": args.agents,
        "reaction_p50_ms": None,
        "reaction_p99_ms": None,
        "swarm_best_pgr": None,
        "best_single_method_pgr": None,
        "budget_minutes": None,
    }
    with tempfile.TemporaryDirectory() as tmp:
        cfg = ServerConfig(data_dir=Path(tmp), port=free_port(), monitor_port=free_port(), sync_always=False)
        async with (
            NatsServer(cfg) as server,
            Bus.connect(BusConfig(servers=[server.config.client_url], name="bench-swarm")) as bus,
        ):
            await ensure_swarm(bus, "benchswarm")
            p50, p99 = await reaction(bus, "benchswarm", args.agents, args.events)
            out["reaction_p50_ms"], out["reaction_p99_ms"] = round(p50, 2), round(p99, 2)
            what = f"{args.agents} agents x {args.events} events"
            print(f"reaction, {what}: p50 {p50:.1f} ms, p99 {p99:.1f} ms", flush=True)
            if args.w2s:
                await ensure_swarm(bus, "benchw2s")
                best, single = await w2s(bus, "benchw2s", args.task, args.minutes, args.workers)
                out.update(swarm_best_pgr=best, best_single_method_pgr=single, budget_minutes=args.minutes)
    return out


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--agents", type=int, default=100)
    ap.add_argument("--events", type=int, default=20)
    ap.add_argument("--w2s", action="store_true", help="also run the offline swarm vs naive (minutes)")
    ap.add_argument("--task", default="code", help="default: code, the task `aar up` works on")
    ap.add_argument("--minutes", type=float, default=4.0)
    ap.add_argument("--workers", type=int, default=2)
    print(json.dumps(asyncio.run(main(ap.parse_args()))))
