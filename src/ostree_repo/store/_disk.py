"""The filesystem store's synchronous on-disk layer, shared with its writer processes.

:class:`Disk` knows how files reach their place in a store directory: a fresh temporary
file in ``tmp/``, then a ``link`` (create-if-absent) or ``rename`` (everything else) into
place, with the syncs that make each step durable in order. It is plain blocking code
with no event loop and no store around it: :class:`~.filesystem.FilesystemStore` calls
it from worker threads, and each writer process (:mod:`._fswriters`) runs one of its own
over the same directory.

Staging (:meth:`Disk.stage`, :meth:`Disk.publish`, :meth:`Disk.discard`) is the
libostree transaction: many objects written to temporary files, then made durable and
visible together with two filesystem syncs instead of two ``fsync`` calls per object.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import fcntl
import functools
import itertools
import os
import secrets
from collections.abc import Callable, Iterator, Sequence
from typing import TypeAlias

from ostree_repo.errors import ConflictError
from ostree_repo.store._base import PutMode
from ostree_repo.store._chunks import Verifier
from ostree_repo.store._fsio import O_CLOEXEC, TempFile, sha256_file, thread_lock, write_all

__all__ = ["TEMP_PREFIX", "Disk", "StageEntry", "Staged", "is_named"]

TEMP_PREFIX = ".store-"
"""How the names of our temporary files in ``tmp/`` start."""

_CREATE_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | O_CLOEXEC

StageEntry: TypeAlias = tuple[str, bytes | memoryview, Verifier, PutMode]
"""One object to stage: store path, bytes (a view in the writer processes), verifier
(``update`` then ``finish`` before the file is made), mode (IDEMPOTENT or OVERWRITE)."""

Staged: TypeAlias = tuple[str, str]
"""A file written but not yet in place: (temporary file, store path)."""


class Disk:
    """Blocking file operations on the store directory ``root``.

    ``fsync``: make files and names durable before an operation returns (off: atomic
    but not durable on power loss). Temporary file names are unique per process, per
    instance and per write, so any number of instances (threads, writer processes) can
    share one directory.
    """

    def __init__(self, root: str, fsync: bool) -> None:
        self.root = root
        self.fsync = fsync
        self.tmp = os.path.join(root, "tmp")
        self._lock_path = os.path.join(self.tmp, "store.lock")
        self._temp_base = os.path.join(self.tmp, f"{TEMP_PREFIX}{secrets.token_hex(6)}-")
        self._temp_counter = itertools.count()

    # -- paths and directories -------------------------------------------------------------

    def abs(self, rel: str) -> str:
        """The absolute path of store path ``rel``."""
        return os.path.join(self.root, rel)

    def temp_path(self) -> str:
        """A fresh temporary file name in ``tmp/`` (unique per process, instance, write)."""
        return f"{self._temp_base}{os.getpid()}-{next(self._temp_counter)}"

    def sync_dir(self, path: str) -> None:
        """``fsync`` a directory (its entries), if durability is on."""
        if self.fsync:
            fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | O_CLOEXEC)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)

    def makedirs(self, path: str, *, durable: bool = True) -> None:
        """``mkdir -p`` that also makes the new directory entries durable (unless the
        caller syncs the whole filesystem later: ``durable=False``)."""
        missing: list[str] = []
        while not os.path.isdir(path):
            missing.append(path)
            path = os.path.dirname(path)
        for directory in reversed(missing):
            with contextlib.suppress(FileExistsError):
                os.mkdir(directory)
            if durable:
                self.sync_dir(os.path.dirname(directory))

    @property
    def per_file_sync(self) -> bool:
        """Whether durability needs an fsync per file and directory (no ``syncfs``)."""
        return self.fsync and _syncfs_function() is None

    def syncfs(self) -> None:
        """Flush the whole filesystem the store is on (only where ``syncfs`` exists)."""
        syncfs = _syncfs_function()
        assert syncfs is not None
        fd = os.open(self.tmp, os.O_RDONLY | os.O_DIRECTORY | O_CLOEXEC)
        try:
            if syncfs(fd) != 0:
                err = ctypes.get_errno()
                raise OSError(err, f"syncfs: {os.strerror(err)}")
        finally:
            os.close(fd)

    @contextlib.contextmanager
    def locked(self) -> Iterator[None]:
        """Hold the store-wide lock, excluding other threads and processes."""
        with thread_lock(os.path.realpath(self._lock_path)):
            fd = os.open(self._lock_path, os.O_RDWR | os.O_CREAT | O_CLOEXEC, 0o644)
            try:
                fcntl.lockf(fd, fcntl.LOCK_EX)
                os.utime(fd)  # keep it fresh so that ostree's tmp/ cleanup leaves it alone
                yield
            finally:
                os.close(fd)  # releases the lock

    # -- one file at a time ----------------------------------------------------------------

    def commit(
        self, temp: str, rel: str, mode: PutMode, *, locked: bool, expect: str | None = None
    ) -> None:
        """Move a sealed temporary file to ``rel``, creating parent directories on demand,
        and make the new name durable."""
        final = self.abs(rel)
        parent = os.path.dirname(final)
        try:
            self._place(temp, final, rel, mode, locked=locked, expect=expect)
        except FileNotFoundError:
            if not os.path.exists(temp):
                raise
            self.makedirs(parent)  # (may have been made by a concurrent writer meanwhile)
            self._place(temp, final, rel, mode, locked=locked, expect=expect)
        self.sync_dir(parent)

    def _place(
        self, temp: str, final: str, rel: str, mode: PutMode, *, locked: bool, expect: str | None
    ) -> None:
        """CREATE links, which fails atomically if the name exists and never replaces a
        file. The rest renames: IDEMPOTENT objects (an object racing in meanwhile has the
        same bytes), OVERWRITE and compare-and-swap (``expect``), under the store lock when
        ``locked``."""
        if mode is PutMode.CREATE:
            try:
                os.link(temp, final)
            except FileExistsError:
                os.unlink(temp)
                raise ConflictError(f"{rel} already exists in {self.root}") from None
            os.unlink(temp)
        elif locked:
            with self.locked():
                if expect is not None:
                    try:
                        current = sha256_file(final)
                    except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
                        current = None
                    if current != expect:
                        raise ConflictError(f"{rel} changed since version {expect[:16]}...")
                os.rename(temp, final)
        else:
            os.rename(temp, final)

    def write(
        self,
        rel: str,
        data: bytes,
        verifier: Verifier | None,
        mode: PutMode,
        *,
        want_token: bool,
        expect: str | None = None,
    ) -> str | None:
        """Write one file durably and atomically; its token (``""`` unless
        ``want_token``), or None when IDEMPOTENT found it there already."""
        if mode is PutMode.IDEMPOTENT and os.path.exists(self.abs(rel)):
            return None
        temp = TempFile(self.temp_path(), verifier, want_token)
        try:
            temp.write(data)
            token = temp.seal(self.fsync)
            self.commit(temp.path, rel, mode, locked=is_named(rel), expect=expect)
        except BaseException:
            temp.discard()
            raise
        return token

    def seal_and_commit(self, temp: TempFile, rel: str, mode: PutMode) -> str:
        """Finish a streamed file and move it into place; its token."""
        token = temp.seal(self.fsync)
        self.commit(temp.path, rel, mode, locked=is_named(rel))
        return token

    def delete(self, rel: str) -> None:
        """Remove the file at ``rel`` if there is one, durably."""
        final = self.abs(rel)
        with self.locked() if is_named(rel) else contextlib.nullcontext():
            try:
                os.unlink(final)
            except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
                return
        self.sync_dir(os.path.dirname(final))

    # -- staging: many objects, durable and visible together -------------------------------

    def stage(self, entries: Sequence[StageEntry]) -> tuple[list[bool], list[Staged]]:
        """Verify and write a batch to temporary files; which were new, and the files.

        Nothing is visible yet: :meth:`publish` moves the files into place. Objects the
        store has already are skipped; each other one is verified whole before its file
        is made (this is the hot loop of imports and syncs: no per-object helper
        objects). If one is refused, the batch's files are removed and its error raised.
        """
        written = [False] * len(entries)
        staged: list[Staged] = []
        fsync_each = self.per_file_sync
        root = self.root + os.sep
        exists = os.path.exists
        try:
            for i, (rel, data, verifier, mode) in enumerate(entries):
                if mode is PutMode.IDEMPOTENT and exists(root + rel):
                    continue
                verifier.update(data)
                verifier.finish()
                temp = self.temp_path()
                fd = os.open(temp, _CREATE_FLAGS, 0o644)
                staged.append((temp, rel))
                try:
                    write_all(fd, data)
                    if fsync_each:
                        os.fsync(fd)
                finally:
                    os.close(fd)
                written[i] = True
        except BaseException:
            self.discard(staged)
            raise
        return written, staged

    def publish(self, staged: list[Staged]) -> None:
        """Make staged files durable, move them into place, make the names durable.

        The order is what makes a flush safe, as in a libostree transaction:

        1. ``syncfs``: every staged file's bytes are on disk before any of them gets its
           name. Without it, a power loss after the renames could leave an object under
           its final name with missing or zeroed contents (delayed allocation), which
           nothing would ever rewrite, since a present object is skipped.
        2. ``rename`` each file into place, creating ``objects/XX/`` on demand. Each
           rename is atomic, so a reader sees a whole, verified object or none.
        3. ``syncfs`` again: the new names are on disk before the flush returns, so a
           version record written after it never names an object a power loss could
           take away.

        A crash (``kill -9``, power loss) part way leaves some objects in place (whole
        and verified, merely unreferenced until a version names them: ``reclaim``
        removes them) and the rest as temporary files in ``tmp/`` (removed by the
        next open once a day old). ``staged`` is emptied as files are placed; if a
        rename fails, the files not placed yet are removed. Without ``syncfs``, each
        file is fsynced when staged (:meth:`stage`) and each touched directory here.
        """
        if not staged:
            return
        per_file_sync = self.per_file_sync
        try:
            if self.fsync and not per_file_sync:
                self.syncfs()  # 1. data before names
            parents: set[str] = set()
            while staged:  # 2. names
                temp, rel = staged[-1]
                final = self.abs(rel)
                try:
                    os.rename(temp, final)
                except FileNotFoundError:
                    self.makedirs(os.path.dirname(final), durable=per_file_sync)
                    os.rename(temp, final)
                staged.pop()
                parents.add(os.path.dirname(final))
        except BaseException:
            self.discard(staged)
            raise
        if per_file_sync:
            for parent in parents:
                self.sync_dir(parent)
        elif self.fsync:
            self.syncfs()  # 3. names before returning

    def discard(self, staged: list[Staged]) -> None:
        """Remove staged files (after a failure); empties ``staged``."""
        for temp, _ in staged:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(temp)
        staged.clear()

    def put_many(self, entries: Sequence[StageEntry]) -> list[bool]:
        """Stage and publish a batch at once (``write_objects`` outside a staging)."""
        written, staged = self.stage(entries)
        self.publish(staged)
        return written


def is_named(rel: str) -> bool:
    """Whether store path ``rel`` is a named file (not an object): its writes are locked."""
    return not rel.startswith("objects/")


@functools.cache
def _syncfs_function() -> Callable[[int], int] | None:
    """libc's ``syncfs`` (Linux), or None where there is none."""
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or None, use_errno=True)
        function = libc.syncfs
    except (OSError, AttributeError):
        return None
    function.argtypes = [ctypes.c_int]
    function.restype = ctypes.c_int
    result: Callable[[int], int] = function
    return result
