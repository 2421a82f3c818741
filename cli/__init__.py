"""The ``aar`` command line: the only place that parses argv and env, sets up logging and runs the loop."""

from cli.main import main

__all__ = ["main"]
