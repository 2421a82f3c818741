"""Typed key-value buckets and the content-addressed artifact store."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import logging
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import nats.js.errors
from nats.js import JetStreamContext, api
from nats.js.kv import MSG_ROLLUP_SUBJECT, KeyValue
from nats.js.object_store import (
    OBJ_CHUNKS_PRE_TEMPLATE,
    OBJ_DEFAULT_CHUNK_SIZE,
    OBJ_DIGEST_TEMPLATE,
    OBJ_META_PRE_TEMPLATE,
    ObjectStore,
)

from bus import streams
from bus.errors import BusError
from schemas import ArtifactRef, ExperimentResult, Message, SchemaError, decode, encode
from schemas.artifacts import INLINE_PREDICTIONS_MAX_BYTES, PredictionSet

if TYPE_CHECKING:
    from bus.connection import Bus

log = logging.getLogger("aar.bus")


class TypedKV:
    """A key-value bucket whose values are aar messages."""

    def __init__(self, kv: KeyValue, js: JetStreamContext, bucket: str) -> None:
        self._kv, self._js, self.bucket = kv, js, bucket

    async def put(self, key: str, msg: Message) -> int:
        """Store ``msg`` under ``key``; returns the revision."""
        return await self._kv.put(key, encode(msg))

    async def get(self, key: str) -> Message | None:
        """The value under ``key``, or None when absent or deleted.

        Raises:
            SchemaError: the stored value is not a valid message.
        """
        try:
            entry = await self._kv.get(key)
        except nats.js.errors.KeyNotFoundError:  # KeyDeletedError is one too
            return None
        return decode(entry.value) if entry.value else None

    async def delete(self, key: str) -> None:
        await self._kv.delete(key)

    async def keys(self) -> list[str]:
        """Every key that has a value or a delete marker, from the bucket's stream state.

        nats-py's ``KeyValue.keys()`` races its own watcher under load and can report an empty
        bucket that is not; the stream's per-subject counts cannot.
        """
        info = await self._js.stream_info(streams.kv_stream(self.bucket), subjects_filter=">")
        prefix = f"$KV.{self.bucket}."
        return sorted(s[len(prefix) :] for s in (info.state.subjects or {}) if s.startswith(prefix))

    async def items(self) -> dict[str, Message]:
        """Every live key with its decoded value; undecodable values are skipped with a warning."""
        out: dict[str, Message] = {}
        for key in await self.keys():
            try:
                if (value := await self.get(key)) is not None:
                    out[key] = value
            except SchemaError as e:
                log.warning("bad value in bucket", extra={"key": key, "reason": e.reason})
        return out

    async def watch(self, *, history: bool = True) -> AsyncIterator[tuple[str, Message | None]]:
        """Yield ``(key, value)`` for the current values (when ``history``) and then every change.

        A deleted or expired key yields ``(key, None)``.
        """
        watcher = await self._kv.watchall(include_history=False, ignore_deletes=False)
        try:
            async for entry in watcher:
                if entry is None:  # the marker after the initial values
                    continue
                if not history and entry.delta is not None and entry.delta > 0:
                    continue
                if entry.operation in ("DEL", "PURGE") or not entry.value:
                    yield entry.key, None
                    continue
                try:
                    yield entry.key, decode(entry.value)
                except SchemaError as e:
                    log.warning("bad value in bucket", extra={"key": entry.key, "reason": e.reason})
        finally:
            await watcher.stop()  # type: ignore[no-untyped-call]


class Artifacts:
    """The swarm's object store; an artifact's name is its sha256, so storing is idempotent."""

    def __init__(self, store: ObjectStore, js: JetStreamContext, bucket: str) -> None:
        self._store, self._js, self._bucket = store, js, bucket
        self._stream = streams.object_stream(bucket)

    @classmethod
    async def open(cls, bus: Bus, swarm: str) -> Artifacts:
        bucket = streams.artifacts_bucket(swarm)
        try:
            return cls(await bus.js.object_store(bucket), bus.js, bucket)
        except nats.js.errors.NotFoundError as e:
            raise BusError(f"no artifact store for swarm {swarm!r}: run ensure_swarm first") from e

    async def put(self, data: bytes, *, content_type: str = "application/octet-stream") -> ArtifactRef:
        """Store ``data`` (unless already there) and return its reference."""
        digest = hashlib.sha256(data).hexdigest()
        ref = ArtifactRef(name=digest, sha256=digest, size=len(data), content_type=content_type)
        if 0 < len(data) <= OBJ_DEFAULT_CHUNK_SIZE:
            await self._put_one_chunk(digest, data)
            return ref
        try:
            info = await self._store.get_info(digest)
            if info.size == len(data) and not info.deleted:
                return ref
        except nats.js.errors.ObjectNotFoundError:
            pass
        await self._store.put(digest, data)
        return ref

    async def get(self, ref: ArtifactRef) -> bytes:
        """The artifact's bytes, checked against its hash.

        Raises:
            BusError: it is missing, or its bytes do not match the reference.
        """
        try:
            data = await self._addressed_chunk(ref) if 0 < ref.size <= OBJ_DEFAULT_CHUNK_SIZE else None
            if data is None:
                data = await self._one_chunk(ref.name)
            if data is None:
                data = (await self._store.get(ref.name)).data or b""
        except (nats.js.errors.ObjectNotFoundError, nats.js.errors.ObjectDeletedError) as e:
            raise BusError(f"artifact {ref.name} not found") from e
        if hashlib.sha256(data).hexdigest() != ref.sha256:
            raise BusError(f"artifact {ref.name} does not match its sha256")
        return data

    async def place_predictions(
        self, sets: dict[str, PredictionSet], *, inline_max: int = INLINE_PREDICTIONS_MAX_BYTES
    ) -> dict[str, Any]:
        """Where a result's prediction sets go: in the message when small, else stored as artifacts.

        Returns the result's ``predictions`` and ``inline_predictions`` fields, as keyword arguments.
        """
        encoded = {split: ps.to_bytes() for split, ps in sets.items()}
        if sum(len(b) for b in encoded.values()) <= inline_max:
            return {"predictions": {}, "inline_predictions": dict(sets)}
        refs = {
            split: await self.put(data, content_type="application/x-aar-predictions+msgpack")
            for split, data in encoded.items()
        }
        return {"predictions": refs, "inline_predictions": {}}

    async def prediction_sets(self, result: ExperimentResult) -> dict[str, PredictionSet]:
        """A result's prediction sets by split: those it carries, and those it references, read.

        Raises:
            BusError: a referenced set is missing or does not match its hash (naming the split).
            SchemaError: a referenced artifact is not a prediction set (naming the split).
        """
        out = dict(result.inline_predictions)
        stored = [s for s in result.predictions if s not in out]
        if not stored:
            return out  # all inline: nothing to read (the scorer's usual case)
        reads = (self.get(result.predictions[s]) for s in stored)
        fetched = await asyncio.gather(*reads, return_exceptions=True)
        for split, data in zip(stored, fetched, strict=True):
            if isinstance(data, BusError):
                raise BusError(f"{split} predictions unreadable: {data}") from data
            if isinstance(data, BaseException):
                raise data
            try:
                out[split] = PredictionSet.from_bytes(data)
            except SchemaError as e:
                raise SchemaError(f"{split} predictions are not a prediction set: {e.reason}") from e
        return out

    # An artifact of one chunk is stored the object store's way (a chunk and a meta entry that any
    # client reads), but its chunk subject is named by its hash rather than a random nuid, so a
    # reader that holds the reference gets it with one direct get, and a writer stores it with two
    # pipelined publishes. Rollup headers make a second put of the same bytes replace, not duplicate.
    async def _put_one_chunk(self, digest: str, data: bytes) -> None:
        nuid = digest[:32]
        info = api.ObjectInfo(
            name=digest,
            bucket=self._bucket,
            nuid=nuid,
            size=len(data),
            chunks=1,
            mtime=datetime.now(UTC).isoformat(),
            digest=OBJ_DIGEST_TEMPLATE.format(
                digest=base64.urlsafe_b64encode(hashlib.sha256(data).digest()).decode()
            ),
            options=api.ObjectMetaOptions(max_chunk_size=OBJ_DEFAULT_CHUNK_SIZE),
        )
        rollup: dict[str, Any] = {api.Header.ROLLUP.value: MSG_ROLLUP_SUBJECT}
        chunk = self._js.publish(
            OBJ_CHUNKS_PRE_TEMPLATE.format(bucket=self._bucket, obj=nuid), data, headers=rollup
        )
        meta = self._js.publish(
            self._meta_subject(digest), json.dumps(info.as_dict()).encode(), headers=rollup
        )
        await asyncio.gather(chunk, meta)

    async def _addressed_chunk(self, ref: ArtifactRef) -> bytes | None:
        subject = OBJ_CHUNKS_PRE_TEMPLATE.format(bucket=self._bucket, obj=ref.sha256[:32])
        try:
            msg = await self._js.get_msg(self._stream, subject=subject, direct=True)
        except nats.js.errors.NotFoundError:
            return None  # stored by another client, with a random nuid
        data = msg.data or b""
        return data if hashlib.sha256(data).hexdigest() == ref.sha256 else None

    def _meta_subject(self, name: str) -> str:
        return OBJ_META_PRE_TEMPLATE.format(
            bucket=self._bucket, obj=base64.urlsafe_b64encode(name.encode()).decode()
        )

    async def _one_chunk(self, name: str) -> bytes | None:
        """An object of one chunk by two direct gets (meta, then chunk); None when it has more.

        nats-py's ``ObjectStore.get`` creates an ordered consumer per object: several round trips
        and a consumer the server must set up and tear down. Most artifacts (prediction sets, code)
        fit one 128 KiB chunk, and a scorer reads thousands a second (bench.scorer).
        """
        try:
            meta = await self._js.get_msg(self._stream, subject=self._meta_subject(name), direct=True)
        except nats.js.errors.NotFoundError as e:
            raise nats.js.errors.ObjectNotFoundError from e
        info = json.loads(meta.data or b"{}")
        if info.get("deleted"):
            raise nats.js.errors.ObjectDeletedError
        if info.get("chunks") != 1 or not info.get("nuid"):
            return None
        chunk_subject = OBJ_CHUNKS_PRE_TEMPLATE.format(bucket=self._bucket, obj=info["nuid"])
        chunk = await self._js.get_msg(self._stream, subject=chunk_subject, direct=True)
        return chunk.data or b""


class NamedObjects:
    """An object store addressed by name (the label store): operator writes, scorer reads."""

    def __init__(self, store: ObjectStore, bucket: str) -> None:
        self._store, self.bucket = store, bucket

    @classmethod
    async def open(cls, bus: Bus, bucket: str) -> NamedObjects:
        try:
            return cls(await bus.js.object_store(bucket), bucket)
        except nats.js.errors.NotFoundError as e:
            raise BusError(f"no object store {bucket!r}: run ensure_swarm first") from e

    async def put(self, name: str, data: bytes) -> None:
        await self._store.put(name, data)

    async def get(self, name: str) -> bytes:
        """The object's bytes.

        Raises:
            BusError: no such object (or no right to read it).
        """
        try:
            result = await self._store.get(name)
        except (nats.js.errors.ObjectNotFoundError, nats.js.errors.ObjectDeletedError) as e:
            raise BusError(f"{name!r} not found in {self.bucket}") from e
        return result.data or b""
