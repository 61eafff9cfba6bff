"""A store in a local (or NFS) directory that is an OSTree archive repository.

Layout: ``config`` (``mode=archive-z2``), objects at ``objects/XX/REST.EXT`` exactly as
``ostree`` writes them, and named files at their own paths in the same tree, so
``refs/heads/main`` written through the store is the real ref, and the directory can be
served over HTTP or checked with ``ostree fsck`` as it is. ``tmp/`` holds temporary files
and ``tmp/store.lock``.

Atomicity: every write goes to a fresh file in ``tmp/``, is fsynced, then renamed into
place (``link`` for create-if-absent, which fails atomically if the name exists), and the
directory is fsynced. Unconditional named writes, deletes and compare-and-swap hold an
exclusive ``fcntl`` lock on ``tmp/store.lock`` (plus an in-process lock, since POSIX record
locks are per process) around the final rename, and compare-and-swap re-reads the file
under that lock. Version tokens are the SHA-256 of the file's bytes.

Batches (``write_objects``) write every object to its temporary file, make them all
durable with one ``syncfs``, rename them into place and ``syncfs`` again: the order of a
per-object write (data durable before the name appears, names durable before the call
returns) at two filesystem syncs per batch, as libostree's transactions do. Where
``syncfs`` is unavailable each file and each touched directory is fsynced instead.

The blocking file work is :class:`._disk.Disk`'s; this class runs it in worker threads
(``anyio.to_thread``), one thread hop per small operation, per batch, and per 1 MiB chunk
of a stream. A staging that writes many objects hands its batches to writer processes
(:mod:`._fswriters`), which verify and write them on the other cores with a
:class:`._disk.Disk` of their own.
"""

from __future__ import annotations

import configparser
import contextlib
import functools
import itertools
import os
import threading
import time
import urllib.parse
from collections.abc import AsyncIterable, AsyncIterator, Callable, Iterable, Sequence
from typing import TypeVar

import anyio
import anyio.to_thread

from ostree_repo.errors import ConflictError, InvalidObjectError, NotFoundError, StoreError
from ostree_repo.objects.objtype import ObjectType
from ostree_repo.store._base import (
    Entry,
    ObjectStore,
    PutEntry,
    PutMode,
    Staging,
    _new_verifier,
    _put_entries,
)
from ostree_repo.store._chunks import (
    CHUNK_SIZE,
    Buffer,
    ByteStream,
    Chunks,
    Source,
    Verifier,
    coalesce,
)
from ostree_repo.store._disk import TEMP_PREFIX, Disk, Staged
from ostree_repo.store._fsio import TempFile, open_file, read_file, size_of
from ostree_repo.store._fswriters import ObjectRefusedError, WriterPool
from ostree_repo.store._keys import RESERVED_TOP_LEVEL, check_named_path, object_path

__all__ = ["FilesystemStore"]

_T = TypeVar("_T")

CONFIG = "[core]\nrepo_version=1\nmode=archive-z2\n"
"""The ``config`` a new store gets: what ``ostree init --mode=archive`` writes."""

_SKELETON = ("objects", "tmp", "extensions", "state", "refs/heads", "refs/mirrors", "refs/remotes")
_TEMP_EXPIRY = 24 * 3600  # seconds; like ostree's core.tmp-expiry-secs default


class FilesystemStore(ObjectStore):
    """An object store in directory ``root``, which is (or becomes) an archive repo.

    ``create``: initialise ``root`` as an archive repository if it has no ``config``.
    ``fsync``: flush files and directories to disk before a write returns (the default;
    turn off only for throwaway data).
    ``workers``: writer processes a big staging uses to verify and write objects on
    several cores (see :mod:`._fswriters`); None (the default) means one per CPU up to
    4, none on a single CPU; 0 writes in this process only. They start once a staging
    has written ``workers_after`` objects in this process, so small jobs never pay for
    them (starting them takes about 0.1 s).
    """

    def __init__(
        self,
        root: str | os.PathLike[str],
        *,
        create: bool = True,
        fsync: bool = True,
        workers: int | None = None,
        workers_after: int = 2048,
    ) -> None:
        self.root = os.path.abspath(os.fspath(root))
        self.url = "file://" + urllib.parse.quote(self.root)
        self._root_slash = self.root.rstrip(os.sep) + os.sep
        self._create = create
        self._fsync = fsync
        self._disk = Disk(self.root, fsync)
        cpus = os.cpu_count() or 1
        self._workers = (min(cpus, 4) if cpus > 1 else 0) if workers is None else workers
        self._workers_after = workers_after
        self._pool: WriterPool | None = None
        self._pool_lock = threading.Lock()
        self._pool_failed = False
        self._pool_starting: threading.Thread | None = None
        self._staging_ids = itertools.count(1)

    # -- setup -------------------------------------------------------------------------

    async def _open_store(self) -> None:
        await self._run(self._init_sync)

    async def _close_store(self) -> None:
        starting = self._pool_starting
        if starting is not None:
            await anyio.to_thread.run_sync(starting.join)
        with self._pool_lock:
            pool, self._pool = self._pool, None
        if pool is not None:
            await anyio.to_thread.run_sync(pool.close)

    def _writer_pool(self, *, wait: bool) -> WriterPool | None:
        """The writer processes, or None: none configured, they cannot start, or (unless
        ``wait``) they are still starting, in a background thread, meanwhile."""
        with self._pool_lock:
            if self._pool is not None and self._pool.pid != os.getpid():
                self._pool = None  # inherited through fork: its pipes are the parent's
            if self._pool is not None and self._pool.broken:
                self._pool.close()
                self._pool = None
            if self._pool is not None or self._workers <= 0 or self._pool_failed:
                return self._pool
            starting = self._pool_starting
            if starting is None:
                starting = threading.Thread(target=self._start_pool, daemon=True)
                self._pool_starting = starting
                starting.start()
        if wait:
            starting.join()
        return self._pool

    def _start_pool(self) -> None:
        pool = WriterPool(
            self.root, fsync=self._fsync, size=self._workers, flush_every=Staging.FLUSH_EVERY
        )
        started = pool.start()
        with self._pool_lock:
            self._pool_starting = None
            if not started:
                self._pool_failed = True
            elif self._state == "closed":
                pool.close()
            else:
                self._pool = pool

    def _init_sync(self) -> None:
        disk = self._disk
        config = os.path.join(self.root, "config")
        if not os.path.exists(config):
            if not self._create:
                raise StoreError(f"{self.root} is not an OSTree repository (no config)")
            for sub in _SKELETON:
                disk.makedirs(os.path.join(self.root, sub))
            temp = disk.temp_path()
            with open(temp, "x") as f:
                f.write(CONFIG)
            # if another process initialised the repository meanwhile, keep its config
            with contextlib.suppress(ConflictError):
                disk.commit(temp, "config", PutMode.CREATE, locked=False)
        self._check_config(config)
        os.makedirs(disk.tmp, exist_ok=True)
        self._clean_tmp()

    def _check_config(self, config: str) -> None:
        parser = configparser.ConfigParser(interpolation=None, strict=False)
        try:
            parser.read(config, encoding="utf-8")
        except configparser.Error as e:
            raise StoreError(f"{config}: unreadable repository config: {e}") from None
        version = parser.get("core", "repo_version", fallback=None)
        mode = parser.get("core", "mode", fallback="bare")
        if version != "1" or mode not in ("archive", "archive-z2"):
            raise StoreError(
                f"{self.root}: need an archive repository with repo_version=1, found "
                f"repo_version={version} mode={mode}"
            )

    def _clean_tmp(self) -> None:
        """Remove our temporary files left by writers that died more than a day ago."""
        cutoff = time.time() - _TEMP_EXPIRY
        with os.scandir(self._disk.tmp) as entries:
            for entry in entries:
                if entry.name.startswith(TEMP_PREFIX) and entry.is_file(follow_symlinks=False):
                    with contextlib.suppress(FileNotFoundError):
                        if entry.stat(follow_symlinks=False).st_mtime < cutoff:
                            os.unlink(entry.path)

    # -- plumbing ----------------------------------------------------------------------

    async def _run(self, func: Callable[..., _T], *args: object, missing: str = "") -> _T:
        """Call ``func`` in a worker thread, turning OSError into StoreError.

        With ``missing`` (a store path), FileNotFoundError becomes NotFoundError for it.
        """
        try:
            return await anyio.to_thread.run_sync(func, *args)
        except FileNotFoundError as e:
            if missing:
                raise NotFoundError(f"{missing} not found in {self.root}") from None
            raise StoreError(f"{self.root}: {e}") from None
        except OSError as e:
            raise StoreError(f"{self.root}: {e}") from None

    def _abs(self, rel: str) -> str:
        return self._root_slash + rel  # (os.path.join, for the relative paths a store has)

    def _exists_many_sync(self, paths: list[str]) -> list[bool]:
        return [os.path.isfile(self._abs(path)) for path in paths]

    # -- files on this machine ---------------------------------------------------------

    def local_object_path(self, checksum: str, objtype: ObjectType) -> str:
        """The object's file in the store directory (see :meth:`ObjectStore.local_object_path`)."""
        return self._abs(object_path(checksum, objtype))

    def local_named_path(self, path: str) -> str:
        """The named file in the store directory (see :meth:`ObjectStore.local_named_path`)."""
        return self._abs(check_named_path(path))

    # -- primitives --------------------------------------------------------------------

    async def _exists(self, path: str) -> bool:
        return await self._run(os.path.isfile, self._abs(path))

    def _new_staging(self) -> Staging:
        return _FilesystemStaging(self)

    async def _exists_many(self, paths: Sequence[str]) -> list[bool]:
        return await self._run(self._exists_many_sync, list(paths))

    async def _put_many(self, entries: Sequence[PutEntry]) -> list[bool]:
        return await self._run(self._disk.put_many, list(entries))

    async def _size(self, path: str) -> int:
        return await self._run(size_of, self._abs(path), missing=path)

    async def _read(self, path: str, *, want_token: bool) -> tuple[bytes, str]:
        return await self._run(read_file, self._abs(path), want_token, missing=path)

    async def _open(self, path: str) -> ByteStream:
        f, size = await self._run(open_file, self._abs(path), missing=path)

        async def chunks() -> AsyncIterator[bytes]:
            while data := await self._run(f.read, CHUNK_SIZE):
                yield data

        async def close() -> None:
            await self._run(f.close)

        return ByteStream(size, chunks(), close)

    async def _put(
        self,
        path: str,
        data: Source,
        verifier: Verifier | None,
        mode: PutMode,
        *,
        want_token: bool,
    ) -> str | None:
        if isinstance(data, bytes):
            write = functools.partial(self._disk.write, want_token=want_token)
            return await self._run(write, path, data, verifier, mode)
        seal = functools.partial(self._disk.seal_and_commit, rel=path, mode=mode)
        return await self._write_stream(data, verifier, want_token, seal)

    async def _write_stream(
        self,
        data: Iterable[Buffer] | AsyncIterable[Buffer],
        verifier: Verifier | None,
        want_token: bool,
        seal: Callable[[TempFile], _T],
    ) -> _T:
        """Stream ``data`` into a new temporary file, then ``seal(temp)`` in a worker
        thread; the file is removed if anything fails."""
        temp = await self._run(TempFile, self._disk.temp_path(), verifier, want_token)
        try:
            async for chunk in coalesce(data):
                await self._run(temp.write, chunk)
            return await self._run(seal, temp)
        except BaseException:
            with anyio.CancelScope(shield=True):
                await self._run(temp.discard)
            raise

    async def _replace(self, path: str, data: bytes, token: str) -> str:
        write = functools.partial(self._disk.write, want_token=True, expect=token)
        new = await self._run(write, path, data, None, PutMode.OVERWRITE)
        assert new is not None
        return new

    async def _delete(self, path: str) -> None:
        await self._run(self._disk.delete, path)

    async def _list(self, prefix: str, *, info: bool) -> AsyncIterator[list[Entry]]:
        pending = [prefix]
        while pending:
            files, dirs = await self._run(self._scan, pending.pop(), info)
            if files:
                yield files
            pending.extend(dirs)

    def _scan(self, rel_dir: str, info: bool) -> tuple[list[Entry], list[str]]:
        """The files and the subdirectories of one directory, as store paths."""
        files: list[Entry] = []
        dirs: list[str] = []
        lead = rel_dir + "/" if rel_dir else ""
        try:
            with os.scandir(self._abs(rel_dir) if rel_dir else self.root) as entries:
                for entry in entries:
                    if not rel_dir and entry.name in RESERVED_TOP_LEVEL:
                        continue
                    if entry.is_dir(follow_symlinks=False):
                        dirs.append(lead + entry.name)
                    elif not info:
                        files.append((lead + entry.name, -1, 0.0))
                    else:
                        try:
                            st = entry.stat()
                        except FileNotFoundError:  # deleted meanwhile
                            continue
                        files.append((lead + entry.name, st.st_size, st.st_mtime))
        except (FileNotFoundError, NotADirectoryError):
            pass
        return files, dirs


class _FilesystemStaging(Staging):
    """Keeps written objects in ``tmp/`` until a flush (see :meth:`ObjectStore.staging`).

    Batches are written in this process until the store's ``workers_after`` objects,
    then by the store's writer processes (which keep their own staged files
    until this staging flushes or discards them). Streamed objects are always written
    here.
    """

    store: FilesystemStore

    def __init__(self, store: FilesystemStore) -> None:
        super().__init__(store)
        self._staged: list[Staged] = []
        self._lock = threading.Lock()  # _staged is shared by the loop and worker threads
        self._id = next(store._staging_ids)
        self._written = 0
        self._pool: WriterPool | None = None
        """The writer processes, once this staging has handed them a batch."""

    @property
    def blocking(self) -> bool:  # type: ignore[override]
        """True until the writer processes take over (then batches should be handed over
        concurrently rather than written one at a time from one thread)."""
        return self._pool is None

    async def write_objects(self, objects: Iterable[tuple[str, ObjectType, Buffer]]) -> list[bool]:
        batch = list(objects)
        if self._use_pool(len(batch)):
            return await self.store._run(self._pool_write, batch)
        return await self.store._run(self._write_sync, batch)

    def write_objects_blocking(
        self, objects: Iterable[tuple[str, ObjectType, Buffer]]
    ) -> list[bool]:
        batch = list(objects)
        try:
            if self._use_pool(len(batch)):
                return self._pool_write(batch)
            return self._write_sync(batch)
        except OSError as e:
            raise StoreError(f"{self.store.root}: {e}") from None

    def _use_pool(self, count: int) -> bool:
        """Count ``count`` more objects; whether writer processes should write them.

        Past the store's ``workers_after`` objects the writers are started in the
        background, and batches go to them once they are up (with ``workers_after=0``,
        from the first batch on, waiting for them). Once they have written for this
        staging, they write the rest (if one dies, the staging fails: its files are lost
        with it)."""
        with self._lock:
            self._written += count
            if self._pool is not None:
                return True
            after = self.store._workers_after
            if self._written <= after:
                return False
        pool = self.store._writer_pool(wait=after == 0)  # (blocks: never on the loop)
        with self._lock:
            if self._pool is None:
                self._pool = pool
            return self._pool is not None

    def _pool_write(self, batch: list[tuple[str, ObjectType, Buffer]]) -> list[bool]:
        assert self._pool is not None
        for checksum, objtype, _ in batch:
            object_path(checksum, objtype)  # a bad name is refused here, as in-process
        self.store._check_open()
        try:
            return self._pool.write(self._id, batch)
        except ObjectRefusedError as e:
            checksum, objtype, data = batch[e.index]
            from ostree_repo.objects.verify import verify_bytes

            verify_bytes(objtype, checksum, data)  # raises the very error
            raise InvalidObjectError(str(e)) from None

    def _write_sync(self, objects: Iterable[tuple[str, ObjectType, Buffer]]) -> list[bool]:
        entries = _put_entries(objects)
        self.store._check_open()
        if not entries:
            return []
        written, staged = self.store._disk.stage(entries)
        if self._add(staged):
            self._publish_own()
        return written

    def _flush_sync(self) -> None:
        self._publish_own()
        if self._pool is not None:
            self._pool.flush(self._id)

    async def write_object(self, checksum: str, objtype: ObjectType, data: Chunks) -> bool:
        if isinstance(data, bytes | bytearray | memoryview):
            return (await self.write_objects([(checksum, objtype, data)]))[0]
        store = self.store
        path = object_path(checksum, objtype)
        store._check_open()
        if objtype.is_hashed and await store._exists(path):
            return False
        verifier = _new_verifier(objtype, checksum)
        per_file_sync = store._disk.per_file_sync

        def seal(temp: TempFile) -> str:
            temp.seal(per_file_sync)
            return temp.path

        temp_path = await store._write_stream(data, verifier, False, seal)
        if self._add([(temp_path, path)]):
            await self.store._run(self._publish_own)
        return True

    def _add(self, staged: list[Staged]) -> bool:
        """Hold back ``staged``; True when it is time to flush."""
        with self._lock:
            self._staged.extend(staged)
            return len(self._staged) >= self.FLUSH_EVERY

    def _publish_own(self) -> None:
        """Flush the files this process wrote (writer processes flush their own)."""
        with self._lock:
            staged, self._staged = self._staged, []
        self.store._disk.publish(staged)

    async def flush(self) -> None:
        await self.store._run(self._flush_sync)

    async def discard(self) -> None:
        with self._lock:
            staged, self._staged = self._staged, []
        await self.store._run(self._discard_sync, staged)

    def _discard_sync(self, staged: list[Staged]) -> None:
        self.store._disk.discard(staged)
        if self._pool is not None and not self._pool.broken:
            self._pool.discard(self._id)
