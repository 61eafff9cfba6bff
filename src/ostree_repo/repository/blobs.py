"""Content-addressed blobs: bytes named by their SHA-256, verified on the way in and out.

Internal to ostree_repo (the repository, import, sync and builder layers).
"""

from __future__ import annotations

import hashlib

from ostree_repo.errors import ChecksumMismatchError
from ostree_repo.repository.layout import blob_path
from ostree_repo.store import ObjectStore

__all__ = ["put_blob", "read_blob"]


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
