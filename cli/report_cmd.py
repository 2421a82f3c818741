"""``aar report``: write a swarm's report (Markdown and HTML with figures) with operator rights."""

from __future__ import annotations

import argparse
from pathlib import Path

from bus import Kind, list_swarms
from bus.admin import swarm_exists
from bus.auth import readable_kinds
from bus.errors import CredentialsError
from cli.errors import CliError
from cli.options import (
    add_connection_flags,
    add_logging_flags,
    add_swarm_flag,
    bus_config,
    open_bus,
    parse_duration,
)

_EXIT_NO_SWARM = 1


def default_out(swarm: str) -> Path:
    """Where a report goes without ``--out``: ``./aar-report-<swarm>/`` in the working directory."""
    return Path.cwd() / f"aar-report-{swarm}"


def add_report_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "report",
        help="write the swarm's report: Markdown and HTML with plots (operator rights)",
        description="Read everything the swarm stored and write index.html and report.md with PNG "
        "figures: PGR over time, a method comparison with confidence intervals, the verified "
        "final-split table per task, the flags raised and what they caught, and cost per agent-hour. "
        "Every number links to its result's lineage. Needs the admin credentials: the final-split "
        "numbers come from the scorer's verdicts.",
    )
    p.add_argument(
        "--out",
        type=Path,
        default=None,
        metavar="DIR",
        help="directory to write into (default: ./aar-report-<swarm>/); existing report files are replaced",
    )
    p.add_argument(
        "--timeout",
        type=parse_duration,
        default=60.0,
        metavar="S",
        help="how long reading each stream may take (default 60s)",
    )
    add_swarm_flag(p)
    add_connection_flags(p)
    add_logging_flags(p)
    p.set_defaults(command="report", default_log_level="warning")


async def run_report(args: argparse.Namespace) -> int:
    """Write the report and print where it is.

    Raises:
        CliError: the server cannot be reached or the credentials are not an operator's (exit 2),
            or the swarm does not exist (exit 1).
    """
    from dashboard.report import REPORT_MD, ReportError, write_report

    config = bus_config(args, name="aar-report", one_shot=True)
    try:
        creds = config.credentials()
    except CredentialsError as e:
        raise CliError(str(e)) from e
    if creds is not None and Kind.VERDICTS not in readable_kinds(creds.role):
        raise CliError(
            f"the report reads the scorer's verdicts, which the {creds.role or 'given'} role may not: "
            "use the admin credentials (<data_dir>/creds/admin.creds)"
        )
    out_dir: Path = (args.out if args.out is not None else default_out(args.swarm)).absolute()
    async with open_bus(config) as bus:
        if not await swarm_exists(bus, args.swarm):
            known = await list_swarms(bus)
            hint = f"known swarms: {', '.join(known)}" if known else "no swarms on this server yet"
            raise CliError(
                f"swarm {args.swarm!r} has no streams on this server ({hint})", exit_code=_EXIT_NO_SWARM
            )
        try:
            index = await write_report(bus, args.swarm, out_dir, timeout_s=args.timeout)
        except ReportError as e:
            raise CliError(str(e)) from e
        except OSError as e:
            raise CliError(f"cannot write the report into {out_dir}: {e}") from e
    print(f"aar: report on swarm {args.swarm!r} written to {index.parent}", flush=True)
    print(f"  HTML:     {index}", flush=True)
    print(f"  Markdown: {index.parent / REPORT_MD}", flush=True)
    return 0
