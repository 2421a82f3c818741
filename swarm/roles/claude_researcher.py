"""``claude-researcher``: a Claude model with tools runs weak-to-strong experiments and reports them."""

from __future__ import annotations

import asyncio
import hashlib
import logging
from collections import deque
from typing import Annotated, Any

import msgspec

from schemas import AarError, ForumPost, UsageReport
from swarm.agent import Agent
from swarm.config import AgentConfig
from swarm.errors import BudgetExhaustedError, ScoreTimeoutError
from swarm.llm import PRICES, CallUsage, Tool, ToolLoop, make_client

log = logging.getLogger("aar.agent")

DIRECTIONS = (
    "interpretability: look at what the weak labels get wrong and why",
    "data reweighting: trust some weak labels more than others",
    "loss design: losses robust to the weak supervisor's noise",
    "ensembling: combine methods and seeds",
    "self-training: let the strong student relabel its own data",
    "elicitation: draw out what the strong model already knows",
)

# The built-in methods a worker runs, and their parameters (what list_methods returns).
CATALOGUE: list[dict[str, Any]] = [
    {"method": "naive", "params": {}, "about": "train the strong student on the weak labels"},
    {"method": "soft", "params": {"temperature": "float"}, "about": "soft weak labels"},
    {"method": "conf_filter", "params": {"keep": "fraction"}, "about": "keep the weak's confident labels"},
    {"method": "aux_conf", "params": {}, "about": "auxiliary confidence loss"},
    {"method": "product", "params": {}, "about": "product of weak and student predictions"},
    {"method": "window", "params": {}, "about": "weak labels in a confidence window"},
    {"method": "bootstrap", "params": {}, "about": "bootstrapped self-labels"},
    {"method": "s2s", "params": {"mode": "str"}, "about": "strong-to-strong relabelling"},
    {"method": "knn", "params": {"mode": "str"}, "about": "k-nearest-neighbour label smoothing"},
    {"method": "gce", "params": {}, "about": "generalised cross-entropy"},
    {"method": "sce", "params": {}, "about": "symmetric cross-entropy"},
    {"method": "ensemble", "params": {}, "about": "an ensemble of students"},
    {"method": "elicit", "params": {"mode": "str"}, "about": "prompt the strong model"},
    {"method": "transition", "params": {}, "about": "learn the weak's noise transition matrix"},
    {
        "method": "propagate",
        "params": {"k": "int", "keep": "fraction", "include_eval": "bool"},
        "about": "label propagation over strong features",
    },
]

CUSTOM_CONTRACT = (
    "Python source defining `def run(inputs, n_classes, seed)`: inputs holds numpy arrays x_pool "
    "(strong features of the transfer pool), weak_pool (weak probabilities on it), x_eval and "
    "weak_eval (same for the unlabelled eval texts); return (n_eval, n_classes) probabilities or "
    "(n_eval,) labels. numpy and the standard library only; no network, files or processes."
)

SYSTEM = """You are an automated alignment researcher in a swarm working on weak-to-strong \
supervision. A weak model labels data; a strong model is trained on those labels. The score is \
PGR = (transfer_acc - weak_acc) / (ceiling_acc - weak_acc) on a dev split. Run experiments with \
the tools, read the forum and the leaderboard, and post findings others can build on (say what \
you ran, the PGR, and what it suggests). Scores that look too good are checked: gaming the \
scorer is flagged, so look for real improvements. Keep messages short."""


class ClaudeResearcherConfig(AgentConfig):
    """The researcher's settings, beside every agent's (AgentConfig).

    Attributes:
        model: the Claude model.
        base_url: the Messages API's base URL (None: ANTHROPIC_BASE_URL, else Anthropic's).
        api_key: None reads ANTHROPIC_API_KEY (keep keys out of config files).
        direction: the research direction to start from; None picks one by the agent's name.
        max_retries: retries the SDK makes on 429/529/5xx before the loop's own backoff.
        timeout_s: one model call's timeout.
        max_output_tokens: max_tokens of each call.
        keep_turns: assistant/tool turns kept verbatim; older ones become the summary.
        tool_result_chars: a tool result is cut to this many characters.
        summary_chars: the running summary is cut to its last this many characters.
        forum_memory: forum posts remembered for read_forum.
        score_timeout_s: how long request_experiment waits for the score.
        max_calls: model calls before ``run`` returns (None: until stopped).
        pause_s: sleep after the model ends its turn, before nudging it on.
        backoff_s: first sleep of the loop's own retry (doubling, up to 60 s).
        prices: USD per million tokens (input, output, cache read, cache write) by model.
    """

    model: str = "claude-opus-4-6"
    base_url: str | None = None
    api_key: str | None = None
    direction: str | None = None
    max_retries: Annotated[int, msgspec.Meta(ge=0, le=20)] = 4
    timeout_s: Annotated[float, msgspec.Meta(gt=0)] = 600.0
    max_output_tokens: Annotated[int, msgspec.Meta(ge=1, le=64000)] = 2048
    keep_turns: Annotated[int, msgspec.Meta(ge=1, le=100)] = 6
    tool_result_chars: Annotated[int, msgspec.Meta(ge=100)] = 2000
    summary_chars: Annotated[int, msgspec.Meta(ge=100)] = 4000
    forum_memory: Annotated[int, msgspec.Meta(ge=1, le=10000)] = 50
    score_timeout_s: Annotated[float, msgspec.Meta(gt=0)] = 900.0
    max_calls: Annotated[int, msgspec.Meta(ge=1)] | None = None
    pause_s: Annotated[float, msgspec.Meta(ge=0)] = 30.0
    backoff_s: Annotated[float, msgspec.Meta(ge=0)] = 2.0
    prices: dict[str, tuple[float, float, float, float]] = msgspec.field(default_factory=lambda: dict(PRICES))


def pick_direction(name: str) -> str:
    """A direction chosen by a stable hash of the agent's name, so agents start apart."""
    digest = hashlib.sha256(name.encode()).digest()
    return DIRECTIONS[int.from_bytes(digest[:4], "big") % len(DIRECTIONS)]


class ClaudeResearcher(Agent[ClaudeResearcherConfig]):
    """A Claude model with tools: runs experiments, reads the forum and leaderboard, posts findings."""

    role = "claude-researcher"
    config_type = ClaudeResearcherConfig
    capabilities = ("llm", "experiments")

    async def setup(self) -> None:
        cfg = self.config
        self.direction = cfg.direction or pick_direction(self.name)
        self.forum: deque[ForumPost] = deque(maxlen=cfg.forum_memory)
        self._reported_requests = 0
        self.client = make_client(
            api_key=cfg.api_key, base_url=cfg.base_url, max_retries=cfg.max_retries, timeout_s=cfg.timeout_s
        )
        self.loop = ToolLoop(
            client=self.client,
            model=cfg.model,
            system=SYSTEM,
            brief="",
            tools=self._tools(),
            before_call=self.check_budget,
            on_usage=self._on_usage,
            max_tokens=cfg.max_output_tokens,
            keep_turns=cfg.keep_turns,
            result_chars=cfg.tool_result_chars,
            summary_chars=cfg.summary_chars,
            backoff_s=cfg.backoff_s,
            prices=cfg.prices,
            fatal=(BudgetExhaustedError,),
        )

    async def close(self, grace_s: float = 30.0) -> None:
        await super().close(grace_s)
        if (client := getattr(self, "client", None)) is not None:
            await client.close()

    async def on_forum(self, post: ForumPost) -> None:
        self.forum.append(post)

    async def run(self) -> None:
        try:
            tasks = [t.task for t in await self.tasks()]
        except AarError as e:
            log.warning("cannot list tasks", extra={"agent": self.name, "error": repr(e)})
            tasks = []
        self.loop.brief = (
            f"You are {self.name}. Your starting direction: {self.direction}. "
            f"Tasks: {', '.join(tasks) or 'ask read_leaderboard'}. Begin."
        )
        limit = self.config.max_calls
        while limit is None or self.loop.calls < limit:
            stop = await self.loop.step()
            if stop != "tool_use":
                await asyncio.sleep(self.config.pause_s)

    async def _on_usage(self, u: CallUsage) -> None:
        self.record_usage(tokens=u.tokens, usd=u.usd)
        requests = self.usage.requests - self._reported_requests
        self._reported_requests = self.usage.requests
        report = UsageReport(
            swarm=self.swarm,
            sender=self.name,
            agent=self.name,
            input_tokens=u.input_tokens,
            output_tokens=u.output_tokens,
            cache_read_tokens=u.cache_read_tokens,
            cache_write_tokens=u.cache_write_tokens,
            usd=u.usd,
            requests=requests,
            model=u.model,
        )
        try:
            await self.bus.publish(report)
        except AarError as e:  # the spend is counted locally either way
            log.warning("usage report not published", extra={"agent": self.name, "error": repr(e)})

    # -- tools -----------------------------------------------------------------------------

    def _tools(self) -> list[Tool]:
        obj = "object"
        return [
            Tool("list_methods", "The built-in W2S methods and their parameters.", {"type": obj}, self._list),
            Tool(
                "request_experiment",
                "Run one built-in method on a task and wait for its dev score (status, pgr, reason).",
                {
                    "type": obj,
                    "properties": {
                        "task": {"type": "string"},
                        "method": {"type": "string"},
                        "params": {"type": obj},
                        "seed": {"type": "integer", "minimum": 0},
                    },
                    "required": ["task", "method"],
                },
                self._request,
            ),
            Tool(
                "write_custom_method",
                f"Run your own method and wait for its score. The source: {CUSTOM_CONTRACT}",
                {
                    "type": obj,
                    "properties": {
                        "task": {"type": "string"},
                        "source": {"type": "string"},
                        "name": {"type": "string", "description": "a short method name"},
                        "params": {"type": obj},
                        "seed": {"type": "integer", "minimum": 0},
                    },
                    "required": ["task", "source"],
                },
                self._custom,
            ),
            Tool(
                "read_forum",
                "The most recent forum posts you have seen.",
                {"type": obj, "properties": {"limit": {"type": "integer", "minimum": 1}}},
                self._read_forum,
            ),
            Tool(
                "post_finding",
                "Post a finding to the shared forum.",
                {
                    "type": obj,
                    "properties": {
                        "title": {"type": "string"},
                        "body": {"type": "string"},
                        "tags": {"type": "array", "items": {"type": "string"}},
                    },
                    "required": ["title", "body"],
                },
                self._post,
            ),
            Tool(
                "read_leaderboard",
                "The leaderboard of one task (or all tasks when none is given).",
                {"type": obj, "properties": {"task": {"type": "string"}}},
                self._leaderboard,
            ),
            Tool(
                "read_budget", "Your dev-query budget and what you have spent.", {"type": obj}, self._budget
            ),
        ]

    async def _list(self, args: dict[str, Any]) -> Any:
        return CATALOGUE

    async def _request(self, args: dict[str, Any]) -> Any:
        return await self._experiment(args, str(args["method"]), None)

    async def _custom(self, args: dict[str, Any]) -> Any:
        source = str(args["source"])
        ref = await (await self.bus.artifacts(self.swarm)).put(source.encode(), content_type="text/x-python")
        return await self._experiment(args, str(args.get("name") or "custom"), ref)

    async def _experiment(self, args: dict[str, Any], method: str, code: Any) -> Any:
        params = args.get("params") or {}
        request_id = await self.request_experiment(
            str(args["task"]),
            method,
            dict(params) if isinstance(params, dict) else {},
            int(args.get("seed") or 0),
            code=code,
        )
        try:
            score = await self.await_score(request_id, timeout=self.config.score_timeout_s)
        except ScoreTimeoutError:
            return {"request_id": request_id, "status": "timeout", "reason": "no score yet"}
        return {
            "request_id": request_id,
            "status": score.status,
            "pgr": score.pgr,
            "accuracy": score.accuracy,
            "reason": score.reason,
            "budget_left": score.budget_left,
        }

    async def _read_forum(self, args: dict[str, Any]) -> Any:
        limit = max(1, int(args.get("limit") or 10))
        return [
            {"id": p.id, "from": p.sender, "title": p.title, "body": p.body[:500], "tags": p.tags}
            for p in list(self.forum)[-limit:]
        ]

    async def _post(self, args: dict[str, Any]) -> Any:
        tags = args.get("tags") or []
        post = await self.post(
            str(args["body"]),
            title=str(args.get("title") or "")[:200],
            tags=[str(t) for t in tags][:8] if isinstance(tags, list) else [],
        )
        return {"posted": post.id}

    async def _leaderboard(self, args: dict[str, Any]) -> Any:
        boards = await self.leaderboards()
        if task := args.get("task"):
            boards = {k: v for k, v in boards.items() if k == task}
        return {
            task: [
                {
                    "config": s.config_key,
                    "method": s.method,
                    "params": s.params,
                    "dev_pgr": s.dev_pgr,
                    "final_pgr": s.final_pgr,
                    "seeds": len(s.seeds),
                }
                for s in sorted(board.standings, key=lambda s: -(s.dev_pgr or -1e9))[:10]
            ]
            for task, board in boards.items()
        }

    async def _budget(self, args: dict[str, Any]) -> Any:
        u = self.usage
        out: dict[str, Any] = {
            "level": self.budget_level,
            "requests": u.requests,
            "tokens": u.tokens,
            "usd": round(u.usd, 4),
        }
        try:
            status = await self.budget()
            out["dev_queries"] = msgspec.to_builtins(status)
        except AarError as e:
            out["dev_queries"] = f"unavailable: {e}"
        return out
