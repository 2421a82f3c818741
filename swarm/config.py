"""The settings every agent shares, and how a role's config file becomes its typed Struct."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, TypeVar

import msgspec

from bus.config import load_struct
from bus.errors import ConfigFileError
from swarm.errors import ConfigError

Positive = Annotated[float, msgspec.Meta(gt=0)]


class AgentConfig(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """Runtime settings of any agent; a role's config subclasses this and adds its own fields.

    Unknown keys are refused (unlike wire messages): a typo in a config file should fail loudly.

    Attributes:
        max_concurrency: handlers running at once; further events wait for a free slot.
        throttle_interval_s: under a "throttle" budget level, experiment requests are spaced at
            least this far apart (``request_experiment`` waits; it does not fail).
        max_requests, max_tokens, max_usd: the agent's own caps on what it spends. Reaching
            ``throttle_at`` of any cap throttles the agent, reaching the cap stops it, exactly as
            a BudgetEvent from the swarm would. None: no local cap.
        throttle_at: the fraction of a local cap at which throttling starts.
    """

    max_concurrency: Annotated[int, msgspec.Meta(ge=1, le=1024)] = 8
    throttle_interval_s: Annotated[float, msgspec.Meta(ge=0)] = 60.0
    max_requests: Annotated[int, msgspec.Meta(ge=0)] | None = None
    max_tokens: Annotated[int, msgspec.Meta(ge=0)] | None = None
    max_usd: Annotated[float, msgspec.Meta(ge=0)] | None = None
    throttle_at: Annotated[float, msgspec.Meta(gt=0, le=1)] = 0.8


C = TypeVar("C", bound=AgentConfig)


def load_config(cls: type[C], path: str | Path | None) -> C:
    """Read a role's config from a TOML (``.toml``) or JSON file; defaults when ``path`` is None.

    Raises:
        ConfigError: the file is missing or unreadable, does not parse, or does not fit ``cls``.
    """
    try:
        return load_struct(cls, path)
    except ConfigFileError as e:
        raise ConfigError(e.reason, path=e.path) from e
