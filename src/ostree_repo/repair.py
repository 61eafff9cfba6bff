"""Where ``fsck --repair`` fetches good copies of damaged objects and blobs from.

A source is named as on the command line: an OSTree HTTP(S) URL (a remote, read through
:class:`ostree_repo.sync.Remote`, with its retries and verification), or a store URL or
path (another ``ostree_repo`` store, or an archive-mode OSTree repository directory,
opened read-only)::

    async with open_repair_sources(["https://example.org/repo"]) as sources:
        report = await manager.fsck("fedora", repair_from=sources)
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator, Sequence
from contextlib import AsyncExitStack, asynccontextmanager, contextmanager
from typing import Any

from ostree_repo._urls import url_scheme
from ostree_repo.errors import NotFoundError
from ostree_repo.objects import ObjectType, object_path, verify_bytes
from ostree_repo.repository.fsck import REPAIR_WHOLE_MAX, RepairSource, StoreSource
from ostree_repo.store import ObjectStore, is_filesystem_url, open_store
from ostree_repo.sync import Remote, RemoteError
from ostree_repo.sync.remote import NOT_FOUND

__all__ = ["RemoteSource", "open_repair_sources"]


class RemoteSource:
    """A :class:`~ostree_repo.repository.fsck.RepairSource` over an OSTree HTTP remote."""

    def __init__(self, remote: Remote) -> None:
        self.remote = remote

    def __str__(self) -> str:
        return self.remote.url("")

    async def object_bytes(self, checksum: str, objtype: ObjectType) -> bytes:
        with _absent_as_not_found():
            data = await self.remote.get_bytes(
                object_path(checksum, objtype),
                optional=True,
                limit=REPAIR_WHOLE_MAX,
                check=lambda body: verify_bytes(objtype, checksum, body),
                what=f"{objtype.value} object {checksum}",
            )
        if data is None:
            raise NotFoundError(f"{objtype.value} object {checksum} is not on {self}")
        return data

    async def copy_object(self, store: ObjectStore, checksum: str, objtype: ObjectType) -> None:
        with _absent_as_not_found():
            await self.remote.store_object(store, checksum, objtype)

    async def copy_blob(self, store: ObjectStore, digest: str, path: str) -> None:
        with _absent_as_not_found():
            await self.remote.store_blob(store, path, digest, path)


@contextmanager
def _absent_as_not_found() -> Iterator[None]:
    """Turn a remote's "not found" reply into NotFoundError."""
    try:
        yield
    except RemoteError as e:
        if e.status in NOT_FOUND:
            raise NotFoundError(str(e)) from None
        raise


@asynccontextmanager
async def open_repair_sources(specs: Sequence[str]) -> AsyncIterator[list[RepairSource]]:
    """Open each source ``specs`` names (see the module docstring), in order; all are
    closed on exit. A directory must already be a repository (none is created)."""
    async with AsyncExitStack() as stack:
        sources: list[RepairSource] = []
        for spec in specs:
            if url_scheme(spec) in ("http", "https"):
                remote = await stack.enter_async_context(Remote(spec))
                sources.append(RemoteSource(remote))
                continue
            local = is_filesystem_url(spec)
            options: dict[str, Any] = {"create": False, "workers": 0} if local else {}
            store = await stack.enter_async_context(open_store(spec, **options))
            sources.append(StoreSource(store))
        yield sources
