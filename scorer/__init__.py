"""The scorer: the only holder of ground truth; turns predictions into scores, flags and leaderboards."""

from scorer.config import DetectorConfig, HoldoutConfig, ScorerConfig
from scorer.ledger import Ledger, config_key
from scorer.service import BUDGET_SERVICE, Scorer

__all__ = [
    "BUDGET_SERVICE",
    "DetectorConfig",
    "HoldoutConfig",
    "Ledger",
    "Scorer",
    "ScorerConfig",
    "config_key",
]
