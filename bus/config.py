"""How a process reaches the bus: one Struct, filled from flags, environment or a file."""

from __future__ import annotations

import json
import os
import ssl
import tomllib
from pathlib import Path
from typing import Annotated, Any, TypeVar

import msgspec

from bus.auth import inbox_prefix
from bus.creds import Credentials, read_credentials
from bus.errors import ConfigFileError

DEFAULT_URL = "nats://127.0.0.1:4222"


class BusConfig(msgspec.Struct, frozen=True, kw_only=True):
    """Connection options for ``Bus.connect``.

    Attributes:
        servers: one or more ``nats://`` or ``tls://`` URLs; the client fails over between them.
        name: the connection name the server shows in its monitoring (``aar-worker-gpu1``).
        creds_file: a credentials file, either kind (detected from its content): a NATS user
            ``.creds`` (JWT and seed) or an nkey seed file as ``aar server`` writes for each role
            (``<data_dir>/creds/<role>.creds``); see ``bus.creds``.
        inbox_prefix: where replies to this connection go. None: the role named in the
            credentials file decides (``_INBOX_<role>``, the only inbox that role may read), else
            nats-py's ``_INBOX``.
        user, password: plain user authentication, for servers configured that way.
        tls_ca_file, tls_cert_file, tls_key_file: TLS trust anchor and client certificate.
        max_reconnect_attempts: reconnects after a drop before giving up (-1: forever).
        connect_attempts: tries at the very first connect (-1: forever).
        publish_timeout_s: how long a durable publish keeps retrying (same message id, so the
            server stores it once) before giving up; covers a server restart.
    """

    servers: Annotated[list[str], msgspec.Meta(min_length=1)] = msgspec.field(
        default_factory=lambda: [DEFAULT_URL]
    )
    name: str | None = None
    creds_file: str | None = None
    inbox_prefix: str | None = None
    user: str | None = None
    password: str | None = None
    tls_ca_file: str | None = None
    tls_cert_file: str | None = None
    tls_key_file: str | None = None
    connect_timeout_s: float = 5.0
    reconnect_wait_s: float = 0.25
    max_reconnect_attempts: int = -1
    # Tries at the first connect before giving up (-1: keep trying, for a service started before
    # its server); once connected, ``max_reconnect_attempts`` governs.
    connect_attempts: int = 3
    publish_timeout_s: float = 30.0
    # Bytes nats-py buffers while reconnecting; what a server restart can hold in flight.
    pending_size: int = 64 * 1024 * 1024

    @classmethod
    def from_env(cls, **overrides: Any) -> BusConfig:
        """Defaults, then ``AAR_NATS_URL`` (comma-separated) and ``AAR_NATS_CREDS``, then ``overrides``.

        ``None`` overrides are ignored, so CLI flags that were not given fall through.
        """
        fields: dict[str, Any] = {}
        if url := os.environ.get("AAR_NATS_URL"):
            fields["servers"] = [u.strip() for u in url.split(",") if u.strip()]
        if creds := os.environ.get("AAR_NATS_CREDS"):
            fields["creds_file"] = creds
        fields.update({k: v for k, v in overrides.items() if v is not None})
        return msgspec.convert(fields, cls)

    def credentials(self) -> Credentials | None:
        """The credentials file, read (None without one).

        Raises:
            CredentialsError: it cannot be read or is of no known kind.
        """
        return read_credentials(self.creds_file) if self.creds_file else None

    def auth_options(self) -> dict[str, Any]:
        """``nats.connect`` options for the credentials file and the matching inbox prefix.

        Raises:
            CredentialsError: as ``credentials``.
        """
        creds = self.credentials()
        opts: dict[str, Any] = creds.connect_options() if creds else {}
        if prefix := self.inbox_prefix or (creds and creds.role and inbox_prefix(creds.role)):
            opts["inbox_prefix"] = prefix
        return opts

    def ssl_context(self) -> ssl.SSLContext | None:
        """A client TLS context when any TLS file is set."""
        if not (self.tls_ca_file or self.tls_cert_file):
            return None
        ctx = ssl.create_default_context(cafile=self.tls_ca_file)
        if self.tls_cert_file:
            ctx.load_cert_chain(self.tls_cert_file, self.tls_key_file)
        return ctx


S = TypeVar("S", bound=msgspec.Struct)


def load_struct(cls: type[S], path: str | Path | None) -> S:
    """Settings of any service or role from a JSON (``.json``) or TOML file; defaults when None.

    Raises:
        ConfigFileError: the file is missing or unreadable, does not parse, names a setting ``cls``
            does not have, or holds a value it refuses.
    """
    if path is None:
        return cls()
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as e:
        raise ConfigFileError(e.strerror or str(e), path=str(p)) from e
    is_json = p.suffix.lower() == ".json"
    try:
        data = json.loads(text) if is_json else tomllib.loads(text)
    except (ValueError, tomllib.TOMLDecodeError) as e:
        raise ConfigFileError(f"not valid {'JSON' if is_json else 'TOML'}: {e}", path=str(p)) from e
    if not isinstance(data, dict):
        raise ConfigFileError("the top level must be a table/object", path=str(p))
    if unknown := sorted(set(data) - set(cls.__struct_fields__)):
        known = ", ".join(cls.__struct_fields__)
        raise ConfigFileError(f"unknown setting {', '.join(unknown)} (known: {known})", path=str(p))
    try:
        return msgspec.convert(data, cls)
    except msgspec.ValidationError as e:
        raise ConfigFileError(str(e), path=str(p)) from e
