"""Every NATS subject aar uses, built here and nowhere else.

Layout: ``aar.<swarm>.<kind>.<key>``. The swarm is a token of its own, so several swarms share one
server without colliding, and ``aar.<swarm>.>`` is everything one swarm says.
"""

from __future__ import annotations

import re
from enum import StrEnum
from typing import assert_never

from bus.errors import InvalidSubjectError
from schemas import (
    BudgetEvent,
    DeadLetter,
    ExperimentProgress,
    ExperimentRequest,
    ExperimentResult,
    Flag,
    ForumPost,
    Hypothesis,
    Message,
    Presence,
    RpcError,
    ScoreEvent,
)

ROOT = "aar"
_TOKEN = re.compile(r"[A-Za-z0-9_-]{1,64}")


class Kind(StrEnum):
    """The kinds of traffic; each durable kind has a stream of its own (see ``bus.streams``)."""

    HYPOTHESES = "hypotheses"
    REQUESTS = "requests"
    PROGRESS = "progress"
    RESULTS = "results"
    SCORES = "scores"
    FORUM = "forum"
    BUDGET = "budget"
    FLAGS = "flags"
    DLQ = "dlq"
    RPC = "rpc"
    EVENTS = "events"


def token(value: str, *, wildcard: bool = False) -> str:
    """Return ``value`` if it can stand as one subject token, else raise InvalidSubjectError.

    Args:
        value: the candidate token.
        wildcard: also accept ``*`` (for subscription filters).
    """
    if (wildcard and value == "*") or _TOKEN.fullmatch(value):
        return value
    raise InvalidSubjectError(value)


def subject(swarm: str, kind: Kind, key: str) -> str:
    """The subject for one message of ``kind`` under ``key`` in ``swarm``."""
    return f"{ROOT}.{token(swarm)}.{kind.value}.{token(key)}"


def kind_filter(swarm: str, kind: Kind, key: str = "*") -> str:
    """A subscription filter for ``kind`` in ``swarm`` (``*`` matches every swarm or key)."""
    return f"{ROOT}.{token(swarm, wildcard=True)}.{kind.value}.{token(key, wildcard=True)}"


def swarm_filter(swarm: str = "*") -> str:
    """Everything one swarm (or every swarm) says."""
    return f"{ROOT}.{token(swarm, wildcard=True)}.>"


def rpc(swarm: str, service: str) -> str:
    """The request/reply subject of a service (core NATS, not stored)."""
    return subject(swarm, Kind.RPC, service)


def dead_letters(swarm: str, consumer: str) -> str:
    """Where a consumer's undecodable or unhandleable messages go."""
    return subject(swarm, Kind.DLQ, consumer)


def kind_for(msg: Message) -> Kind:
    """The kind a message is routed as."""
    match msg:
        case Hypothesis():
            return Kind.HYPOTHESES
        case ExperimentRequest():
            return Kind.REQUESTS
        case ExperimentProgress():
            return Kind.PROGRESS
        case ExperimentResult():
            return Kind.RESULTS
        case ScoreEvent():
            return Kind.SCORES
        case ForumPost():
            return Kind.FORUM
        case BudgetEvent():
            return Kind.BUDGET
        case Flag():
            return Kind.FLAGS
        case DeadLetter():
            return Kind.DLQ
        case Presence() | RpcError():
            return Kind.EVENTS
        case _:
            assert_never(msg)


def subject_for(msg: Message) -> str:
    """The subject a message is published on; the key routes, the payload carries the data."""
    match msg:
        case Hypothesis():
            key = msg.sender
        case ExperimentRequest() | ExperimentResult() | ScoreEvent():
            key = msg.task
        case ExperimentProgress():
            key = msg.worker
        case ForumPost():
            key = msg.thread
        case BudgetEvent():
            key = msg.target
        case Flag():
            key = msg.detector
        case DeadLetter():
            key = msg.consumer
        case Presence():
            key = msg.name
        case RpcError():
            key = msg.sender
        case _:
            assert_never(msg)
    return subject(msg.swarm, kind_for(msg), key)
