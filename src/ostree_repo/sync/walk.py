"""The object walk: every dirtree, dirmeta and content object that commits' trees reach
and the store lacks, fetched with a fixed pool of workers.

Metadata comes first (level by level through the trees, so the file list is known), then
content. Objects already stored are not fetched; a subtree whose root dirtree belongs to
a complete closure (``known``) is not even walked, since a closure exists only when every
object under it is stored.
"""

from __future__ import annotations

import math
from collections.abc import Awaitable, Callable, Iterable

import anyio
import attrs

from ostree_repo._tasks import task_group
from ostree_repo.objects import DirTree, ObjectType
from ostree_repo.repository.closure import Key, object_key
from ostree_repo.store import ObjectStore
from ostree_repo.sync.remote import Remote

__all__ = ["WalkStats", "fetch_trees"]


@attrs.define
class WalkStats:
    """Counts of one walk."""

    fetched: int = 0
    present: int = 0
    fetched_bytes: int = 0
    #: stored sizes learnt on the way (saves a size lookup per object when closures are made)
    sizes: dict[Key, int] = attrs.field(factory=dict)


async def _pool(
    first: Iterable[_Item],
    work: Callable[[_Item, Callable[[_Item], None]], Awaitable[None]],
    n: int,
) -> None:
    """Run ``work(item, enqueue)`` on every item (and every item enqueued) with ``n`` workers."""
    send, receive = anyio.create_memory_object_stream[_Item](math.inf)
    pending = 0

    def enqueue(item: _Item) -> None:
        nonlocal pending
        pending += 1
        send.send_nowait(item)

    for item in first:
        enqueue(item)
    if not pending:
        send.close()
        return

    async def worker() -> None:
        nonlocal pending
        async for item in receive:
            try:
                await work(item, enqueue)
            finally:
                pending -= 1
                if pending == 0:
                    send.close()

    async with send, receive, task_group() as tg:
        for _ in range(max(1, n)):
            tg.start_soon(worker)


_Item = tuple[ObjectType, str]


async def fetch_trees(
    remote: Remote,
    store: ObjectStore,
    roots: Iterable[tuple[str, str]],
    known: set[Key],
    *,
    concurrency: int,
    progress: Callable[[WalkStats], None] | None = None,
) -> WalkStats:
    """Make every object under the (root dirtree, root dirmeta) pairs present in ``store``."""
    stats = WalkStats()
    seen: set[_Item] = set()
    files: list[str] = []
    seen_files: set[str] = set()

    def tick(size: int) -> None:
        stats.fetched += 1
        stats.fetched_bytes += size
        if progress is not None:
            progress(stats)

    async def metadata(item: _Item, enqueue: Callable[[_Item], None]) -> None:
        objtype, checksum = item
        if objtype is ObjectType.DIRMETA:
            if await store.has_object(checksum, objtype):
                stats.present += 1
            else:
                size = await remote.store_object(store, checksum, objtype)
                stats.sizes[object_key(objtype, checksum)] = size
                tick(size)
            return
        if await store.has_object(checksum, objtype):
            stats.present += 1
            data = await store.read_object(checksum, objtype)
        else:
            fetched = await remote.get_metadata(checksum, objtype)
            assert fetched is not None
            await store.write_object(checksum, objtype, fetched)
            data = fetched
            tick(len(data))
        stats.sizes[object_key(objtype, checksum)] = len(data)
        tree = DirTree.from_bytes(data)
        for f in tree.files:
            if (
                f.checksum not in seen_files
                and object_key(ObjectType.FILE, f.checksum) not in known
            ):
                seen_files.add(f.checksum)
                files.append(f.checksum)
        for d in tree.dirs:
            for child in ((ObjectType.DIRMETA, d.meta), (ObjectType.DIRTREE, d.tree)):
                if child not in seen and object_key(*child) not in known:
                    seen.add(child)
                    enqueue(child)

    first: list[_Item] = []
    for tree, meta in roots:
        for item in ((ObjectType.DIRMETA, meta), (ObjectType.DIRTREE, tree)):
            if item not in seen and object_key(*item) not in known:
                seen.add(item)
                first.append(item)
    await _pool(first, metadata, concurrency)

    async def content(item: _Item, enqueue: Callable[[_Item], None]) -> None:
        objtype, checksum = item
        if await store.has_object(checksum, objtype):
            stats.present += 1
        else:
            size = await remote.store_object(store, checksum, objtype)
            stats.sizes[object_key(objtype, checksum)] = size
            tick(size)

    await _pool(((ObjectType.FILE, f) for f in files), content, concurrency)
    return stats
