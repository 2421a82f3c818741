"""``write_report``: read a swarm, then write ``index.html``, ``report.md`` and their PNG figures."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

from bus import Bus
from dashboard.report.cells import anchor
from dashboard.report.collect import Snapshot, collect
from dashboard.report.document import Figures, build_document
from dashboard.report.model import build
from dashboard.report.render import to_html, to_markdown

INDEX_HTML = "index.html"
REPORT_MD = "report.md"


async def write_report(bus: Bus, swarm: str, out_dir: Path | str, *, timeout_s: float = 60.0) -> Path:
    """Write the swarm's report into ``out_dir`` (created if needed) and return its ``index.html``.

    ``report.md`` holds the same content as Markdown, beside the PNG figures both refer to. The
    records are read on the loop; the figures and pages are made in a thread (matplotlib is slow).

    Args:
        bus: a connected Bus with operator (admin) rights: the verified numbers come from verdicts.
        swarm: the swarm to report on.
        out_dir: where to write; existing report files there are replaced.
        timeout_s: how long reading each stream may take.

    Raises:
        ReportError: the swarm does not exist or its records cannot be read.
        OSError: the files cannot be written.
    """
    snap = await collect(bus, swarm, timeout_s=timeout_s)
    return await asyncio.to_thread(render_files, snap, Path(out_dir))


def render_files(snap: Snapshot, out_dir: Path) -> Path:
    """Write the report of ``snap`` into ``out_dir`` (blocking); returns the path of ``index.html``."""
    # matplotlib takes most of a second to import: only when a report is written.
    from dashboard.report import plots

    report = build(snap)
    out_dir.mkdir(parents=True, exist_ok=True)
    start = report.first_ts if report.first_ts is not None else report.generated_ts
    figures: dict[str, Figures] = {}
    for t in report.tasks:
        over_time = plots.pgr_over_time(t, start, out_dir / f"{anchor('pgr-over-time', t.task)}.png")
        methods = plots.method_comparison(t, report.confidence, out_dir / f"{anchor('methods', t.task)}.png")
        figures[t.task] = Figures(
            pgr_over_time=over_time.name if over_time else None, methods=methods.name if methods else None
        )
    blocks = build_document(report, figures)
    _write_atomic(out_dir / REPORT_MD, to_markdown(blocks))
    index = out_dir / INDEX_HTML
    _write_atomic(index, to_html(blocks, title=f"aar report: {report.swarm}"))
    return index


def _write_atomic(path: Path, text: str) -> None:
    # A reader (a browser left open on the report) never sees a half-written page.
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
