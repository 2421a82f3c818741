"""Every message on the aar bus, as one tagged union of msgspec Structs.

Wire rules (see msgspec's schema-evolution guide):
- the JSON object's ``kind`` field names the type; tags are spelled out so renaming a class never
  changes the wire;
- ``v`` is the version of that kind; a new field always gets a default, an existing field keeps its
  type; an incompatible change is a new tag (``experiment_request.v2``) decoded beside the old one;
- unknown fields are ignored, so an old process skips what a newer one adds.
"""

from __future__ import annotations

import os
import time
from typing import Annotated, Any, Literal

import msgspec

from schemas.artifacts import PredictionSet

# Bounds checked while decoding; a payload over MAX_MESSAGE_BYTES is refused before parsing.
MAX_MESSAGE_BYTES = 1024 * 1024
# A dead letter keeps this much of the payload it is about (base64 in JSON: ~4/3 of it).
DEAD_LETTER_ORIGINAL_MAX = 256 * 1024
# Tokens (names that may route: swarm, sender, task, worker, ...) and ids are checked for length only
# while decoding, the hot path (a regex per field costs ~0.7 us, as much as the rest of a decode);
# the subject and key builders in bus/ check their characters wherever one becomes part of a
# subject or a key, and refuse with InvalidSubjectError.
Token = Annotated[str, msgspec.Meta(min_length=1, max_length=64)]
Id = Annotated[str, msgspec.Meta(min_length=1, max_length=64)]
# Model ids and other names that never route ("HuggingFaceTB/SmolLM2-135M").
Name = Annotated[str, msgspec.Meta(min_length=1, max_length=128)]
Text = Annotated[str, msgspec.Meta(max_length=64 * 1024)]
ShortText = Annotated[str, msgspec.Meta(max_length=1024)]
Tags = Annotated[list[Annotated[str, msgspec.Meta(min_length=1, max_length=64)]], msgspec.Meta(max_length=32)]
Seconds = Annotated[float, msgspec.Meta(ge=0)]
Params = dict[str, Any]


def new_id() -> str:
    """Return a unique id that sorts by creation time (hex nanoseconds, then 40 random bits)."""
    return f"{time.time_ns():016x}{os.urandom(5).hex()}"


class Lineage(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    """Which earlier messages this one follows from; every id is optional."""

    hypothesis_id: Id | None = None
    request_id: Id | None = None
    result_id: Id | None = None
    post_id: Id | None = None


class ArtifactRef(msgspec.Struct, frozen=True, kw_only=True):
    """A large payload kept in the swarm's object store, named by its content hash."""

    name: Annotated[str, msgspec.Meta(min_length=1, max_length=256)]
    sha256: Annotated[str, msgspec.Meta(pattern=r"^[0-9a-f]{64}$")]
    size: Annotated[int, msgspec.Meta(ge=0)]
    content_type: ShortText = "application/octet-stream"


class Envelope(msgspec.Struct, frozen=True, kw_only=True, tag_field="kind", omit_defaults=False):
    """Fields every message carries."""

    swarm: Token
    sender: Token
    id: Id = msgspec.field(default_factory=new_id)
    ts: float = msgspec.field(default_factory=time.time)
    v: int = 1
    lineage: Lineage = Lineage()


class Hypothesis(Envelope, tag="hypothesis", kw_only=True, frozen=True):
    """A claim an agent intends to test."""

    title: ShortText
    text: Text = ""
    task: Token | None = None
    methods: Tags = msgspec.field(default_factory=list)
    tags: Tags = msgspec.field(default_factory=list)


class ExperimentRequest(Envelope, tag="experiment_request", kw_only=True, frozen=True):
    """Ask a worker to run one weak-to-strong experiment; ``lineage.hypothesis_id`` says what it tests."""

    task: Token
    method: Token
    params: Params = msgspec.field(default_factory=dict)
    seed: Annotated[int, msgspec.Meta(ge=0)] = 0
    weak_model: Name | None = None
    strong_model: Name | None = None
    code: ArtifactRef | None = None
    priority: Annotated[int, msgspec.Meta(ge=0, le=9)] = 5
    max_gpu_seconds: Seconds | None = None


class ExperimentProgress(Envelope, tag="experiment_progress", kw_only=True, frozen=True):
    """A worker's heartbeat on one request (``lineage.request_id``)."""

    worker: Token
    stage: ShortText = ""
    step: Annotated[int, msgspec.Meta(ge=0)] = 0
    total_steps: Annotated[int, msgspec.Meta(ge=0)] | None = None
    loss: float | None = None
    eta_s: Seconds | None = None


class ExperimentResult(Envelope, tag="experiment_result", kw_only=True, frozen=True):
    """What a worker returns for one request: predictions, never a claimed accuracy."""

    worker: Token
    task: Token
    method: Token
    status: Literal["ok", "failed"]
    params: Params = msgspec.field(default_factory=dict)
    seed: Annotated[int, msgspec.Meta(ge=0)] = 0
    predictions: dict[Name, ArtifactRef] = msgspec.field(default_factory=dict)
    # Small prediction sets come in the message itself (see INLINE_PREDICTIONS_MAX_BYTES); a split
    # is either here or in ``predictions``, never both.
    inline_predictions: dict[Name, PredictionSet] = msgspec.field(default_factory=dict)
    error: Text | None = None
    timings: dict[Name, Seconds] = msgspec.field(default_factory=dict)
    code_hash: ShortText | None = None
    data_hash: ShortText | None = None
    # Who asked for the experiment (the request's sender): the scorer charges its dev budget.
    agent: Token | None = None

    def __post_init__(self) -> None:
        if self.lineage.request_id is None:
            raise ValueError("an experiment_result must name the request it answers (lineage.request_id)")
        if self.status == "failed" and not self.error:
            raise ValueError("a failed experiment_result must carry an error")
        if both := sorted(self.predictions.keys() & self.inline_predictions.keys()):
            raise ValueError(f"{', '.join(both)} predictions are both inline and stored: send one")
        for split, preds in self.inline_predictions.items():
            if preds.split != split:
                raise ValueError(f"the inline {split} predictions are labelled split {preds.split!r}")


class ScoreEvent(Envelope, tag="score", kw_only=True, frozen=True):
    """The scorer's answer on one result (``lineage.result_id``), on the split agents may see.

    ``accuracy`` and ``pgr`` are the dev answer after the scorer's reusable-holdout rule (see
    ``answer``); they are None when the result was rejected or the dev budget is spent. The final
    split's score never appears here.
    """

    task: Token
    method: Token
    status: Literal["accepted", "rejected"]
    split: Name = "dev"
    accuracy: Annotated[float, msgspec.Meta(ge=0, le=1)] | None = None
    pgr: float | None = None
    reason: ShortText | None = None
    params: Params = msgspec.field(default_factory=dict)
    seed: Annotated[int, msgspec.Meta(ge=0)] = 0
    worker: Token | None = None
    agent: Token | None = None
    code_hash: ShortText | None = None
    data_hash: ShortText | None = None
    timings: dict[Name, Seconds] = msgspec.field(default_factory=dict)
    budget_left: int | None = None
    # How the dev answer was produced: "public" (public half), "holdout" (noisy holdout answer),
    # "withheld" (budget spent) or "none" (rejected).
    answer: Literal["public", "holdout", "withheld", "none"] = "public"
    config_key: Token | None = None
    flags: Tags = msgspec.field(default_factory=list)


class ForumPost(Envelope, tag="forum_post", kw_only=True, frozen=True):
    """A post in the shared forum; a reply names its parent in ``reply_to`` and shares its thread."""

    title: ShortText = ""
    body: Text
    thread_id: Id | None = None
    reply_to: Id | None = None
    tags: Tags = msgspec.field(default_factory=list)
    evidence: Annotated[list[Id], msgspec.Meta(max_length=256)] = msgspec.field(default_factory=list)

    @property
    def thread(self) -> str:
        """The thread this post belongs to: its own id when it starts one."""
        return self.thread_id or self.id


class Presence(Envelope, tag="presence", kw_only=True, frozen=True):
    """A process saying it is alive and what it can do; kept in the presence bucket under ``name``."""

    role: Token
    name: Token
    host: ShortText
    pid: Annotated[int, msgspec.Meta(ge=0)]
    capabilities: Tags = msgspec.field(default_factory=list)
    last_seen: float = msgspec.field(default_factory=time.time)
    state: Literal["starting", "ready", "busy", "draining", "stopped"] = "ready"
    info: dict[Name, ShortText] = msgspec.field(default_factory=dict)


class BudgetEvent(Envelope, tag="budget", kw_only=True, frozen=True):
    """A budget crossed a threshold; ``level`` tells every agent what to do."""

    scope: Literal["agent", "swarm"]
    target: Token
    resource: Literal["tokens", "usd", "gpu_minutes", "dev_queries"]
    used: Annotated[float, msgspec.Meta(ge=0)]
    limit: Annotated[float, msgspec.Meta(ge=0)]
    level: Literal["info", "warn", "throttle", "stop"]


class UsageReport(Envelope, tag="usage", kw_only=True, frozen=True):
    """What an agent spent since its last report (LLM tokens and dollars, experiments requested).

    Kept in the usage stream; the swarm's budget keeper sums these per agent and per swarm and
    publishes BudgetEvents when a limit is near or reached.
    """

    agent: Token
    input_tokens: Annotated[int, msgspec.Meta(ge=0)] = 0
    output_tokens: Annotated[int, msgspec.Meta(ge=0)] = 0
    cache_read_tokens: Annotated[int, msgspec.Meta(ge=0)] = 0
    cache_write_tokens: Annotated[int, msgspec.Meta(ge=0)] = 0
    usd: Annotated[float, msgspec.Meta(ge=0)] = 0.0
    requests: Annotated[int, msgspec.Meta(ge=0)] = 0
    model: Name | None = None


class Flag(Envelope, tag="flag", kw_only=True, frozen=True):
    """An integrity alert: something looks like score gaming or a forged message."""

    detector: Token
    severity: Literal["info", "warning", "critical"] = "warning"
    summary: ShortText
    suspect: Token | None = None
    evidence: dict[Name, Any] = msgspec.field(default_factory=dict)


class DeadLetter(Envelope, tag="dead_letter", kw_only=True, frozen=True):
    """A message a consumer could not decode or handle, kept with its reason and its original bytes."""

    reason: Text
    error_type: Name
    consumer: Token
    original_subject: ShortText
    # At most DEAD_LETTER_ORIGINAL_MAX bytes, so a letter about an oversize payload still decodes.
    original: bytes
    stream_seq: int | None = None
    deliveries: int | None = None
    # Set when ``original`` holds only the first bytes of a longer payload: its whole length.
    original_size: Annotated[int, msgspec.Meta(ge=0)] | None = None


class RpcError(Envelope, tag="rpc_error", kw_only=True, frozen=True):
    """The reply a request/reply endpoint sends when it cannot answer."""

    reason: Text
    error_type: Name = "AarError"


class TaskInfo(Envelope, tag="task_info", kw_only=True, frozen=True):
    """A prepared task as workers see it, kept in the tasks bucket under its name.

    The view holds texts of every split and the weak supervisor's gold training labels, and no other
    label; ``view_digest`` names exactly that data (results carry it as their data hash).
    """

    task: Token
    task_kind: ShortText
    label_names: Annotated[list[ShortText], msgspec.Meta(min_length=2, max_length=1000)]
    view: ArtifactRef
    view_digest: ShortText
    sizes: dict[Name, Annotated[int, msgspec.Meta(ge=0)]] = msgspec.field(default_factory=dict)
    weak_model: Name = "tfidf"
    strong_model: Name = "minilm"
    # The LM that answers zero/few-shot prompts for methods that use them.
    prompt_model: Name = "smollm2"
    description: Text = ""


class Baseline(Envelope, tag="baseline", kw_only=True, frozen=True):
    """What a task's weak supervisor and strong ceiling reach, the fixed points of PGR.

    Computed by ``aar baselines`` with the operator's rights (the ceiling needs pool labels) and kept
    in the baselines bucket, which only the scorer and the operator read.
    """

    task: Token
    weak_model: Name
    strong_model: Name
    view_digest: ShortText
    seeds: Annotated[list[Annotated[int, msgspec.Meta(ge=0)]], msgspec.Meta(min_length=1)]
    weak_acc: dict[Name, float]
    ceiling_acc: dict[Name, float]
    naive_acc: dict[Name, float] = msgspec.field(default_factory=dict)
    naive_pgr: dict[Name, float] = msgspec.field(default_factory=dict)
    spread: dict[Name, float] = msgspec.field(default_factory=dict)


class Verdict(Envelope, tag="verdict", kw_only=True, frozen=True):
    """The scorer's full record of one result, true dev and final scores included: operator only.

    Kept in the verdicts stream, which agents cannot read; every leaderboard number is recomputed
    from these records (``aar leaderboard --recompute``).
    """

    task: Token
    method: Token
    config_key: Token
    status: Literal["accepted", "rejected"]
    reason: ShortText | None = None
    accuracy: dict[Name, float] = msgspec.field(default_factory=dict)
    pgr: dict[Name, float] = msgspec.field(default_factory=dict)
    answered_pgr: float | None = None
    answer: Literal["public", "holdout", "withheld", "none"] = "none"
    params: Params = msgspec.field(default_factory=dict)
    seed: Annotated[int, msgspec.Meta(ge=0)] = 0
    worker: Token | None = None
    agent: Token | None = None
    result_sender: Token | None = None
    code_hash: ShortText | None = None
    data_hash: ShortText | None = None
    timings: dict[Name, Seconds] = msgspec.field(default_factory=dict)
    flags: Tags = msgspec.field(default_factory=list)
    score_id: Id | None = None
    # A rejected result that was only refused for budget still counts towards the leaderboard.
    leaderboard: bool = False


class Standing(msgspec.Struct, frozen=True, kw_only=True):
    """One method configuration on a task's leaderboard, aggregated over its seeds."""

    config_key: Token
    method: Token
    params: Params = msgspec.field(default_factory=dict)
    code_hash: ShortText | None = None
    seeds: list[int] = msgspec.field(default_factory=list)
    dev_pgr: float | None = None
    final_pgr: float | None = None
    final_ci: tuple[float, float] | None = None
    verified: bool = False
    result_ids: list[Id] = msgspec.field(default_factory=list)
    agents: list[Token] = msgspec.field(default_factory=list)
    first_ts: float = 0.0
    updated_ts: float = 0.0


class Leaderboard(Envelope, tag="leaderboard", kw_only=True, frozen=True):
    """A task's leaderboard, kept in the leaderboard bucket under the task's name.

    ``final_pgr``/``final_ci`` are filled only for verified standings (enough seeds); ``best`` is the
    verified standing whose interval cleared the previous best's.
    """

    task: Token
    standings: list[Standing] = msgspec.field(default_factory=list)
    best: Token | None = None
    best_since: float | None = None
    min_seeds: int = 3
    results: Annotated[int, msgspec.Meta(ge=0)] = 0


class BudgetQuery(Envelope, tag="budget_query", kw_only=True, frozen=True):
    """Ask the scorer how much dev-query budget an agent (default: the sender) has left."""

    agent: Token | None = None


class BudgetStatus(Envelope, tag="budget_status", kw_only=True, frozen=True):
    """The scorer's answer to a BudgetQuery."""

    agent: Token
    dev_queries_used: Annotated[int, msgspec.Meta(ge=0)]
    dev_queries_limit: Annotated[int, msgspec.Meta(ge=0)]
    swarm_dev_queries_used: Annotated[int, msgspec.Meta(ge=0)]
    swarm_dev_queries_limit: Annotated[int, msgspec.Meta(ge=0)]
    holdout_answers: Annotated[int, msgspec.Meta(ge=0)] = 0
    rule: ShortText = ""

    @property
    def left(self) -> int:
        """Dev answers this agent can still get (the smaller of its own and the swarm's)."""
        return max(
            0,
            min(
                self.dev_queries_limit - self.dev_queries_used,
                self.swarm_dev_queries_limit - self.swarm_dev_queries_used,
            ),
        )


Message = (
    Hypothesis
    | ExperimentRequest
    | ExperimentProgress
    | ExperimentResult
    | ScoreEvent
    | ForumPost
    | Presence
    | BudgetEvent
    | UsageReport
    | Flag
    | DeadLetter
    | RpcError
    | TaskInfo
    | Baseline
    | Verdict
    | Leaderboard
    | BudgetQuery
    | BudgetStatus
)

MESSAGE_TYPES: tuple[type[Envelope], ...] = (
    Hypothesis,
    ExperimentRequest,
    ExperimentProgress,
    ExperimentResult,
    ScoreEvent,
    ForumPost,
    Presence,
    BudgetEvent,
    UsageReport,
    Flag,
    DeadLetter,
    RpcError,
    TaskInfo,
    Baseline,
    Verdict,
    Leaderboard,
    BudgetQuery,
    BudgetStatus,
)


def kind_of(cls: type[Envelope]) -> str:
    """The wire tag of a message type."""
    tag = cls.__struct_config__.tag
    assert isinstance(tag, str)
    return tag
