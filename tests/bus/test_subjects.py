"""Subjects are built in one place, validated, and keep swarms apart."""

from __future__ import annotations

import pytest

from bus import InvalidSubjectError, Kind
from bus import subjects as s
from bus.streams import STREAMS, stream_name
from schemas import ForumPost
from tests.schemas.test_codec import one_of_each


@pytest.mark.parametrize("bad", ["", "a.b", "a b", "*", ">", "a>", "x" * 65, "ü"])
def test_bad_tokens_are_refused(bad: str) -> None:
    with pytest.raises(InvalidSubjectError):
        s.subject("swarm", Kind.FORUM, bad)
    with pytest.raises(InvalidSubjectError):
        s.subject(bad, Kind.FORUM, "key")


def test_wildcards_only_in_filters() -> None:
    assert s.kind_filter("*", Kind.SCORES) == "aar.*.scores.*"
    assert s.swarm_filter("lab") == "aar.lab.>"
    with pytest.raises(InvalidSubjectError):
        s.kind_filter("a.b", Kind.SCORES)


def test_every_message_kind_has_a_subject_in_its_swarm() -> None:
    for msg in one_of_each("lab-1"):
        subj = s.subject_for(msg)
        root, swarm, kind, key = subj.split(".")
        assert (root, swarm, kind) == ("aar", "lab-1", s.kind_for(msg).value)
        assert key


def test_stored_kinds_map_to_swarm_scoped_streams() -> None:
    for msg in one_of_each("lab"):
        kind = s.kind_for(msg)
        if kind in STREAMS:
            assert stream_name("lab", kind) == f"AAR_lab_{kind.value.upper()}"
            assert stream_name("lab", kind) != stream_name("other", kind)


def test_forum_posts_route_by_thread() -> None:
    root = ForumPost(swarm="lab", sender="a", body="root")
    reply = ForumPost(swarm="lab", sender="b", body="re", reply_to=root.id, thread_id=root.thread)
    assert s.subject_for(root) == s.subject_for(reply) == f"aar.lab.forum.{root.id}"


def test_a_decoded_name_that_cannot_route_is_refused_where_it_would_route() -> None:
    # Decoding checks lengths only (the hot path); the subject builder checks the characters.
    from schemas import decode

    msg = decode(b'{"kind": "hypothesis", "swarm": "lab", "sender": "a.b", "title": "t"}')
    with pytest.raises(InvalidSubjectError, match=r"'a\.b'"):
        s.subject_for(msg)


@pytest.mark.parametrize("good", ["aar.lab.rpc.echo", "_INBOX.x1", "$JS.API.INFO", "a"])
def test_a_whole_subject_from_elsewhere_passes_check(good: str) -> None:
    assert s.check(good) == good


@pytest.mark.parametrize("bad", ["", "a b", "a\r\nPUB x 1", "a\tb", "a..b", ".a", "a.", "a.*", "a.>", "a*"])
def test_a_subject_nats_would_refuse_or_misread_fails_check(bad: str) -> None:
    # The Bus turns nats-py's per-message check off, so this is what stands between a caller's
    # subject and the protocol line (CR LF in a subject would start a command of its own).
    with pytest.raises(InvalidSubjectError):
        s.check(bad)


def test_wildcards_pass_check_only_as_whole_tokens_of_a_filter() -> None:
    assert s.check("aar.*.scores.>", wildcards=True) == "aar.*.scores.>"
    for bad in ("aar.>.scores", "aar.sc*", "aar.>x"):
        with pytest.raises(InvalidSubjectError):
            s.check(bad, wildcards=True)
