"""The scorer's settings: budgets, the reusable-holdout rule, detector thresholds, statistics."""

from __future__ import annotations

from typing import Annotated

import msgspec

from scorer.spending import SpendLimits

Fraction = Annotated[float, msgspec.Meta(ge=0, le=1)]


class HoldoutConfig(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Thresholdout (Dwork et al. 2015) over two halves of the dev split.

    The dev split is cut, by a hash of each example id, into a public half and a holdout half. An
    answer is the public half's accuracy unless it differs from the holdout half's by more than a
    threshold plus Laplace noise; then the answer is the holdout half's accuracy plus Laplace
    noise of scale ``sigma`` and one unit of ``budget`` is spent. The threshold is
    ``threshold_se`` standard errors of the difference between two honest halves (so an honest
    submission rarely spends budget whatever the split size), and at least ``threshold``. Answers
    are rounded to ``round_to``. When the budget is spent, dev answers are withheld (the verified leaderboard
    still ranks). Noise is seeded by the result id and a secret derived from the labels, so a
    re-scored result gets the same answer.
    """

    threshold: Fraction = 0.01
    threshold_se: Annotated[float, msgspec.Meta(ge=0)] = 3.0
    sigma: Fraction = 0.01
    budget: Annotated[int, msgspec.Meta(ge=0)] = 1000
    round_to: Fraction = 0.005


class DetectorConfig(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """When a submission looks like score gaming rather than a method."""

    # Share of the most common predicted label above which predictions count as constant.
    constant_share: Fraction = 0.97
    # Total-variation distance from the gold label prior under which predictions "match the prior",
    # and accuracy margin (in binomial standard errors) over chance agreement they must clear.
    prior_tv: Fraction = 0.03
    prior_margin_se: float = 3.0
    # Agreement with the weak supervisor's own predictions above which a student is a copy.
    weak_copy_agreement: Fraction = 0.985
    # Adaptive probing: a dev submission within ``probe_max_flips`` (a fraction of the split) of an
    # earlier one by the same agent is a probe; ``probe_count`` probes in the window flag the agent.
    probe_max_flips: Fraction = 0.02
    probe_count: Annotated[int, msgspec.Meta(ge=1)] = 3
    probe_window: Annotated[int, msgspec.Meta(ge=1)] = 64


class ScorerConfig(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Everything ``aar scorer --config`` may set; every field has a default."""

    name: str = "scorer"
    dev_queries_per_agent: Annotated[int, msgspec.Meta(ge=0)] = 500
    dev_queries_per_swarm: Annotated[int, msgspec.Meta(ge=0)] = 10_000
    # Budget events go out when usage crosses these fractions of a limit.
    warn_at: Fraction = 0.8
    holdout: HoldoutConfig = HoldoutConfig()
    detectors: DetectorConfig = DetectorConfig()
    # A leaderboard entry is verified with this many distinct seeds; its interval has this level.
    min_seeds: Annotated[int, msgspec.Meta(ge=2)] = 3
    confidence: Annotated[float, msgspec.Meta(gt=0, lt=1)] = 0.95
    # Tokens, dollars and worker minutes per agent and per swarm (budget events at each level).
    spending: SpendLimits = SpendLimits()
    # Results scored at once (artifact fetches and publishes overlap).
    concurrency: Annotated[int, msgspec.Meta(ge=1, le=4096)] = 64
    # A task's leaderboard is written at most this often (it is recomputed on every verdict).
    leaderboard_every_s: Annotated[float, msgspec.Meta(ge=0)] = 0.25
