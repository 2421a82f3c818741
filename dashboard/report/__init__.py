"""``aar report``: a swarm's results as Markdown and HTML with figures, each number traced to its lineage."""

from dashboard.report.build import INDEX_HTML, REPORT_MD, render_files, write_report
from dashboard.report.collect import Snapshot, collect
from dashboard.report.errors import ReportError

__all__ = ["INDEX_HTML", "REPORT_MD", "ReportError", "Snapshot", "collect", "render_files", "write_report"]
