"""Walking the trees of the two ends of a delta: which objects are new, and file names.

libostree's compiler starts from the objects each commit's tree reaches (the commit's
dirtrees, dirmetas and files; not its parents): the delta carries the target's objects
that the source's tree does not reach. Base names are kept for every file, since
pairing a new file with its old version goes by name (see :mod:`._similar`).
"""

from __future__ import annotations

from collections.abc import Iterable

import anyio
import attrs

from ostree_repo._tasks import task_group
from ostree_repo.deltas.errors import CommitNotFoundError
from ostree_repo.errors import NotFoundError
from ostree_repo.objects import Commit, DirTree, ObjectType
from ostree_repo.store import ObjectStore

__all__ = ["TreeIndex", "read_commit", "walk_tree"]

#: How many objects a walk reads at once.
READ_CONCURRENCY = 16


async def read_commit(store: ObjectStore, checksum: str) -> tuple[bytes, Commit]:
    """A commit's bytes and decoded form; CommitNotFoundError if it is not stored."""
    try:
        data = await store.read_object(checksum, ObjectType.COMMIT)
    except NotFoundError:
        raise CommitNotFoundError(f"commit {checksum} is not in the store") from None
    return data, Commit.from_bytes(data)


@attrs.define
class TreeIndex:
    """What one commit's tree reaches (outside skipped subtrees): its metadata objects in
    walk order and each content object with its base names."""

    metadata: dict[tuple[ObjectType, str], None] = attrs.field(factory=dict)
    files: dict[str, list[str]] = attrs.field(factory=dict)


async def walk_tree(
    store: ObjectStore,
    commit: Commit,
    trees: dict[str, tuple[bytes, DirTree]],
    *,
    skip: Iterable[str] = (),
) -> TreeIndex:
    """Walk ``commit``'s tree breadth first. ``trees`` caches dirtrees (bytes and decoded,
    shared by both ends of a delta); subtrees in ``skip`` are not entered (their objects are
    known to be on both sides)."""
    index = TreeIndex()
    skipped = set(skip)
    index.metadata[(ObjectType.DIRMETA, commit.root_meta)] = None
    level = [commit.root_tree]
    seen = set(level)
    limiter = anyio.CapacityLimiter(READ_CONCURRENCY)

    async def load(checksum: str) -> None:
        async with limiter:
            try:
                data = await store.read_object(checksum, ObjectType.DIRTREE)
            except NotFoundError:
                raise NotFoundError(f"dirtree {checksum} is not in the store") from None
        trees[checksum] = (data, DirTree.from_bytes(data))

    async def load_local(batch: list[str]) -> None:
        async with limiter:
            trees.update(await anyio.to_thread.run_sync(_read_local, store, batch))

    local = store.local_object_path(commit.root_tree, ObjectType.DIRTREE) is not None
    while level:
        wanted = [c for c in level if c not in trees]
        async with task_group() as tg:
            if local:
                for start in range(0, len(wanted), 256):
                    tg.start_soon(load_local, wanted[start : start + 256])
            else:
                for checksum in wanted:
                    tg.start_soon(load, checksum)
        following: list[str] = []
        for checksum in level:
            index.metadata[(ObjectType.DIRTREE, checksum)] = None
            tree = trees[checksum][1]
            for entry in tree.files:
                index.files.setdefault(entry.checksum, []).append(entry.name)
            for sub in tree.dirs:
                index.metadata.setdefault((ObjectType.DIRMETA, sub.meta), None)
                if sub.tree not in seen and sub.tree not in skipped:
                    seen.add(sub.tree)
                    following.append(sub.tree)
        level = following
    return index


def _read_local(store: ObjectStore, checksums: list[str]) -> dict[str, tuple[bytes, DirTree]]:
    """Read and decode dirtrees that are local files (one worker-thread hop for many)."""
    out = {}
    for checksum in checksums:
        path = store.local_object_path(checksum, ObjectType.DIRTREE)
        assert path is not None
        try:
            with open(path, "rb") as f:
                data = f.read()
        except FileNotFoundError:
            raise NotFoundError(f"dirtree {checksum} is not in the store") from None
        out[checksum] = (data, DirTree.from_bytes(data))
    return out
