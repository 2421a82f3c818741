"""Who may do what on the bus: the per-role permissions the embedded nats-server enforces.

This module is the one place that knows which role may publish, read or administer each subject,
stream and bucket; ``render_authorization`` turns that table into the server's ``authorization``
block, one nkey user per role. Publishing is deny-by-default (an allow-list), with explicit denies
on what must never happen (a non-scorer publishing a score, anyone but the operator touching the
label store or administering streams), so a mistake in an allow-list cannot open those.

Permissions are listed per swarm: stream names hold the swarm inside one token
(``AAR_<swarm>_SCORES``, ``KV_aar_<swarm>_leaderboard``) and NATS wildcards match whole tokens
only, so no pattern can say "every swarm's scores stream".

Reading a stream means calling the JetStream API on it: stream info, creating a consumer (ordered,
durable or pull), taking the next messages, acking, answering flow control, and direct gets (how
key-value and object-store reads are made). Replies come back on the role's own inbox prefix
(``_INBOX_<role>``); no role may subscribe to another's, so nobody can read the scorer's label
reads off its inbox.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from bus import streams
from bus.subjects import Kind, kind_filter, token

BucketName = Callable[[str], str]


class Role(StrEnum):
    """The kinds of process that connect to the bus, each with its own credentials."""

    AGENT = "agent"
    WORKER = "worker"
    SCORER = "scorer"
    OBSERVER = "observer"
    ADMIN = "admin"


def inbox_prefix(role: Role) -> str:
    """The inbox prefix a role's connections use (nats-py's ``inbox_prefix``), one per role."""
    return f"_INBOX_{role.value}"


@dataclass(frozen=True, slots=True)
class Grants:
    """What one role may do in each swarm it is given.

    Attributes:
        publish: the stored kinds it may publish.
        read: the streams (by kind) it may consume, replay and look into.
        kv_read, kv_write: key-value buckets (by their name function) it may read or write;
            writing implies reading, since a client opens a bucket by reading its stream info.
        objects_read, objects_write: object stores, likewise.
        rpc_call: may send requests to the swarm's rpc services.
        rpc_serve: may serve them (and answer on the caller's inbox).
        work: may take experiment requests from the work-queue consumer.
        watch_requests: may look at queued requests (stream info, direct reads, a live
            subscription) without consuming them.
        list_consumers: may list the consumers of the streams it may look at (``aar status``).
            Not for agents: a consumer can be changed by anyone who may create consumers on its
            stream and knows its name, and listing would give away the scorer's.
    """

    publish: frozenset[Kind] = frozenset()
    read: frozenset[Kind] = frozenset()
    kv_read: frozenset[BucketName] = frozenset()
    kv_write: frozenset[BucketName] = frozenset()
    objects_read: frozenset[BucketName] = frozenset()
    objects_write: frozenset[BucketName] = frozenset()
    rpc_call: bool = False
    rpc_serve: bool = False
    work: bool = False
    watch_requests: bool = False
    list_consumers: bool = False

    def __post_init__(self) -> None:
        if not (self.kv_write <= self.kv_read and self.objects_write <= self.objects_read):
            raise ValueError("a role that writes a bucket must be able to read it")


# What agents, the scorer and observers all read: the public record of the swarm.
_PUBLIC_STREAMS = frozenset({Kind.SCORES, Kind.FORUM, Kind.HYPOTHESES, Kind.BUDGET, Kind.FLAGS})
_PUBLIC_KV = frozenset({streams.leaderboard_bucket, streams.tasks_bucket, streams.presence_bucket})
_ARTIFACTS = frozenset({streams.artifacts_bucket})

GRANTS: dict[Role, Grants] = {
    Role.AGENT: Grants(
        # Dead letters: an agent's own consumers file what they cannot decode. Usage: what it spent,
        # which the scorer's budget keeper sums.
        publish=frozenset({Kind.HYPOTHESES, Kind.REQUESTS, Kind.FORUM, Kind.DLQ, Kind.USAGE}),
        read=_PUBLIC_STREAMS,
        kv_read=_PUBLIC_KV,
        kv_write=frozenset({streams.presence_bucket}),
        objects_read=_ARTIFACTS,
        objects_write=_ARTIFACTS,
        rpc_call=True,
    ),
    Role.WORKER: Grants(
        publish=frozenset({Kind.RESULTS, Kind.PROGRESS, Kind.DLQ}),
        kv_read=frozenset({streams.tasks_bucket, streams.presence_bucket}),
        kv_write=frozenset({streams.presence_bucket}),
        objects_read=_ARTIFACTS,
        objects_write=_ARTIFACTS,
        work=True,
    ),
    Role.SCORER: Grants(
        # Forum: the scorer announces a new best there.
        publish=frozenset({Kind.SCORES, Kind.FLAGS, Kind.BUDGET, Kind.VERDICTS, Kind.FORUM, Kind.DLQ}),
        # The judge sees every stored kind; the work queue only without taking from it.
        read=frozenset(streams.STREAMS) - {Kind.REQUESTS},
        kv_read=_PUBLIC_KV | {streams.baselines_bucket},
        kv_write=frozenset({streams.leaderboard_bucket, streams.presence_bucket}),
        objects_read=_ARTIFACTS | {streams.labels_bucket},
        rpc_serve=True,
        watch_requests=True,
        list_consumers=True,
    ),
    Role.OBSERVER: Grants(
        read=_PUBLIC_STREAMS | {Kind.PROGRESS, Kind.RESULTS, Kind.DLQ, Kind.USAGE},
        kv_read=_PUBLIC_KV,
        objects_read=_ARTIFACTS,
        watch_requests=True,
        list_consumers=True,
    ),
}
# The operator's role has no permissions block at all: it may do everything.


def readable_kinds(role: Role | None) -> frozenset[Kind]:
    """The stored kinds whose messages a role may read (all for the admin, or an unknown role)."""
    if role is None or role is Role.ADMIN:
        return frozenset(streams.STREAMS)
    g = GRANTS[role]
    return g.read | ({Kind.REQUESTS} if g.watch_requests else set())


def visible_kinds(role: Role | None) -> frozenset[Kind]:
    """The stored kinds whose stream state a role may look at (``aar status``)."""
    if role is None or role is Role.ADMIN:
        return frozenset(streams.STREAMS)
    return readable_kinds(role) | ({Kind.REQUESTS} if GRANTS[role].work else set())


def lists_consumers(role: Role | None) -> bool:
    """Whether a role may list the consumers of the streams it may look at."""
    return role is None or role is Role.ADMIN or GRANTS[role].list_consumers


# -- JetStream API subjects ---------------------------------------------------------------------

_API = "$JS.API"
JS_STREAM_CREATED = "$JS.EVENT.ADVISORY.STREAM.CREATED.*"
# Administration: creating, changing, emptying or removing streams (and so buckets), and the
# account- and cluster-wide calls. The operator's alone.
_ADMIN_API = tuple(
    f"{_API}.{verb}"
    for verb in (
        "STREAM.CREATE.>",
        "STREAM.UPDATE.>",
        "STREAM.DELETE.>",
        "STREAM.PURGE.>",
        "STREAM.MSG.DELETE.>",
        "STREAM.SNAPSHOT.>",
        "STREAM.RESTORE.>",
        "STREAM.PEER.>",
        "STREAM.LEADER.>",
        "CONSUMER.DELETE.>",
        "CONSUMER.PAUSE.>",
        "CONSUMER.UNPIN.>",
        "CONSUMER.LEADER.>",
        "ACCOUNT.>",
        "META.>",
        "SERVER.>",
    )
)


def _stream_info(stream: str) -> list[str]:
    return [f"{_API}.STREAM.INFO.{stream}", f"{_API}.CONSUMER.INFO.{stream}.*"]


def _consumer_lists(stream: str) -> list[str]:
    return [f"{_API}.CONSUMER.LIST.{stream}", f"{_API}.CONSUMER.NAMES.{stream}"]


def _direct_reads(stream: str) -> list[str]:
    return [
        f"{_API}.DIRECT.GET.{stream}",
        f"{_API}.DIRECT.GET.{stream}.>",
        f"{_API}.STREAM.MSG.GET.{stream}",
    ]


def _read_stream(stream: str) -> list[str]:
    """Everything a client publishes to consume, replay and look up one stream.

    Deleting a consumer is left out on purpose: nats-py never does it (the server reaps ephemeral
    consumers), and it would let one role remove another's durable consumer on a shared stream.
    """
    return [
        *_stream_info(stream),
        *_direct_reads(stream),
        f"{_API}.CONSUMER.CREATE.{stream}",
        f"{_API}.CONSUMER.CREATE.{stream}.>",
        f"{_API}.CONSUMER.DURABLE.CREATE.{stream}.*",
        f"{_API}.CONSUMER.MSG.NEXT.{stream}.*",
        f"$JS.ACK.{stream}.>",
        f"$JS.FC.{stream}.>",
    ]


def _any_api_on(stream: str) -> list[str]:
    """Every JetStream API call, present or future, that names ``stream`` (and its acks)."""
    return [
        f"{_API}.*.*.{stream}",
        f"{_API}.*.*.{stream}.>",
        f"{_API}.*.*.*.{stream}",
        f"{_API}.*.*.*.{stream}.>",
        f"$JS.ACK.{stream}.>",
        f"$JS.FC.{stream}.>",
    ]


def _protected(swarm: str) -> list[tuple[str, list[str]]]:
    """The operator-only streams (labels, baselines, verdicts), each with the subjects it stores."""
    labels, baselines = streams.labels_bucket(swarm), streams.baselines_bucket(swarm)
    return [
        (streams.object_stream(labels), list(streams.object_subjects(labels))),
        (streams.kv_stream(baselines), [streams.kv_keys(baselines)]),
        (streams.stream_name(swarm, Kind.VERDICTS), [kind_filter(swarm, Kind.VERDICTS)]),
    ]


# -- one role's permissions ---------------------------------------------------------------------


@dataclass(slots=True)
class Permissions:
    """A user's ``permissions`` block: allow- and deny-lists for publish and subscribe."""

    publish_allow: list[str] = field(default_factory=list)
    publish_deny: list[str] = field(default_factory=list)
    subscribe_allow: list[str] = field(default_factory=list)
    subscribe_deny: list[str] = field(default_factory=list)
    allow_responses: bool = False

    def as_config(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "publish": {"allow": _unique(self.publish_allow), "deny": _unique(self.publish_deny)},
            "subscribe": {"allow": _unique(self.subscribe_allow), "deny": _unique(self.subscribe_deny)},
        }
        if self.allow_responses:
            # One reply per request received, on the caller's inbox: how rpc is answered.
            out["allow_responses"] = True
        return out


def permissions(role: Role, swarms: Iterable[str]) -> Permissions | None:
    """The permissions of ``role`` on ``swarms``; None for the admin (no restrictions).

    Args:
        role: whose permissions.
        swarms: the swarms whose streams and buckets the role may use; a swarm created later needs
            the server's authorization rewritten and reloaded (``bus.creds.ServerAuth``).
    """
    if role is Role.ADMIN:
        return None
    g = GRANTS[role]
    p = Permissions(allow_responses=g.rpc_serve)
    own_inbox = inbox_prefix(role)
    # Names, configs and counts of every stream (`aar status`, finding swarms): no message in them.
    p.publish_allow += [f"{_API}.INFO", f"{_API}.STREAM.NAMES", f"{_API}.STREAM.LIST"]
    p.publish_deny += _ADMIN_API
    # Stored kinds this role does not publish: denied in every swarm, listed or not.
    p.publish_deny += [kind_filter("*", k) for k in streams.STREAMS if k not in g.publish]
    p.subscribe_allow.append(f"{own_inbox}.>")
    p.subscribe_deny += ["_INBOX.>", *(f"{inbox_prefix(r)}.>" for r in Role if r is not role)]
    for swarm in swarms:
        _swarm_permissions(p, g, token(swarm))
    return p


def _swarm_permissions(p: Permissions, g: Grants, swarm: str) -> None:
    p.publish_allow += [kind_filter(swarm, k) for k in sorted(g.publish)]
    for kind in sorted(g.read):
        p.publish_allow += _read_stream(streams.stream_name(swarm, kind))
        # Live, as they are published, for any plain NATS client: what its stream already shows.
        p.subscribe_allow.append(kind_filter(swarm, kind))
    for bucket in _names(g.kv_read, swarm):
        p.publish_allow += _read_stream(streams.kv_stream(bucket))
    p.publish_allow += [streams.kv_keys(b) for b in _names(g.kv_write, swarm)]
    for bucket in _names(g.objects_read, swarm):
        p.publish_allow += _read_stream(streams.object_stream(bucket))
    for bucket in _names(g.objects_write, swarm):
        p.publish_allow += streams.object_subjects(bucket)
    if g.rpc_call:
        p.publish_allow.append(kind_filter(swarm, Kind.RPC))
    if g.rpc_serve:
        p.subscribe_allow.append(kind_filter(swarm, Kind.RPC))
    requests = streams.stream_name(swarm, Kind.REQUESTS)
    if g.work:
        # Only the shared work-queue consumer: a second consumer would split or steal the queue.
        durable = streams.work_queue_consumer(swarm).durable_name or ""
        p.publish_allow += [
            *_stream_info(requests),
            f"{_API}.CONSUMER.MSG.NEXT.{requests}.{durable}",
            f"$JS.ACK.{requests}.{durable}.>",
        ]
    if g.watch_requests:
        p.publish_allow += [*_stream_info(requests), *_direct_reads(requests)]
        p.subscribe_allow.append(kind_filter(swarm, Kind.REQUESTS))
    if g.list_consumers:
        for kind in sorted(g.read | {Kind.REQUESTS}):
            p.publish_allow += _consumer_lists(streams.stream_name(swarm, kind))
    readable = {streams.stream_name(swarm, k) for k in g.read}
    readable |= {streams.kv_stream(b) for b in _names(g.kv_read, swarm)}
    readable |= {streams.object_stream(b) for b in _names(g.objects_read, swarm)}
    for stream, stored in _protected(swarm):
        if stream not in readable:
            p.publish_deny += _any_api_on(stream)
            p.subscribe_deny += stored
        if stream != streams.stream_name(swarm, Kind.VERDICTS):
            # Nobody but the operator writes the ground truth, the scorer included.
            p.publish_deny += stored


def _names(buckets: frozenset[BucketName], swarm: str) -> list[str]:
    return sorted(name(swarm) for name in buckets)


def _unique(items: list[str]) -> list[str]:
    return list(dict.fromkeys(items))


# -- the server's authorization block ------------------------------------------------------------


def render_authorization(users: Mapping[Role, str], swarms: Iterable[str]) -> str:
    """The nats-server config that authorizes one nkey user per role.

    Args:
        users: each role's nkey public key (``U...``).
        swarms: the swarms the roles may use.

    Returns:
        An ``authorization { users = [...] }`` block, for a file the server config includes.
    """
    swarm_list = sorted(set(swarms))
    entries: list[str] = []
    for role in Role:
        if role not in users:
            continue
        user: dict[str, Any] = {"nkey": users[role]}
        if (perms := permissions(role, swarm_list)) is not None:
            user["permissions"] = perms.as_config()
        # JSON is valid nats-server config, and quoting keeps "$JS..." from reading as a variable.
        entries.append(f"    # {role.value}\n    " + json.dumps(user, indent=2).replace("\n", "\n    "))
    header = [
        "# Generated by aar (bus.auth); edits are overwritten on the next start.",
        f"# Swarms: {', '.join(swarm_list) or '(none)'}",
    ]
    return "\n".join([*header, "authorization {", "  users = [", *entries, "  ]", "}", ""])
