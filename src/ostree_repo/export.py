"""Export a repository version as a standalone archive-mode OSTree repository.

The result (``config``, ``refs/``, ``objects/``, ``deltas/``, ``delta-indexes/``,
``summary`` and ``summary.sig``) passes ``ostree fsck`` and can be served by any static
web server. It is written into a temporary sibling directory and renamed into place at
the end, so the destination appears complete or not at all.
"""

from __future__ import annotations

import os
import shutil
from collections import defaultdict
from pathlib import Path

import anyio
import anyio.to_thread

from ostree_repo._tasks import task_group
from ostree_repo.errors import OstreeRepoError
from ostree_repo.objects import DeltaIndex, ObjectType, Tombstone, delta_index_path, delta_path
from ostree_repo.objects.names import object_path, parse_delta_name
from ostree_repo.repository.blobs import read_blob
from ostree_repo.repository.closure import split_key
from ostree_repo.repository.manager import RepositoryManager
from ostree_repo.repository.records import VersionRecord

__all__ = ["export_version"]

_SKELETON = ("objects", "refs/heads", "refs/mirrors", "refs/remotes", "tmp", "extensions", "state")


def _write(root: Path, rel: str, data: bytes) -> None:
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)


async def export_version(
    manager: RepositoryManager,
    name: str,
    destination: str | os.PathLike[str],
    *,
    version: int | None = None,
    concurrency: int = 16,
) -> VersionRecord:
    """Write version ``version`` (default: latest) of ``name`` to ``destination``, which
    must not exist yet. Returns the exported version."""
    dest = Path(destination)
    if dest.exists():
        raise OstreeRepoError(f"{dest} already exists")
    record = await manager.repository(name).version(version)
    objects = await manager.version_objects(record)
    work = dest.with_name(f".{dest.name}.partial-{os.getpid()}")
    await anyio.to_thread.run_sync(lambda: shutil.rmtree(work, ignore_errors=True))
    for sub in _SKELETON:
        (work / sub).mkdir(parents=True, exist_ok=True)
    try:
        _write(work, "config", record.config.to_ini())
        limiter = anyio.CapacityLimiter(concurrency)

        async def copy_object(objtype: ObjectType, checksum: str) -> None:
            target = work / object_path(checksum, objtype)
            async with limiter:
                await anyio.to_thread.run_sync(
                    lambda: target.parent.mkdir(parents=True, exist_ok=True)
                )
                async with (
                    manager.store.open_object(checksum, objtype) as stream,
                    await anyio.open_file(target, "wb") as out,
                ):
                    async for chunk in stream:
                        await out.write(chunk)

        async with task_group() as tg:
            for key in objects:
                tg.start_soon(copy_object, *split_key(key))

        for checksum, info in record.commits.items():
            if info.commitmeta:
                data = await read_blob(manager.store, info.commitmeta)
                _write(work, object_path(checksum, ObjectType.COMMITMETA), data)
        for checksum in record.tombstones:
            path = object_path(checksum, ObjectType.TOMBSTONE_COMMIT)
            _write(work, path, Tombstone(checksum).to_bytes())
        for ref, commit in record.refs.items():
            _write(work, f"refs/heads/{ref}", f"{commit}\n".encode())
        for cid, refs in record.collection_refs.items():
            for ref, commit in refs.items():
                _write(work, f"refs/mirrors/{cid}/{ref}", f"{commit}\n".encode())

        indexes: dict[str, dict[str, str]] = defaultdict(dict)
        for delta_name, delta in record.deltas.items():
            start, end = parse_delta_name(delta_name)
            data = await read_blob(manager.store, delta.superblock)
            _write(work, delta_path(start, end, "superblock"), data)
            for index, part in enumerate(delta.parts):
                if part is not None:  # None: carried inline by the superblock
                    data = await read_blob(manager.store, part)
                    _write(work, delta_path(start, end, str(index)), data)
            indexes[end][delta_name] = delta.superblock
        for target, deltas in indexes.items():
            _write(work, delta_index_path(target), DeltaIndex(deltas).to_bytes())

        if record.summary:
            _write(work, "summary", await read_blob(manager.store, record.summary))
        if record.summary_sig:
            _write(work, "summary.sig", await read_blob(manager.store, record.summary_sig))
        await anyio.to_thread.run_sync(work.rename, dest)
    except BaseException:
        await anyio.to_thread.run_sync(lambda: shutil.rmtree(work, ignore_errors=True))
        raise
    return record
