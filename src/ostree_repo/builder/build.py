"""Writing a tree's objects to a store and committing it, as ``ostree commit`` would.

For the same tree and inputs (owners, modes, xattrs, subject, body, metadata, parent,
timestamp, ref) the commit checksum is the one ``ostree commit`` gives. Files are hashed
and compressed in worker threads (zlib and hashlib release the GIL), so the work spreads
over the machine's cores; every object still passes the store's verification.
"""

from __future__ import annotations

import os
import stat
import time
from collections.abc import Iterator
from typing import Any

import anyio
import anyio.to_thread

from ostree_repo._tasks import task_group
from ostree_repo.builder.tree import Dir, File, Node, Symlink
from ostree_repo.gvariant import Variant
from ostree_repo.objects import (
    Commit,
    ContentHasher,
    DirMeta,
    DirTree,
    FileHeader,
    ObjectType,
    TreeDir,
    TreeFile,
    encode_filez,
)
from ostree_repo.repository.ingest import Ingest
from ostree_repo.repository.manager import RepositoryManager
from ostree_repo.repository.records import VersionRecord
from ostree_repo.store import ObjectStore
from ostree_repo.store.chunks import CHUNK_SIZE

__all__ = ["AUTO", "commit_tree", "write_tree"]

#: Files up to this size are compressed in memory; larger ones are streamed twice.
IN_MEMORY_LIMIT = 16 << 20
#: ``parent=AUTO``: the commit's parent is the ref's current head, as in ``ostree commit -b``.
AUTO = "auto"


def _header(node: File | Symlink) -> FileHeader:
    xattrs = tuple(sorted(node.xattrs))  # libostree canonicalises xattrs: sorted by name
    if isinstance(node, Symlink):
        return FileHeader(node.uid, node.gid, stat.S_IFLNK | 0o777, node.target, xattrs)
    return FileHeader(node.uid, node.gid, stat.S_IFREG | node.mode, "", xattrs)


def _file_chunks(node: File) -> Iterator[bytes]:
    if node.data is not None:
        yield node.data
        return
    assert node.source is not None
    with open(node.source, "rb") as f:
        while chunk := f.read(CHUNK_SIZE):
            yield chunk


def _small_object(node: File | Symlink) -> tuple[str, bytes]:
    """(checksum, .filez bytes) of a symlink or a file small enough to hold in memory."""
    header = _header(node)
    if isinstance(node, Symlink):
        data = b""
    else:
        data = node.data if node.data is not None else b"".join(_file_chunks(node))
    hasher = ContentHasher(header)
    hasher.update(data)
    return hasher.hexdigest(), b"".join(encode_filez(header, len(data), [data]))


def _checksum_of(node: File) -> str:
    hasher = ContentHasher(_header(node))
    for chunk in _file_chunks(node):
        hasher.update(chunk)
    return hasher.hexdigest()


async def _write_content(
    store: ObjectStore, node: File | Symlink, limiter: anyio.CapacityLimiter
) -> str:
    if isinstance(node, File) and node.size() > IN_MEMORY_LIMIT:
        checksum = await anyio.to_thread.run_sync(_checksum_of, node, limiter=limiter)
        if not await store.has_object(checksum, ObjectType.FILE):
            stream = encode_filez(_header(node), node.size(), _file_chunks(node))
            await store.write_object(checksum, ObjectType.FILE, stream)
        return checksum
    checksum, data = await anyio.to_thread.run_sync(_small_object, node, limiter=limiter)
    await store.write_object(checksum, ObjectType.FILE, data)
    return checksum


async def _write_dir(
    store: ObjectStore, node: Dir, limiter: anyio.CapacityLimiter
) -> tuple[str, str]:
    files: dict[str, str] = {}
    dirs: dict[str, tuple[str, str]] = {}

    async def content(name: str, child: File | Symlink) -> None:
        files[name] = await _write_content(store, child, limiter)

    async def subdir(name: str, child: Dir) -> None:
        dirs[name] = await _write_dir(store, child, limiter)

    async with task_group() as tg:
        for name, child in node.entries.items():
            if isinstance(child, Dir):
                tg.start_soon(subdir, name, child)
            else:
                tg.start_soon(content, name, child)
    tree = DirTree.build(
        [TreeFile(n, c) for n, c in files.items()],
        [TreeDir(n, t, m) for n, (t, m) in dirs.items()],
    )
    meta = DirMeta(node.uid, node.gid, stat.S_IFDIR | node.mode, tuple(sorted(node.xattrs)))
    tree_bytes, meta_bytes = tree.to_bytes(), meta.to_bytes()
    tree_sum, meta_sum = tree.checksum(), meta.checksum()
    await store.write_object(tree_sum, ObjectType.DIRTREE, tree_bytes)
    await store.write_object(meta_sum, ObjectType.DIRMETA, meta_bytes)
    return tree_sum, meta_sum


async def write_tree(
    store: ObjectStore, tree: Dir, *, threads: int | None = None
) -> tuple[str, str]:
    """Write every object of ``tree``; return (root dirtree, root dirmeta) checksums."""
    limiter = anyio.CapacityLimiter(threads or os.cpu_count() or 2)
    return await _write_dir(store, tree, limiter)


async def commit_tree(
    manager: RepositoryManager,
    name: str,
    tree: Node,
    *,
    ref: str | None = None,
    subject: str = "",
    body: str = "",
    metadata: dict[str, Variant] | None = None,
    parent: str | None = AUTO,
    timestamp: int | None = None,
    bind_ref: bool = True,
) -> tuple[str, VersionRecord | None]:
    """Commit ``tree`` into a new version of repository ``name`` (created if needed).

    Like ``ostree commit -b REF`` (or ``--orphan`` without a ref): the parent is the
    ref's current head unless given (``None`` for a root commit), ``ostree.ref-binding``
    is added after the metadata unless ``bind_ref`` is false (``--no-bindings``), and
    the ref moves to the new commit. Returns the commit
    checksum and the new version (None if the repository already had exactly this).
    """
    if not isinstance(tree, Dir):
        raise TypeError("the root of a commit must be a Dir")
    await manager.create_repository(name, exist_ok=True)
    root_tree, root_meta = await write_tree(manager.store, tree)
    if parent == AUTO:
        parent = (await manager.repository(name).version()).refs.get(ref) if ref else None
    meta: dict[str, Any] = dict(metadata or {})
    if bind_ref:  # libostree binds even an orphan commit, to no ref: <@as []>
        meta["ostree.ref-binding"] = Variant("as", [ref] if ref else [])
    commit = Commit(
        root_tree=root_tree,
        root_meta=root_meta,
        parent=parent,
        subject=subject,
        body=body,
        timestamp=int(time.time()) if timestamp is None else timestamp,
        metadata=meta,
    )
    data = commit.to_bytes()
    checksum = commit.checksum()
    ingest = Ingest(manager, name)
    await ingest.add_commit(checksum, data)
    if ref:
        ingest.set_ref(ref, checksum)
    record = await ingest.publish({"kind": "commit", "ref": ref, "commit": checksum})
    return checksum, record
