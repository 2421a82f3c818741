"""Structured logging to stderr: ``time level logger message key=value ...`` or JSON lines.

The code logs with ``extra={...}``; those fields are what makes a line useful, so both formatters
print every attribute a record carries beyond the standard ones.
"""

from __future__ import annotations

import json
import logging
import sys
import time
from typing import Any

# Attributes every LogRecord has; anything else on a record came from ``extra=``.
_STANDARD = frozenset(logging.LogRecord("", 0, "", 0, "", None, None).__dict__) | {"message", "asctime"}
_HANDLER_NAME = "aar-cli"


def extra_fields(record: logging.LogRecord) -> dict[str, Any]:
    """The ``extra=`` fields of a record, in the order they were given."""
    return {k: v for k, v in record.__dict__.items() if k not in _STANDARD and not k.startswith("_")}


def _timestamp(created: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(created)) + f".{int(created % 1 * 1000):03d}"


def _kv_value(value: object) -> str:
    text = value if isinstance(value, str) else repr(value)
    # Quote only when needed, so the common case stays greppable: url=nats://... consumer=workers
    if not text or any(c in text for c in ' ="\n\t'):
        return json.dumps(text)
    return text


class KeyValueFormatter(logging.Formatter):
    """``2025-01-01 12:00:00.123 INFO aar.bus bus connected url=nats://127.0.0.1:4222``."""

    def format(self, record: logging.LogRecord) -> str:
        parts = [_timestamp(record.created), f"{record.levelname:<7}", record.name, record.getMessage()]
        parts += [f"{k}={_kv_value(v)}" for k, v in extra_fields(record).items()]
        line = " ".join(parts)
        if record.exc_info:
            line += "\n" + self.formatException(record.exc_info)
        if record.stack_info:
            line += "\n" + self.formatStack(record.stack_info)
        return line


class JsonFormatter(logging.Formatter):
    """One JSON object per line: ``ts``, ``level``, ``logger``, ``msg``, the extra fields, ``exc``."""

    def format(self, record: logging.LogRecord) -> str:
        doc: dict[str, Any] = {
            "ts": round(record.created, 6),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        for k, v in extra_fields(record).items():
            doc.setdefault(k, v)  # an extra never hides the fixed fields
        if record.exc_info:
            doc["exc"] = self.formatException(record.exc_info)
        return json.dumps(doc, default=repr, ensure_ascii=False)


def setup_logging(level: str = "info", *, json_lines: bool = False) -> None:
    """Send log records to stderr with one of the formatters above.

    Replaces a handler installed by an earlier call (tests call ``main`` many times) and leaves
    other handlers (pytest's capture, for one) alone.

    Args:
        level: a level name (``debug``, ``info``, ``warning``, ``error``).
        json_lines: JSON lines instead of ``key=value`` text.
    """
    root = logging.getLogger()
    for h in [h for h in root.handlers if h.get_name() == _HANDLER_NAME]:
        root.removeHandler(h)
    handler = logging.StreamHandler(sys.stderr)
    handler.set_name(_HANDLER_NAME)
    handler.setFormatter(JsonFormatter() if json_lines else KeyValueFormatter())
    root.addHandler(handler)
    root.setLevel(level.upper())
