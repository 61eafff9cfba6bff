"""Object stores: one async API over a directory, an S3 bucket or memory.

Open one from a URL and use it as an async context manager::

    from ostree_repo.store import open_store

    async with open_store("s3://bucket/repo") as store:
        await store.write_object(checksum, ObjectType.DIRMETA, data)
        data, token = await store.read_named("refs/heads/main")

See :class:`ObjectStore` for the operations and ``docs/stores.md`` for the guarantees.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ostree_repo.store.base import NamedInfo, ObjectInfo, ObjectStore, Staging, Versioned
from ostree_repo.store.chunks import CHUNK_SIZE, ByteStream, Chunks
from ostree_repo.store.filesystem import FilesystemStore
from ostree_repo.store.memory import MemoryStore
from ostree_repo.store.url import is_filesystem_url, open_store

if TYPE_CHECKING:
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
    "S3Store",
    "Staging",
    "Versioned",
    "is_filesystem_url",
    "open_store",
]


def __getattr__(name: str) -> Any:
    # S3Store needs obstore, an optional dependency: import it only when asked for.
    if name == "S3Store":
        from ostree_repo.store.s3 import S3Store

        return S3Store
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
