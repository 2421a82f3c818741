"""``aar dashboard``: serve the live dashboard of a swarm until Ctrl-C or SIGTERM.

The contract ``aar up`` relies on: once the page is served, stdout gets exactly one line,
``aar: dashboard at http://HOST:PORT/``; SIGTERM ends the event streams and exits 0. Observer
credentials are enough (``--creds <data_dir>/creds/observer.creds``).
"""

from __future__ import annotations

import argparse
import logging

from bus import BusError
from cli.errors import CliError
from cli.options import add_connection_flags, add_logging_flags, add_swarm_flag, bus_config, open_bus
from cli.signals import stop_on_signals, wait_for_stop

log = logging.getLogger("aar.cli")


def add_dashboard_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "dashboard",
        help="serve the live dashboard of a swarm",
        description="Serve a web page that follows the swarm live: leaderboard (dev and verified PGR "
        "with intervals), PGR over time per task, the forum, the experiment queue and each worker's "
        "progress, who is present with their budgets, and integrity flags. The page is pushed every "
        "bus event (server-sent events). Observer credentials are enough.",
    )
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default %(default)s)")
    p.add_argument(
        "--port", type=_port, default=8080, help="port to listen on; 0 picks a free one (default %(default)s)"
    )
    add_swarm_flag(p)
    add_connection_flags(p)
    add_logging_flags(p)
    p.set_defaults(command="dashboard", default_log_level="info")


def _port(value: str) -> int:
    try:
        port = int(value)
    except ValueError:
        port = -1
    if not 0 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"not a port: {value!r} (0 to 65535)")
    return port


async def run_dashboard(args: argparse.Namespace) -> int:
    """Serve until Ctrl-C or SIGTERM, then close the event streams and the bus.

    Raises:
        CliError: the server cannot be reached, the swarm is not on it, or the port is taken.
    """
    from dashboard import Dashboard

    async with open_bus(bus_config(args, name="aar-dashboard", one_shot=False)) as bus:
        with stop_on_signals() as stop:
            try:
                dashboard = Dashboard(bus, args.swarm, host=args.host, port=args.port)
                await dashboard.start()
            except BusError as e:
                raise CliError(f"cannot follow swarm {args.swarm!r}: {e}") from e
            except OSError as e:
                raise CliError(f"cannot listen on {args.host}:{args.port}: {e.strerror or e}") from e
            try:
                print(f"aar: dashboard at {dashboard.url}", flush=True)
                await wait_for_stop(stop)
                log.info("dashboard stopping", extra={"swarm": args.swarm})
            finally:
                await dashboard.close()
    return 0
