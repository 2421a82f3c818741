"""The report as a document: its sections, tables and links, from the Report model.

Every number in a result table links to the lineage section (``lineage.py``): a configuration's
aggregate numbers to its configuration entry, which lists each seed's result; a seed or a result
to that result's chain.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass

from dashboard.report.cells import (
    anchor,
    compact,
    excerpt,
    interval,
    num,
    result_links,
    seed_links,
    to_config,
    to_result,
    when,
)
from dashboard.report.costs import MIN_ACTIVE_S
from dashboard.report.lineage import lineage_section
from dashboard.report.model import DETECTORS, Report, TaskSummary
from dashboard.report.render import Block, Cell, Code, Heading, Image, Link, Para, Table
from schemas import Flag, to_builtins

FORUM_SHOWN = 20
EVIDENCE_CHARS = 400
# Flags whose whole record (all evidence) is printed as JSON; the table above lists every flag.
FLAGS_IN_FULL = 100
NO_TASKS = "No task has been prepared or scored in this swarm yet."


@dataclass(frozen=True, slots=True)
class Figures:
    """The PNG files written for one task (file names beside the report), when there was data."""

    pgr_over_time: str | None = None
    methods: str | None = None


def build_document(report: Report, figures: dict[str, Figures]) -> list[Block]:
    """Every section of the report, in order."""
    blocks: list[Block] = [Heading(1, f"aar report: swarm {report.swarm}"), *_summary(report)]
    if report.empty:
        blocks.append(
            Para(("Nothing yet: this swarm has no hypotheses, results, scores or forum posts to report.",))
        )
    for section in (_over_time(report, figures), _methods(report, figures), _verified(report)):
        blocks += section if report.tasks else [*section, Para((NO_TASKS,))]
    blocks += _flags(report)
    blocks += _costs(report)
    blocks += _forum(report)
    blocks += lineage_section(report)
    return blocks


def _ci(report: Report) -> str:
    return f"{report.confidence:.0%} CI"


def _summary(report: Report) -> list[Block]:
    span = f"{when(report.first_ts)} to {when(report.last_ts)}" if report.first_ts is not None else "-"
    out: list[Block] = [
        Para(
            (
                f"Generated {when(report.generated_ts)} from the swarm's stored records, read with "
                f"operator rights. Records span {span}. Final-split numbers are the operator's alone: "
                "do not show this report to agents.",
            )
        ),
        Heading(2, "Summary", "summary"),
        Table(("what", "count"), tuple((k, str(v)) for k, v in report.counts.items()), "counts"),
    ]
    rows: list[tuple[Cell, ...]] = []
    for t in report.tasks:
        c = t.best
        if c is None:
            rows.append(
                (
                    t.task,
                    "no verified configuration yet",
                    "-",
                    "-",
                    "-",
                    "-",
                    Link(str(t.results), "#lineage-results"),
                )
            )
            continue
        rows.append(
            (
                t.task,
                to_config(c, c.config_key),
                c.method,
                seed_links(c),
                to_config(c, num(c.mean)),
                to_config(c, interval(c.ci)),
                Link(str(t.results), "#lineage-results"),
            )
        )
    if rows:
        out += [
            Para(
                (
                    f"Best verified configuration per task (at least {report.min_seeds} seeds; its "
                    "interval cleared the previous best's mean):",
                )
            ),
            Table(
                ("task", "configuration", "method", "seeds", "final PGR", _ci(report), "results"),
                tuple(rows),
                "best",
            ),
        ]
    return out


def _over_time(report: Report, figures: dict[str, Figures]) -> list[Block]:
    out: list[Block] = [
        Heading(2, "PGR over time", "pgr-over-time"),
        Para(
            (
                "Blue: the dev answers agents got (accepted scores, after the reusable-holdout rule) and "
                "the best so far; red crosses: each leaderboard result's final-split PGR. "
                "PGR 0 is the weak supervisor, 1 the strong ceiling.",
            )
        ),
    ]
    for t in report.tasks:
        fig = figures.get(t.task, Figures()).pgr_over_time
        out.append(Heading(3, t.task))
        out.append(Image(fig, f"PGR over time on {t.task}") if fig else Para(("No scored result yet.",)))
    return out


def _methods(report: Report, figures: dict[str, Figures]) -> list[Block]:
    out: list[Block] = [
        Heading(2, "Method comparison", "methods"),
        Para(
            (
                f"Each method configuration (method, params, code) on the final split: mean PGR over its "
                f"distinct seeds with a {report.confidence:.0%} Student-t interval (two or more seeds). "
                f"Configurations with fewer than {report.min_seeds} seeds are not verified; their "
                "numbers are shown for comparison only.",
            )
        ),
    ]
    for t in report.tasks:
        out.append(Heading(3, t.task))
        fig = figures.get(t.task, Figures()).methods
        if fig:
            out.append(Image(fig, f"method comparison on {t.task}"))
        rows = tuple(
            (
                to_config(c, c.config_key),
                c.method,
                compact(c.params, 80),
                to_config(c, str(len(c.seeds))),
                to_config(c, num(c.mean)),
                to_config(c, interval(c.ci)),
                to_config(c, num(c.dev_pgr)),
                "best" if c.best else ("yes" if c.verified else "no"),
            )
            for c in t.configs
        )
        if rows:
            header = ("configuration", "method", "params", "seeds", "final PGR", _ci(report), "dev PGR")
            out.append(Table((*header, "verified"), rows, anchor("methods", t.task)))
        else:
            out.append(Para(("No configuration has a final-split score yet.",)))
    return out


def _baseline_line(t: TaskSummary) -> str:
    b = t.baseline
    if b is None:
        return f"{t.task}: no baseline recorded."
    return (
        f"{t.task}: weak supervisor {b.weak_model} {num(b.weak_acc.get('final'))}, strong ceiling "
        f"{b.strong_model} {num(b.ceiling_acc.get('final'))} final-split accuracy."
    )


def _verified(report: Report) -> list[Block]:
    out: list[Block] = [
        Heading(2, "Verified final-split table", "verified"),
        Para(
            (
                f"Standings with at least {report.min_seeds} distinct seeds, as the scorer's leaderboard "
                "computes them from its verdicts: mean final-split PGR and its "
                f"{report.confidence:.0%} t-interval. Each seed links to its result's lineage.",
            )
        ),
    ]
    for t in report.tasks:
        out += [Heading(3, t.task), Para((_baseline_line(t),))]
        rows = tuple(
            (
                to_config(c, str(rank)),
                to_config(c, c.config_key),
                c.method,
                compact(c.params, 80),
                seed_links(c),
                to_config(c, num(c.mean)),
                to_config(c, interval(c.ci)),
                to_config(c, num(c.dev_pgr)),
                ", ".join(c.agents) or "-",
            )
            for rank, c in enumerate(t.verified, 1)
        )
        if rows:
            header = ("#", "configuration", "method", "params", "seeds", "final PGR", _ci(report))
            out.append(Table((*header, "dev PGR", "agents"), rows, anchor("verified", t.task)))
        else:
            out.append(Para((f"No configuration has {report.min_seeds} seeds yet.",)))
    return out


def _flag_result(f: Flag) -> Cell:
    rid = f.lineage.result_id
    return to_result(rid) if rid else "-"


def _flags(report: Report) -> list[Block]:
    out: list[Block] = [
        Heading(2, "Flags: what was caught", "flags"),
        Para(
            (
                "The scorer's gaming detectors and forgery checks. A flagged result is kept off the "
                "leaderboard; each flag names the agent suspected and the result concerned.",
            )
        ),
    ]
    if not report.flags:
        out.append(Para(("No flags: nothing was caught.",)))
        return out
    out.append(
        Table(
            ("detector", "what it catches", "flags", "critical", "kept off the leaderboard", "suspects"),
            tuple(
                (
                    t.detector,
                    DETECTORS.get(t.detector, "-"),
                    str(t.count),
                    str(t.critical),
                    str(t.kept_off),
                    ", ".join(t.suspects) or "-",
                )
                for t in report.tally
            ),
            "flag-tally",
        )
    )
    out.append(
        Table(
            ("time", "detector", "severity", "suspect", "summary", "result", "evidence"),
            tuple(
                (
                    when(f.ts),
                    f.detector,
                    f.severity,
                    f.suspect or "-",
                    f.summary,
                    _flag_result(f),
                    compact(f.evidence, EVIDENCE_CHARS),
                )
                for f in report.flags
            ),
            "flag-list",
        )
    )
    shown = report.flags[-FLAGS_IN_FULL:]
    more = f" (the latest {len(shown)} of {len(report.flags)})" if len(shown) < len(report.flags) else ""
    out.append(Para((f"The flags in full, as JSON{more}:",)))
    out.append(Code(json.dumps([to_builtins(f) for f in shown], indent=1, default=str)))
    return out


def _costs(report: Report) -> list[Block]:
    out: list[Block] = [
        Heading(2, "Cost per agent-hour", "cost"),
        Para(
            (
                "USD and tokens are the sums of each agent's usage reports (LLM calls); worker minutes "
                "are the worker time (the 'total' timing) of the results of experiments it requested. "
                "An agent's active hours run from the first to the last record of it: the hypotheses, "
                "forum posts, usage reports and queued requests it sent, its presence entry, and the "
                "results of its experiments; a span under "
                f"{MIN_ACTIVE_S / 60:.0f} minute counts as {MIN_ACTIVE_S / 60:.0f} minute. "
                "Each per-hour figure is the total divided by those hours; agents that made no LLM "
                "calls (offline researchers) cost 0 USD.",
            )
        ),
    ]
    if not report.costs:
        out.append(Para(("No agent has been active yet.",)))
        return out
    rows: list[tuple[Cell, ...]] = [
        (
            c.agent,
            c.role or "-",
            when(c.first_ts),
            when(c.last_ts),
            num(c.hours, 4),
            num(c.usd, 4),
            str(c.tokens),
            str(c.llm_calls),
            num(c.worker_s / 60, 2),
            str(c.results),
            num(c.usd_per_hour, 4),
            num(c.tokens_per_hour, 0),
            num(c.worker_min_per_hour, 2),
        )
        for c in report.costs
    ]
    hours = math.fsum(c.hours for c in report.costs)
    usd = math.fsum(c.usd for c in report.costs)
    tokens = sum(c.tokens for c in report.costs)
    worker_min = math.fsum(c.worker_s for c in report.costs) / 60
    rows.append(
        (
            "all agents",
            "-",
            when(min(c.first_ts for c in report.costs)),
            when(max(c.last_ts for c in report.costs)),
            num(hours, 4),
            num(usd, 4),
            str(tokens),
            str(sum(c.llm_calls for c in report.costs)),
            num(worker_min, 2),
            str(sum(c.results for c in report.costs)),
            num(usd / hours, 4),
            num(tokens / hours, 0),
            num(worker_min / hours, 2),
        )
    )
    header = (
        "agent",
        "role",
        "active from",
        "active to",
        "agent-hours",
        "USD",
        "tokens",
        "LLM calls",
        "worker min",
        "results",
        "USD / agent-hour",
        "tokens / agent-hour",
        "worker min / agent-hour",
    )
    out.append(Table(header, tuple(rows), "cost-table"))
    if report.budget:
        out.append(Para(("Budget thresholds crossed (the scorer's and budget keeper's events):",)))
        out.append(
            Table(
                ("time", "scope", "target", "resource", "used", "limit", "level"),
                tuple(
                    (when(b.ts), b.scope, b.target, b.resource, f"{b.used:g}", f"{b.limit:g}", b.level)
                    for b in report.budget
                ),
                "budget",
            )
        )
    return out


def _forum(report: Report) -> list[Block]:
    out: list[Block] = [Heading(2, "Forum", "forum")]
    if not report.forum:
        return [*out, Para(("No forum posts yet.",))]
    threads = len({p.thread for p in report.forum})
    out.append(Para((f"{len(report.forum)} posts in {threads} threads; the latest {FORUM_SHOWN}:",)))
    latest = sorted(report.forum, key=lambda p: p.ts, reverse=True)[:FORUM_SHOWN]
    out.append(
        Table(
            ("time", "author", "title", "tags", "text", "evidence"),
            tuple(
                (
                    when(p.ts),
                    p.sender,
                    p.title or "-",
                    ", ".join(p.tags) or "-",
                    excerpt(p.body, 280),
                    result_links(p.evidence, report.traces),
                )
                for p in latest
            ),
            "forum-latest",
        )
    )
    return out
