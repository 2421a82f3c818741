"""Stream, consumer, key-value and object-store specs: every JetStream resource aar creates.

Names carry the swarm, so ``ensure_swarm`` for one swarm never touches another's resources.
"""

from __future__ import annotations

from dataclasses import dataclass

from nats.js import api

from bus.errors import InvalidSubjectError
from bus.subjects import Kind, kind_filter, token

DAY = 24 * 3600.0
# A retried publish within this window with the same Nats-Msg-Id is stored once.
DUPLICATE_WINDOW_S = 120.0
PRESENCE_TTL_S = 30.0


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How a consumer treats a message that is not acknowledged.

    Attributes:
        ack_wait_s: the server redelivers a message not acked (nor marked in progress) this long.
        max_deliver: deliveries before the message is given up on (then dead-lettered).
        backoff_s: delay before redelivery after the n-th failed delivery; the last one repeats.
    """

    ack_wait_s: float = 30.0
    max_deliver: int = 5
    backoff_s: tuple[float, ...] = (1.0, 5.0, 15.0, 30.0)

    def delay_after(self, deliveries: int) -> float:
        if not self.backoff_s:
            return 0.0
        return self.backoff_s[min(max(deliveries, 1), len(self.backoff_s)) - 1]


DEFAULT_RETRY = RetryPolicy()


@dataclass(frozen=True, slots=True)
class StreamSpec:
    """One durable stream per kind and swarm."""

    kind: Kind
    retention: api.RetentionPolicy
    max_age_s: float
    description: str
    max_msgs: int = -1

    def name(self, swarm: str) -> str:
        return f"AAR_{token(swarm)}_{self.kind.value.upper()}"

    def config(self, swarm: str, *, replicas: int = 1) -> api.StreamConfig:
        return api.StreamConfig(
            name=self.name(swarm),
            description=f"aar {swarm}: {self.description}",
            subjects=[kind_filter(swarm, self.kind)],
            retention=self.retention,
            storage=api.StorageType.FILE,
            max_age=self.max_age_s or None,
            max_msgs=self.max_msgs,
            max_msg_size=-1,
            num_replicas=replicas,
            duplicate_window=DUPLICATE_WINDOW_S,
            allow_direct=True,
        )


_LIMITS = api.RetentionPolicy.LIMITS
STREAMS: dict[Kind, StreamSpec] = {
    s.kind: s
    for s in (
        StreamSpec(Kind.HYPOTHESES, _LIMITS, 0, "hypotheses agents mean to test"),
        StreamSpec(Kind.FORUM, _LIMITS, 0, "the shared forum"),
        StreamSpec(Kind.RESULTS, _LIMITS, 0, "experiment results with prediction refs"),
        StreamSpec(Kind.SCORES, _LIMITS, 0, "the scorer's verdicts"),
        StreamSpec(Kind.FLAGS, _LIMITS, 0, "integrity alerts"),
        StreamSpec(Kind.BUDGET, _LIMITS, 0, "budget thresholds crossed"),
        StreamSpec(Kind.USAGE, _LIMITS, 0, "what each agent spent (tokens, dollars, requests)"),
        StreamSpec(Kind.PROGRESS, _LIMITS, DAY, "worker progress on running experiments"),
        StreamSpec(Kind.DLQ, _LIMITS, 14 * DAY, "messages a consumer could not decode or handle"),
        StreamSpec(Kind.VERDICTS, _LIMITS, 0, "scorer records, final split included (operator only)"),
        StreamSpec(
            Kind.REQUESTS,
            api.RetentionPolicy.WORK_QUEUE,
            0,
            "experiment requests: a work queue, each taken by one worker and removed on ack",
        ),
    )
}


def stream_name(swarm: str, kind: Kind) -> str:
    """The stream that stores ``kind`` for ``swarm``."""
    if kind not in STREAMS:
        raise InvalidSubjectError(f"{kind.value} (not stored in a stream)")
    return STREAMS[kind].name(swarm)


def work_queue_consumer(
    swarm: str, *, durable: str = "workers", task: str = "*", retry: RetryPolicy = DEFAULT_RETRY
) -> api.ConsumerConfig:
    """The one shared pull consumer workers take experiment requests from."""
    return api.ConsumerConfig(
        durable_name=token(durable),
        description=f"aar {swarm}: workers pulling experiment requests",
        filter_subject=kind_filter(swarm, Kind.REQUESTS, task),
        ack_policy=api.AckPolicy.EXPLICIT,
        ack_wait=retry.ack_wait_s,
        max_deliver=retry.max_deliver,
        max_ack_pending=1024,
        deliver_policy=api.DeliverPolicy.ALL,
    )


def consumer_durable(role: str, name: str, purpose: str) -> str:
    """A durable consumer name that is stable across restarts of one named process."""
    return f"{token(role)}_{token(name)}_{token(purpose)}"


def presence_bucket(swarm: str) -> str:
    return f"aar_{token(swarm)}_presence"


def leaderboard_bucket(swarm: str) -> str:
    return f"aar_{token(swarm)}_leaderboard"


def artifacts_bucket(swarm: str) -> str:
    return f"aar_{token(swarm)}_artifacts"


def tasks_bucket(swarm: str) -> str:
    """Prepared tasks (TaskInfo by name): what workers may run."""
    return f"aar_{token(swarm)}_tasks"


def baselines_bucket(swarm: str) -> str:
    """Baselines by task; for the scorer and the operator only."""
    return f"aar_{token(swarm)}_baselines"


def labels_bucket(swarm: str) -> str:
    """The label store (an object store, TaskLabels by task): for the scorer and the operator only."""
    return f"aar_{token(swarm)}_labels"


def weak_predictions_object(task: str) -> str:
    """The label store's name for a task's weak-supervisor predictions (beside its labels, ``task``)."""
    return f"{token(task)}.weak"


@dataclass(frozen=True, slots=True)
class KeyValueSpec:
    bucket: str
    description: str
    ttl_s: float | None = None
    history: int = 1


@dataclass(frozen=True, slots=True)
class ObjectStoreSpec:
    bucket: str
    description: str


def key_values(swarm: str) -> tuple[KeyValueSpec, ...]:
    """The swarm's key-value buckets: live presence (entries expire) and the leaderboard."""
    return (
        KeyValueSpec(presence_bucket(swarm), f"aar {swarm}: who is alive", ttl_s=PRESENCE_TTL_S),
        KeyValueSpec(leaderboard_bucket(swarm), f"aar {swarm}: leaderboard per task", history=16),
        KeyValueSpec(tasks_bucket(swarm), f"aar {swarm}: prepared tasks", history=4),
        KeyValueSpec(
            baselines_bucket(swarm), f"aar {swarm}: baselines (scorer and operator only)", history=4
        ),
    )


def object_stores(swarm: str) -> tuple[ObjectStoreSpec, ...]:
    """The swarm's object store for large artifacts (predictions, task views, code), named by hash."""
    return (
        ObjectStoreSpec(artifacts_bucket(swarm), f"aar {swarm}: artifacts by sha256"),
        ObjectStoreSpec(labels_bucket(swarm), f"aar {swarm}: gold labels (scorer and operator only)"),
    )


def kv_stream(bucket: str) -> str:
    """The stream behind a key-value bucket (the name nats-py and the server give it)."""
    return f"KV_{bucket}"


def kv_keys(bucket: str) -> str:
    """Every key of a bucket as a subject filter; a put or delete publishes on ``$KV.<bucket>.<key>``."""
    return f"$KV.{bucket}.>"


def object_stream(bucket: str) -> str:
    """The stream behind an object store."""
    return f"OBJ_{bucket}"


def object_subjects(bucket: str) -> tuple[str, str]:
    """Where an object store keeps its objects: their chunks and their metadata."""
    return f"$O.{bucket}.C.>", f"$O.{bucket}.M.>"
