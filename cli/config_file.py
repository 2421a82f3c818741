"""Typed config files (TOML or JSON) for services and roles.

A Struct declared with ``forbid_unknown_fields=True`` turns a misspelt key into an error.
"""

from __future__ import annotations

from pathlib import Path
from typing import TypeVar

import msgspec

from cli.errors import CliError

T = TypeVar("T")


def load_config(path: str | None, cls: type[T]) -> T:
    """``cls`` filled from the file at ``path`` (TOML by ``.toml``, else JSON); defaults when None.

    Raises:
        CliError: the file is missing, unparsable, or names a key or value ``cls`` does not take.
    """
    if path is None:
        return msgspec.convert({}, cls)
    file = Path(path)
    try:
        raw = file.read_bytes()
    except OSError as e:
        raise CliError(f"cannot read config {path}: {e.strerror or e}") from e
    try:
        data = msgspec.toml.decode(raw) if file.suffix == ".toml" else msgspec.json.decode(raw)
        return msgspec.convert(data, cls)
    except (msgspec.DecodeError, msgspec.ValidationError) as e:
        raise CliError(f"bad config {path}: {e}") from e
