"""The W2S catalogue through the real bus and worker, and the same experiments by direct call.

Run: ``python -m bench.w2s [--seeds 3] [--tasks rt code ...] [--only naive soft ...]``.

One embedded nats-server; every default task is prepared (label-free view to the artifact store,
labels to the label store) and its baselines recorded, as an operator would. A real ``aar worker``
process then runs every (task, method config, seed) from the work queue; this process fetches the
predictions and scores them with the operator's labels (the scorer service is a later issue). The
same experiments then run here by direct call on the same views, so the two paths are timed on
the same work. The best method is chosen on dev PGR and reported on final PGR. The last line of
output is one JSON object.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.w2s_direct import CONFIGS
from bus import Bus, BusConfig, Kind, NatsServer, ServerConfig, StartAt, ensure_swarm
from bus.natsd import free_port
from gpu_worker import catalog
from gpu_worker.pipeline import prepare_features, run_experiment
from gpu_worker.scoring import Baselines, accuracy, baselines
from gpu_worker.tasks import task_names
from schemas import ExperimentRequest, ExperimentResult, TaskInfo
from schemas.artifacts import TaskLabels, TaskView

SWARM = "w2sbench"


@dataclass
class Job:
    task: str
    label: str
    method: str
    params: dict[str, Any]
    seed: int
    request_id: str = ""


@dataclass
class TaskState:
    info: TaskInfo
    view: TaskView
    labels: TaskLabels
    base: Baselines
    pgr: dict[str, dict[str, list[float]]] = field(default_factory=dict)  # label -> split -> values


def _ms(xs: list[float]) -> tuple[float, float]:
    return statistics.fmean(xs), (statistics.stdev(xs) if len(xs) > 1 else 0.0)


async def _prepare(bus: Bus, task: str) -> TaskState:
    await catalog.prepare(bus, SWARM, task)
    info, view, labels = await catalog.load_prepared(bus, SWARM, task)
    feats = await asyncio.to_thread(prepare_features, view, info.weak_model, info.strong_model, progress=True)
    base = await asyncio.to_thread(baselines, view, labels, feats, seed=0)
    return TaskState(info, view, labels, base)


def _record(state: TaskState, label: str, dev: dict[str, int], final: dict[str, int]) -> None:
    for split, pred in (("dev", dev), ("final", final)):
        acc = accuracy(pred, state.labels.of(split))
        state.pgr.setdefault(label, {}).setdefault(split, []).append(state.base.pgr(acc, split))


async def _through_bus(
    bus: Bus, tasks: dict[str, TaskState], jobs: list[Job], concurrency: int
) -> tuple[float, int]:
    """Run every job through a real ``aar worker`` process; returns (wall seconds, failures)."""
    worker = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "cli",
        "worker",
        "--device",
        "cpu",
        "--name",
        "bench-worker",
        "--concurrency",
        str(concurrency),
        "--nats",
        bus.config.servers[0],
        "--swarm",
        SWARM,
        "--log-level",
        "warning",
        stdout=asyncio.subprocess.PIPE,
    )
    try:
        assert worker.stdout is not None
        await asyncio.wait_for(worker.stdout.readline(), 120)  # its banner: it is pulling
        results: dict[str, ExperimentResult] = {}
        arrived = asyncio.Event()

        async def on_result(msg: ExperimentResult, _: object) -> None:
            results[msg.lineage.request_id or ""] = msg
            arrived.set()

        await bus.subscribe(SWARM, Kind.RESULTS, on_result, expect=ExperimentResult, start=StartAt.new())
        # Warm-up: one request per task so the worker has loaded its view and cached features.
        warm = [ExperimentRequest(swarm=SWARM, sender="bench", task=t, method="naive") for t in tasks]
        await bus.publish_many(warm)
        while not all(w.id in results for w in warm):
            arrived.clear()
            await asyncio.wait_for(arrived.wait(), 900)
        requests = []
        for job in jobs:
            req = ExperimentRequest(
                swarm=SWARM,
                sender="bench",
                task=job.task,
                method=job.method,
                params=job.params,
                seed=job.seed,
            )
            job.request_id = req.id
            requests.append(req)
        t0 = time.perf_counter()
        await bus.publish_many(requests)
        while not all(r.id in results for r in requests):
            arrived.clear()
            await asyncio.wait_for(arrived.wait(), 600)
        wall = time.perf_counter() - t0
    finally:
        worker.terminate()
        await worker.wait()
    artifacts = await bus.artifacts(SWARM)
    failures = 0
    for job in jobs:
        res = results[job.request_id]
        if res.status != "ok":
            failures += 1
            print(f"  FAILED {job.task}/{job.label} seed {job.seed}: {res.error}", flush=True)
            continue
        preds = {}
        sets = await artifacts.prediction_sets(res)
        for split in ("dev", "final"):
            p = sets[split]
            ids = p.ids or tasks[job.task].view.split(split).ids  # packed: the view's order
            preds[split] = dict(zip(ids, p.label_list(), strict=True))
        _record(tasks[job.task], job.label, preds["dev"], preds["final"])
    return wall, failures


def _direct(tasks: dict[str, TaskState], jobs: list[Job]) -> float:
    feats = {t: prepare_features(s.view, s.info.weak_model, s.info.strong_model) for t, s in tasks.items()}
    t0 = time.perf_counter()
    for job in jobs:
        s = tasks[job.task]
        run_experiment(s.view, feats[job.task], job.method, job.params, job.seed)
    return time.perf_counter() - t0


async def main_async(args: argparse.Namespace) -> dict[str, Any]:
    configs = [c for c in CONFIGS if args.only is None or c[0] in args.only or c[0] == "naive"]
    with tempfile.TemporaryDirectory(prefix="aar-bench-w2s-") as tmp:
        server_cfg = ServerConfig(data_dir=Path(tmp), port=free_port(), monitor_port=free_port())
        async with NatsServer(server_cfg), Bus.connect(BusConfig(servers=[server_cfg.client_url])) as bus:
            await ensure_swarm(bus, SWARM)
            tasks: dict[str, TaskState] = {}
            for task in args.tasks:
                t0 = time.perf_counter()
                tasks[task] = await _prepare(bus, task)
                b = tasks[task].base
                print(
                    f"# {task}: prepared in {time.perf_counter() - t0:.0f}s; weak {b.weak['final']:.3f} "
                    f"ceiling {b.ceiling['final']:.3f} (final)",
                    flush=True,
                )
            jobs = [
                Job(t, label, m, p, seed)
                for t in tasks
                for label, m, p in configs
                for seed in range(args.seeds)
            ]
            bus_wall, failures = await _through_bus(bus, tasks, jobs, args.concurrency)
            print(f"# bus: {len(jobs)} experiments in {bus_wall:.1f}s ({failures} failed)", flush=True)
    direct_wall = _direct(tasks, jobs)
    print(f"# direct: {len(jobs)} experiments in {direct_wall:.1f}s", flush=True)
    summary: dict[str, Any] = {}
    for name, s in tasks.items():
        pgr = s.pgr
        best = max(pgr, key=lambda k: _ms(pgr[k]["dev"])[0])
        pair = f"{s.info.weak_model} -> {s.info.strong_model}"
        print(f"\n== {name} ({pair}; split seed 0, {args.seeds} method seeds)")
        print(
            f"  weak {s.base.weak['final']:.3f}  ceiling {s.base.ceiling['final']:.3f}  gap "
            f"{s.base.ceiling['final'] - s.base.weak['final']:.3f} (final split)"
        )
        for label, by_split in pgr.items():
            d, f = _ms(by_split["dev"]), _ms(by_split["final"])
            print(f"  {label:16s} PGR dev {d[0]:+.3f} ± {d[1]:.3f}   final {f[0]:+.3f} ± {f[1]:.3f}")
        summary[name] = {
            "weak": round(s.base.weak["final"], 4),
            "ceiling": round(s.base.ceiling["final"], 4),
            "naive_pgr": round(_ms(pgr["naive"]["final"])[0], 4),
            "naive_pgr_std": round(_ms(pgr["naive"]["final"])[1], 4),
            "best_method": best,
            "best_pgr": round(_ms(pgr[best]["final"])[0], 4),
            "best_pgr_std": round(_ms(pgr[best]["final"])[1], 4),
        }
    labels = list(next(iter(tasks.values())).pgr)
    overall = max(labels, key=lambda k: statistics.fmean(_ms(s.pgr[k]["dev"])[0] for s in tasks.values()))
    return {
        "naive_pgr": round(statistics.fmean(_ms(s.pgr["naive"]["final"])[0] for s in tasks.values()), 4),
        "best_pgr": round(statistics.fmean(_ms(s.pgr[overall]["final"])[0] for s in tasks.values()), 4),
        "best_method": overall,
        "experiments_per_hour": round(len(jobs) / bus_wall * 3600, 1),
        "worker_overhead_ratio": round(bus_wall / direct_wall, 4),
        "experiments": len(jobs),
        "failed": failures,
        "seeds": args.seeds,
        "worker_concurrency": args.concurrency,
        "cpu_count": os.cpu_count(),
        "tasks": summary,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tasks", nargs="*", default=task_names(default_only=True))
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--only", nargs="*", default=None, help="config labels to run (naive always runs)")
    ap.add_argument("--concurrency", type=int, default=1, help="worker jobs at once")
    args = ap.parse_args()
    print(f"# {platform.platform()} {platform.processor()} python {platform.python_version()}", flush=True)
    out = asyncio.run(main_async(args))
    print(json.dumps(out))


if __name__ == "__main__":
    main()
