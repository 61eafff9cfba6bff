"""Blocking file helpers for the filesystem store (they run in worker threads)."""

from __future__ import annotations

import contextlib
import errno
import hashlib
import io
import os
import threading

from ostree_repo.store._chunks import Verifier

__all__ = [
    "O_CLOEXEC",
    "TempFile",
    "open_file",
    "read_file",
    "sha256_file",
    "size_of",
    "thread_lock",
    "write_all",
]

O_CLOEXEC = getattr(os, "O_CLOEXEC", 0)
"""``os.O_CLOEXEC`` where it exists: no descriptor leaks into child processes."""

_thread_locks: dict[str, threading.Lock] = {}
_thread_locks_guard = threading.Lock()


def thread_lock(path: str) -> threading.Lock:
    """The process-wide lock paired with the ``fcntl`` lock on file ``path``.

    POSIX record locks belong to the process, so threads (and store instances) of one
    process must also exclude each other, and the lock file must not be closed by one of
    them while another holds the lock.
    """
    with _thread_locks_guard:
        return _thread_locks.setdefault(path, threading.Lock())


def write_all(fd: int, data: bytes | memoryview) -> None:
    """``os.write`` until every byte is written."""
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def sha256_file(path: str) -> str:
    """Hex SHA-256 of a file's contents (the filesystem store's version token)."""
    with open(path, "rb", buffering=0) as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


class TempFile:
    """A file being written in ``tmp/``: hashed and verified as the chunks arrive."""

    def __init__(self, path: str, verifier: Verifier | None, want_token: bool) -> None:
        self.path = path
        self._verifier = verifier
        self._hash = hashlib.sha256() if want_token else None
        self._fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | O_CLOEXEC, 0o644)

    def write(self, chunk: bytes | memoryview) -> None:
        """Verify, hash and write the next chunk."""
        if self._verifier is not None:
            self._verifier.update(chunk)
        if self._hash is not None:
            self._hash.update(chunk)
        write_all(self._fd, chunk)

    def seal(self, fsync: bool) -> str:
        """Finish verification, flush to disk and close; return the token (or "")."""
        if self._verifier is not None:
            self._verifier.finish()
        if fsync:
            os.fsync(self._fd)
        fd, self._fd = self._fd, -1
        os.close(fd)
        return self._hash.hexdigest() if self._hash is not None else ""

    def discard(self) -> None:
        """Close and remove the file (after a failure); idempotent."""
        if self._fd >= 0:
            fd, self._fd = self._fd, -1
            os.close(fd)
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.path)


def size_of(path: str) -> int:
    """A file's size; FileNotFoundError also when a parent is not a directory."""
    try:
        return os.stat(path).st_size
    except NotADirectoryError:
        raise FileNotFoundError(errno.ENOENT, "not found", path) from None


def read_file(path: str, want_token: bool) -> tuple[bytes, str]:
    """A whole file and, if asked, its token; FileNotFoundError for directories too."""
    try:
        with open(path, "rb", buffering=0) as f:
            data = f.readall()
    except (IsADirectoryError, NotADirectoryError):
        raise FileNotFoundError(errno.ENOENT, "not found", path) from None
    return data, hashlib.sha256(data).hexdigest() if want_token else ""


def open_file(path: str) -> tuple[io.FileIO, int]:
    """An unbuffered reader over a file, and its size."""
    try:
        f = open(path, "rb", buffering=0)  # noqa: SIM115 - closed by the ByteStream
    except (IsADirectoryError, NotADirectoryError):
        raise FileNotFoundError(errno.ENOENT, "not found", path) from None
    return f, os.fstat(f.fileno()).st_size
