"""Content-addressed blobs: bytes named by their SHA-256, verified on the way in and out.

Internal to ostree_repo (the repository, import, sync and builder layers).
"""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterable, AsyncIterator

from ostree_repo.errors import ChecksumMismatchError
from ostree_repo.repository.layout import blob_path
from ostree_repo.store import ObjectStore

__all__ = ["checked_chunks", "put_blob", "read_blob", "stream_blob"]


async def put_blob(store: ObjectStore, data: bytes, expected: str | None = None) -> str:
    """Store ``data`` as a blob and return its digest (checked against ``expected``)."""
    digest = hashlib.sha256(data).hexdigest()
    if expected is not None and digest != expected:
        raise ChecksumMismatchError(expected, digest, "blob")
    await store.write_named(blob_path(digest), data)
    return digest


async def read_blob(store: ObjectStore, digest: str) -> bytes:
    """Read a blob and check that it still hashes to its name."""
    data, _ = await store.read_named(blob_path(digest))
    actual = hashlib.sha256(data).hexdigest()
    if actual != digest:
        raise ChecksumMismatchError(digest, actual, "blob")
    return data


async def checked_chunks(
    chunks: AsyncIterable[bytes], digest: str, what: str = "blob"
) -> AsyncIterator[bytes]:
    """Pass ``chunks`` through; at the end raise ChecksumMismatchError unless they hash to
    ``digest`` (so a write fed from it never completes with the wrong bytes)."""
    hasher = hashlib.sha256()
    async for chunk in chunks:
        hasher.update(chunk)
        yield chunk
    if hasher.hexdigest() != digest:
        raise ChecksumMismatchError(digest, hasher.hexdigest(), what)


async def stream_blob(store: ObjectStore, digest: str) -> AsyncIterator[bytes]:
    """A blob's bytes, streamed; raises ChecksumMismatchError at the end if they are wrong."""
    async with store.open_named(blob_path(digest)) as stream:
        async for chunk in checked_chunks(stream, digest):
            yield chunk
