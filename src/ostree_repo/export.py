"""Export a repository version as a standalone archive-mode OSTree repository.

Two forms, holding the same tree (the one the server serves for that version):

* a **directory** (:func:`export_version`): ``config``, ``refs/``, ``objects/``,
  ``deltas/``, ``delta-indexes/``, ``summary`` and ``summary.sig``. It passes
  ``ostree fsck`` and can be served by any static web server. It is written into a
  temporary sibling directory and renamed into place at the end, so the destination
  appears complete or not at all. From a filesystem store, objects and blobs are
  hard-linked where the filesystem allows (falling back to copies): the export then
  costs no space, and must be treated as read-only (as ``ostree`` treats objects);
* a **tarball** (:func:`export_tar`): the same files under one top-level directory
  (``repo/`` by default, as osbuild's ``org.osbuild.ostree`` inputs expect), written as
  a stream in one pass (no temporary tree), to ``FILE.partial-PID`` renamed at the end.
  Members are sorted, owned by 0:0 with modes 0644/0755 and dated at the version's
  creation, so exporting the same version twice gives the same bytes.

Ref aliases are written as libostree writes them: a relative symlink at
``refs/heads/ALIAS`` (``ostree refs --alias`` lists it; a tarball holds a symlink member).
Blobs (detached metadata, deltas, summaries) are checked against their SHA-256 when they
are copied; objects are copied as stored (``ostree fsck`` checks them).
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import heapq
import os
import shutil
import tarfile
from collections import defaultdict
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path

import anyio
import anyio.to_thread
import attrs

from ostree_repo._tasks import for_each
from ostree_repo.errors import ChecksumMismatchError, OstreeRepoError
from ostree_repo.objects import DeltaIndex, ObjectType, Tombstone, delta_index_path, delta_path
from ostree_repo.objects.names import object_path, parse_delta_name
from ostree_repo.repository._aliases import alias_link
from ostree_repo.repository.blobs import stream_blob
from ostree_repo.repository.closure import split_key
from ostree_repo.repository.layout import blob_path
from ostree_repo.repository.manager import RepositoryManager
from ostree_repo.repository.records import VersionRecord
from ostree_repo.store import ObjectStore

__all__ = ["export_tar", "export_version"]

_SKELETON = ("objects", "refs/heads", "refs/mirrors", "refs/remotes", "tmp", "extensions", "state")
_LINK_FAILURES = (errno.EXDEV, errno.EPERM, errno.EMLINK, errno.ENOTSUP, errno.EACCES)
#: Objects up to this size are read ahead concurrently when writing a tarball.
_PREFETCH_MAX = 1 << 20
#: Bytes read ahead at most (the tarball writer's memory bound).
_PREFETCH_WINDOW = 16 << 20


@attrs.frozen
class _File:
    """One file of the exported tree: in memory, an object, a blob, or a symlink."""

    path: str
    data: bytes | None = None
    link: str = ""  # a symlink's target (ref aliases)
    objtype: ObjectType | None = None
    checksum: str = ""
    blob: str = ""
    size: int = -1  # stored size when known beforehand (objects)


def _tree(record: VersionRecord, objects: dict[bytes, int]) -> Iterator[_File]:
    """Every file of a version's repository tree, in path order. The objects' entries are
    made as the iteration reaches them: the version's object list is not copied."""
    files = [_File("config", data=record.config.to_ini())]
    for checksum, info in record.commits.items():
        if info.commitmeta:
            files.append(_File(object_path(checksum, ObjectType.COMMITMETA), blob=info.commitmeta))
    for checksum in record.tombstones:
        path = object_path(checksum, ObjectType.TOMBSTONE_COMMIT)
        files.append(_File(path, data=Tombstone(checksum).to_bytes()))
    for ref, commit in record.refs.items():
        files.append(_File(f"refs/heads/{ref}", data=f"{commit}\n".encode()))
    for alias, target in record.aliases.items():
        files.append(_File(f"refs/heads/{alias}", link=alias_link(alias, target)))
    for cid, refs in record.collection_refs.items():
        for ref, commit in refs.items():
            files.append(_File(f"refs/mirrors/{cid}/{ref}", data=f"{commit}\n".encode()))
    indexes: dict[str, dict[str, str]] = defaultdict(dict)
    for name, delta in record.deltas.items():
        start, end = parse_delta_name(name)
        files.append(_File(delta_path(start, end, "superblock"), blob=delta.superblock))
        for index, part in enumerate(delta.parts):
            if part is not None:  # None: carried inline by the superblock
                files.append(_File(delta_path(start, end, str(index)), blob=part))
        indexes[end][name] = delta.superblock
    for target, deltas in indexes.items():
        files.append(_File(delta_index_path(target), data=DeltaIndex(deltas).to_bytes()))
    if record.summary:
        files.append(_File("summary", blob=record.summary))
    if record.summary_sig:
        files.append(_File("summary.sig", blob=record.summary_sig))
    files.sort(key=lambda f: f.path)

    def of_type(code: int) -> Iterator[_File]:
        # keys of one type sort as their checksums do, which is their paths' order
        for key in sorted(k for k in objects if k[0] == code):
            objtype, checksum = split_key(key)
            path = object_path(checksum, objtype)
            yield _File(path, objtype=objtype, checksum=checksum, size=objects[key])

    codes = sorted({key[0] for key in objects})
    return heapq.merge(files, *map(of_type, codes), key=lambda f: f.path)


def _store_file(store: ObjectStore, item: _File) -> str | None:
    """Where the store keeps ``item`` as a local file (None: not a store file, or not on
    this machine)."""
    if item.objtype is not None:
        return store.local_object_path(item.checksum, item.objtype)
    if item.blob:
        return store.local_named_path(blob_path(item.blob))
    return None


class _Linker:
    """Hard-links files a store keeps locally, until the filesystem says it cannot."""

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled
        self.linked = 0

    def link(self, source: str, target: Path) -> bool:
        if not self.enabled:
            return False
        try:
            os.link(source, target)
        except OSError as e:
            if e.errno in _LINK_FAILURES:
                self.enabled = False  # another device, or links not allowed: copy from now on
                return False
            raise
        self.linked += 1
        return True


async def export_version(
    manager: RepositoryManager,
    name: str,
    destination: str | os.PathLike[str],
    *,
    version: int | None = None,
    concurrency: int = 16,
    link: bool = True,
) -> VersionRecord:
    """Write version ``version`` (default: latest) of ``name`` to ``destination``, which
    must not exist yet. Returns the exported version.

    ``link``: hard-link objects and blobs from a filesystem store when possible (on
    another filesystem, or where links are refused, files are copied).
    """
    dest = Path(destination)
    if dest.exists():
        raise OstreeRepoError(f"{dest} already exists")
    record = await manager.repository(name).version(version)
    objects = await manager.version_objects(record)
    store = manager.store
    work = dest.with_name(f".{dest.name}.partial-{os.getpid()}")
    await anyio.to_thread.run_sync(lambda: shutil.rmtree(work, ignore_errors=True))
    linker = _Linker(link)

    def prepare(item: _File) -> Path:
        target = work / item.path
        target.parent.mkdir(parents=True, exist_ok=True)
        return target

    async def write(item: _File) -> None:
        if item.link or item.data is not None:  # refs (up to 4084 bytes long), config ...
            await anyio.to_thread.run_sync(_write_small, work, item)
            return
        target = await anyio.to_thread.run_sync(prepare, item)
        source = _store_file(store, item)
        if source is not None and await anyio.to_thread.run_sync(linker.link, source, target):
            return
        chunks = (
            stream_blob(store, item.blob)
            if item.blob
            else _object_chunks(store, item.objtype, item.checksum)
        )
        async with await anyio.open_file(target, "wb") as out:
            async for chunk in chunks:
                await out.write(chunk)

    try:
        for sub in _SKELETON:
            (work / sub).mkdir(parents=True, exist_ok=True)
        await for_each(_tree(record, objects), write, limit=concurrency)
        await anyio.to_thread.run_sync(work.rename, dest)
    except BaseException:
        await anyio.to_thread.run_sync(lambda: shutil.rmtree(work, ignore_errors=True))
        raise
    return record


def _write_small(root: Path, item: _File) -> None:
    """Write a small file or a symlink below ``root`` through directory descriptors, as
    libostree does: ``refs/heads/NAME`` may be longer than PATH_MAX once made absolute."""
    *parents, name = item.path.split("/")
    fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY)
    try:
        for part in parents:
            with contextlib.suppress(FileExistsError):
                os.mkdir(part, 0o755, dir_fd=fd)
            child = os.open(part, os.O_RDONLY | os.O_DIRECTORY, dir_fd=fd)
            os.close(fd)
            fd = child
        if item.link:
            os.symlink(item.link, name, dir_fd=fd)
            return
        assert item.data is not None
        out = os.open(name, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644, dir_fd=fd)
        with open(out, "wb") as f:
            f.write(item.data)
    finally:
        os.close(fd)


async def _object_chunks(
    store: ObjectStore, objtype: ObjectType | None, checksum: str
) -> AsyncIterator[bytes]:
    assert objtype is not None
    async with store.open_object(checksum, objtype) as stream:
        async for chunk in stream:
            yield chunk


# -- tarballs ------------------------------------------------------------------------------


def _header(path: str, size: int, mtime: int, *, directory: bool = False, link: str = "") -> bytes:
    info = tarfile.TarInfo(path)
    info.size = 0 if directory or link else size
    info.mtime = mtime
    info.mode = 0o777 if link else 0o755 if directory else 0o644
    info.type = tarfile.SYMTYPE if link else tarfile.DIRTYPE if directory else tarfile.REGTYPE
    info.linkname = link
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    return info.tobuf(tarfile.PAX_FORMAT, "utf-8", "surrogateescape")


def _padding(size: int) -> bytes:
    return tarfile.NUL * (-size % tarfile.BLOCKSIZE)


def _directories(record: VersionRecord, objects: dict[bytes, int]) -> list[str]:
    """Every directory of the tree ``_tree`` makes, sorted."""
    dirs = set(_SKELETON)
    dirs.update(f"objects/{key[1]:02x}" for key in objects)
    for item in _tree(record, {}):
        parent = item.path.rpartition("/")[0]
        while parent:
            dirs.add(parent)
            parent = parent.rpartition("/")[0]
    for sub in _SKELETON:
        parent = sub.rpartition("/")[0]
        if parent:
            dirs.add(parent)
    return sorted(dirs)


async def export_tar(
    manager: RepositoryManager,
    name: str,
    destination: str | os.PathLike[str],
    *,
    version: int | None = None,
    prefix: str = "repo",
    concurrency: int = 16,
) -> VersionRecord:
    """Write version ``version`` (default: latest) of ``name`` as an uncompressed tarball
    of the repository tree, under the top-level directory ``prefix`` (``""``: at the top).
    ``destination`` must not exist yet. Returns the exported version.

    Written in one streaming pass with bounded memory: small objects are read ahead
    (``concurrency`` at a time, at most 16 MiB), large files are streamed through.
    """
    dest = Path(destination)
    if dest.exists():
        raise OstreeRepoError(f"{dest} already exists")
    prefix = prefix.strip("/")
    if any(part in ("", ".", "..") for part in prefix.split("/")) and prefix:
        raise OstreeRepoError(f"invalid tarball prefix {prefix!r}")
    record = await manager.repository(name).version(version)
    objects = await manager.version_objects(record)
    store = manager.store
    files = _tree(record, objects)
    mtime = int(record.created)
    lead = f"{prefix}/" if prefix else ""
    work = dest.with_name(f".{dest.name}.partial-{os.getpid()}")
    ready: dict[str, bytes] = {}

    async def read_ahead(item: _File) -> None:
        assert item.objtype is not None
        ready[item.path] = await store.read_object(item.checksum, item.objtype)

    try:
        async with await anyio.open_file(work, "wb") as out:
            written = 0

            async def emit(data: bytes) -> None:
                nonlocal written
                await out.write(data)
                written += len(data)

            if prefix:
                await emit(_header(prefix, 0, mtime, directory=True))
            for directory in _directories(record, objects):
                await emit(_header(lead + directory, 0, mtime, directory=True))
            while True:
                batch: list[_File] = []
                budget = 0
                for item in files:
                    batch.append(item)
                    if item.objtype is not None and 0 <= item.size <= _PREFETCH_MAX:
                        budget += item.size
                    if budget >= _PREFETCH_WINDOW or len(batch) >= 1024:
                        break
                if not batch:
                    break
                small = (i for i in batch if i.objtype is not None and 0 <= i.size <= _PREFETCH_MAX)
                await for_each(small, read_ahead, limit=concurrency)
                for item in batch:
                    await _emit_file(
                        emit, store, item, ready.pop(item.path, None), lead=lead, mtime=mtime
                    )
            end = tarfile.NUL * (2 * tarfile.BLOCKSIZE)
            await emit(end + tarfile.NUL * (-(written + len(end)) % tarfile.RECORDSIZE))
        await anyio.to_thread.run_sync(work.rename, dest)
    except BaseException:
        with anyio.CancelScope(shield=True):
            await anyio.to_thread.run_sync(lambda: work.unlink(missing_ok=True))
        raise
    return record


async def _emit_file(
    emit: Callable[[bytes], Awaitable[None]],
    store: ObjectStore,
    item: _File,
    ready: bytes | None,
    *,
    lead: str,
    mtime: int,
) -> None:
    if item.link:
        await emit(_header(lead + item.path, 0, mtime, link=item.link))
        return
    data = item.data if item.data is not None else ready
    if data is not None:
        await emit(_header(lead + item.path, len(data), mtime) + data + _padding(len(data)))
        return
    if item.blob:
        context = store.open_named(blob_path(item.blob))
    else:
        assert item.objtype is not None
        context = store.open_object(item.checksum, item.objtype)
    hasher = hashlib.sha256() if item.blob else None
    async with context as stream:
        await emit(_header(lead + item.path, stream.size, mtime))
        copied = 0
        async for chunk in stream:
            if hasher is not None:
                hasher.update(chunk)
            copied += len(chunk)
            await emit(chunk)
    if copied != stream.size:
        raise OstreeRepoError(f"{item.path}: read {copied} bytes, expected {stream.size}")
    if hasher is not None and hasher.hexdigest() != item.blob:
        raise ChecksumMismatchError(item.blob, hasher.hexdigest(), "blob")
    await emit(_padding(copied))
