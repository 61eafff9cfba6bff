"""Writing a tree's objects to a store and committing it, as ``ostree commit`` would.

For the same tree and inputs (owners, modes, xattrs, subject, body, metadata, parent,
timestamp, ref) the commit checksum is the one ``ostree commit`` gives.

How the work is spread: the tree's files and symlinks are cut into batches (at most
:data:`BATCH_OBJECTS` objects, about :data:`BATCH_BYTES` of contents). Each batch is read
and hashed in a worker thread; the store is asked once which of its objects it already
holds (so an unchanged file is never compressed again); the missing ones are compressed in
a worker thread and written with one :meth:`~ostree_repo.store.ObjectStore.write_objects`
call. One batch per core, plus one, is in flight at a time: zlib and hashlib release the
GIL, so compression keeps every core busy while the store writes, and memory stays
bounded. Files larger than :data:`IN_MEMORY_LIMIT` are streamed (hashed, then compressed
while written), never held whole. Directories are serialised last, bottom-up, and written
in batches too. Every object still passes the store's verification.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import os
import stat
import struct
import time
import zlib
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

import anyio
import anyio.to_thread
import attrs

from ostree_repo._tasks import for_each
from ostree_repo.builder.tree import Dir, File, Node, Symlink, Xattrs
from ostree_repo.errors import NotFoundError
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
from ostree_repo.objects.content import COMPRESSION_LEVEL
from ostree_repo.repository.closure import Closure, Key, object_key, save_closure
from ostree_repo.repository.ingest import Ingest
from ostree_repo.repository.manager import RepositoryManager
from ostree_repo.repository.records import VersionRecord
from ostree_repo.store import CHUNK_SIZE, ObjectStore, Staging

__all__ = ["AUTO", "commit_tree", "write_tree"]

#: Files up to this size are compressed in memory; larger ones are streamed twice.
IN_MEMORY_LIMIT = 16 << 20
#: ``parent=AUTO``: the commit's parent is the ref's current head, as in ``ostree commit -b``.
AUTO = "auto"
#: A batch of files and symlinks holds at most this many objects ...
BATCH_OBJECTS = 256
#: ... and about this many bytes of file contents.
BATCH_BYTES = 4 << 20
#: Directory objects (dirtree and dirmeta) are written this many at a time.
DIR_BATCH = 512

_Content = File | Symlink
_Fields = tuple[int, int, int, str, Xattrs]


def _fields(node: _Content) -> _Fields:
    """(uid, gid, mode with file type, symlink target, sorted xattrs) of a node."""
    xattrs = tuple(sorted(node.xattrs))  # libostree canonicalises xattrs: sorted by name
    if isinstance(node, Symlink):
        return node.uid, node.gid, stat.S_IFLNK | 0o777, node.target, xattrs
    return node.uid, node.gid, stat.S_IFREG | node.mode, "", xattrs


@functools.lru_cache(maxsize=1024)
def _prefixes(fields: _Fields) -> tuple[bytes, bytes, bytes]:
    """(canonical content prefix, ``.filez`` bytes before and after the size) of a header.

    The file size is the first, fixed-size member of the ``.filez`` header (a big-endian
    ``t`` after the 8-byte length prefix), so the bytes around it are the same for every
    file with this header. Trees have few distinct owner/mode/xattr combinations: each is
    serialised once.
    """
    header = FileHeader(*fields)
    filez = header.filez_prefix(0)
    return header.content_prefix(), filez[:8], filez[16:]


def _filez_head(fields: _Fields, size: int) -> bytes:
    _, before, after = _prefixes(fields)
    return before + struct.pack(">Q", size) + after


def _file_chunks(node: File) -> Iterator[bytes]:
    if node.data is not None:
        yield node.data
        return
    assert node.source is not None
    with open(node.source, "rb") as f:
        while chunk := f.read(CHUNK_SIZE):
            yield chunk


def _read(node: _Content) -> bytes:
    if isinstance(node, Symlink):
        return b""
    if node.data is not None:
        return node.data
    assert node.source is not None
    with open(node.source, "rb") as f:
        return f.read()


class _Hashed:
    """A small content object, read and hashed, to be compressed if the store lacks it."""

    __slots__ = ("checksum", "data", "fields")

    def __init__(self, fields: _Fields, data: bytes) -> None:
        self.fields = fields
        self.data = data
        sha = hashlib.sha256(_prefixes(fields)[0])
        sha.update(data)
        self.checksum = sha.hexdigest()

    def filez(self) -> bytes:
        """The ``.filez`` bytes (header, then the contents as raw DEFLATE at level 6)."""
        head = _filez_head(self.fields, len(self.data))
        if stat.S_ISLNK(self.fields[2]):
            return head
        return head + zlib.compress(self.data, COMPRESSION_LEVEL, wbits=-15)


def _hash_batch(nodes: list[_Content]) -> list[_Hashed]:
    """Read and hash a batch of small files and symlinks (in a worker thread)."""
    return [_Hashed(_fields(node), _read(node)) for node in nodes]


def _compress_batch(items: list[_Hashed]) -> list[tuple[str, ObjectType, bytes]]:
    """The ``.filez`` objects of a batch (in a worker thread)."""
    return [(item.checksum, ObjectType.FILE, item.filez()) for item in items]


def _checksum_of(node: File) -> str:
    hasher = ContentHasher(FileHeader(*_fields(node)))
    for chunk in _file_chunks(node):
        hasher.update(chunk)
    return hasher.hexdigest()


def _plan(contents: list[_Content]) -> tuple[list[list[_Content]], list[File]]:
    """Cut the contents into batches of small objects, and the large files (in a thread)."""
    batches: list[list[_Content]] = []
    large: list[File] = []
    batch: list[_Content] = []
    size = 0
    for node in contents:
        length = node.size() if isinstance(node, File) else 0
        if isinstance(node, File) and length > IN_MEMORY_LIMIT:
            large.append(node)
            continue
        batch.append(node)
        size += length
        if len(batch) >= BATCH_OBJECTS or size >= BATCH_BYTES:
            batches.append(batch)
            batch, size = [], 0
    if batch:
        batches.append(batch)
    return batches, large


def _walk(tree: Dir) -> tuple[list[Dir], list[_Content]]:
    """Every directory (parents before children) and every distinct file and symlink."""
    dirs: list[Dir] = []
    contents: list[_Content] = []
    seen: set[int] = set()
    stack = [tree]
    while stack:
        node = stack.pop()
        dirs.append(node)
        for child in node.entries.values():
            if isinstance(child, Dir):
                stack.append(child)
            elif id(child) not in seen:  # a tar's hardlinks share one node
                seen.add(id(child))
                contents.append(child)
    return dirs, contents


class _Writer:
    """Writes the content objects of one tree.

    ``checksums`` maps ``id(node)`` to the node's object name; ``sizes`` holds the stored
    size of each object written, ``unsized`` the objects the store already had.
    """

    def __init__(self, store: ObjectStore, staging: Staging, threads: int) -> None:
        self.store = store
        self.staging = staging
        self.limiter = anyio.CapacityLimiter(threads)
        self.checksums: dict[int, str] = {}
        self.sizes: dict[str, int] = {}
        self.unsized: set[str] = set()
        self._scheduled: set[str] = set()  # objects this tree already writes (duplicates)

    async def small(self, nodes: list[_Content]) -> None:
        hashed = await anyio.to_thread.run_sync(_hash_batch, nodes, limiter=self.limiter)
        fresh: list[_Hashed] = []
        for node, item in zip(nodes, hashed, strict=True):
            self.checksums[id(node)] = item.checksum
            if item.checksum not in self._scheduled:
                self._scheduled.add(item.checksum)
                fresh.append(item)
        if not fresh:
            return
        present = await self.store.has_objects((i.checksum, ObjectType.FILE) for i in fresh)
        missing = []
        for item, there in zip(fresh, present, strict=True):
            if there:
                self.unsized.add(item.checksum)
            else:
                missing.append(item)
        if not missing:
            return
        objects = await anyio.to_thread.run_sync(_compress_batch, missing, limiter=self.limiter)
        await self.staging.write_objects(objects)
        self.sizes.update((checksum, len(data)) for checksum, _, data in objects)

    async def large(self, node: File) -> None:
        checksum = await anyio.to_thread.run_sync(_checksum_of, node, limiter=self.limiter)
        self.checksums[id(node)] = checksum
        if checksum in self._scheduled:
            return
        self._scheduled.add(checksum)
        if await self.store.has_object(checksum, ObjectType.FILE):
            self.unsized.add(checksum)
            return
        size = 0

        def counted() -> Iterator[bytes]:
            nonlocal size
            for chunk in encode_filez(FileHeader(*_fields(node)), node.size(), _file_chunks(node)):
                size += len(chunk)
                yield chunk

        await self.staging.write_object(checksum, ObjectType.FILE, counted())
        self.sizes[checksum] = size


@attrs.frozen
class _Written:
    """What writing a tree gave: its root, and what its closure needs."""

    root: tuple[str, str]
    sizes: dict[Key, int]  # stored sizes of the objects the tree reaches, when known
    unsized: set[str]  # content objects the store already had (sizes unknown)


async def write_tree(
    store: ObjectStore, tree: Dir, *, threads: int | None = None
) -> tuple[str, str]:
    """Write every object of ``tree``; return (root dirtree, root dirmeta) checksums.

    ``threads``: worker threads hashing and compressing (default: one per core).
    """
    return (await _write(store, tree, threads)).root


async def _write(store: ObjectStore, tree: Dir, threads: int | None) -> _Written:
    # one staging for the whole tree: on the filesystem store, two filesystem syncs per
    # few thousand objects instead of two per batch
    async with store.staging() as staging:
        return await _write_staged(store, staging, tree, threads)


async def _write_staged(
    store: ObjectStore, staging: Staging, tree: Dir, threads: int | None
) -> _Written:
    threads = threads or os.cpu_count() or 2
    dirs, contents = _walk(tree)
    batches, large = await anyio.to_thread.run_sync(_plan, contents)
    writer = _Writer(store, staging, threads)
    jobs: Iterator[Callable[[], Awaitable[None]]] = iter(
        [*(functools.partial(writer.large, n) for n in large)]
        + [functools.partial(writer.small, b) for b in batches]
    )

    await for_each(jobs, lambda job: job(), limit=threads + 1)

    # directories, children first: each dirtree names its subdirectories' objects
    names: dict[int, tuple[str, str]] = {}
    pending: list[tuple[str, ObjectType, bytes]] = []
    sizes = {object_key(ObjectType.FILE, c): n for c, n in writer.sizes.items()}
    for node in reversed(dirs):
        files, subdirs = [], []
        for entry, child in node.entries.items():
            if isinstance(child, Dir):
                subdirs.append(TreeDir(entry, *names[id(child)]))
            else:
                files.append(TreeFile(entry, writer.checksums[id(child)]))
        tree_obj = DirTree.build(files, subdirs)
        meta = DirMeta(node.uid, node.gid, stat.S_IFDIR | node.mode, tuple(sorted(node.xattrs)))
        tree_bytes, meta_bytes = tree_obj.to_bytes(), meta.to_bytes()
        tree_sum = hashlib.sha256(tree_bytes).hexdigest()
        meta_sum = hashlib.sha256(meta_bytes).hexdigest()
        names[id(node)] = (tree_sum, meta_sum)
        for checksum, objtype, data in (
            (tree_sum, ObjectType.DIRTREE, tree_bytes),
            (meta_sum, ObjectType.DIRMETA, meta_bytes),
        ):
            key = object_key(objtype, checksum)
            if key not in sizes:
                sizes[key] = len(data)
                pending.append((checksum, objtype, data))
        if len(pending) >= DIR_BATCH:
            await staging.write_objects(pending)
            pending = []
    if pending:
        await staging.write_objects(pending)
    return _Written(names[id(tree)], sizes, writer.unsized - writer.sizes.keys())


async def _closure(
    manager: RepositoryManager, commit: str, data: bytes, parent: str | None, written: _Written
) -> Closure:
    """The closure of a commit just built, from what writing its tree learnt.

    Sizes of objects the store already had come from the parent's closure, else from the
    store (one lookup each): no dirtree is read back, as computing the closure would.
    """
    sizes = dict(written.sizes)
    sizes[object_key(ObjectType.COMMIT, commit)] = len(data)
    known: dict[Key, int] = {}
    if parent is not None and written.unsized:
        with contextlib.suppress(NotFoundError):
            known = (await manager.closure(parent)).sizes

    async def size_of(checksum: str) -> None:
        key = object_key(ObjectType.FILE, checksum)
        size = known.get(key)
        if size is None:
            size = await manager.store.object_size(checksum, ObjectType.FILE)
        sizes[key] = size

    await for_each(written.unsized, size_of, limit=32)
    return Closure(commit, sizes)


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
    written = await _write(manager.store, tree, None)
    root_tree, root_meta = written.root
    if parent == AUTO:
        parent = (await manager.repository(name).version()).resolve_ref(ref) if ref else None
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
    await ingest.add_commit(checksum, data, admit=False)  # made here, not brought in
    # saved before publishing (as an import does), it protects the objects from reclaim
    await save_closure(manager.store, await _closure(manager, checksum, data, parent, written))
    if ref:
        ingest.set_ref(ref, checksum)
    record = await ingest.publish({"kind": "commit", "ref": ref, "commit": checksum})
    return checksum, record
