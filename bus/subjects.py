"""Every NATS subject aar uses, built here and nowhere else.

Layout: ``aar.<swarm>.<kind>.<key>``. The swarm is a token of its own, so several swarms share one
server without colliding, and ``aar.<swarm>.>`` is everything one swarm says.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable
from enum import StrEnum
from operator import attrgetter
from typing import Any

from bus.errors import InvalidSubjectError
from schemas import (
    MESSAGE_TYPES,
    Baseline,
    BudgetEvent,
    BudgetQuery,
    BudgetStatus,
    DeadLetter,
    Envelope,
    ExperimentProgress,
    ExperimentRequest,
    ExperimentResult,
    Flag,
    ForumPost,
    Hypothesis,
    Leaderboard,
    Message,
    Presence,
    RpcError,
    ScoreEvent,
    TaskInfo,
    UsageReport,
    Verdict,
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
    # The scorer's full records (final split included): operator and scorer only.
    VERDICTS = "verdicts"
    USAGE = "usage"
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


@functools.lru_cache(maxsize=8192)
def subject(swarm: str, kind: Kind, key: str) -> str:
    """The subject for one message of ``kind`` under ``key`` in ``swarm``."""
    return f"{ROOT}.{token(swarm)}.{kind.value}.{token(key)}"


# What NATS refuses anywhere in a subject; CR or LF would also end the protocol line early.
_NOT_IN_SUBJECTS = re.compile(r"[\s]")


@functools.lru_cache(maxsize=1024)
def check(subject: str, *, wildcards: bool = False) -> str:
    """Return ``subject`` if NATS accepts it as given, else raise InvalidSubjectError.

    For subjects that come from a caller rather than the builders here (``subject=`` overrides,
    service subjects): the Bus connects with nats-py's per-message check off, because every subject
    built here is made of checked tokens, so this check stands in for it wherever one is not.

    Args:
        subject: the whole subject.
        wildcards: a subscription filter, where ``*`` and a final ``>`` may stand as tokens.
    """
    tokens = subject.split(".")
    bad = not subject or _NOT_IN_SUBJECTS.search(subject) is not None or "" in tokens
    for i, tok in enumerate(tokens):
        if "*" in tok or ">" in tok:
            whole = tok == "*" or (tok == ">" and i == len(tokens) - 1)
            bad = bad or not (wildcards and whole)
    if bad:
        raise InvalidSubjectError(subject)
    return subject


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


# Each type's kind and the field that routes it. A table rather than a `match` because publishing
# is a hot path (bench.bus); the import-time check below keeps it exhaustive.
_ROUTES: dict[type[Envelope], tuple[Kind, Callable[[Any], str]]] = {
    Hypothesis: (Kind.HYPOTHESES, attrgetter("sender")),
    ExperimentRequest: (Kind.REQUESTS, attrgetter("task")),
    ExperimentProgress: (Kind.PROGRESS, attrgetter("worker")),
    ExperimentResult: (Kind.RESULTS, attrgetter("task")),
    ScoreEvent: (Kind.SCORES, attrgetter("task")),
    ForumPost: (Kind.FORUM, attrgetter("thread")),
    BudgetEvent: (Kind.BUDGET, attrgetter("target")),
    UsageReport: (Kind.USAGE, attrgetter("agent")),
    Flag: (Kind.FLAGS, attrgetter("detector")),
    DeadLetter: (Kind.DLQ, attrgetter("consumer")),
    Presence: (Kind.EVENTS, attrgetter("name")),
    RpcError: (Kind.EVENTS, attrgetter("sender")),
    TaskInfo: (Kind.EVENTS, attrgetter("task")),
    Baseline: (Kind.EVENTS, attrgetter("task")),
    Verdict: (Kind.VERDICTS, attrgetter("task")),
    Leaderboard: (Kind.EVENTS, attrgetter("task")),
    BudgetQuery: (Kind.EVENTS, attrgetter("sender")),
    BudgetStatus: (Kind.EVENTS, attrgetter("agent")),
}
if set(_ROUTES) != set(MESSAGE_TYPES):
    raise AssertionError(f"no route for {set(MESSAGE_TYPES) ^ set(_ROUTES)}")


def kind_for(msg: Message) -> Kind:
    """The kind a message is routed as."""
    return _ROUTES[type(msg)][0]


# Per type: its kind, its key getter and the subjects built so far, by swarm, then by key.
# subject_for is on the publish hot path (bench.bus): two dict hits on strings (whose hashes are
# cached) cost ~0.21 us a call, one hit on a (swarm, key) tuple ~0.28 us, an lru_cache'd call more.
_SUBJECTS: dict[type[Envelope], tuple[Kind, Callable[[Any], str], dict[str, dict[str, str]]]] = {
    t: (kind, key, {}) for t, (kind, key) in _ROUTES.items()
}
_MAX_CACHED = 8192  # swarms per type, and keys per swarm; past it, that cache starts again


def subject_for(msg: Message) -> str:
    """The subject a message is published on; the key routes, the payload carries the data."""
    kind, key, cache = _SUBJECTS[type(msg)]
    try:
        return cache[msg.swarm][key(msg)]
    except KeyError:
        swarm, k = msg.swarm, key(msg)
        built = subject(swarm, kind, k)  # checks both tokens: raises InvalidSubjectError
        by_key = cache.get(swarm)
        if by_key is None:
            if len(cache) >= _MAX_CACHED:
                cache.clear()
            by_key = cache[swarm] = {}
        elif len(by_key) >= _MAX_CACHED:
            by_key.clear()
        by_key[k] = built
        return built
