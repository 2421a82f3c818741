"""Errors raised by the agent runtime and the role registry."""

from __future__ import annotations

from schemas.errors import AarError


class AgentError(AarError):
    """Something an agent or its role could not do."""


class BudgetExhaustedError(AgentError):
    """The agent's budget level is "stop": it may not request more experiments.

    Attributes:
        scope: what the limit applies to: "agent", "swarm" or "local" (the agent's own caps).
        resource: the resource that ran out (tokens, usd, gpu_minutes, dev_queries or requests).
        used, limit: the figures the stop was announced with.
    """

    def __init__(self, *, scope: str, resource: str, used: float, limit: float) -> None:
        super().__init__(
            f"budget exhausted ({scope} {resource}: {used:g} of {limit:g}); "
            "no more experiments may be requested"
        )
        self.scope, self.resource, self.used, self.limit = scope, resource, used, limit


class ScoreTimeoutError(AgentError, TimeoutError):
    """No score arrived for a request in time.

    Attributes:
        request_id: the request still waiting.
        timeout_s: how long ``await_score`` waited.
    """

    def __init__(self, request_id: str, timeout_s: float) -> None:
        super().__init__(f"no score for request {request_id} within {timeout_s:g}s")
        self.request_id, self.timeout_s = request_id, timeout_s


class UnknownRoleError(AgentError, LookupError):
    """A role name that no entry point or built-in names, or a ``module:Class`` that does not load.

    Attributes:
        name: what was asked for.
        known: the role names that are registered.
    """

    def __init__(self, name: str, known: list[str], *, why: str | None = None) -> None:
        roles = ", ".join(known) or "none"
        reason = why or f"unknown role {name!r}"
        super().__init__(f"{reason}; known roles: {roles} (or give a module:Class or path/to/file.py:Class)")
        self.name, self.known = name, known


class ConfigError(AgentError, ValueError):
    """A role's config file cannot be read, parsed or validated.

    Attributes:
        path: the file, when there is one.
    """

    def __init__(self, reason: str, *, path: str | None = None) -> None:
        super().__init__(f"bad config {path}: {reason}" if path else f"bad config: {reason}")
        self.path = path
