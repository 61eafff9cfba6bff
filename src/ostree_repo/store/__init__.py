"""Object stores: one async API over a directory, an S3 bucket or memory.

Open one from a URL and use it as an async context manager::

    from ostree_repo.store import open_store

    async with open_store("s3://bucket/repo") as store:
        await store.write_object(checksum, ObjectType.DIRMETA, data)
        data, token = await store.read_named("refs/heads/main")

See :class:`ObjectStore` for the operations and ``docs/stores.md`` for the guarantees.
The backends are :class:`FilesystemStore`, :class:`MemoryStore` and the cloud stores
over obstore (:class:`ObstoreStore`, of which :class:`S3Store` is one; they need the
``s3`` extra and are imported when first asked for).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ostree_repo.store._base import NamedInfo, ObjectInfo, ObjectStore, Staging, Versioned
from ostree_repo.store._chunks import CHUNK_SIZE, ByteStream, Chunks
from ostree_repo.store.filesystem import FilesystemStore
from ostree_repo.store.memory import MemoryStore
from ostree_repo.store.url import is_filesystem_url, open_store

if TYPE_CHECKING:
    from ostree_repo.store.cloud import ObstoreStore
    from ostree_repo.store.s3 import S3Store

__all__ = [
    "CHUNK_SIZE",
    "ByteStream",
    "Chunks",
    "FilesystemStore",
    "MemoryStore",
    "NamedInfo",
    "ObjectInfo",
    "ObjectStore",
    "ObstoreStore",
    "S3Store",
    "Staging",
    "Versioned",
    "is_filesystem_url",
    "open_store",
]

_LAZY = {"ObstoreStore": "ostree_repo.store.cloud", "S3Store": "ostree_repo.store.s3"}
"""Stores that need obstore, an optional dependency: imported only when asked for."""


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(module), name)
