"""JSON encoding and validated decoding of aar messages; the only place payload bytes become objects."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeAlias, TypeVar

import msgspec

from schemas.errors import SchemaError
from schemas.messages import MAX_MESSAGE_BYTES, MESSAGE_TYPES, Envelope, Message

M = TypeVar("M", bound=Envelope)
_Bytes: TypeAlias = bytes | bytearray | memoryview

_encoder = msgspec.json.Encoder()
_decoder: msgspec.json.Decoder[Message] = msgspec.json.Decoder(Message)
_typed_decoders: dict[type[Any], msgspec.json.Decoder[Any]] = {}


def encode(msg: Envelope) -> bytes:
    """Serialise a message to compact JSON."""
    return _encoder.encode(msg)


if not TYPE_CHECKING:
    # The encoder's own (C) method: the same bytes without a Python frame per message, which
    # bench.bus (core publish) can see; the def above is what type checkers and readers see.
    encode = _encoder.encode


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
        typed = _typed_decoder(cls)
    if typed is not None:
        # The fast path for a concrete kind; any failure is decoded again below for its reason.
        _check_size(data, max_bytes)
        try:
            out: M = typed.decode(data)
            return out
        except msgspec.DecodeError:
            pass
    return _decode_checked(data, cls, max_bytes)


def decoder_for(cls: type[M], *, max_bytes: int = MAX_MESSAGE_BYTES) -> Callable[[_Bytes], M]:
    """``decode_as`` bound to one type, for a subscription that decodes every message it gets.

    Decodes and validates exactly as ``decode_as(data, cls, max_bytes=max_bytes)`` does, without
    looking up the decoder again for each message.
    """
    typed = _typed_decoder(cls)
    if typed is None:

        def decode_any(data: _Bytes) -> M:
            return _decode_checked(data, cls, max_bytes)

        return decode_any
    fast: Callable[[_Bytes], M] = typed.decode
    error = msgspec.DecodeError

    def decode_typed(data: _Bytes) -> M:
        if len(data) <= max_bytes:
            try:
                return fast(data)
            except error:
                pass
        return _decode_checked(data, cls, max_bytes)  # raises SchemaError with the reason

    return decode_typed


def unsized_decoder_for(cls: type[M]) -> Callable[[_Bytes], M] | None:
    """msgspec's own decode method for one concrete kind, or None for a base class such as Envelope.

    For a hot path that checks ``len(data) <= MAX_MESSAGE_BYTES`` itself: it validates as
    ``decoder_for(cls)`` does, without the size check and without a Python frame, and raises
    ``msgspec.DecodeError``, not SchemaError; decode a payload it refuses again with
    ``decoder_for(cls)`` for the reason.
    """
    typed = _typed_decoder(cls)
    return None if typed is None else typed.decode


def _typed_decoder(cls: type[Any]) -> msgspec.json.Decoder[Any] | None:
    """The decoder for one concrete kind (built once), or None for a base class such as Envelope."""
    typed = _typed_decoders.get(cls)
    if typed is None and cls in MESSAGE_TYPES:
        typed = _typed_decoders[cls] = msgspec.json.Decoder(cls)
    return typed


def _decode_checked(data: _Bytes, cls: type[M], max_bytes: int) -> M:
    """Decode through the union (for its error message) and check the kind."""
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
