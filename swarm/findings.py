"""The structured part of a "finding" forum post: which config, on which task, with what evidence.

A finding is a ForumPost tagged ``["finding", task, method]`` whose body starts with one line of
JSON (this Struct), then free text. Researchers read them to skip what others ran; the reviewer
re-runs them. A "claim" post has the same shape: "I am running this config now".
"""

from __future__ import annotations

import json
from typing import Any

import msgspec

from schemas import ForumPost


class Finding(msgspec.Struct, kw_only=True, frozen=True):
    """One config's claim: its dev PGR over ``seeds``, resting on the results in the post's evidence."""

    task: str
    method: str
    params: dict[str, Any] = msgspec.field(default_factory=dict)
    seeds: list[int] = msgspec.field(default_factory=list)
    dev_pgr: float | None = None


def config_id(method: str, params: dict[str, Any]) -> str:
    """A stable name for method + params (the scorer's config_key also hashes code; this does not)."""
    return f"{method}:{json.dumps(params, sort_keys=True, separators=(',', ':'))}"


def encode(finding: Finding, text: str = "") -> str:
    """The post body: the finding as one JSON line, then ``text``."""
    line = msgspec.json.encode(finding).decode()
    return f"{line}\n{text}" if text else line


def decode(post: ForumPost) -> Finding | None:
    """The finding in a post's first line, or None when the post carries none."""
    first = post.body.split("\n", 1)[0]
    try:
        return msgspec.json.decode(first, type=Finding)
    except msgspec.DecodeError:
        return None
