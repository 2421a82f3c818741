"""The aar Bus against raw nats-py: same server, same paths, same ~230-280-byte messages, uvloop.

Run from the repository root::

    .venv/bin/python -m bench.bus            # default sizes, about a minute and a half to two
    .venv/bin/python -m bench.bus --quick    # a smoke run, about half a minute

Paths measured, each raw nats-py (pre-encoded bytes) against the aar Bus (typed messages encoded and
decoded through its API):

1. core publish -> subscribe (msg/s): ``nc.publish`` of pre-encoded bytes + ``nc.subscribe(cb)``
   against ``Bus.publish_core`` (subject and encoding per message) + ``Bus.subscribe_core`` (each
   message decoded and validated before the handler sees it; delivered by aar's direct path,
   ``bus.core_sub``, not nats-py's Msg-and-queue dispatch that the raw side goes through);
2. request/reply round trip (us): ``nc.request`` to a raw echo responder against ``Bus.request`` to
   ``Bus.serve``; requests alternate one by one, so both sides see the same moments;
3. JetStream publish with pipelined acks (msg/s): ``js.publish_async`` with a ``Nats-Msg-Id``
   header + wait for every ack against ``Bus.publish_many``;
4. JetStream consume + ack (msg/s): pull ``fetch(256)`` + ``ack`` against ``Bus.work(batch=256)``
   on the work-queue stream, and a raw durable push consumer against ``Bus.subscribe(durable=...)``;
5. the cost of ``sync_interval: always``: the raw pipelined (and one-by-one awaited) JetStream
   publish on a server that fsyncs every write against one with the NATS default (every 2 minutes).

Two servers run side by side. Paths 1-4 run on the one with the NATS default sync by default
(``--compare-on always`` moves them): with an fsync per write the disk sets the pace of every
JetStream path (about 2k msg/s here, with a wide spread), which hides the client-side cost these
paths are there to show. Path 5 shows what the disk costs.

Each path warms up, then runs ``--rounds`` rounds alternating which side goes first; a ratio is the
median of the per-round ratios. Raw and aar use separate swarms (so separate streams of equal size)
whose names have equal length, so payloads have equal size. The last line printed is one JSON object.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import nats
import uvloop
from nats.aio.client import Client

from bench import _report as report
from bench._paths import (
    AAR,
    FETCH_BATCH,
    RAW,
    SYN,
    BusBench,
    hypothesis,
    js_awaited,
    js_pipelined,
    presence,
    request,
)
from bench._report import Pair, interleave, percentile
from bus import Bus, BusConfig, NatsServer, ServerConfig, ensure_swarm
from bus.natsd import free_port
from schemas import encode

PATHS = ("core", "rpc", "js", "pull", "push", "sync")


@dataclass(frozen=True, slots=True)
class Sizes:
    """How many messages each path moves per run; warm-ups move a tenth."""

    core: int = 50_000
    rpc: int = 2_000
    js: int = 20_000
    # The sync comparison runs partly at disk speed (~2k msg/s with fsync), hence smaller runs.
    sync: int = 3_000
    awaited: int = 600
    # Per-round ratios on a shared 2-core machine spread widely (0.7-1.3 in one run); the median of
    # seven settles more than that of five did (runs of five gave the JetStream paths 0.82-0.99).
    rounds: int = 7

    def warm(self, n: int) -> int:
        return max(50, n // 10)


QUICK = Sizes(core=10_000, rpc=500, js=4_000, sync=1_000, awaited=300, rounds=3)


class Results:
    """The JSON figures and the table's lines, filled path by path."""

    def __init__(self) -> None:
        self.figures: dict[str, float] = {}
        self.lines: list[str] = []

    def pair(self, label: str, key: str, pair: Pair, *, ratio_key: str | None = None) -> None:
        """Record a throughput pair as ``<ratio_key>`` and ``<key>_{raw,aar}_msgs_s``."""
        self.figures |= {
            ratio_key or f"{key}_ratio": pair.ratio,
            f"{key}_raw_msgs_s": pair.base_median,
            f"{key}_aar_msgs_s": pair.test_median,
        }
        self.add(label, pair)

    def add(self, label: str, pair: Pair) -> None:
        base, test = report.rate(pair.base_median), report.rate(pair.test_median)
        self.lines.append(report.row(label, base, test, pair.ratio, report.rounds(pair)))


def server_config(data_dir: Path, *, sync_always: bool) -> ServerConfig:
    return ServerConfig(
        data_dir=data_dir, port=free_port(), monitor_port=free_port(), sync_always=sync_always
    )


async def prepare(url: str, *swarms: str) -> None:
    """Create the swarms' streams with the production specs (ensure_swarm), through a Bus."""
    async with Bus.connect(BusConfig(servers=[url], name="bench-admin")) as admin:
        for swarm in swarms:
            await ensure_swarm(admin, swarm)


async def compare(b: BusBench, sizes: Sizes, paths: set[str], res: Results) -> None:
    """Paths 1-4: raw nats-py (base) against the aar Bus (test)."""
    res.lines.append(report.header("raw nats-py", "aar Bus"))
    if "core" in paths:
        p = await interleave(sizes.rounds, sizes.warm(sizes.core), sizes.core, b.core_raw, b.core_aar)
        res.pair("core publish -> subscribe", "pubsub", p)
    if "rpc" in paths:
        raw_us, aar_us = await b.rpc(sizes.rpc, sizes.warm(sizes.rpc))
        for q, label in ((0.5, "p50"), (0.9, "p90"), (0.99, "p99")):
            r, a = percentile(raw_us, q), percentile(aar_us, q)
            res.figures |= {f"reqreply_raw_{label}_us": r, f"reqreply_aar_{label}_us": a}
            # Inverted (raw / aar) so that, as for throughput, 1.0 is equal and higher is better.
            res.lines.append(
                report.row(
                    f"request/reply {label} (raw/aar)",
                    report.micros(r),
                    report.micros(a),
                    r / a,
                    f"{len(raw_us)} alternating round trips",
                )
            )
        res.figures["reqreply_p50_ratio"] = (
            res.figures["reqreply_raw_p50_us"] / res.figures["reqreply_aar_p50_us"]
        )
    if "js" in paths:
        p = await interleave(sizes.rounds, sizes.warm(sizes.js), sizes.js, b.js_publish_raw, b.js_publish_aar)
        res.pair("js publish, pipelined acks", "js_publish", p)
    if "pull" in paths:
        p = await interleave(sizes.rounds, sizes.warm(sizes.js), sizes.js, b.pull_raw, b.pull_aar)
        res.pair(f"js pull fetch({FETCH_BATCH})+ack / Bus.work", "js_consume", p)
    if "push" in paths:
        p = await interleave(sizes.rounds, sizes.warm(sizes.js), sizes.js, b.push_raw, b.push_aar)
        res.pair("js durable push+ack / subscribe", "js_push_consume", p)


async def sync_cost(sizes: Sizes, always: Client, default: Client, res: Results) -> None:
    """Path 5: raw JetStream publish, fsync-always server (test) against the NATS default (base)."""
    js_always, js_default = always.jetstream(), default.jetstream()

    async def piped_default(n: int) -> float:
        return await js_pipelined(js_default, SYN, n)

    async def piped_always(n: int) -> float:
        return await js_pipelined(js_always, SYN, n)

    async def awaited_default(n: int) -> float:
        return await js_awaited(js_default, SYN, n)

    async def awaited_always(n: int) -> float:
        return await js_awaited(js_always, SYN, n)

    piped = await interleave(sizes.rounds, sizes.warm(sizes.sync), sizes.sync, piped_default, piped_always)
    awaited = await interleave(
        sizes.rounds, sizes.warm(sizes.awaited), sizes.awaited, awaited_default, awaited_always
    )
    res.figures |= {
        "sync_always_cost_ratio": piped.ratio,
        "sync_always_msgs_s": piped.test_median,
        "sync_default_msgs_s": piped.base_median,
        "sync_always_awaited_cost_ratio": awaited.ratio,
        "sync_always_awaited_msgs_s": awaited.test_median,
        "sync_default_awaited_msgs_s": awaited.base_median,
    }
    res.lines += ["", report.header("sync: default (2m)", "sync: always")]
    res.add("js publish, pipelined acks (raw)", piped)
    res.add("js publish, each awaited (raw)", awaited)


async def measure(sizes: Sizes, paths: set[str], compare_on: str, data_dir: Path) -> Results:
    """Start both servers, run the selected paths, stop everything (in reverse order)."""
    res = Results()
    async with contextlib.AsyncExitStack() as stack:

        async def server(name: str, sync_always: bool) -> str:
            srv = NatsServer(server_config(data_dir / name, sync_always=sync_always))
            await stack.enter_async_context(srv)
            return srv.config.client_url

        async def connect(url: str, name: str) -> Client:
            nc = await nats.connect(url, name=name)
            stack.push_async_callback(nc.close)
            return nc

        urls = {"always": await server("always", True), "default": await server("default", False)}
        url = urls[compare_on]
        await prepare(url, RAW, AAR)
        raw_pub, raw_sub = await connect(url, "bench-raw-pub"), await connect(url, "bench-raw-sub")
        bus_pub = await stack.enter_async_context(Bus.connect(BusConfig(servers=[url], name="bench-aar-pub")))
        bus_sub = await stack.enter_async_context(Bus.connect(BusConfig(servers=[url], name="bench-aar-sub")))
        await compare(BusBench(raw_pub, raw_sub, bus_pub, bus_sub), sizes, paths, res)
        if "sync" in paths:
            for u in urls.values():
                await prepare(u, SYN)
            conns = {k: raw_pub if u == url else await connect(u, f"bench-raw-{k}") for k, u in urls.items()}
            await sync_cost(sizes, conns["always"], conns["default"], res)
    return res


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.bus", description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes: a smoke run")
    parser.add_argument("--core-n", type=int, help="core messages per run")
    parser.add_argument("--rpc-n", type=int, help="request/reply round trips per side")
    parser.add_argument("--js-n", type=int, help="JetStream messages per publish or consume run")
    parser.add_argument("--sync-n", type=int, help="pipelined publishes per run in the sync comparison")
    parser.add_argument("--awaited-n", type=int, help="one-by-one publishes per run in the sync comparison")
    parser.add_argument("--rounds", type=int, help="interleaved rounds per path (the median is taken)")
    parser.add_argument("--only", nargs="+", choices=PATHS, default=list(PATHS), help="paths to run")
    parser.add_argument(
        "--compare-on",
        choices=("default", "always"),
        default="default",
        help="the server (JetStream sync interval) that raw and aar are compared on",
    )
    parser.add_argument("--max-s", type=float, default=600.0, help="give up after this many seconds")
    return parser.parse_args(argv)


def sizes_from(args: argparse.Namespace) -> Sizes:
    sizes = QUICK if args.quick else Sizes()
    given = {
        "core": args.core_n,
        "rpc": args.rpc_n,
        "js": args.js_n,
        "sync": args.sync_n,
        "awaited": args.awaited_n,
        "rounds": args.rounds,
    }
    return replace(sizes, **{k: v for k, v in given.items() if v is not None})


async def amain(args: argparse.Namespace) -> dict[str, object]:
    sizes, paths = sizes_from(args), set(args.only)
    host = report.machine()
    payloads = {
        k: len(encode(m))
        for k, m in (("presence", presence(AAR)), ("hypothesis", hypothesis(AAR)), ("request", request(AAR)))
    }
    print(f"aar bus benchmark: {host['cpu_count']} CPUs ({host['cpu']}), {host['os']}")
    print(
        f"python {host['python']} + uvloop {host['uvloop']}, nats-py {host['nats_py']}, "
        f"msgspec {host['msgspec']}, nats-server {host['nats_server']}"
    )
    print(
        f"per run: core {sizes.core}, rpc {sizes.rpc}, js {sizes.js}, sync {sizes.sync}/{sizes.awaited}; "
        f"{sizes.rounds} rounds; raw vs aar on the sync={args.compare_on} server; payload bytes: "
        + ", ".join(f"{k} {v}" for k, v in payloads.items())
    )
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="aar-bench-") as tmp:
        async with asyncio.timeout(args.max_s):
            res = await measure(sizes, paths, args.compare_on, Path(tmp))
    print()
    print("\n".join(res.lines))
    print(
        f"\nratio: aar/raw (latency raw/aar; sync always/default), the median of per-round ratios; "
        f"target >= 0.8 for aar. {time.perf_counter() - t0:.0f}s in all."
    )
    result: dict[str, object] = {k: round(v, 3) for k, v in res.figures.items()}
    result |= {
        "compare_on": args.compare_on,
        "core_n": sizes.core,
        "rpc_n": sizes.rpc,
        "js_n": sizes.js,
        "rounds": sizes.rounds,
        "payload_bytes": payloads["hypothesis"],
        **host,
    }
    return result


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark; the last line on stdout is one JSON object of figures."""
    args = parse_args(argv)
    result = uvloop.run(amain(args))
    print(json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
