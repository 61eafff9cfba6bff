"""Commit archives of one commit, as image builders make them (no libostree).

:func:`write_commit_archive` writes what osbuild-composer's "commit" images are: a
tarball with ``compose.json`` at the top and an archive-mode repository under ``repo/``
(``config``, ``refs/heads/REF`` and the commit's objects). With ``update=True`` the
objects the commit's parent already has are left out: an **update archive**, which
:func:`~ostree_repo.importing.import_archive` applies on top of a repository holding the
parent (see ``docs/importing.md``).

The tarball is deterministic: members sorted, owned by 0:0 with modes 0644/0755 and dated
at the commit's timestamp. Its compression follows the file name (``.tar``, ``.tar.gz`` or
``.tgz``, ``.tar.xz``, ``.tar.bz2``, ``.tar.zst``). Objects are copied as stored, one at
a time (each is held in memory while it is written).
"""

from __future__ import annotations

import bz2
import contextlib
import gzip
import io
import json
import lzma
import os
import tarfile
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any, cast

import anyio
import anyio.from_thread
import anyio.to_thread
import attrs

from ostree_repo.errors import NotFoundError, OstreeRepoError
from ostree_repo.objects import Commit, ObjectType
from ostree_repo.objects.names import object_path, parse_object_path
from ostree_repo.repository.blobs import read_blob
from ostree_repo.repository.closure import split_key
from ostree_repo.repository.manager import RepositoryManager

__all__ = ["CommitArchive", "write_commit_archive"]

_SKELETON = ("objects", "refs/heads", "refs/mirrors", "refs/remotes", "tmp", "extensions", "state")
_COMPRESSIONS = {
    ".tar": "",
    ".tar.gz": "gz",
    ".tgz": "gz",
    ".tar.xz": "xz",
    ".tar.bz2": "bz2",
    ".tar.zst": "zst",
}


@attrs.frozen
class CommitArchive:
    """A commit archive written by :func:`write_commit_archive`."""

    path: Path
    commit: str
    ref: str
    parent: str | None
    objects: int
    """Objects the archive holds (all of the commit's, or only those its parent lacks)."""
    update: bool


def _compression(path: Path) -> str:
    name = path.name
    for suffix, kind in sorted(_COMPRESSIONS.items(), key=lambda kv: -len(kv[0])):
        if name.endswith(suffix):
            return kind
    raise OstreeRepoError(f"{path}: name it .tar, .tar.gz, .tgz, .tar.xz, .tar.bz2 or .tar.zst")


@contextmanager
def _open_tar(path: Path, compression: str, mtime: int) -> Iterator[tarfile.TarFile]:
    """A streaming tar writer into ``path``, compressed (deterministically) as asked."""
    with contextlib.ExitStack() as stack:
        raw = stack.enter_context(open(path, "wb"))
        writer: IO[bytes] = raw
        if compression == "gz":
            gz = gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=mtime)
            writer = cast(IO[bytes], stack.enter_context(gz))
        elif compression == "xz":
            writer = cast(IO[bytes], stack.enter_context(lzma.LZMAFile(raw, "wb")))
        elif compression == "bz2":
            writer = cast(IO[bytes], stack.enter_context(bz2.BZ2File(raw, "wb")))
        elif compression == "zst":
            import zstandard

            zst = zstandard.ZstdCompressor().stream_writer(raw, closefd=False)
            writer = cast(IO[bytes], stack.enter_context(zst))
        with tarfile.open(fileobj=writer, mode="w|", format=tarfile.PAX_FORMAT) as tar:
            yield tar


def _member(name: str, mtime: int, size: int = 0, *, directory: bool = False) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.mtime = mtime
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    if directory:
        info.type = tarfile.DIRTYPE
        info.mode = 0o755
    else:
        info.size = size
        info.mode = 0o644
    return info


async def write_commit_archive(
    manager: RepositoryManager,
    name: str,
    destination: str | os.PathLike[str],
    *,
    ref: str | None = None,
    version: int | None = None,
    update: bool = False,
    compose: Mapping[str, Any] | None = None,
) -> CommitArchive:
    """Write the commit ``ref`` points at in version ``version`` (default: latest) of
    repository ``name`` as a commit archive at ``destination`` (which must not exist).

    ``ref`` may be left out when the version has exactly one ref. ``update``: leave out
    the objects of the commit's parent (which must be in the store). ``compose``: the
    document written as ``compose.json`` (default ``{"ref": REF, "ostree-commit": C}``).
    """
    dest = Path(destination)
    if dest.exists():
        raise OstreeRepoError(f"{dest} already exists")
    compression = _compression(dest)
    record = await manager.repository(name).version(version)
    if ref is None:
        if len(record.refs) != 1:
            raise OstreeRepoError(
                f"repository {name} version {record.number} has {len(record.refs)} refs: "
                "name the one to archive"
            )
        ref = next(iter(record.refs))
    commit = record.refs.get(ref)
    if commit is None:
        raise NotFoundError(f"ref {ref} is not in repository {name} version {record.number}")
    store = manager.store
    data = await store.read_object(commit, ObjectType.COMMIT)
    parent = Commit.from_bytes(data).parent
    keys = set((await manager.closure(commit)).sizes)
    if update:
        if parent is None:
            raise OstreeRepoError(f"commit {commit} has no parent: it cannot be an update")
        keys -= set((await manager.closure(parent)).sizes)
    objects = sorted(object_path(checksum, objtype) for objtype, checksum in map(split_key, keys))
    small: dict[str, bytes] = {
        "config": record.config.to_ini(),
        f"refs/heads/{ref}": f"{commit}\n".encode(),
    }
    info = record.commits.get(commit)
    if info is not None and info.commitmeta:
        small[object_path(commit, ObjectType.COMMITMETA)] = await read_blob(store, info.commitmeta)
    doc = dict(compose) if compose is not None else {"ref": ref, "ostree-commit": commit}
    mtime = Commit.from_bytes(data).timestamp
    files = sorted([*small, *objects])
    dirs = set(_SKELETON) | {"refs"}
    for path in files:
        parent_dir = path.rpartition("/")[0]
        while parent_dir:
            dirs.add(parent_dir)
            parent_dir = parent_dir.rpartition("/")[0]

    async def read(path: str) -> bytes:
        if path in small:
            return small[path]
        checksum, objtype = parse_object_path(path)
        return await store.read_object(checksum, objtype)

    def write(work: Path) -> None:
        with _open_tar(work, compression, mtime) as tar:
            body = json.dumps(doc, indent=2, sort_keys=True).encode() + b"\n"
            tar.addfile(_member("compose.json", mtime, len(body)), io.BytesIO(body))
            tar.addfile(_member("repo", mtime, directory=True))
            for directory in sorted(dirs):
                tar.addfile(_member(f"repo/{directory}", mtime, directory=True))
            for path in files:
                content = anyio.from_thread.run(read, path)
                tar.addfile(_member(f"repo/{path}", mtime, len(content)), io.BytesIO(content))

    work = dest.with_name(f".{dest.name}.partial-{os.getpid()}")
    try:
        await anyio.to_thread.run_sync(write, work)
        await anyio.to_thread.run_sync(work.rename, dest)
    except BaseException:
        with anyio.CancelScope(shield=True):
            await anyio.to_thread.run_sync(lambda: work.unlink(missing_ok=True))
        raise
    return CommitArchive(dest, commit, ref, parent, len(objects), update)
