"""JSON encoding and validated decoding of aar messages; the only place payload bytes become objects."""

from __future__ import annotations

from typing import Any, TypeVar

import msgspec

from schemas.errors import SchemaError
from schemas.messages import MAX_MESSAGE_BYTES, MESSAGE_TYPES, Envelope, Message

M = TypeVar("M", bound=Envelope)

_encoder = msgspec.json.Encoder()
_decoder: msgspec.json.Decoder[Message] = msgspec.json.Decoder(Message)
_typed_decoders: dict[type[Any], msgspec.json.Decoder[Any]] = {}


def encode(msg: Envelope) -> bytes:
    """Serialise a message to compact JSON."""
    return _encoder.encode(msg)


def decode(data: bytes | bytearray | memoryview, *, max_bytes: int = MAX_MESSAGE_BYTES) -> Message:
    """Parse and validate any aar message.

    Raises:
        SchemaError: the payload is too large, not JSON, has an unknown ``kind`` or wrong field types.
    """
    _check_size(data, max_bytes)
    try:
        return _decoder.decode(data)
    except msgspec.DecodeError as e:  # ValidationError is a DecodeError
        raise SchemaError(f"invalid message: {e}", size=len(data)) from e


def decode_as(data: bytes | bytearray | memoryview, cls: type[M], *, max_bytes: int = MAX_MESSAGE_BYTES) -> M:
    """Parse and validate a message that must be of type ``cls``.

    Raises:
        SchemaError: as ``decode``, or the message is valid but of another kind.
    """
    typed = _typed_decoders.get(cls)
    if typed is None and cls in MESSAGE_TYPES:
        typed = _typed_decoders[cls] = msgspec.json.Decoder(cls)
    if typed is not None:
        # The fast path for a concrete kind; any failure is decoded again below for its reason.
        _check_size(data, max_bytes)
        try:
            out: M = typed.decode(data)
            return out
        except msgspec.DecodeError:
            pass
    msg = decode(data, max_bytes=max_bytes)
    if not isinstance(msg, cls):
        raise SchemaError(
            f"expected a {cls.__struct_config__.tag!r} message, got {type(msg).__struct_config__.tag!r}",
            size=len(data),
        )
    return msg


def to_builtins(msg: Envelope) -> dict[str, Any]:
    """The message as plain JSON-compatible Python objects (for printing and dashboards)."""
    out = msgspec.to_builtins(msg)
    assert isinstance(out, dict)
    return out


def _check_size(data: bytes | bytearray | memoryview, max_bytes: int) -> None:
    if len(data) > max_bytes:
        raise SchemaError(f"payload of {len(data)} bytes exceeds the {max_bytes}-byte limit", size=len(data))
