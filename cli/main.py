"""The ``aar`` command: parse argv, set up logging, run one command on uvloop."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
from collections.abc import Callable, Coroutine, Sequence
from pathlib import Path
from typing import Any

from cli.agent_cmd import add_agent_parsers, run_agent, run_agent_list
from cli.dashboard_cmd import add_dashboard_parser, run_dashboard
from cli.errors import CliError
from cli.logs import setup_logging
from cli.options import (
    add_connection_flags,
    add_logging_flags,
    add_swarm_flag,
    add_swarms_flag,
    parse_duration,
)
from cli.report_cmd import add_report_parser, run_report
from cli.scorer_cmd import add_scorer_parsers, run_budget, run_leaderboard, run_scorer
from cli.server_cmd import add_server_flags, run_server
from cli.status import run_status
from cli.tail import CHOICES, STORED_KINDS, run_tail
from cli.tasks_cmd import add_tasks_parsers, run_baselines, run_tasks_list, run_tasks_prepare
from cli.up import run_up
from cli.worker_cmd import add_worker_parser, run_worker

log = logging.getLogger("aar.cli")

Command = Callable[[argparse.Namespace], Coroutine[Any, Any, int]]
_EXIT_INTERRUPTED = 130  # the shell's convention for "stopped by SIGINT"


def _server_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "server",
        help="run the embedded nats-server (JetStream) until Ctrl-C",
        description="Run nats-server with an aar config and create the swarm's streams. "
        "Prints the nats:// URL once clients can connect, and where each role's credentials "
        "are: the server enforces what each role (agent, worker, scorer, observer, admin) may do.",
    )
    add_server_flags(p)
    add_swarms_flag(p)
    add_logging_flags(p)
    p.set_defaults(command="server", default_log_level="info")


def _up_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "up",
        help="bring a whole swarm up: server, scorer, workers, researchers, reviewer, dashboard",
        description="Start, in order: the embedded nats-server (unless --nats or AAR_NATS_URL names "
        "one), the tasks (prepared once; the first run builds the feature cache), then as separate "
        "processes, each restarted if it crashes: the scorer, --workers workers, the reviewer, "
        "--agents offline researchers (and --claude Claude researchers when ANTHROPIC_API_KEY is "
        "set) and the dashboard. Ctrl-C or SIGTERM stops them in reverse order and keeps the "
        "stream data: `aar up` again resumes the same swarm.",
    )
    add_connection_flags(p)
    add_swarm_flag(p)
    p.add_argument(
        "--fresh",
        action="store_true",
        help="start a new, empty swarm named <swarm>-<YYYYmmdd-HHMMSS> instead of resuming <swarm>",
    )
    swarm = p.add_argument_group("the swarm")
    swarm.add_argument(
        "--task",
        action="append",
        default=None,
        metavar="NAME",
        help="a task to prepare and work on (repeatable; default: code)",
    )
    swarm.add_argument(
        "--no-prepare",
        dest="prepare",
        action="store_false",
        help="do not prepare tasks (the swarm's tasks are already on the bus)",
    )
    swarm.add_argument("--workers", type=int, default=1, metavar="N", help="workers (default 1)")
    swarm.add_argument(
        "--device", choices=("auto", "cpu", "cuda"), default="auto", help="where workers train"
    )
    swarm.add_argument("--agents", type=int, default=2, metavar="M", help="offline researchers (default 2)")
    swarm.add_argument(
        "--claude", type=int, default=0, metavar="K", help="Claude researchers (needs ANTHROPIC_API_KEY)"
    )
    swarm.add_argument("--no-reviewer", dest="reviewer", action="store_false", help="run no reviewer")
    swarm.add_argument(
        "--no-scorer", action="store_true", help="run no scorer (one runs elsewhere: `aar scorer`)"
    )
    swarm.add_argument(
        "--dashboard-port",
        type=int,
        default=8080,
        metavar="PORT",
        help="dashboard port (default 8080; a free one if taken; 0: any free port)",
    )
    swarm.add_argument("--no-dashboard", dest="dashboard", action="store_false", help="serve no dashboard")
    demo = p.add_argument_group("demo")
    demo.add_argument(
        "--demo-minutes",
        type=float,
        default=None,
        metavar="N",
        help="run unattended for N minutes, stop, then write the report (see --report-dir)",
    )
    demo.add_argument(
        "--report-dir", type=Path, default=None, metavar="DIR", help="where --demo-minutes writes the report"
    )
    demo.add_argument(
        "--demo-seconds",
        type=parse_duration,
        default=None,
        metavar="N",
        help="stop cleanly after N seconds, without a report (for tests and CI)",
    )
    demo.add_argument(
        "--progress-every",
        type=parse_duration,
        default=60.0,
        metavar="S",
        help="print a progress line every S (default 60s)",
    )
    add_server_flags(p)
    add_logging_flags(p)
    p.set_defaults(command="up", default_log_level="warning")


def _tail_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "tail",
        help="follow a swarm's messages live",
        description="Follow a swarm's messages. KIND is any of: "
        + ", ".join(CHOICES)
        + f" (default: {', '.join(k.value for k in STORED_KINDS)}; "
        "'presence' follows the presence bucket and must be asked for). "
        "Watching never consumes anything, not even queued requests.",
    )
    p.add_argument(
        "kinds",
        nargs="*",
        type=_tail_kind,
        metavar="KIND",
        default=[],
        help="what to follow (default: every stored kind)",
    )
    add_swarm_flag(p)
    replay = p.add_mutually_exclusive_group()
    replay.add_argument(
        "--since",
        type=parse_duration,
        metavar="DURATION",
        help="first replay what was stored in the last DURATION (30s, 10m, 2h, 1d)",
    )
    replay.add_argument("--all", action="store_true", help="first replay everything stored")
    p.add_argument("--json", action="store_true", help="print each message as one line of wire JSON")
    p.add_argument("--count", type=int, metavar="N", help="exit after N messages")
    p.add_argument(
        "--timeout",
        type=parse_duration,
        metavar="S",
        help="exit after S seconds (status 1 if --count messages had not arrived)",
    )
    add_connection_flags(p)
    add_logging_flags(p)
    p.set_defaults(command="tail", default_log_level="warning")


def _tail_kind(value: str) -> str:
    if value not in CHOICES:
        raise argparse.ArgumentTypeError(f"unknown kind {value!r} (choose from {', '.join(CHOICES)})")
    return value


def _status_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "status",
        help="streams, consumers and live agents/workers of a swarm",
        description="Show message counts per stream, pending work per consumer and who is "
        "present. Exits 2 when the server cannot be reached within a few seconds.",
    )
    add_swarm_flag(p)
    p.add_argument("--all-swarms", action="store_true", help="every swarm on the server")
    p.add_argument("--json", action="store_true", help="print one JSON document")
    add_connection_flags(p)
    add_logging_flags(p)
    p.set_defaults(command="status", default_log_level="warning")


def build_parser() -> argparse.ArgumentParser:
    """The ``aar`` argument parser with every subcommand."""
    parser = argparse.ArgumentParser(
        prog="aar",
        description="Automated Alignment Researcher swarm over NATS JetStream.",
        epilog="Environment: AAR_NATS_URL, AAR_NATS_CREDS, AAR_SWARM, AAR_DATA_DIR.",
    )
    sub = parser.add_subparsers(title="commands", metavar="COMMAND", required=True)
    for add in (
        _server_parser,
        _up_parser,
        _tail_parser,
        _status_parser,
        add_worker_parser,
        add_tasks_parsers,
        add_scorer_parsers,
        add_agent_parsers,
        add_dashboard_parser,
        add_report_parser,
    ):
        add(sub)
    return parser


COMMANDS: dict[str, Command] = {
    "server": run_server,
    "up": run_up,
    "tail": run_tail,
    "status": run_status,
    "worker": run_worker,
    "tasks-prepare": run_tasks_prepare,
    "tasks-list": run_tasks_list,
    "baselines": run_baselines,
    "scorer": run_scorer,
    "leaderboard": run_leaderboard,
    "budget": run_budget,
    "agent-run": run_agent,
    "agent-list": run_agent_list,
    "dashboard": run_dashboard,
    "report": run_report,
}


def _run(coro: Coroutine[Any, Any, int]) -> int:
    try:
        import uvloop
    except ImportError:  # uvloop does not build on Windows
        return asyncio.run(coro)
    return uvloop.run(coro)


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``aar`` with ``argv`` (default ``sys.argv[1:]``) and return the exit status."""
    args = build_parser().parse_args(argv)
    setup_logging(args.log_level or args.default_log_level, json_lines=args.log_json)
    try:
        return _run(COMMANDS[args.command](args))
    except CliError as e:
        print(f"aar: error: {e}", file=sys.stderr, flush=True)
        return e.exit_code
    except KeyboardInterrupt:
        return _EXIT_INTERRUPTED
    except BrokenPipeError:
        # `aar tail | head`: the reader left. Point stdout at /dev/null so the interpreter's final
        # flush does not raise again, and exit quietly as other Unix tools do.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1


if __name__ == "__main__":
    sys.exit(main())
