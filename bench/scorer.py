"""The scorer through the real bus: results/s and result -> ScoreEvent latency.

Run: ``python -m bench.scorer [--results 2000] [--eval 2000] [--paced 400 --rate 200]``.

One embedded nats-server (``sync_interval: always``, the product default) and one ``aar scorer``
process, as deployed. This process plays the workers: before timing it stores every prediction set
(dev and final, ``--eval`` examples each, distinct per result) in the artifact store, as workers do
before they publish a result. Then:

1. throughput: all ``--results`` results are published at once (pipelined); ``results_per_s`` is
   results over the time from the first publish to the last ScoreEvent received here;
2. latency: ``--paced`` more results at ``--rate`` per second; each latency is ScoreEvent received
   minus result published, both on this process's monotonic clock.

The last line of output is one JSON object.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from bench._report import machine, percentile
from bus import Bus, BusConfig, Kind, NatsServer, ServerConfig, ensure_swarm, subjects
from bus.natsd import free_port
from bus.presence import Heartbeat
from schemas import ExperimentResult, ScoreEvent, decode_as
from scorer.synthetic import SyntheticTask, publish_task, submit

SWARM = "scorerbench"
WORKER = "bench-worker"


async def _results(
    bus: Bus, synth: SyntheticTask, n: int, seed: int, *, inline_off: bool
) -> list[ExperimentResult]:
    rng = np.random.default_rng(seed)
    out = []
    for k in range(n):
        acc = float(rng.uniform(0.72, 0.88))
        out.append(
            await submit(
                bus,
                SWARM,
                synth,
                dev=synth.with_accuracy("dev", acc, rng),
                final=synth.with_accuracy("final", acc, rng),
                worker=WORKER,
                agent=f"agent{k % 16}",
                inline=not inline_off,
                method=f"m{k % 50}",
                seed=k,
                publish=False,
            )
        )
    return out


async def _scorer_process(url: str, workdir: Path, concurrency: int) -> asyncio.subprocess.Process:
    config = workdir / "scorer.json"
    # Budgets high enough that every dev answer is given: the bench measures scoring, not refusals.
    config.write_text(
        json.dumps(
            {
                "concurrency": concurrency,
                "dev_queries_per_agent": 10**9,
                "dev_queries_per_swarm": 10**9,
                "holdout": {"budget": 10**9},
            }
        )
    )
    # AAR_BENCH_PROFILE=FILE runs the scorer under cProfile (for finding where the time goes).
    profile = os.environ.get("AAR_BENCH_PROFILE")
    wrap = ["-m", "cProfile", "-o", profile] if profile else []
    return await asyncio.create_subprocess_exec(
        sys.executable,
        *wrap,
        "-m",
        "cli",
        "scorer",
        "--nats",
        url,
        "--swarm",
        SWARM,
        "--config",
        str(config),
        "--log-level",
        "warning",
        stdout=asyncio.subprocess.DEVNULL,
    )


async def main_async(args: argparse.Namespace) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="aar-bench-scorer-") as tmp:
        server_cfg = ServerConfig(
            data_dir=Path(tmp) / "nats",
            port=free_port(),
            monitor_port=free_port(),
            sync_always=not args.no_sync_always,
        )
        async with NatsServer(server_cfg) as server:
            url = server.config.client_url
            async with Bus.connect(BusConfig(servers=[url], name="bench-scorer")) as bus:
                await ensure_swarm(bus, SWARM)
                synth = await publish_task(bus, SWARM, n_eval=args.eval)
                async with Heartbeat(bus, SWARM, name=WORKER, role="worker"):
                    t0 = time.perf_counter()
                    burst = await _results(bus, synth, args.results, seed=1, inline_off=args.stored)
                    paced = await _results(bus, synth, args.paced, seed=2, inline_off=args.stored)
                    stored_s = time.perf_counter() - t0
                    print(f"stored {2 * (len(burst) + len(paced))} prediction sets in {stored_s:.1f}s")
                    received: dict[str, float] = {}
                    burst_done, done = asyncio.Event(), asyncio.Event()
                    want = len(burst) + len(paced)

                    async def on_score(raw: Any) -> None:
                        score = decode_as(raw.data, ScoreEvent)
                        if score.lineage.result_id is not None:
                            received.setdefault(score.lineage.result_id, time.perf_counter())
                            if score.status != "accepted":
                                print(f"rejected: {score.reason}", file=sys.stderr)
                        if len(received) >= len(burst):
                            burst_done.set()
                        if len(received) >= want:
                            done.set()

                    sub = await bus.nc.subscribe(subjects.kind_filter(SWARM, Kind.SCORES), cb=on_score)
                    scorer = await _scorer_process(url, Path(tmp), args.concurrency)
                    try:
                        # Wait until the scorer's durable consumer exists, so no result waits on start-up.
                        await _wait_for_consumer(bus)
                        sent_at: dict[str, float] = {}
                        procs = {"scorer": scorer.pid, "server": server.pid, "bench": os.getpid()}
                        cpu_before = {k: _cpu_seconds(pid) for k, pid in procs.items()}
                        t_start = time.perf_counter()
                        for r in burst:
                            sent_at[r.id] = time.perf_counter()
                        await bus.publish_many(burst)
                        async with asyncio.timeout(args.timeout):
                            await burst_done.wait()
                        burst_s = max(received[r.id] for r in burst) - t_start
                        cpu_ms = {
                            k: _per_result_ms(cpu_before[k], _cpu_seconds(pid), len(burst))
                            for k, pid in procs.items()
                        }
                        gap = 1.0 / args.rate
                        next_at = time.perf_counter()
                        for r in paced:
                            await asyncio.sleep(max(0.0, next_at - time.perf_counter()))
                            sent_at[r.id] = time.perf_counter()
                            await bus.publish(r)
                            next_at += gap
                        async with asyncio.timeout(args.timeout):
                            await done.wait()
                    finally:
                        await sub.unsubscribe()
                        scorer.terminate()
                        await scorer.wait()
    latencies = [(received[r.id] - sent_at[r.id]) * 1000 for r in paced]
    return {
        "results": len(burst),
        "eval_examples": args.eval,
        "burst_seconds": round(burst_s, 3),
        "paced_results": len(paced),
        "paced_rate_per_s": args.rate,
        "scorer_concurrency": args.concurrency,
        "sync_always": not args.no_sync_always,
        "predictions": "stored" if args.stored else "inline",
        "results_per_s": round(len(burst) / burst_s, 1),
        "score_latency_p50_ms": round(percentile(latencies, 0.50), 2),
        "score_latency_p99_ms": round(percentile(latencies, 0.99), 2),
        # CPU each process spent per result during the burst: steadier than wall time on a shared
        # machine, and it says which process bounds the throughput.
        **{f"{k}_cpu_ms_per_result": v for k, v in cpu_ms.items()},
    }


def _cpu_seconds(pid: int | None) -> float | None:
    """User + system CPU seconds of a process so far (Linux /proc; None elsewhere)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return None


def _per_result_ms(before: float | None, after: float | None, n: int) -> float | None:
    if before is None or after is None or n <= 0:
        return None
    return round((after - before) * 1000 / n, 3)


async def _wait_for_consumer(bus: Bus) -> None:
    from bus import streams

    stream = streams.stream_name(SWARM, Kind.RESULTS)
    durable = streams.consumer_durable("scorer", "scorer", "results")
    async with asyncio.timeout(60):
        while True:
            try:
                await bus.js.consumer_info(stream, durable)
                return
            except Exception:
                await asyncio.sleep(0.1)


def main() -> None:
    p = argparse.ArgumentParser(prog="python -m bench.scorer", description=__doc__.split("\n\n")[0])
    p.add_argument("--results", type=int, default=2000, help="results published at once (throughput)")
    p.add_argument("--paced", type=int, default=400, help="results published at --rate (latency)")
    p.add_argument("--rate", type=float, default=200.0, help="paced results per second")
    p.add_argument("--eval", type=int, default=2000, help="examples per prediction set (dev and final)")
    p.add_argument("--concurrency", type=int, default=64, help="the scorer's concurrent results")
    p.add_argument("--timeout", type=float, default=600.0)
    p.add_argument(
        "--stored",
        action="store_true",
        help="store every prediction set as an artifact (as a worker does for large splits) instead "
        "of carrying it in the result (as a worker does up to INLINE_PREDICTIONS_MAX_BYTES)",
    )
    p.add_argument(
        "--no-sync-always",
        action="store_true",
        help="run the server with JetStream's default flush instead of fsync per write (aar's default)",
    )
    args = p.parse_args()
    info = machine()
    print(f"machine: {info}")
    print(f"cpus available: {len(os.sched_getaffinity(0))}")
    out = asyncio.run(main_async(args))
    print(
        f"throughput: {out['results']} results in {out['burst_seconds']}s = {out['results_per_s']}/s; "
        f"latency at {out['paced_rate_per_s']}/s: p50 {out['score_latency_p50_ms']} ms, "
        f"p99 {out['score_latency_p99_ms']} ms"
    )
    print(json.dumps(out))


if __name__ == "__main__":
    main()
