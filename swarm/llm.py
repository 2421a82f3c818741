"""The one place that builds AsyncAnthropic: a tool-use loop with a bounded context, costs and retries.

``ToolLoop`` keeps the conversation small on purpose. The system prompt and the tool definitions
carry ``cache_control`` so each call after the first reads them from the prompt cache; the turns
are the first user message (the brief plus a running summary) and the last ``keep_turns``
assistant/tool-result pairs; older pairs are folded into the summary as one line per tool call,
and each tool result is cut to ``result_chars``. Rate limits (429) and overloads (529, 5xx) are
retried by the SDK ``max_retries`` times and then by the loop itself, with backoff.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import anthropic

log = logging.getLogger("aar.llm")

# USD per million tokens: input, output, cache read, cache write (5-minute TTL).
PRICES: dict[str, tuple[float, float, float, float]] = {
    "claude-opus-4-6": (15.0, 75.0, 1.5, 18.75),
    "claude-opus-4-1": (15.0, 75.0, 1.5, 18.75),
    "claude-sonnet-4-5": (3.0, 15.0, 0.3, 3.75),
    "claude-haiku-4-5": (1.0, 5.0, 0.1, 1.25),
}
_FALLBACK_PRICE = PRICES["claude-opus-4-6"]  # an unknown model is priced as the dearest

ToolFn = Callable[[dict[str, Any]], Awaitable[Any]]


@dataclass(frozen=True, slots=True)
class Tool:
    """A tool the model may call: its name, description, JSON schema and implementation."""

    name: str
    description: str
    schema: dict[str, Any]
    fn: ToolFn


@dataclass(frozen=True, slots=True)
class CallUsage:
    """What one Messages API call used, and what it cost."""

    model: str
    input_tokens: int
    output_tokens: int
    cache_read_tokens: int
    cache_write_tokens: int
    usd: float

    @property
    def tokens(self) -> int:
        return self.input_tokens + self.output_tokens + self.cache_read_tokens + self.cache_write_tokens


def price(
    model: str, usage: Any, prices: Mapping[str, tuple[float, float, float, float]] = PRICES
) -> CallUsage:
    """A response's ``usage`` as counts and dollars (an unknown model at the dearest known price)."""
    p_in, p_out, p_read, p_write = prices.get(model, _FALLBACK_PRICE)
    n_in = int(getattr(usage, "input_tokens", 0) or 0)
    n_out = int(getattr(usage, "output_tokens", 0) or 0)
    n_read = int(getattr(usage, "cache_read_input_tokens", 0) or 0)
    n_write = int(getattr(usage, "cache_creation_input_tokens", 0) or 0)
    usd = (n_in * p_in + n_out * p_out + n_read * p_read + n_write * p_write) / 1e6
    return CallUsage(model, n_in, n_out, n_read, n_write, usd)


def make_client(
    *, api_key: str | None, base_url: str | None, max_retries: int, timeout_s: float
) -> anthropic.AsyncAnthropic:
    """The SDK client; ``api_key`` None reads ANTHROPIC_API_KEY, ``base_url`` None ANTHROPIC_BASE_URL."""
    return anthropic.AsyncAnthropic(
        api_key=api_key, base_url=base_url, max_retries=max_retries, timeout=timeout_s
    )


def _retryable(e: Exception) -> bool:
    if isinstance(e, anthropic.RateLimitError | anthropic.APIConnectionError):
        return True
    return isinstance(e, anthropic.APIStatusError) and (e.status_code == 529 or e.status_code >= 500)


@dataclass
class ToolLoop:
    """One model's conversation: ``step()`` makes one call and runs the tools it asks for.

    Attributes:
        before_call: called before each model call (``check_budget``: raising stops the loop).
        on_usage: called with each response's usage.
        fatal: exceptions a tool may raise that end the loop instead of going back to the model.
    """

    client: anthropic.AsyncAnthropic
    model: str
    system: str
    brief: str
    tools: list[Tool]
    before_call: Callable[[], None]
    on_usage: Callable[[CallUsage], Awaitable[None]]
    max_tokens: int = 2048
    keep_turns: int = 6
    result_chars: int = 2000
    summary_chars: int = 4000
    backoff_s: float = 2.0
    backoff_cap_s: float = 60.0
    prices: Mapping[str, tuple[float, float, float, float]] = field(default_factory=lambda: dict(PRICES))
    summary: str = ""
    turns: list[dict[str, Any]] = field(default_factory=list)
    fatal: tuple[type[Exception], ...] = ()
    calls: int = 0
    _notes: list[list[str]] = field(default_factory=list, init=False, repr=False)

    def messages(self) -> list[dict[str, Any]]:
        """What the next call sends: the brief (with the summary so far) and the kept turns."""
        first = self.brief if not self.summary else f"{self.brief}\n\nWhat you did earlier:\n{self.summary}"
        return [{"role": "user", "content": first}, *self.turns]

    def tool_params(self) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = [
            {"name": t.name, "description": t.description, "input_schema": t.schema} for t in self.tools
        ]
        if out:
            out[-1]["cache_control"] = {"type": "ephemeral"}  # caches every tool definition
        return out

    async def step(self) -> str:
        """One model call and its tool calls; returns the stop reason ("end_turn", "tool_use", ...)."""
        failures = 0
        while True:
            self.before_call()
            try:
                resp = await self.client.messages.create(
                    model=self.model,
                    max_tokens=self.max_tokens,
                    system=[{"type": "text", "text": self.system, "cache_control": {"type": "ephemeral"}}],
                    tools=self.tool_params(),  # type: ignore[arg-type]
                    messages=self.messages(),  # type: ignore[arg-type]
                )
                break
            except anthropic.APIError as e:
                if not _retryable(e):
                    raise
                failures += 1
                delay = min(self.backoff_cap_s, self.backoff_s * 2 ** (failures - 1))
                log.warning("model call failed; retrying", extra={"error": repr(e), "delay_s": delay})
                await asyncio.sleep(delay)
        self.calls += 1
        await self.on_usage(price(self.model, resp.usage, self.prices))
        content = [block.model_dump(exclude_none=True) for block in resp.content]
        results: list[dict[str, Any]] = []
        notes: list[str] = []
        for block in resp.content:
            if block.type != "tool_use":
                continue
            text, is_error = await self._call(block.name, block.input)
            results.append(
                {"type": "tool_result", "tool_use_id": block.id, "content": text, "is_error": is_error}
            )
            notes.append(f"- {block.name}({_short(json.dumps(block.input), 160)}) -> {_short(text, 240)}")
        said = " ".join(b.text for b in resp.content if b.type == "text").strip()
        if said:
            notes.insert(0, f"- noted: {_short(said, 300)}")
        follow = results or [{"type": "text", "text": "Continue your research; use the tools."}]
        self.turns += [{"role": "assistant", "content": content}, {"role": "user", "content": follow}]
        self._notes.append(notes)
        self._trim()
        return str(resp.stop_reason)

    async def _call(self, name: str, args: object) -> tuple[str, bool]:
        tool = next((t for t in self.tools if t.name == name), None)
        if tool is None:
            return f"no tool named {name!r}", True
        try:
            out = await tool.fn(dict(args) if isinstance(args, dict) else {})
        except (asyncio.CancelledError, KeyboardInterrupt):
            raise
        except Exception as e:
            if isinstance(e, self.fatal):
                raise
            return _short(f"{type(e).__name__}: {e}", self.result_chars), True
        text = out if isinstance(out, str) else json.dumps(out, default=str)
        return _short(text, self.result_chars), False

    def _trim(self) -> None:
        notes = self._notes
        while len(self.turns) > 2 * self.keep_turns:
            del self.turns[:2]
            self.summary = "\n".join(x for x in (self.summary, *notes.pop(0)) if x)
        if len(self.summary) > self.summary_chars:
            self.summary = "..." + self.summary[-self.summary_chars :]
        del notes[: max(0, len(notes) - self.keep_turns)]


def _short(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 15] + " ...[truncated]"
