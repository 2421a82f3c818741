"""The scorer's state, rebuilt from its verdicts: budgets, results seen, and every leaderboard.

Pure bookkeeping (no I/O): the service feeds it each verdict it publishes, and a restart (or
``aar leaderboard --recompute``) replays the verdicts stream into a fresh Ledger, so every number
on the leaderboard is recomputable from stored records.
"""

from __future__ import annotations

import hashlib
import math
import time
from collections import Counter
from dataclasses import dataclass, field

import msgspec

from schemas import BudgetStatus, Leaderboard, Standing, Verdict
from scorer.config import ScorerConfig
from scorer.stats import RunningMean

MAX_STANDINGS = 200
MAX_IDS_PER_STANDING = 32


def config_key(method: str, params: dict[str, object], code_hash: str | None) -> str:
    """A stable name for one method configuration: the method plus a hash of its params and code."""
    canon = msgspec.json.encode({"p": params, "c": code_hash}, order="sorted")
    return f"{method[:48]}-{hashlib.sha256(canon).hexdigest()[:12]}"


@dataclass(slots=True)
class BestChange:
    """A verified standing cleared the previous best."""

    task: str
    previous: Standing | None
    best: Standing


@dataclass(slots=True)
class _Config:
    first: Verdict
    by_seed: dict[int, Verdict] = field(default_factory=dict)
    updated_ts: float = 0.0
    # The final split's PGR over the seeds, kept as they come: the new-best check reads its mean
    # and interval on every result of the config.
    final: RunningMean = field(default_factory=RunningMean)
    # Cleared when a seed is added; the leaderboard reads standings every few seconds.
    standing: Standing | None = None


class Ledger:
    """Budgets, seen results and leaderboards, as a function of the verdicts applied so far."""

    def __init__(self, cfg: ScorerConfig) -> None:
        self.cfg = cfg
        self.verdicts: dict[str, Verdict] = {}  # by result id
        self.dev_used: Counter[str] = Counter()
        self.swarm_dev_used = 0
        self.holdout_used = 0
        self._configs: dict[str, dict[str, _Config]] = {}
        self._best: dict[str, tuple[str, float]] = {}
        self._results: Counter[str] = Counter()

    # -- budgets ------------------------------------------------------------------------------

    def seen(self, result_id: str) -> bool:
        return result_id in self.verdicts

    def dev_left(self, agent: str) -> int:
        """Dev answers ``agent`` may still get (its own limit and the swarm's)."""
        own = self.cfg.dev_queries_per_agent - self.dev_used[agent]
        return max(0, min(own, self.cfg.dev_queries_per_swarm - self.swarm_dev_used))

    def holdout_left(self) -> int:
        return max(0, self.cfg.holdout.budget - self.holdout_used)

    def budget(self, swarm: str, sender: str, agent: str) -> BudgetStatus:
        return BudgetStatus(
            swarm=swarm,
            sender=sender,
            agent=agent,
            dev_queries_used=self.dev_used[agent],
            dev_queries_limit=self.cfg.dev_queries_per_agent,
            swarm_dev_queries_used=self.swarm_dev_used,
            swarm_dev_queries_limit=self.cfg.dev_queries_per_swarm,
            holdout_answers=self.holdout_used,
            rule=(
                f"thresholdout: public/hidden dev halves, threshold {self.cfg.holdout.threshold}, "
                f"noise {self.cfg.holdout.sigma}, rounded to {self.cfg.holdout.round_to}; "
                f"hidden-half budget {self.holdout_left()}/{self.cfg.holdout.budget} left"
            ),
        )

    # -- applying verdicts --------------------------------------------------------------------

    def apply(self, verdict: Verdict) -> BestChange | None:
        """Account for one verdict (a result already seen is ignored) and return a new best, if any."""
        rid = verdict.lineage.result_id
        if rid is None or rid in self.verdicts:
            return None
        self.verdicts[rid] = verdict
        self._results[verdict.task] += 1
        if verdict.answer in ("public", "holdout"):
            self.dev_used[verdict.agent or "unknown"] += 1
            self.swarm_dev_used += 1
        if verdict.answer == "holdout":
            self.holdout_used += 1
        if not verdict.leaderboard or "final" not in verdict.pgr:
            return None
        configs = self._configs.setdefault(verdict.task, {})
        entry = configs.setdefault(verdict.config_key, _Config(first=verdict))
        if verdict.seed in entry.by_seed:
            return None  # a repeated seed adds no evidence
        entry.by_seed[verdict.seed] = verdict
        entry.updated_ts = verdict.ts
        entry.final.add(verdict.pgr["final"])
        entry.standing = None
        return self._maybe_new_best(verdict.task, verdict.config_key)

    def _maybe_new_best(self, task: str, key: str) -> BestChange | None:
        configs = self._configs[task]
        if len(configs[key].by_seed) < self.cfg.min_seeds:
            return None
        _, ci = self._final(configs[key])
        if ci is None:
            return None
        current = self._best.get(task)
        if current is not None and current[0] == key:
            return None
        # A new best must clear the previous best: its whole interval above the previous mean.
        if current is not None:
            previous_mean, _ = self._final(configs[current[0]])
            if not ci[0] > (previous_mean if previous_mean is not None else -math.inf):
                return None
        best = self._standing(task, key)
        self._best[task] = (key, best.updated_ts)
        return BestChange(
            task=task, previous=self._standing(task, current[0]) if current else None, best=best
        )

    def _final(self, entry: _Config) -> tuple[float | None, tuple[float, float] | None]:
        """A verified config's final-split mean PGR and interval, rounded as its standing shows them."""
        if len(entry.by_seed) < self.cfg.min_seeds:
            return None, None
        mean, ci = entry.final.ci(self.cfg.confidence)
        return (
            None if not math.isfinite(mean) else round(mean, 4),
            None if ci is None else (round(ci[0], 4), round(ci[1], 4)),
        )

    # -- leaderboards -------------------------------------------------------------------------

    def tasks(self) -> list[str]:
        return sorted(self._results)

    def _standing(self, task: str, key: str) -> Standing:
        entry = self._configs[task][key]
        if entry.standing is None:
            entry.standing = self._compute_standing(key, entry)
        return entry.standing

    def _compute_standing(self, key: str, entry: _Config) -> Standing:
        runs = [entry.by_seed[s] for s in sorted(entry.by_seed)]
        final, ci = self._final(entry)
        answered = [
            v.answered_pgr for v in runs if v.answered_pgr is not None and math.isfinite(v.answered_pgr)
        ]
        first = entry.first
        return Standing(
            config_key=key,
            method=first.method,
            params=first.params,
            code_hash=first.code_hash,
            seeds=sorted(entry.by_seed),
            dev_pgr=round(sum(answered) / len(answered), 4) if answered else None,
            final_pgr=final,
            final_ci=ci,
            verified=len(runs) >= self.cfg.min_seeds,
            result_ids=[v.lineage.result_id or "" for v in runs][:MAX_IDS_PER_STANDING],
            agents=sorted({v.agent for v in runs if v.agent})[:16],
            first_ts=first.ts,
            updated_ts=entry.updated_ts,
        )

    def board(self, task: str, swarm: str, sender: str) -> Leaderboard:
        """The task's leaderboard: verified standings by final PGR, then the rest by dev PGR."""
        standings = [self._standing(task, k) for k in self._configs.get(task, {})]
        standings.sort(
            key=lambda s: (
                not s.verified,
                -(s.final_pgr if s.final_pgr is not None else -math.inf),
                -(s.dev_pgr if s.dev_pgr is not None else -math.inf),
            )
        )
        best = self._best.get(task)
        return Leaderboard(
            swarm=swarm,
            sender=sender,
            ts=time.time(),
            task=task,
            standings=standings[:MAX_STANDINGS],
            best=best[0] if best else None,
            best_since=best[1] if best else None,
            min_seeds=self.cfg.min_seeds,
            results=self._results[task],
        )
