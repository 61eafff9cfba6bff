"""Chunked byte streams: the input forms writes accept and the stream reads return."""

from __future__ import annotations

from collections.abc import AsyncIterable, AsyncIterator, Awaitable, Callable, Iterable, Iterator
from typing import Protocol, TypeAlias

import anyio.to_thread

__all__ = [
    "CHUNK_SIZE",
    "Buffer",
    "ByteStream",
    "Chunks",
    "Source",
    "Verifier",
    "as_bytes",
    "coalesce",
    "verified",
    "verify_buffer",
    "verify_buffer_async",
]

CHUNK_SIZE = 1 << 20
"""Streams are read and written in chunks of about this many bytes (1 MiB)."""

_THREAD_THRESHOLD = 256 << 10
"""Verifying more bytes than this at once is done in a worker thread, off the event loop."""

Buffer: TypeAlias = bytes | bytearray | memoryview
Chunks: TypeAlias = Buffer | Iterable[Buffer] | AsyncIterable[Buffer]
"""What writes accept: the whole bytes, or a sync or async iterable of chunks."""
Source: TypeAlias = bytes | Iterable[Buffer] | AsyncIterable[Buffer]
"""What backends receive: :data:`Chunks` with any single buffer turned into bytes."""


class Verifier(Protocol):
    """The objects layer's streaming checker (``ostree_repo.objects.verify.new_verifier``)."""

    def update(self, chunk: bytes | bytearray | memoryview) -> None:
        """Feed the next chunk of the object's stored bytes."""

    def finish(self) -> None:
        """Raise ChecksumMismatchError / InvalidObjectError if the bytes are not the object."""


def as_bytes(data: Buffer) -> bytes:
    """``data`` as immutable bytes (copied only when it is not bytes already)."""
    return data if isinstance(data, bytes) else bytes(data)


async def coalesce(data: Iterable[Buffer] | AsyncIterable[Buffer]) -> AsyncIterator[bytes]:
    """Yield ``data``'s bytes in chunks of at least :data:`CHUNK_SIZE` (the last may be short).

    Large chunks pass through without a copy; small ones are joined so that per-chunk costs
    (a thread hop, an HTTP part) stay low. A sync iterable is advanced in a worker thread,
    since producing its next chunk may block (reading a file, say); lists and tuples, which
    are already in memory, are iterated directly. Empty chunks are dropped.
    """
    pending = bytearray()
    async for chunk in _aiter(data):
        if not pending and len(chunk) >= CHUNK_SIZE:
            yield as_bytes(chunk)
            continue
        pending += chunk
        if len(pending) >= CHUNK_SIZE:
            yield bytes(pending)
            pending.clear()
    if pending:
        yield bytes(pending)


async def _aiter(data: Iterable[Buffer] | AsyncIterable[Buffer]) -> AsyncIterator[Buffer]:
    if isinstance(data, AsyncIterable):
        async for chunk in data:
            yield chunk
    elif isinstance(data, list | tuple):
        for chunk in data:
            yield chunk
    elif isinstance(data, Iterable):
        iterator = iter(data)
        while (item := await anyio.to_thread.run_sync(_next_or_none, iterator)) is not None:
            yield item
    else:
        raise TypeError(f"cannot write {type(data).__name__}: expected bytes or chunks")


def _next_or_none(iterator: Iterator[Buffer]) -> Buffer | None:
    return next(iterator, None)


def verify_buffer(verifier: Verifier, data: bytes) -> None:
    """Check a whole object held in memory (blocking; may be called from a worker thread)."""
    verifier.update(data)
    verifier.finish()


async def verify_buffer_async(verifier: Verifier, data: bytes) -> None:
    """Check a whole object held in memory, in a worker thread when it is large."""
    if len(data) > _THREAD_THRESHOLD:
        await anyio.to_thread.run_sync(verify_buffer, verifier, data)
    else:
        verify_buffer(verifier, data)


async def verified(source: AsyncIterator[bytes], verifier: Verifier) -> AsyncIterator[bytes]:
    """Pass ``source``'s chunks through while feeding them to ``verifier``.

    The verifier's verdict comes before the end of the stream: a consumer only sees the
    stream end normally if the bytes were good, otherwise ``__anext__`` raises the
    verifier's error. Backends rely on this: they make data visible only after the stream
    ended normally.
    """
    async for chunk in source:
        if len(chunk) > _THREAD_THRESHOLD:
            await anyio.to_thread.run_sync(verifier.update, chunk)
        else:
            verifier.update(chunk)
        yield chunk
    verifier.finish()


class ByteStream:
    """An open object or named file, read as an async iterator of byte chunks.

    Obtained from ``ObjectStore.open_object`` / ``open_named`` inside ``async with``; the
    context manager closes it. ``size`` is the total number of bytes the stream yields.
    """

    def __init__(
        self,
        size: int,
        chunks: AsyncIterator[bytes],
        close: Callable[[], Awaitable[None]] | None = None,
    ) -> None:
        self.size = size
        self._chunks = chunks
        self._close = close

    def __aiter__(self) -> AsyncIterator[bytes]:
        return self

    async def __anext__(self) -> bytes:
        return await self._chunks.__anext__()

    async def read(self) -> bytes:
        """Read the rest of the stream into memory (meant for small files)."""
        return b"".join([chunk async for chunk in self])

    async def aclose(self) -> None:
        """Release the file handle or connection behind the stream (idempotent)."""
        aclose = getattr(self._chunks, "aclose", None)
        if aclose is not None:
            await aclose()
        if self._close is not None:
            close, self._close = self._close, None
            await close()
