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
