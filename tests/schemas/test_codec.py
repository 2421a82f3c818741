"""Codec round-trips and rejections: every kind, on the wire as plain JSON."""

from __future__ import annotations

import json
from typing import Any

import msgspec
import pytest

from schemas import (
    MAX_MESSAGE_BYTES,
    MESSAGE_TYPES,
    ArtifactRef,
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
    Lineage,
    Message,
    Presence,
    RpcError,
    SchemaError,
    ScoreEvent,
    Standing,
    TaskInfo,
    UsageReport,
    Verdict,
    decode,
    decode_as,
    decoder_for,
    encode,
    kind_of,
)

SHA = "ab" * 32


def one_of_each(swarm: str = "s1") -> list[Message]:
    """A valid message of every kind, with lineage where the kind has one."""
    common: dict[str, Any] = {"swarm": swarm, "sender": "agent-1"}
    ref = ArtifactRef(name=SHA, sha256=SHA, size=10)
    return [
        Hypothesis(**common, title="soft labels beat hard ones", task="rt", tags=["loss"]),
        ExperimentRequest(
            **common,
            task="rt",
            method="soft",
            params={"lr": 0.01},
            seed=3,
            lineage=Lineage(hypothesis_id="h1"),
            code=ref,
        ),
        ExperimentProgress(
            **common,
            worker="w1",
            step=5,
            total_steps=10,
            loss=0.3,
            eta_s=2.0,
            lineage=Lineage(request_id="r1"),
        ),
        ExperimentResult(
            **common,
            worker="w1",
            task="rt",
            method="soft",
            status="ok",
            predictions={"dev": ref},
            lineage=Lineage(request_id="r1", hypothesis_id="h1"),
        ),
        ScoreEvent(
            **common,
            task="rt",
            method="soft",
            status="accepted",
            accuracy=0.7,
            pgr=0.4,
            lineage=Lineage(result_id="x1", request_id="r1"),
        ),
        ForumPost(
            **common,
            body="soft labels: +0.1 PGR",
            reply_to="p0",
            thread_id="p0",
            tags=["finding"],
            evidence=["x1"],
        ),
        Presence(**common, role="agent", name="agent-1", host="h", pid=42, capabilities=["cpu"]),
        BudgetEvent(
            **common, scope="agent", target="agent-1", resource="usd", used=9.0, limit=10.0, level="warn"
        ),
        Flag(
            **common,
            detector="constant",
            summary="all predictions are 1",
            suspect="agent-2",
            evidence={"share": 1.0},
        ),
        DeadLetter(
            **common,
            reason="bad",
            error_type="SchemaError",
            consumer="c1",
            original_subject="a.b",
            original=b"\x00\xffnot json",
        ),
        RpcError(**common, reason="nope"),
        TaskInfo(
            **common,
            task="rt",
            task_kind="sentiment",
            label_names=["rotten", "fresh"],
            view=ref,
            view_digest=SHA,
            sizes={"dev": 1000},
        ),
        Baseline(
            **common,
            task="rt",
            weak_model="tfidf",
            strong_model="minilm",
            view_digest=SHA,
            seeds=[0, 1, 2],
            weak_acc={"dev": 0.6},
            ceiling_acc={"dev": 0.8},
            naive_pgr={"dev": 0.2},
        ),
        Verdict(
            **common,
            task="rt",
            method="vote",
            config_key="vote-1a2b3c4d",
            status="accepted",
            accuracy={"dev": 0.7, "final": 0.69},
            pgr={"dev": 0.5, "final": 0.45},
            answered_pgr=0.5,
            answer="public",
            leaderboard=True,
        ),
        Leaderboard(
            **common,
            task="rt",
            standings=[
                Standing(
                    config_key="vote-1a2b3c4d",
                    method="vote",
                    seeds=[0, 1, 2],
                    dev_pgr=0.5,
                    final_pgr=0.45,
                    final_ci=(0.4, 0.5),
                    verified=True,
                )
            ],
            best="vote-1a2b3c4d",
        ),
        BudgetQuery(**common, agent="alice"),
        UsageReport(**common, agent="alice", input_tokens=1200, output_tokens=300, usd=0.01, requests=1),
        BudgetStatus(
            **common,
            agent="alice",
            dev_queries_used=3,
            dev_queries_limit=100,
            swarm_dev_queries_used=10,
            swarm_dev_queries_limit=1000,
        ),
    ]


def test_every_kind_has_an_example() -> None:
    assert {type(m) for m in one_of_each()} == set(MESSAGE_TYPES)


@pytest.mark.parametrize("msg", one_of_each(), ids=lambda m: kind_of(type(m)))
def test_round_trip_is_plain_json_with_a_kind(msg: Envelope) -> None:
    raw = encode(msg)
    assert decode(raw) == msg
    plain = json.loads(raw)
    assert plain["kind"] == kind_of(type(msg))
    assert plain["v"] == 1
    assert {"id", "swarm", "sender", "ts", "lineage"} <= plain.keys()


def test_unknown_fields_are_ignored_and_new_fields_default() -> None:
    # An older reader meets a newer writer's extra field; a newer reader meets an old message.
    plain = json.loads(encode(Hypothesis(swarm="s", sender="a", title="t")))
    plain["added_in_v2"] = {"anything": [1, 2]}
    del plain["tags"]
    msg = decode(json.dumps(plain).encode())
    assert isinstance(msg, Hypothesis)
    assert msg.tags == []


def test_ids_are_unique_and_sort_by_time() -> None:
    ids = [Hypothesis(swarm="s", sender="a", title="t").id for _ in range(1000)]
    assert len(set(ids)) == 1000
    assert ids == sorted(ids)


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        (b"", "truncated"),
        (b"not json", "malformed"),
        (b"[1, 2]", "Expected `object`"),
        (b'{"swarm": "s", "sender": "a", "title": "t"}', "missing required field `kind`"),
        (b'{"kind": "nonsense", "swarm": "s", "sender": "a"}', "Invalid value 'nonsense'"),
        (b'{"kind": "hypothesis", "swarm": "s", "sender": 7, "title": "t"}', "Expected `str`, got `int`"),
        (b'{"kind": "hypothesis", "swarm": "' + b"s" * 65 + b'", "sender": "x", "title": "t"}', "$.swarm"),
        (b'{"kind": "hypothesis", "swarm": "s", "sender": "", "title": "t"}', "$.sender"),
        (
            b'{"kind": "experiment_request", "swarm": "s", "sender": "a", "task": "rt", "method": "m",'
            b' "seed": -1}',
            "$.seed",
        ),
        (
            b'{"kind": "score", "swarm": "s", "sender": "a", "task": "t", "method": "m",'
            b' "status": "accepted", "accuracy": 1.5}',
            "$.accuracy",
        ),
        (
            b'{"kind": "experiment_result", "swarm": "s", "sender": "w", "worker": "w", "task": "t",'
            b' "method": "m", "status": "ok"}',
            "lineage.request_id",
        ),
        (
            b'{"kind": "experiment_result", "swarm": "s", "sender": "w", "worker": "w", "task": "t",'
            b' "method": "m", "status": "failed", "lineage": {"request_id": "r"}}',
            "must carry an error",
        ),
    ],
)
def test_bad_payloads_raise_one_schema_error_with_the_reason(payload: bytes, reason: str) -> None:
    with pytest.raises(SchemaError) as info:
        decode(payload)
    assert reason in info.value.reason
    assert isinstance(info.value, ValueError)


def test_oversize_payload_is_refused_before_parsing() -> None:
    big = b'{"kind": "hypothesis", "title": "' + b"x" * MAX_MESSAGE_BYTES + b'"}'
    with pytest.raises(SchemaError, match="exceeds") as info:
        decode(big)
    assert info.value.size == len(big)


def test_oversize_field_is_refused() -> None:
    msg = ForumPost(swarm="s", sender="a", body="x" * (64 * 1024 + 1))  # constructors do not validate
    with pytest.raises(SchemaError, match=r"\$\.body"):
        decode(encode(msg))


def test_decode_as_checks_the_kind() -> None:
    raw = encode(Hypothesis(swarm="s", sender="a", title="t"))
    assert decode_as(raw, Hypothesis).title == "t"
    assert isinstance(decode_as(raw, Envelope), Hypothesis)  # any message is an Envelope
    with pytest.raises(SchemaError, match="expected a 'score' message, got 'hypothesis'"):
        decode_as(raw, ScoreEvent)


@pytest.mark.parametrize("cls", [Hypothesis, ScoreEvent, Envelope])
def test_decoder_for_decodes_and_refuses_as_decode_as(cls: type[Envelope]) -> None:
    hypothesis = encode(Hypothesis(swarm="s", sender="a", title="t"))
    oversize = b'{"kind": "hypothesis", "title": "' + b"x" * MAX_MESSAGE_BYTES + b'"}'
    bad = b'{"kind": "hypothesis", "swarm": "s", "sender": 7, "title": "t"}'
    decode_one = decoder_for(cls)
    for payload in (hypothesis, bytearray(hypothesis), memoryview(hypothesis), oversize, bad, b"not json"):
        try:
            expected: Envelope | str = decode_as(payload, cls)
        except SchemaError as e:
            expected = e.reason
        try:
            got: Envelope | str = decode_one(payload)
        except SchemaError as e:
            got = e.reason
        assert got == expected


def test_forum_thread_defaults_to_own_id() -> None:
    root = ForumPost(swarm="s", sender="a", body="root")
    reply = ForumPost(swarm="s", sender="b", body="re", reply_to=root.id, thread_id=root.thread)
    assert root.thread == root.id
    assert reply.thread == root.id


def test_bytes_travel_as_base64() -> None:
    letter = DeadLetter(
        swarm="s",
        sender="a",
        reason="r",
        error_type="E",
        consumer="c",
        original_subject="x",
        original=b"\x00\x01\xfe",
    )
    plain = json.loads(encode(letter))
    assert plain["original"] == "AAH+"
    assert msgspec.json.decode(encode(letter), type=DeadLetter).original == b"\x00\x01\xfe"


def test_a_result_carries_each_split_once_inline_or_stored() -> None:
    from schemas import ArtifactRef, ExperimentResult, Lineage
    from schemas.artifacts import PredictionSet

    dev = PredictionSet.in_view_order(task="t", split="dev", view_digest="v", labels=[0, 1])
    ref = ArtifactRef(name="a" * 64, sha256="a" * 64, size=10)
    ok = ExperimentResult(
        swarm="s",
        sender="w",
        worker="w",
        task="t",
        method="m",
        status="ok",
        lineage=Lineage(request_id="r"),
        inline_predictions={"dev": dev},
        predictions={"final": ref},
    )
    assert decode_as(encode(ok), ExperimentResult).inline_predictions["dev"].label_list() == [0, 1]
    wire = json.loads(encode(ok))
    wire["predictions"]["dev"] = msgspec.to_builtins(ref)
    with pytest.raises(SchemaError, match="dev predictions are both inline and stored"):
        decode_as(json.dumps(wire).encode(), ExperimentResult)
    wire = json.loads(encode(ok))
    wire["predictions"], wire["inline_predictions"]["final"] = {}, wire["inline_predictions"].pop("dev")
    with pytest.raises(SchemaError, match="inline final predictions are labelled split 'dev'"):
        decode_as(json.dumps(wire).encode(), ExperimentResult)
