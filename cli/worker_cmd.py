"""``aar worker``: pull experiment requests and run them on this machine's CPU or GPU."""

from __future__ import annotations

import argparse
import os
import socket

from cli.errors import CliError
from cli.options import add_connection_flags, add_logging_flags, add_swarm_flag, bus_config, open_bus
from cli.signals import stop_on_signals, wait_for_stop


def add_worker_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "worker",
        help="run experiments from the swarm's work queue on this machine",
        description="Pull experiment requests, run them on real models and data (label-free views from "
        "the bus), stream progress and publish predictions. Ctrl-C finishes the jobs in hand first.",
    )
    p.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto", help="where to train")
    p.add_argument("--concurrency", type=int, default=1, metavar="N", help="jobs run at once (default 1)")
    p.add_argument("--name", default=None, help="worker name (default worker-<host>-<pid>)")
    add_swarm_flag(p)
    add_connection_flags(p)
    add_logging_flags(p)
    p.set_defaults(command="worker", default_log_level="info")


async def run_worker(args: argparse.Namespace) -> int:
    """Run a worker until Ctrl-C or SIGTERM."""
    from gpu_worker.service import Worker, resolve_device  # torch loads here, not for every command

    if args.concurrency < 1:
        raise CliError("--concurrency must be at least 1")
    try:
        device = resolve_device(args.device)
    except ValueError as e:
        raise CliError(str(e)) from e
    name = args.name or f"worker-{socket.gethostname().split('.')[0]}-{os.getpid()}"
    config = bus_config(args, name=f"aar-{name}", one_shot=False)
    async with open_bus(config) as bus:
        with stop_on_signals() as stop:
            async with Worker(bus, args.swarm, name=name, device=device, concurrency=args.concurrency):
                print(f"aar: worker {name} on {device} pulling from swarm {args.swarm!r}", flush=True)
                await wait_for_stop(stop)
    return 0
