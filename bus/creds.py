"""Credentials on disk: one nkey per role, the files clients connect with, and the server's users.

A credentials file is one of two kinds, told apart by content:

- a NATS user ``.creds`` file (a JWT and a seed), for servers run in operator/JWT mode; nats-py
  reads it as ``user_credentials``;
- an aar nkey seed file, as ``aar server`` writes under ``<data_dir>/creds/<role>.creds``: a
  comment naming the role, then the user's nkey seed in the decorated block NATS tools use::

      # aar-role: agent
      -----BEGIN USER NKEY SEED-----
      SUA...
      ------END USER NKEY SEED------

Either kind may carry the ``# aar-role:`` line; a client that finds it uses that role's inbox
prefix (``bus.auth.inbox_prefix``), the only one the server lets the role subscribe to.
"""

from __future__ import annotations

import contextlib
import os
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import nkeys

from bus.auth import Role, render_authorization
from bus.errors import CredentialsError, InvalidSubjectError
from bus.subjects import token

AUTH_DIR = "auth"
CREDS_DIR = "creds"
_ROLE_LINE = re.compile(r"^#\s*aar-role:\s*(\S+)\s*$", re.MULTILINE)
# An nkey user seed: 'S' (seed) 'U' (user), then base32 of the rest of the 58 characters.
_USER_SEED = re.compile(r"^\s*(SU[A-Z2-7]{56})\s*$", re.MULTILINE)
_JWT_MARK = "BEGIN NATS USER JWT"


@dataclass(frozen=True, slots=True)
class Credentials:
    """A credentials file, read.

    Attributes:
        path: where it was read from.
        role: the aar role it is for, when the file says so.
        seed: the nkey seed of an aar seed file; None for a JWT ``.creds`` file (nats-py reads
            that itself, so the seed is not kept here).
    """

    path: Path
    role: Role | None
    seed: str | None

    def connect_options(self) -> dict[str, Any]:
        """The ``nats.connect`` options that authenticate with these credentials."""
        if self.seed is None:
            return {"user_credentials": str(self.path)}
        return {"nkeys_seed_str": self.seed}


def read_credentials(path: str | os.PathLike[str]) -> Credentials:
    """Read a credentials file of either kind (see the module docstring).

    Raises:
        CredentialsError: the file cannot be read, holds neither a JWT nor a user seed, or names
            a role aar does not know.
    """
    p = Path(path).expanduser()
    try:
        text = p.read_text()
    except (OSError, UnicodeDecodeError) as e:
        raise CredentialsError(f"cannot read credentials {p}: {e}") from e
    role: Role | None = None
    if m := _ROLE_LINE.search(text):
        try:
            role = Role(m.group(1))
        except ValueError as e:
            roles = ", ".join(r.value for r in Role)
            raise CredentialsError(f"{p}: unknown aar role {m.group(1)!r} (one of {roles})") from e
    if _JWT_MARK in text:
        return Credentials(p, role, None)
    if m := _USER_SEED.search(text):
        return Credentials(p, role, m.group(1))
    raise CredentialsError(f"{p} is neither a NATS .creds file nor an nkey user seed file")


def new_seed() -> str:
    """A fresh nkey user seed (``SU...``)."""
    return str(nkeys.encode_seed(os.urandom(32), nkeys.PREFIX_BYTE_USER).decode())


def public_key(seed: str) -> str:
    """The public nkey (``U...``) of a user seed; what the server's config names."""
    kp = nkeys.from_seed(bytearray(seed.encode()))
    try:
        return str(kp.public_key.decode())
    finally:
        kp.wipe()


def render_credentials(role: Role, seed: str) -> str:
    """An aar nkey seed file for ``role``."""
    return (
        f"# aar credentials for the {role.value!r} role, written by `aar server`. Keep this file secret:\n"
        "# it is the only thing a client needs to connect with this role's rights.\n"
        f"# aar-role: {role.value}\n"
        "-----BEGIN USER NKEY SEED-----\n"
        f"{seed}\n"
        "------END USER NKEY SEED------\n"
    )


def _write_private(path: Path, text: str) -> None:
    """Write ``text`` readable by the owner only, never briefly readable by others."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with contextlib.suppress(OSError):
        path.parent.chmod(0o700)
    tmp = path.with_name(f".{path.name}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(text)
    os.replace(tmp, path)


class ServerAuth:
    """The embedded server's users: one nkey per role, their permissions and credentials files.

    Seeds are made once and kept in ``<data_dir>/auth/<role>.nk`` (mode 0600), so credentials
    handed out stay valid across restarts. ``write`` (re)writes the authorization file the server
    config includes and ``<data_dir>/creds/<role>.creds`` for every role.
    """

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        # The swarms authorized before, so a restarted server serves them from its first moment.
        self.swarms = frozenset(self._saved_swarms())
        self._written: frozenset[str] | None = None

    @property
    def auth_dir(self) -> Path:
        return self.data_dir / AUTH_DIR

    @property
    def include_path(self) -> Path:
        """The ``authorization`` block; add it to ``ServerConfig.include``."""
        return self.auth_dir / "authorization.conf"

    @property
    def swarms_path(self) -> Path:
        return self.auth_dir / "swarms"

    def _saved_swarms(self) -> list[str]:
        try:
            lines = self.swarms_path.read_text().split()
        except FileNotFoundError:
            return []
        return [line for line in lines if _is_token(line)]

    def creds_path(self, role: Role) -> Path:
        return self.data_dir / CREDS_DIR / f"{role.value}.creds"

    def _seed(self, role: Role) -> str:
        path = self.auth_dir / f"{role.value}.nk"
        with contextlib.suppress(FileNotFoundError):
            if m := _USER_SEED.search(path.read_text()):
                return m.group(1)
        seed = new_seed()
        _write_private(path, seed + "\n")
        return seed

    def write(self, swarms: Iterable[str]) -> bool:
        """Make sure every role has a key and a credentials file, and authorize ``swarms``.

        Swarms authorized before (in this data dir, across restarts) stay authorized. Returns True
        when the files changed, so a running server must reload its config (``NatsServer.reload``)
        to let the roles use the new swarms. A name that cannot be a subject token (a stream
        someone named by hand) is skipped: no aar swarm can have it.
        """
        grown = self.swarms | {s for s in swarms if _is_token(s)}
        if grown == self._written:
            return False
        users: dict[Role, str] = {}
        for role in Role:
            seed = self._seed(role)
            users[role] = public_key(seed)
            _write_private(self.creds_path(role), render_credentials(role, seed))
        _write_private(self.include_path, render_authorization(users, grown))
        _write_private(self.swarms_path, "".join(f"{s}\n" for s in sorted(grown)))
        self.swarms = self._written = grown
        return True


def _is_token(value: str) -> bool:
    try:
        token(value)
    except InvalidSubjectError:
        return False
    return True
