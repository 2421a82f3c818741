"""The lineage section: where every number in the report comes from.

Each configuration lists the results of its seeds; each result shows its chain hypothesis ->
request -> result -> score -> verdict (with flags), under an anchor the report's tables link to.
"""

from __future__ import annotations

from dashboard.report.cells import (
    compact,
    config_anchor,
    excerpt,
    interval,
    num,
    result_anchor,
    result_links,
    to_result,
    when,
)
from dashboard.report.model import Report, Trace
from dashboard.report.render import Block, Cell, Heading, Inline, Items, Para, Table


def lineage_section(report: Report) -> list[Block]:
    out: list[Block] = [
        Heading(2, "Lineage", "lineage"),
        Para(
            (
                "Where every number comes from: each configuration's seeds, then each result's chain "
                "hypothesis → request → result → score → verdict, with ids, method, params, seed, "
                "worker, agent and times.",
            )
        ),
        Heading(3, "Configurations", "lineage-configurations"),
    ]
    for t in report.tasks:
        for c in t.configs:
            out.append(Heading(4, f"{t.task} / {c.config_key}", config_anchor(t.task, c.config_key)))
            out.append(
                Para(
                    (
                        f"{c.method}, params {compact(c.params)}, code {c.code_hash or '-'}; "
                        f"seeds {len(c.seeds)}, {'verified' if c.verified else 'not verified'}; "
                        f"final PGR {num(c.mean)} {interval(c.ci)}, dev PGR {num(c.dev_pgr)}.",
                    )
                )
            )
            out.append(
                Table(
                    ("seed", "result", "final PGR"),
                    tuple((str(r.seed), to_result(r.result_id), num(r.final_pgr)) for r in c.runs),
                )
            )
    out += _hypotheses(report)
    out.append(Heading(3, "Results", "lineage-results"))
    for trace in sorted(report.traces.values(), key=lambda tr: (tr.ts, tr.result_id)):
        out += _trace(trace)
    return out


def _hypotheses(report: Report) -> list[Block]:
    if not report.hypotheses:
        return []
    tested: dict[str, list[str]] = {}
    for t in sorted(report.traces.values(), key=lambda tr: tr.ts):
        if t.hypothesis_id:
            tested.setdefault(t.hypothesis_id, []).append(t.result_id)
    rows: list[tuple[Cell, ...]] = []
    for h in report.hypotheses:
        results = result_links(tested.get(h.id, []), report.traces)
        rows.append((when(h.ts), h.sender, h.id, h.task or "-", h.title, results))
    return [
        Heading(3, "Hypotheses", "lineage-hypotheses"),
        Table(("time", "author", "id", "task", "title", "results testing it"), tuple(rows), "hypotheses"),
    ]


def _trace(t: Trace) -> list[Block]:
    items: list[tuple[Inline, ...]] = []
    h = t.hypothesis
    if h is not None:
        items.append((f"hypothesis {h.id} by {h.sender} at {when(h.ts)}: {h.title}",))
    else:
        items.append((f"hypothesis {t.hypothesis_id or '-'}",))
    q = t.request
    if q is not None:
        items.append((f"request {q.id} by {q.sender} at {when(q.ts)} (still queued)",))
    else:
        items.append((f"request {t.request_id or '-'} by {t.agent or '-'}",))
    r = t.result
    if r is not None:
        timings = ", ".join(f"{k} {v:.1f}s" for k, v in sorted(r.timings.items())) or "-"
        error = f"; error: {excerpt(r.error, 200)}" if r.error else ""
        items.append(
            (
                f"result {r.id} from worker {r.worker} (sent as {r.sender}) at {when(r.ts)}: {r.status}, "
                f"{r.method} {compact(r.params)} seed {r.seed}; timings {timings}; "
                f"code {r.code_hash or '-'}, data {r.data_hash or '-'}{error}",
            )
        )
    else:
        items.append((f"result {t.result_id}: {t.method} {compact(t.params)} seed {t.seed}",))
    s = t.score
    if s is not None:
        reason = f", {s.reason}" if s.reason else ""
        items.append(
            (
                f"score {s.id} at {when(s.ts)}: {s.status}{reason}; dev answer ({s.answer}) "
                f"accuracy {num(s.accuracy)}, PGR {num(s.pgr)}",
            )
        )
    v = t.verdict
    if v is not None:
        acc = ", ".join(f"{k} {num(x)}" for k, x in sorted(v.accuracy.items())) or "-"
        pgr = ", ".join(f"{k} {num(x)}" for k, x in sorted(v.pgr.items())) or "-"
        items.append(
            (
                f"verdict {v.id} at {when(v.ts)}: {v.status}, config {v.config_key}; accuracy {acc}; "
                f"PGR {pgr}; {'on' if v.leaderboard else 'off'} the leaderboard",
            )
        )
    for f in t.flags:
        items.append((f"flag {f.detector} ({f.severity}) on {f.suspect or '-'}: {f.summary}",))
    return [
        Heading(4, f"result {t.result_id}", result_anchor(t.result_id)),
        Para((f"{t.task}: {t.method}, seed {t.seed}, agent {t.agent or '-'}, worker {t.worker or '-'}",)),
        Items(tuple(items)),
    ]
