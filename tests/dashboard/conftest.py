"""The dashboard tests score synthetic results with a real scorer, set up as the scorer's tests do."""

from tests.scorer.conftest import scorer, synth

__all__ = ["scorer", "synth"]
