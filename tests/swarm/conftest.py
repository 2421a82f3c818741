"""Fixtures for the agent tests: the CLI runner of tests/cli, shared here."""

from tests.cli.conftest import _restore_logging, run_cli

__all__ = ["_restore_logging", "run_cli"]
