"""The report's figures, as PNG files: PGR over time and the method comparison of one task.

Figures are built with matplotlib's object API (``Figure`` renders with the Agg canvas), never
pyplot: no global state, no GUI backend, safe in the worker thread the report renders in.
"""

from __future__ import annotations

from pathlib import Path

from matplotlib.figure import Figure

from dashboard.report.model import TaskSummary

_DPI = 110
# Confidence intervals of more configurations than this do not fit one readable figure.
MAX_CONFIGS_SHOWN = 30


def _time_axis(first: float, last: float) -> tuple[float, str]:
    """A divisor and a unit that make the run's span readable."""
    span = last - first
    if span < 2 * 3600:
        return 60.0, "minutes"
    if span < 3 * 86400:
        return 3600.0, "hours"
    return 86400.0, "days"


def pgr_over_time(task: TaskSummary, start_ts: float, path: Path) -> Path | None:
    """Dev answers agents got, their running best, and verified final-split PGR, against time.

    Returns:
        the file written, or None when the task has no scored result yet.
    """
    if not task.dev_points and not task.final_points:
        return None
    stamps = [p.ts for p in (*task.dev_points, *task.final_points)]
    scale, unit = _time_axis(start_ts, max(stamps))
    fig = Figure(figsize=(8, 4.2), dpi=_DPI, layout="constrained")
    ax = fig.subplots()
    clean = [p for p in task.dev_points if not p.flagged]
    flagged = [p for p in task.dev_points if p.flagged]
    if clean:
        xs = [(p.ts - start_ts) / scale for p in clean]
        ys = [p.pgr for p in clean]
        ax.scatter(xs, ys, s=16, alpha=0.6, color="tab:blue", label="dev answer (what agents saw)")
        best: list[float] = []
        for y in ys:
            best.append(max(y, best[-1]) if best else y)
        ax.step(xs, best, where="post", color="tab:blue", linewidth=1.4, label="best dev answer so far")
    if flagged:
        ax.scatter(
            [(p.ts - start_ts) / scale for p in flagged],
            [p.pgr for p in flagged],
            s=22,
            marker="v",
            color="black",
            label="flagged (kept off the leaderboard)",
        )
    if task.final_points:
        ax.scatter(
            [(p.ts - start_ts) / scale for p in task.final_points],
            [p.pgr for p in task.final_points],
            s=18,
            marker="x",
            color="tab:red",
            alpha=0.7,
            label="final-split PGR (operator only)",
        )
    ax.axhline(0.0, color="grey", linewidth=0.8, linestyle="--")
    ax.axhline(1.0, color="grey", linewidth=0.8, linestyle=":")
    ax.set_xlabel(f"{unit} since the swarm's first record")
    ax.set_ylabel("PGR")
    ax.set_title(f"{task.task}: PGR over time (0 = weak supervisor, 1 = strong ceiling)")
    ax.legend(loc="best", fontsize="small")
    ax.grid(alpha=0.3)
    fig.savefig(path, format="png")
    return path


def method_comparison(task: TaskSummary, confidence: float, path: Path) -> Path | None:
    """Mean final-split PGR per configuration with its t-interval over seeds.

    Returns:
        the file written, or None when no configuration has a final-split score yet.
    """
    configs = [c for c in task.configs if c.mean is not None][:MAX_CONFIGS_SHOWN]
    if not configs:
        return None
    configs.reverse()  # best at the top of a horizontal chart
    height = 1.2 + 0.32 * len(configs)
    fig = Figure(figsize=(8, height), dpi=_DPI, layout="constrained")
    ax = fig.subplots()
    for y, c in enumerate(configs):
        assert c.mean is not None
        color = "tab:green" if c.best else ("tab:blue" if c.verified else "tab:grey")
        if c.ci is not None:
            lo, hi = c.ci
            ax.errorbar(c.mean, y, xerr=[[c.mean - lo], [hi - c.mean]], fmt="o", color=color, capsize=3)
        else:
            ax.plot([c.mean], [y], "o", color=color, fillstyle="none")
        ax.scatter([r.final_pgr for r in c.runs], [y] * len(c.runs), s=8, color=color, alpha=0.4)
    ax.set_yticks(range(len(configs)), [f"{c.config_key} (n={len(c.seeds)})" for c in configs], fontsize=7)
    ax.axvline(0.0, color="grey", linewidth=0.8, linestyle="--")
    ax.set_xlabel(f"final-split PGR: mean over seeds, {confidence:.0%} t-interval; dots are seeds")
    ax.set_title(f"{task.task}: method comparison (green: best, blue: verified, grey: too few seeds)")
    ax.grid(alpha=0.3, axis="x")
    fig.savefig(path, format="png")
    return path
