"""Turn one result and its prediction sets into a verdict, the score event agents see, and flags.

No I/O here: ``Scorer`` fetches the prediction sets and publishes what ``judge`` returns, so tests
and ``aar leaderboard --verify`` run the very same rules.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

from schemas import ExperimentResult, Flag, Lineage, ScoreEvent, Verdict
from schemas.artifacts import DEV_HIDDEN, EVAL_SPLITS, PredictionSet
from scorer import detectors, holdout
from scorer.checks import Rejection, aligned
from scorer.config import ScorerConfig
from scorer.detectors import Finding, ProbeTracker
from scorer.ledger import Ledger, config_key
from scorer.truth import IntArray, TaskTruth


@dataclass(slots=True)
class Outcome:
    verdict: Verdict
    score: ScoreEvent
    flags: list[Flag] = field(default_factory=list)


def score_id(result_id: str) -> str:
    """The ScoreEvent id for a result: fixed, so a re-scored result is stored once (Nats-Msg-Id)."""
    return f"s{result_id}"[:64]


def verdict_id(result_id: str) -> str:
    return f"v{result_id}"[:64]


def judge(
    result: ExperimentResult,
    preds: dict[str, PredictionSet] | None,
    truth: TaskTruth | None,
    ledger: Ledger,
    probes: ProbeTracker,
    cfg: ScorerConfig,
    *,
    sender: str,
    rejection: Rejection | None = None,
) -> Outcome:
    """Score one result.

    Args:
        result: the worker's result.
        preds: its prediction sets by split (None when they could not be fetched or decoded).
        truth: the task's truth (None when unavailable; then ``rejection`` says why).
        ledger: budgets and history (read only here; the caller applies the verdict).
        probes: the probing detector's memory (updated).
        cfg: the scorer's settings.
        sender: the scorer's name.
        rejection: a reason found before judging (a forged sender, a missing artifact).
    """
    key = config_key(result.method, result.params, result.code_hash)
    agent = result.agent or "unknown"
    if rejection is None and result.status == "failed":
        rejection = Rejection(f"the worker reported a failure: {(result.error or '')[:300]}", detector="")
    if rejection is None and (truth is None or preds is None):
        rejection = Rejection("no predictions or no truth to score against", detector="")
    aligned_preds: dict[str, IntArray] = {}
    if rejection is None:
        assert truth is not None and preds is not None
        try:
            for split in EVAL_SPLITS:
                if split not in preds:
                    raise Rejection(f"no {split} predictions", missing_split=split)
                aligned_preds[split] = aligned(
                    preds[split],
                    truth.splits[split],
                    task=result.task,
                    split=split,
                    view_digest=truth.view_digest,
                    n_classes=truth.n_classes,
                )
        except Rejection as e:
            rejection = e
    if rejection is not None:
        return _rejected(result, rejection, key, sender=sender)
    assert truth is not None
    correct = {s: aligned_preds[s] == truth.splits[s].gold for s in EVAL_SPLITS}
    # Dev is counted once, in all and in its hidden half: its accuracy, the answer and DEV_HIDDEN.
    dev_halves = holdout.halves(correct["dev"], truth.dev_holdout)
    final = correct["final"]
    accuracy = {
        "dev": dev_halves.true_accuracy,
        "final": int(np.count_nonzero(final)) / final.size if final.size else 0.0,
    }
    findings = _detect(result, aligned_preds, accuracy["dev"], truth, probes, key, agent, cfg)
    pgr = {s: truth.pgr(accuracy[s], s) for s in EVAL_SPLITS}
    # The dev half that public answers never come from, for choosing among configs the agents
    # tuned on the other half (on the dev split's baselines, as answered dev PGR is).
    if dev_halves.n_hidden > 0:
        accuracy[DEV_HIDDEN] = dev_halves.hidden_accuracy
        pgr[DEV_HIDDEN] = truth.pgr(accuracy[DEV_HIDDEN], "dev")
    answered_acc: float | None = None
    answered_pgr: float | None = None
    if ledger.dev_left(agent) <= 0 or ledger.holdout_left() <= 0:
        answer_kind: Literal["public", "holdout", "withheld"] = "withheld"
        reason: str | None = (
            "dev query budget spent"
            if ledger.dev_left(agent) <= 0
            else "the reusable holdout's budget is spent"
        )
    else:
        dev = holdout.answer_counted(dev_halves, cfg.holdout, truth.noise_seed(result.id))
        answer_kind, reason = dev.answer, None
        answered_acc = dev.accuracy
        answered_pgr = _finite(round(truth.pgr(dev.accuracy, "dev"), 4))
    flags = [_flag(result, f, key, sender=sender) for f in findings]
    names = [f.detector for f in findings]
    if names:
        reason = f"flagged by {', '.join(names)}; kept off the leaderboard"
    left = ledger.dev_left(agent) - (1 if answer_kind in ("public", "holdout") else 0)
    shared = _from_result(result, key, sender=sender)
    score = ScoreEvent(
        id=score_id(result.id),
        **shared,
        status="accepted",
        split="dev",
        accuracy=answered_acc,
        pgr=answered_pgr,
        reason=reason,
        budget_left=max(0, left),
        answer=answer_kind,
        flags=names,
    )
    verdict = Verdict(
        id=verdict_id(result.id),
        **shared,
        status="accepted",
        reason=reason,
        accuracy={s: round(a, 6) for s, a in accuracy.items()},
        pgr={s: round(p, 6) for s, p in pgr.items() if math.isfinite(p)},
        answered_pgr=answered_pgr,
        answer=answer_kind,
        result_sender=result.sender,
        flags=names,
        score_id=score.id,
        leaderboard=not names,
    )
    return Outcome(verdict=verdict, score=score, flags=flags)


def _detect(
    result: ExperimentResult,
    preds: dict[str, IntArray],
    dev_accuracy: float,
    truth: TaskTruth,
    probes: ProbeTracker,
    key: str,
    agent: str,
    cfg: ScorerConfig,
) -> list[Finding]:
    d = cfg.detectors
    dev, split = preds["dev"], truth.splits["dev"]
    counts = np.bincount(dev, minlength=truth.n_classes).tolist()
    found = [
        detectors.constant(counts, d, "dev"),
        detectors.prior_only(counts, dev_accuracy, split.gold_counts, d, "dev"),
        detectors.weak_copy(dev, split, d, "dev"),
        probes.check(agent, result.task, result.id, key, result.code_hash is not None, dev),
    ]
    findings = [f for f in found if f is not None]
    # A constant answer also "follows the prior" on a skewed task: report the sharper finding.
    if any(f.detector == "constant" for f in findings):
        findings = [f for f in findings if f.detector != "prior_only"]
    return findings


def _rejected(result: ExperimentResult, rejection: Rejection, key: str, *, sender: str) -> Outcome:
    flags = []
    if rejection.detector:
        finding = Finding(
            rejection.detector,
            rejection.reason,
            severity="critical" if rejection.detector.startswith("forged") else "warning",
            evidence=dict(rejection.evidence),
        )
        flags.append(_flag(result, finding, key, sender=sender))
    shared = _from_result(result, key, sender=sender)
    reason = rejection.reason[:1000]
    detected = [rejection.detector] if rejection.detector else []
    score = ScoreEvent(
        id=score_id(result.id), **shared, status="rejected", reason=reason, answer="none", flags=detected
    )
    verdict = Verdict(
        id=verdict_id(result.id),
        **shared,
        status="rejected",
        reason=reason,
        result_sender=result.sender,
        flags=detected,
        score_id=score.id,
    )
    return Outcome(verdict=verdict, score=score, flags=flags)


def _from_result(result: ExperimentResult, key: str, *, sender: str) -> dict[str, Any]:
    """What a score and a verdict both copy from the result they judge."""
    return {
        "swarm": result.swarm,
        "sender": sender,
        "lineage": _lineage(result),
        "task": result.task,
        "method": result.method,
        "config_key": key,
        "params": result.params,
        "seed": result.seed,
        "worker": result.worker,
        "agent": result.agent,
        "code_hash": result.code_hash,
        "data_hash": result.data_hash,
        "timings": result.timings,
    }


def _flag(result: ExperimentResult, finding: Finding, key: str, *, sender: str) -> Flag:
    evidence = {
        **finding.evidence,
        "task": result.task,
        "method": result.method,
        "config_key": key,
        "worker": result.worker,
        "result_sender": result.sender,
    }
    return Flag(
        id=f"f{result.id}{finding.detector}"[:64],
        swarm=result.swarm,
        sender=sender,
        lineage=_lineage(result),
        detector=finding.detector,
        severity=finding.severity,
        summary=finding.summary[:1000],
        suspect=result.agent or result.sender,
        evidence=evidence,
    )


def _lineage(result: ExperimentResult) -> Lineage:
    return Lineage(
        hypothesis_id=result.lineage.hypothesis_id, request_id=result.lineage.request_id, result_id=result.id
    )


def _finite(value: float) -> float | None:
    return value if math.isfinite(value) else None
