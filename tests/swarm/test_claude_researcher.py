"""The claude-researcher role against a local fake of the Messages API, with the real SDK and bus."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import pytest
import pytest_asyncio
from aiohttp import web

from bus import Bus, Delivery, Kind, StartAt
from schemas import ExperimentRequest, ForumPost, UsageReport
from swarm.registry import load_role
from swarm.roles.claude_researcher import ClaudeResearcher, ClaudeResearcherConfig, pick_direction
from tests.helpers import Collector, eventually
from tests.swarm.helpers import score

USAGE = {
    "input_tokens": 100,
    "output_tokens": 20,
    "cache_read_input_tokens": 900,
    "cache_creation_input_tokens": 50,
}


def _tool_use(n: int, name: str, args: dict[str, Any]) -> list[dict[str, Any]]:
    return [
        {"type": "text", "text": f"step {n}"},
        {"type": "tool_use", "id": f"toolu_{n}", "name": name, "input": args},
    ]


SCRIPT: list[tuple[list[dict[str, Any]], str]] = [
    (_tool_use(1, "read_leaderboard", {"task": "tiny"}), "tool_use"),
    (
        _tool_use(
            2,
            "request_experiment",
            {"task": "tiny", "method": "soft", "params": {"temperature": 2.0}, "seed": 3},
        ),
        "tool_use",
    ),
    (
        _tool_use(
            3, "post_finding", {"title": "soft helps", "body": "soft T=2 gave PGR 0.42", "tags": ["finding"]}
        ),
        "tool_use",
    ),
    (_tool_use(4, "read_forum", {"limit": 5}), "tool_use"),
    ([{"type": "text", "text": "done for now"}], "end_turn"),
]


class FakeMessages:
    """POST /v1/messages: scripted replies; one 429 and one 529 before the first success."""

    def __init__(self) -> None:
        self.bodies: list[dict[str, Any]] = []
        self.keys: list[str] = []
        self.failures = [429, 529]
        self.turn = 0

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.json()
        self.bodies.append(body)
        self.keys.append(str(request.headers.get("x-api-key") or request.headers.get("authorization", "")))
        if self.failures:
            status = self.failures.pop(0)
            kind = "rate_limit_error" if status == 429 else "overloaded_error"
            return web.json_response(
                {"type": "error", "error": {"type": kind, "message": "try later"}},
                status=status,
                headers={"retry-after": "0"},
            )
        content, stop = SCRIPT[min(self.turn, len(SCRIPT) - 1)]
        self.turn += 1
        return web.json_response(
            {
                "id": f"msg_{self.turn}",
                "type": "message",
                "role": "assistant",
                "model": body["model"],
                "content": content,
                "stop_reason": stop,
                "stop_sequence": None,
                "usage": USAGE,
            }
        )


@pytest_asyncio.fixture(loop_scope="session")
async def fake_api() -> AsyncIterator[tuple[FakeMessages, str]]:
    fake = FakeMessages()
    app = web.Application()
    app.router.add_post("/v1/messages", fake.handle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    try:
        yield fake, f"http://127.0.0.1:{port}"
    finally:
        await runner.cleanup()


def test_the_role_is_registered_and_directions_differ() -> None:
    assert load_role("claude-researcher") is ClaudeResearcher
    assert len({pick_direction(f"agent-{i}") for i in range(20)}) > 2


@pytest.mark.asyncio(loop_scope="session")
async def test_a_scripted_model_runs_an_experiment_and_posts_a_finding(
    bus: Bus, swarm: str, fake_api: tuple[FakeMessages, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    fake, url = fake_api
    monkeypatch.setenv("ANTHROPIC_API_KEY", "test-key")
    posts: Collector[ForumPost] = Collector()
    usage: Collector[UsageReport] = Collector()
    await bus.subscribe(swarm, Kind.FORUM, posts, expect=ForumPost, start=StartAt.all())
    await bus.subscribe(swarm, Kind.USAGE, usage, expect=UsageReport, start=StartAt.all())

    async def answer(req: ExperimentRequest, delivery: Delivery) -> None:  # the scorer's part
        await bus.publish(score(swarm, req.id, agent=req.sender, pgr=0.42))

    await bus.work(swarm, answer, expect=ExperimentRequest)
    config = ClaudeResearcherConfig(
        base_url=url,
        model="claude-haiku-4-5",
        max_retries=1,
        backoff_s=0.01,
        keep_turns=2,
        max_calls=len(SCRIPT),
        pause_s=0.0,
        score_timeout_s=20.0,
        direction="loss design",
    )
    async with ClaudeResearcher(bus, swarm, name="cr1", config=config) as agent:
        await asyncio.wait_for(asyncio.shield(agent._run_task), 60)  # type: ignore[arg-type]
        assert not agent.crashed.done()

    # The SDK talked HTTP: 429 (retried by the SDK), 529 (by the loop), then the script.
    assert len(fake.bodies) == 2 + len(SCRIPT)
    assert all(k.endswith("test-key") for k in fake.keys)
    first = fake.bodies[0]
    assert first["system"][0]["cache_control"] == {"type": "ephemeral"}
    assert first["tools"][-1]["cache_control"] == {"type": "ephemeral"}
    assert first["max_tokens"] == config.max_output_tokens
    assert "loss design" in first["messages"][0]["content"]
    # The context stays bounded: the brief plus at most keep_turns pairs, older ones summarised.
    assert max(len(b["messages"]) for b in fake.bodies) <= 1 + 2 * config.keep_turns
    last = fake.bodies[-1]
    assert "request_experiment" in last["messages"][0]["content"]  # folded into the summary
    # The score came back into the conversation as a tool_result.
    after_request = fake.bodies[2 + 2]
    results = [
        c
        for m in after_request["messages"]
        if m["role"] == "user" and isinstance(m["content"], list)
        for c in m["content"]
        if c.get("type") == "tool_result" and c["tool_use_id"] == "toolu_2"
    ]
    [result] = results
    got = json.loads(result["content"])
    assert got["status"] == "accepted" and got["pgr"] == 0.42 and not result["is_error"]

    await eventually(lambda: any(p.title == "soft helps" and p.sender == "cr1" for p in posts.messages))
    reports = await usage.wait_for(len(SCRIPT))
    assert all(r.agent == "cr1" and r.model == "claude-haiku-4-5" for r in reports)
    assert reports[0].input_tokens == 100 and reports[0].cache_read_tokens == 900
    assert reports[0].cache_write_tokens == 50 and reports[0].output_tokens == 20
    assert sum(r.requests for r in reports) == 1
    per_call = (100 * 1.0 + 20 * 5.0 + 900 * 0.1 + 50 * 1.25) / 1e6
    assert reports[0].usd == pytest.approx(per_call)
    assert agent.usage.tokens == len(SCRIPT) * 1070 and agent.usage.usd == pytest.approx(
        len(SCRIPT) * per_call
    )
