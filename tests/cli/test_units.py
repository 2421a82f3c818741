"""The pure parts of the CLI: durations, log formatting, message lines, names."""

from __future__ import annotations

import argparse
import json
import logging
import sys

import pytest

from cli import format as fmt
from cli.logs import JsonFormatter, KeyValueFormatter
from cli.options import parse_duration, redact, servers_from
from cli.status import human_bytes
from cli.up import fresh_swarm
from schemas import (
    BudgetEvent,
    DeadLetter,
    ExperimentProgress,
    ExperimentRequest,
    ExperimentResult,
    Flag,
    ForumPost,
    Hypothesis,
    Lineage,
    Message,
    Presence,
    RpcError,
    ScoreEvent,
)


@pytest.mark.parametrize(
    ("text", "seconds"), [("30s", 30), ("10m", 600), ("2h", 7200), ("1d", 86400), ("1h30m", 5400), ("5", 5)]
)
def test_parse_duration(text: str, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "5x", "m", "-3", "10m5"])
def test_parse_duration_rejects(text: str) -> None:
    with pytest.raises(argparse.ArgumentTypeError):
        parse_duration(text)


def _record(**extra: object) -> logging.LogRecord:
    record = logging.LogRecord("aar.bus", logging.INFO, __file__, 1, "bus connected", None, None)
    record.__dict__.update(extra)
    return record


def test_key_value_formatter_prints_extra_fields() -> None:
    line = KeyValueFormatter().format(_record(url="nats://127.0.0.1:4222", reason="two words"))
    assert line.endswith(' INFO    aar.bus bus connected url=nats://127.0.0.1:4222 reason="two words"')


def test_json_formatter_prints_one_object() -> None:
    doc = json.loads(JsonFormatter().format(_record(url="nats://x", msg_count=3)))
    assert doc["level"] == "info" and doc["logger"] == "aar.bus" and doc["msg"] == "bus connected"
    assert doc["url"] == "nats://x" and doc["msg_count"] == 3


def test_json_formatter_keeps_exceptions() -> None:
    try:
        raise ValueError("boom")
    except ValueError:
        record = logging.LogRecord("x", logging.ERROR, __file__, 1, "failed", None, sys.exc_info())
    assert "ValueError: boom" in json.loads(JsonFormatter().format(record))["exc"]


S = "s1"
EXAMPLES: list[tuple[Message, str]] = [
    (
        Hypothesis(swarm=S, sender="alice", title="Confidence loss helps", task="rt"),
        "Confidence loss helps [rt]",
    ),
    (ExperimentRequest(swarm=S, sender="alice", task="rt", method="ft", seed=3), "rt/ft seed=3"),
    (
        ExperimentProgress(swarm=S, sender="w1", worker="w1", step=5, total_steps=10, loss=0.5, eta_s=90),
        "step 5/10 loss=0.5000 eta=90s",
    ),
    (
        ExperimentResult(
            swarm=S,
            sender="w1",
            worker="w1",
            task="rt",
            method="ft",
            status="failed",
            error="OOM",
            seed=2,
            lineage=Lineage(request_id="r1"),
        ),
        "failed rt/ft seed=2 worker=w1 error=OOM",
    ),
    (
        ScoreEvent(
            swarm=S, sender="scorer", task="rt", method="ft", status="accepted", pgr=0.5, accuracy=0.9
        ),
        "accepted rt/ft pgr=0.500 acc=0.900",
    ),
    (
        ForumPost(swarm=S, sender="bob", title="Note", body="line one\nline two", thread_id="t9"),
        "Note: line one line two thread=t9",
    ),
    (
        Presence(swarm=S, sender="w1", role="worker", name="w1", host="h", pid=7, capabilities=["cuda"]),
        "worker w1 ready host=h pid=7",
    ),
    (
        BudgetEvent(
            swarm=S, sender="b", scope="agent", target="alice", resource="usd", used=9, limit=10, level="warn"
        ),
        "warn agent:alice usd 9/10",
    ),
    (Flag(swarm=S, sender="i", detector="dupes", summary="copied"), "warning dupes: copied"),
    (
        DeadLetter(
            swarm=S,
            sender="bus",
            consumer="scorer",
            reason="bad json",
            error_type="SchemaError",
            original_subject="aar.s1.results.rt",
            original=b"{",
        ),
        "consumer=scorer SchemaError: bad json",
    ),
    (RpcError(swarm=S, sender="svc", reason="nope"), "AarError: nope"),
]


@pytest.mark.parametrize(("msg", "expected"), EXAMPLES)
def test_line_says_what_the_message_is(msg: Message, expected: str) -> None:
    plain = fmt.line(msg)
    assert expected in plain
    assert plain.split()[1] == type(msg).__struct_config__.tag
    assert "\x1b[" not in plain and "\x1b[" in fmt.line(msg, colour=True)


def test_names_and_sizes() -> None:
    assert fresh_swarm("demo", 0.0).startswith("demo-19")
    assert len(fresh_swarm("x" * 64)) <= 64
    assert redact("nats://user:pw@host:4222") == "nats://host:4222"
    assert servers_from(["a,b", "c"]) == ["a", "b", "c"] and servers_from(None) is None
    assert human_bytes(512) == "512 B" and human_bytes(1536) == "1.5 KiB"
