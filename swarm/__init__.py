"""Agents: the runtime every role stands on, the role registry, and the roles aar ships."""

from swarm.agent import Agent
from swarm.budget import Level, Limit, Usage
from swarm.config import AgentConfig, load_config
from swarm.errors import AgentError, BudgetExhaustedError, ConfigError, ScoreTimeoutError, UnknownRoleError
from swarm.registry import RoleEntry, describe, load_role, registered

__all__ = [
    "Agent",
    "AgentConfig",
    "AgentError",
    "BudgetExhaustedError",
    "ConfigError",
    "Level",
    "Limit",
    "RoleEntry",
    "ScoreTimeoutError",
    "UnknownRoleError",
    "Usage",
    "describe",
    "load_config",
    "load_role",
    "registered",
]
