"""One readable line per message for ``aar tail``: ``HH:MM:SS kind sender  summary``."""

from __future__ import annotations

import time
from typing import assert_never

from schemas import (
    Baseline,
    BudgetEvent,
    BudgetQuery,
    BudgetStatus,
    DeadLetter,
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
    kind_of,
)

_RESET = "\x1b[0m"
_DIM, _BOLD, _RED, _GREEN, _YELLOW, _BLUE, _MAGENTA, _CYAN = (
    "\x1b[2m",
    "\x1b[1m",
    "\x1b[31m",
    "\x1b[32m",
    "\x1b[33m",
    "\x1b[34m",
    "\x1b[35m",
    "\x1b[36m",
)
_KIND_COLOUR = {
    "hypothesis": _MAGENTA,
    "experiment_request": _BLUE,
    "experiment_progress": _DIM,
    "experiment_result": _CYAN,
    "score": _GREEN,
    "forum_post": _YELLOW,
    "presence": _DIM,
    "budget": _YELLOW,
    "flag": _RED,
    "dead_letter": _RED,
    "rpc_error": _RED,
}
_BAD = {"failed", "rejected", "warn", "throttle", "stop", "warning", "critical", "stopped", "draining"}
KIND_WIDTH = len("experiment_progress")
SENDER_WIDTH = 12


def short(text: str, limit: int = 80) -> str:
    """``text`` on one line, cut to ``limit`` characters with an ellipsis."""
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def _num(value: float | None, fmt: str = ".3f") -> str:
    return "-" if value is None else format(value, fmt)


def _ago(seconds: float) -> str:
    seconds = max(0.0, seconds)
    if seconds < 120:
        return f"{seconds:.0f}s"
    if seconds < 7200:
        return f"{seconds / 60:.0f}m"
    return f"{seconds / 3600:.1f}h"


def summary(msg: Message) -> str:
    """The part of a line that says what the message is about."""
    match msg:
        case Hypothesis():
            task = f" [{msg.task}]" if msg.task else ""
            return f"{short(msg.title)}{task}"
        case ExperimentRequest():
            return f"{msg.task}/{msg.method} seed={msg.seed} priority={msg.priority} id={msg.id}"
        case ExperimentProgress():
            total = f"/{msg.total_steps}" if msg.total_steps is not None else ""
            eta = f" eta={_ago(msg.eta_s)}" if msg.eta_s is not None else ""
            stage = f" {msg.stage}" if msg.stage else ""
            return f"{msg.worker} step {msg.step}{total} loss={_num(msg.loss, '.4f')}{eta}{stage}"
        case ExperimentResult():
            error = f" error={short(msg.error, 60)}" if msg.error else ""
            return f"{msg.status} {msg.task}/{msg.method} seed={msg.seed} worker={msg.worker}{error}"
        case ScoreEvent():
            reason = f" ({short(msg.reason, 60)})" if msg.reason else ""
            return (
                f"{msg.status} {msg.task}/{msg.method} pgr={_num(msg.pgr)} acc={_num(msg.accuracy)} "
                f"split={msg.split}{reason}"
            )
        case ForumPost():
            head = f"{short(msg.title, 60)}: " if msg.title else ""
            reply = f" reply_to={msg.reply_to}" if msg.reply_to else ""
            return f"{head}{short(msg.body, 80)} thread={msg.thread}{reply}"
        case Presence():
            caps = f" caps={','.join(msg.capabilities)}" if msg.capabilities else ""
            return (
                f"{msg.role} {msg.name} {msg.state} host={msg.host} pid={msg.pid} "
                f"seen {_ago(time.time() - msg.last_seen)} ago{caps}"
            )
        case BudgetEvent():
            return f"{msg.level} {msg.scope}:{msg.target} {msg.resource} {msg.used:g}/{msg.limit:g}"
        case UsageReport():
            return (
                f"{msg.agent} tokens in={msg.input_tokens} out={msg.output_tokens} "
                f"cached={msg.cache_read_tokens} usd={msg.usd:.4f} requests={msg.requests}"
            )
        case Flag():
            suspect = f" suspect={msg.suspect}" if msg.suspect else ""
            return f"{msg.severity} {msg.detector}: {short(msg.summary)}{suspect}"
        case DeadLetter():
            return (
                f"consumer={msg.consumer} {msg.error_type}: {short(msg.reason, 100)} "
                f"subject={msg.original_subject}"
            )
        case RpcError():
            return f"{msg.error_type}: {short(msg.reason)}"
        case TaskInfo():
            sizes = " ".join(f"{k}={v}" for k, v in msg.sizes.items())
            return f"{msg.task} ({msg.task_kind}) {sizes} {msg.weak_model}->{msg.strong_model}"
        case Baseline():
            return (
                f"{msg.task} weak={_num(msg.weak_acc.get('dev'))} ceiling={_num(msg.ceiling_acc.get('dev'))} "
                f"naive_pgr={_num(msg.naive_pgr.get('dev'))} seeds={len(msg.seeds)}"
            )
        case Verdict():
            return (
                f"{msg.status} {msg.task}/{msg.method} dev_pgr={_num(msg.pgr.get('dev'))} "
                f"final_pgr={_num(msg.pgr.get('final'))} answer={msg.answer} seed={msg.seed}"
            )
        case Leaderboard():
            return f"{msg.task} {len(msg.standings)} configurations, best={msg.best or '-'}"
        case BudgetQuery():
            return f"budget of {msg.agent or msg.sender}?"
        case BudgetStatus():
            return (
                f"{msg.agent} dev queries {msg.dev_queries_used}/{msg.dev_queries_limit}, "
                f"swarm {msg.swarm_dev_queries_used}/{msg.swarm_dev_queries_limit}"
            )
        case _:
            assert_never(msg)


def _status(msg: Message) -> str | None:
    match msg:
        case ExperimentResult() | ScoreEvent() | Verdict():
            return msg.status
        case BudgetEvent():
            return msg.level
        case Flag():
            return msg.severity
        case Presence():
            return msg.state
        case _:
            return None


def line(msg: Message, *, colour: bool = False) -> str:
    """``HH:MM:SS kind sender  summary``, with ANSI colours when ``colour``."""
    when = msg.last_seen if isinstance(msg, Presence) else msg.ts
    clock = time.strftime("%H:%M:%S", time.localtime(when))
    kind = kind_of(type(msg))
    text = f"{kind:<{KIND_WIDTH}} {msg.sender:<{SENDER_WIDTH}}"
    body = summary(msg)
    if not colour:
        return f"{clock} {text}  {body}"
    tint = _RED if _status(msg) in _BAD else _KIND_COLOUR.get(kind, "")
    return f"{_DIM}{clock}{_RESET} {tint}{text}{_RESET}  {body}"


def gone_line(key: str, *, colour: bool = False) -> str:
    """A presence entry that was deleted or expired (its process stopped heartbeating)."""
    clock = time.strftime("%H:%M:%S")
    text = f"{'presence':<{KIND_WIDTH}} {key:<{SENDER_WIDTH}}  gone (deleted or expired)"
    return f"{_DIM}{clock} {text}{_RESET}" if colour else f"{clock} {text}"
