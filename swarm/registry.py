"""Finding a role's class by name: ``aar.roles`` entry points, the shipped roles, or a spec.

A spec is ``package.module:Class`` (importable) or ``path/to/file.py:Class`` (loaded from the file),
so a new role can join a running swarm without being installed.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import importlib.util
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bus.subjects import token
from swarm.agent import Agent
from swarm.errors import UnknownRoleError

GROUP = "aar.roles"
# What this package ships, also declared as entry points in pyproject.toml. Kept here too because
# entry points are registered at install time: a checkout installed before a role was added
# still finds it.
BUILTIN: dict[str, str] = {
    "summariser": "swarm.roles.summariser:Summariser",
    "claude-researcher": "swarm.roles.claude_researcher:ClaudeResearcher",
    "red-teamer": "swarm.roles.red_teamer:RedTeamer",
    "offline-researcher": "swarm.roles.offline_researcher:OfflineResearcher",
    "reviewer": "swarm.roles.reviewer:Reviewer",
}


@dataclass(frozen=True, slots=True)
class RoleEntry:
    """A registered role: its name, where it comes from, and its one-line description."""

    name: str
    spec: str
    doc: str


def registered() -> dict[str, str]:
    """Role name -> ``module:Class`` for every shipped role and ``aar.roles`` entry point."""
    found = dict(BUILTIN)
    for ep in importlib.metadata.entry_points(group=GROUP):
        found[ep.name] = ep.value
    return dict(sorted(found.items()))


def load_role(name_or_spec: str) -> type[Agent[Any]]:
    """The Agent subclass for a role name, ``module:Class`` or ``file.py:Class``.

    Raises:
        UnknownRoleError: no such role, or the spec does not load to an Agent subclass with a
            valid ``role``; the message lists the registered roles.
    """
    known = registered()
    spec = known.get(name_or_spec, name_or_spec)
    if ":" not in spec:
        raise UnknownRoleError(name_or_spec, list(known))
    module_name, _, attr = spec.rpartition(":")
    try:
        module = _import(module_name)
        obj: Any = module
        for part in attr.split("."):
            obj = getattr(obj, part)
    except Exception as e:  # a plug-in's import may fail any way: say which and why
        raise UnknownRoleError(name_or_spec, list(known), why=f"cannot load role {spec!r}: {e}") from e
    if not (isinstance(obj, type) and issubclass(obj, Agent)):
        raise UnknownRoleError(name_or_spec, list(known), why=f"{spec!r} is not an Agent subclass")
    role = getattr(obj, "role", None)
    try:
        token(role if isinstance(role, str) else "")
    except ValueError as e:
        why = f"{spec!r} must set `role` to a name of letters, digits, '_' or '-' (has {role!r})"
        raise UnknownRoleError(name_or_spec, list(known), why=why) from e
    return obj


def describe() -> list[RoleEntry]:
    """Every registered role with the first line of its docstring (or why it does not load)."""
    out: list[RoleEntry] = []
    for name, spec in registered().items():
        try:
            doc = (load_role(name).__doc__ or "").strip().splitlines()
            out.append(RoleEntry(name, spec, doc[0] if doc else ""))
        except UnknownRoleError as e:
            out.append(RoleEntry(name, spec, f"(does not load: {e})"))
    return out


def _import(module_name: str) -> Any:
    if not module_name.endswith(".py"):
        return importlib.import_module(module_name)
    path = Path(module_name).resolve()
    unique = f"aar_role_{path.stem}_{abs(hash(str(path))):x}"
    if (loaded := sys.modules.get(unique)) is not None:
        return loaded
    spec = importlib.util.spec_from_file_location(unique, path)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot load {path}")
    module = importlib.util.module_from_spec(spec)
    # Registered before it runs, as an import would: dataclasses and pickling look modules up.
    sys.modules[unique] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        del sys.modules[unique]
        raise
    return module
