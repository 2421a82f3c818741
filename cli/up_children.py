"""Which processes ``aar up`` runs beside the server, and with which arguments.

Each child is a plain ``aar`` command a user could type on another machine; ``aar up`` only picks
its role credentials, a stable name (so a restarted agent resumes its own state) and, for the
offline researchers, settings that make them search different corners of the method catalogue.
"""

from __future__ import annotations

import argparse
import json
import os
from dataclasses import dataclass
from pathlib import Path

from bus.auth import Role
from bus.creds import ServerAuth
from cli.children import ChildSpec

# What the offline researchers start with, one entry per researcher in turn (the rest of the
# catalogue follows in an order each one shuffles differently).
_FAMILIES: tuple[tuple[str, ...], ...] = (
    ("naive", "soft", "conf_filter"),
    ("propagate", "knn", "gce"),
    ("conf_filter", "bootstrap", "soft"),
    ("knn", "naive", "propagate"),
)
# A worker finishing an experiment, or an agent finishing a handler, gets this long at stop.
_WORKER_GRACE_S = 20.0
_AGENT_GRACE_S = 10.0


@dataclass(frozen=True, slots=True)
class Connection:
    """How a child reaches the bus: URLs plus either a role's credentials file or the user's flags."""

    urls: list[str]
    auth: ServerAuth | None  # the embedded server's users: each child gets its role's file
    passthrough: list[str]  # connection flags the user gave (attached to someone else's server)

    def argv(self, role: Role, swarm: str) -> list[str]:
        out = ["--nats", ",".join(self.urls), "--swarm", swarm]
        if self.auth is not None:
            return [*out, "--creds", str(self.auth.creds_path(role))]
        return out + self.passthrough


def passthrough_flags(args: argparse.Namespace) -> list[str]:
    """The connection flags of ``aar up`` that its children need as they are (``--nats`` aside)."""
    flags = {
        "--creds": args.creds,
        "--user": args.user,
        "--password": args.password,
        "--tls-ca": args.tls_ca,
        "--tls-cert": args.tls_cert,
        "--tls-key": args.tls_key,
    }
    return [part for flag, value in flags.items() if value for part in (flag, str(value))]


def _agent(name: str, role: str, conn: Connection, swarm: str, config: Path | None = None) -> ChildSpec:
    argv = ["agent", "run", role, "--name", name, *conn.argv(Role.AGENT, swarm)]
    if config is not None:
        argv += ["--config", str(config)]
    return ChildSpec(name, argv, grace_s=_AGENT_GRACE_S)


def offline_config(index: int, tasks: list[str]) -> dict[str, object]:
    """Settings of the index-th offline researcher: its own task (in turn), families and order."""
    config: dict[str, object] = {
        "families": list(_FAMILIES[index % len(_FAMILIES)]),
        "shuffle_seed": index,
        "start_delay_s": float(index),
        # Enough rounds to work through the whole catalogue and the neighbours of the best configs;
        # after that an offline researcher has nothing new to try and waits.
        "max_rounds": 20,
    }
    if tasks:
        config["task"] = tasks[index % len(tasks)]
    return config


def child_specs(
    args: argparse.Namespace, conn: Connection, swarm: str, tasks: list[str], run_dir: Path
) -> list[ChildSpec]:
    """The children in start order: scorer, workers, reviewer, researchers, dashboard."""
    specs: list[ChildSpec] = []
    if not args.no_scorer:
        specs.append(ChildSpec("scorer", ["scorer", *conn.argv(Role.SCORER, swarm)]))
    for i in range(1, args.workers + 1):
        argv = ["worker", "--name", f"worker-{i}", "--device", args.device, *conn.argv(Role.WORKER, swarm)]
        specs.append(ChildSpec(f"worker-{i}", argv, grace_s=_WORKER_GRACE_S))
    if args.reviewer:
        specs.append(_agent("reviewer", "reviewer", conn, swarm))
    configs = run_dir / "agents"
    for i in range(args.agents):
        name = f"offline-{i + 1}"
        configs.mkdir(parents=True, exist_ok=True)
        path = configs / f"{name}.json"
        path.write_text(json.dumps(offline_config(i, tasks), indent=2))
        specs.append(_agent(name, "offline-researcher", conn, swarm, path))
    for i in range(args.claude):
        specs.append(_agent(f"claude-{i + 1}", "claude-researcher", conn, swarm))
    if args.dashboard:
        argv = ["dashboard", "--host", args.host, "--port", str(args.dashboard_port)]
        specs.append(ChildSpec("dashboard", [*argv, *conn.argv(Role.OBSERVER, swarm)]))
    return specs


def claude_available() -> bool:
    """Whether Claude researchers can run: the anthropic SDK needs an API key."""
    return bool(os.environ.get("ANTHROPIC_API_KEY"))
