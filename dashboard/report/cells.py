"""Cells and links shared by the report's sections: anchors, number and time formats, lineage links."""

from __future__ import annotations

import hashlib
import json
import math
import re
from collections.abc import Container
from datetime import UTC, datetime
from typing import Any

from dashboard.report.model import ConfigSummary
from dashboard.report.render import Cell, Inline, Link

_UNSAFE = re.compile(r"[^A-Za-z0-9_-]")
# Result ids listed in one cell (a post's evidence, a hypothesis's results) before "(+n more)".
IDS_SHOWN = 8


def anchor(prefix: str, *parts: str) -> str:
    """A stable id for an HTML/Markdown anchor; ids that are not plain tokens get a hash suffix."""
    raw = "-".join(parts)
    safe = _UNSAFE.sub("-", raw)[:96]
    if safe != raw:
        safe += "-" + hashlib.sha256(raw.encode()).hexdigest()[:8]
    return f"{prefix}-{safe}"


def result_anchor(result_id: str) -> str:
    return anchor("r", result_id)


def config_anchor(task: str, config_key: str) -> str:
    return anchor("c", task, config_key)


def when(ts: float | None) -> str:
    if ts is None or not math.isfinite(ts) or ts <= 0:
        return "-"
    return datetime.fromtimestamp(ts, tz=UTC).strftime("%Y-%m-%d %H:%M:%SZ")


def num(value: float | None, digits: int = 4) -> str:
    """A number with ``digits`` decimals; PGRs get 4, the precision the leaderboard stores."""
    return "-" if value is None or not math.isfinite(value) else f"{value:.{digits}f}"


def interval(ci: tuple[float, float] | None) -> str:
    return "-" if ci is None else f"[{num(ci[0])}, {num(ci[1])}]"


def compact(value: Any, limit: int = 160) -> str:
    """JSON on one line, keys sorted, cut at ``limit`` characters."""
    text = json.dumps(value, sort_keys=True, separators=(",", ":"), default=str)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def to_config(c: ConfigSummary, text: str) -> Link:
    return Link(text, "#" + config_anchor(c.task, c.config_key))


def to_result(result_id: str, text: str | None = None) -> Link:
    return Link(text if text is not None else result_id, "#" + result_anchor(result_id))


def seed_links(c: ConfigSummary) -> tuple[Inline, ...]:
    parts: list[Inline] = []
    for i, run in enumerate(c.runs):
        if i:
            parts.append(", ")
        parts.append(to_result(run.result_id, str(run.seed)))
    missing = len(c.seeds) - len(c.runs)
    if missing > 0:
        parts.append(f" (+{missing} more)")
    return tuple(parts)


def result_links(ids: list[str], known: Container[str]) -> Cell:
    """Results named by id, each linked to its lineage when the report has it (else plain text)."""
    parts: list[Inline] = []
    for i, rid in enumerate(ids[:IDS_SHOWN]):
        if i:
            parts.append(", ")
        parts.append(to_result(rid, rid[-8:]) if rid in known else rid)
    if len(ids) > IDS_SHOWN:
        parts.append(f" (+{len(ids) - IDS_SHOWN} more)")
    return tuple(parts) or "-"


def excerpt(text: str, limit: int) -> str:
    """``text`` on one line, cut at ``limit`` characters."""
    one = " ".join(text.split())
    return one if len(one) <= limit else one[: limit - 1] + "…"
