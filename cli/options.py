"""Flags shared by several commands, and how they become a BusConfig and a connected Bus."""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import re
from collections.abc import AsyncIterator, Iterator
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from bus import Bus, BusConfig, BusError, InvalidSubjectError
from bus.errors import CredentialsError
from bus.subjects import token
from cli.errors import CliError

DEFAULT_SWARM = "default"
# One-shot commands should say "cannot reach the server" within a few seconds, not retry forever.
ONE_SHOT_CONNECT_TIMEOUT_S = 2.0
_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)([smhd])")
log = logging.getLogger("aar.cli")
_UNIT_S = {"s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}


def add_logging_flags(parser: argparse.ArgumentParser) -> None:
    """``--log-level`` and ``--log-json`` (logs always go to stderr)."""
    group = parser.add_argument_group("logging")
    group.add_argument(
        "--log-level",
        choices=["debug", "info", "warning", "error"],
        default=None,
        help="log level (default: info for server/up, warning for the others)",
    )
    group.add_argument("--log-json", action="store_true", help="log JSON lines instead of key=value text")


def add_swarm_flag(parser: argparse.ArgumentParser) -> None:
    """``--swarm`` (env AAR_SWARM, default "default")."""
    parser.add_argument(
        "--swarm",
        type=swarm_name,
        default=os.environ.get("AAR_SWARM") or DEFAULT_SWARM,
        help="swarm name (env AAR_SWARM; default %(default)s)",
    )


def add_swarms_flag(parser: argparse.ArgumentParser) -> None:
    """``--swarm``, repeatable, into ``args.swarms`` (for ``aar server``, which serves several)."""
    parser.add_argument(
        "--swarm",
        dest="swarms",
        action="append",
        type=swarm_name,
        default=None,
        metavar="SWARM",
        help="a swarm to create and let the roles use; repeat for several (env AAR_SWARM; "
        f"default {os.environ.get('AAR_SWARM') or DEFAULT_SWARM}). Swarms already in the store, "
        "and any created later, are added on their own",
    )


def swarms_from(args: argparse.Namespace) -> list[str]:
    """The swarms ``add_swarms_flag`` collected, or the default one."""
    return list(dict.fromkeys(args.swarms or [os.environ.get("AAR_SWARM") or DEFAULT_SWARM]))


def add_connection_flags(parser: argparse.ArgumentParser) -> None:
    """Where the NATS server is and how to authenticate (falls back to AAR_NATS_URL / AAR_NATS_CREDS)."""
    group = parser.add_argument_group("connection")
    group.add_argument(
        "--nats",
        action="append",
        metavar="URL",
        default=None,
        help="NATS server URL; repeat or comma-separate for a cluster (env AAR_NATS_URL)",
    )
    group.add_argument(
        "--creds",
        metavar="FILE",
        help="credentials file: a role's file from `aar server` (<data_dir>/creds/<role>.creds) "
        "or a NATS .creds (env AAR_NATS_CREDS)",
    )
    group.add_argument("--user", help="user name, for servers with plain user auth")
    group.add_argument("--password", help="password for --user")
    group.add_argument("--tls-ca", metavar="FILE", help="CA certificate to trust")
    group.add_argument("--tls-cert", metavar="FILE", help="client certificate")
    group.add_argument("--tls-key", metavar="FILE", help="client private key")


def swarm_name(value: str) -> str:
    """An argparse type: the value must be a single subject token."""
    try:
        return token(value)
    except InvalidSubjectError as e:
        raise argparse.ArgumentTypeError(str(e)) from e


def parse_duration(text: str) -> float:
    """``30s``, ``10m``, ``2h``, ``1d`` or combinations (``1h30m``) as seconds; a bare number is seconds.

    Raises:
        argparse.ArgumentTypeError: not a duration.
    """
    text = text.strip().lower()
    with contextlib.suppress(ValueError):
        return _non_negative(float(text), text)
    parts = _DURATION_PART.findall(text)
    if not parts or "".join(n + u for n, u in parts) != text:
        raise argparse.ArgumentTypeError(f"not a duration: {text!r} (use e.g. 30s, 10m, 2h, 1d)")
    return sum(float(n) * _UNIT_S[u] for n, u in parts)


def _non_negative(value: float, text: str) -> float:
    if value < 0:
        raise argparse.ArgumentTypeError(f"not a duration: {text!r} (must not be negative)")
    return value


def servers_from(values: list[str] | None) -> list[str] | None:
    """``--nats a --nats b,c`` as ``[a, b, c]``; None when the flag was not given."""
    if not values:
        return None
    return [u.strip() for v in values for u in v.split(",") if u.strip()] or None


def bus_config(args: argparse.Namespace, *, name: str, one_shot: bool, **overrides: Any) -> BusConfig:
    """BusConfig from the environment, then the flags, then ``overrides``.

    Args:
        args: parsed flags (from ``add_connection_flags``).
        name: the connection name the server shows in its monitoring.
        one_shot: fail within a few seconds when the server is unreachable instead of retrying.
        overrides: further BusConfig fields (``servers`` for a server started in-process).
    """
    fields: dict[str, Any] = {
        "name": name,
        "servers": servers_from(args.nats),
        "creds_file": args.creds,
        "user": args.user,
        "password": args.password,
        "tls_ca_file": args.tls_ca,
        "tls_cert_file": args.tls_cert,
        "tls_key_file": args.tls_key,
    }
    if one_shot:
        fields.update(connect_timeout_s=ONE_SHOT_CONNECT_TIMEOUT_S, connect_attempts=1)
    fields.update(overrides)
    return BusConfig.from_env(**fields)


@contextlib.contextmanager
def _quiet_connect_errors() -> Iterator[None]:
    # The Bus logs a warning for every failed connect attempt; a command that cannot connect
    # reports that once, as its own one-line error, so hide the attempts unless debugging.
    bus_log = logging.getLogger("aar.bus")
    saved = bus_log.level
    if not bus_log.isEnabledFor(logging.DEBUG):
        bus_log.setLevel(logging.ERROR)
    try:
        yield
    finally:
        bus_log.setLevel(saved)


@contextlib.asynccontextmanager
async def open_bus(config: BusConfig) -> AsyncIterator[Bus]:
    """A connected Bus, or CliError when no server answers.

    Args:
        config: as from ``bus_config``.

    Raises:
        CliError: the server cannot be reached.
    """
    bus = Bus(config)
    with _quiet_connect_errors():
        try:
            await bus.start()
        except CredentialsError as e:
            raise CliError(str(e)) from e
        except BusError as e:
            raise CliError(f"{e} (is `aar server` or `aar up` running? set --nats or AAR_NATS_URL)") from e
    url = bus.nc.connected_url.geturl() if bus.nc.connected_url else "?"
    log.info("bus connected", extra={"url": redact(url), "connection": config.name})
    try:
        yield bus
    finally:
        await bus.close()


def redact(url: str) -> str:
    """A server URL without any user:password in it, for printing."""
    parts = urlsplit(url)
    if "@" not in parts.netloc:
        return url
    return urlunsplit(parts._replace(netloc=parts.netloc.rsplit("@", 1)[1]))
