"""``aar scorer``, ``aar leaderboard`` and ``aar budget``: the scorer service and what it answers."""

from __future__ import annotations

import argparse
import json
import math

import msgspec

from bus import Bus, BusError, Kind, RemoteError, replay, streams, subjects
from bus.config import load_struct
from bus.errors import ConfigFileError
from cli.errors import CliError
from cli.options import add_connection_flags, add_logging_flags, add_swarm_flag, bus_config, open_bus
from cli.signals import stop_on_signals, wait_for_stop
from schemas import BudgetQuery, BudgetStatus, Leaderboard, Verdict, to_builtins


def add_scorer_parsers(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "scorer",
        help="run the scorer: the only process that reads labels and publishes scores",
        description="Consume experiment results, score their predictions against the sealed labels, "
        "publish score events (dev answers under the reusable-holdout rule), verdicts, integrity flags "
        "and leaderboards, and answer budget queries. Restarts resume without rescoring.",
    )
    p.add_argument("--config", default=None, metavar="FILE", help="ScorerConfig as TOML or JSON")
    p.add_argument("--name", default=None, help="scorer name (default: the config's, 'scorer')")
    add_swarm_flag(p)
    add_connection_flags(p)
    add_logging_flags(p)
    p.set_defaults(command="scorer", default_log_level="info")

    lb = sub.add_parser(
        "leaderboard",
        help="print the swarm's leaderboards",
        description="Print each task's leaderboard: verified standings (enough seeds) by final-split PGR "
        "with their interval, then the rest by dev PGR. --recompute rebuilds every board from the "
        "stored verdicts (operator rights) and reports any number that differs.",
    )
    lb.add_argument("tasks", nargs="*", metavar="TASK", help="tasks to show (default: all)")
    lb.add_argument("--json", action="store_true", help="print the boards as JSON")
    lb.add_argument("--top", type=int, default=15, metavar="N", help="standings shown per task")
    lb.add_argument("--recompute", action="store_true", help="check the boards against the verdicts")
    add_swarm_flag(lb)
    add_connection_flags(lb)
    add_logging_flags(lb)
    lb.set_defaults(command="leaderboard", default_log_level="warning")

    b = sub.add_parser("budget", help="ask the scorer how many dev answers an agent has left")
    b.add_argument("--agent", default=None, help="whose budget (default: the connection's sender name)")
    b.add_argument("--json", action="store_true")
    add_swarm_flag(b)
    add_connection_flags(b)
    add_logging_flags(b)
    b.set_defaults(command="budget", default_log_level="warning")


async def run_scorer(args: argparse.Namespace) -> int:
    """Run the scorer until Ctrl-C or SIGTERM."""
    from scorer import Scorer, ScorerConfig

    try:
        config = load_struct(ScorerConfig, args.config)
    except ConfigFileError as e:
        raise CliError(str(e)) from e
    if args.name:
        try:
            config = msgspec.structs.replace(config, name=subjects.token(args.name))
        except ValueError as e:
            raise CliError(f"bad --name: {e}") from e
    async with open_bus(bus_config(args, name=f"aar-{config.name}", one_shot=False)) as bus:
        with stop_on_signals() as stop:
            async with Scorer(bus, args.swarm, config) as scorer:
                print(f"aar: scorer {config.name} scoring swarm {args.swarm!r}", flush=True)
                await wait_for_stop(stop)
                print(f"aar: scorer stopping after {scorer.scored} results", flush=True)
    return 0


async def _boards(bus: Bus, swarm: str, tasks: list[str]) -> dict[str, Leaderboard]:
    kv = await bus.kv(streams.leaderboard_bucket(swarm))
    names = tasks or await kv.keys()
    out: dict[str, Leaderboard] = {}
    for task in names:
        board = await kv.get(task)
        if isinstance(board, Leaderboard):
            out[task] = board
    return out


def _fmt(value: float | None) -> str:
    return "-" if value is None or not math.isfinite(value) else f"{value:.3f}"


def render(board: Leaderboard, top: int) -> str:
    """A leaderboard as a plain-text table."""
    lines = [
        f"{board.task}: {board.results} results, {len(board.standings)} configurations, "
        f"verified with >= {board.min_seeds} seeds; best: {board.best or '-'}",
        f"  {'':1} {'configuration':<30} {'seeds':>5} {'dev PGR':>8} {'final PGR':>9} {'95% CI':>17}  agents",
    ]
    for s in board.standings[:top]:
        ci = f"[{_fmt(s.final_ci[0])}, {_fmt(s.final_ci[1])}]" if s.final_ci else "-"
        mark = "*" if s.config_key == board.best else ("v" if s.verified else " ")
        lines.append(
            f"  {mark:1} {s.config_key:<30} {len(s.seeds):>5} {_fmt(s.dev_pgr):>8} {_fmt(s.final_pgr):>9} "
            f"{ci:>17}  {','.join(s.agents)[:40]}"
        )
    if len(board.standings) > top:
        lines.append(f"  ... {len(board.standings) - top} more (--top N)")
    return "\n".join(lines)


async def run_leaderboard(args: argparse.Namespace) -> int:
    """Print the leaderboards (exit 1 with --recompute when a stored number differs)."""
    async with open_bus(bus_config(args, name="aar-leaderboard", one_shot=True)) as bus:
        try:
            boards = await _boards(bus, args.swarm, args.tasks)
        except BusError as e:
            raise CliError(f"no leaderboard for swarm {args.swarm!r}: {e}") from e
        if args.recompute:
            return await _recompute(bus, args.swarm, boards)
    if args.json:
        print(json.dumps({t: to_builtins(b) for t, b in boards.items()}, indent=2))
        return 0
    if not boards:
        print(f"aar: no scored results in swarm {args.swarm!r} yet")
    print("\n\n".join(render(b, args.top) for b in boards.values()))
    return 0


async def _recompute(bus: Bus, swarm: str, boards: dict[str, Leaderboard]) -> int:
    from scorer import Ledger, ScorerConfig

    try:
        verdicts = await replay(bus, swarm, Kind.VERDICTS, Verdict)
    except BusError as e:
        raise CliError(f"cannot read the verdicts (operator rights needed): {e}") from e
    # The stored boards say which min_seeds they used; recompute with the same rule.
    min_seeds = next(iter(boards.values())).min_seeds if boards else 3
    ledger = Ledger(ScorerConfig(min_seeds=min_seeds))
    for v in verdicts:
        ledger.apply(v)
    differ = 0
    for task, stored in boards.items():
        fresh = ledger.board(task, swarm, "recompute")
        want = {s.config_key: s for s in fresh.standings}
        for s in stored.standings:
            f = want.get(s.config_key)
            same = f is not None and (f.seeds, f.final_pgr, f.final_ci, f.dev_pgr) == (
                s.seeds,
                s.final_pgr,
                s.final_ci,
                s.dev_pgr,
            )
            if not same:
                differ += 1
                print(
                    f"differs: {task} {s.config_key}: stored {msgspec.to_builtins(s)} "
                    f"recomputed {msgspec.to_builtins(f)}"
                )
        print(f"{task}: {len(stored.standings)} standings checked against {fresh.results} verdicts")
    print("aar: every leaderboard number matches its verdicts" if not differ else f"aar: {differ} differ")
    return 1 if differ else 0


async def run_budget(args: argparse.Namespace) -> int:
    """Ask the scorer's budget service."""
    async with open_bus(bus_config(args, name="aar-budget", one_shot=True)) as bus:
        query = BudgetQuery(swarm=args.swarm, sender="cli", agent=args.agent)
        from scorer import BUDGET_SERVICE

        try:
            status = await bus.request(subjects.rpc(args.swarm, BUDGET_SERVICE), query)
        except (BusError, RemoteError) as e:
            raise CliError(f"the scorer did not answer: {e}") from e
    if not isinstance(status, BudgetStatus):
        raise CliError(f"unexpected answer {type(status).__name__}")
    if args.json:
        print(json.dumps(to_builtins(status)))
    else:
        print(
            f"{status.agent}: {status.left} dev answers left "
            f"(agent {status.dev_queries_used}/{status.dev_queries_limit}, "
            f"swarm {status.swarm_dev_queries_used}/{status.swarm_dev_queries_limit}); {status.rule}"
        )
    return 0
