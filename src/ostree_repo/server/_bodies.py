"""Response bodies: bytes in memory, files of a filesystem store, streams of any store.

Every body knows its size before the response starts and is sent in chunks of at most
:data:`~ostree_repo.store.CHUNK_SIZE`, so memory stays bounded whatever the file size.
Blob bodies are checked against their SHA-256 while they are sent: on a mismatch the
response is aborted before its last byte, so a client never receives a complete, wrong
file (it sees a truncated response and retries or fails).
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import AsyncIterator
from typing import Any

import anyio.to_thread

from ostree_repo.errors import ChecksumMismatchError
from ostree_repo.store import CHUNK_SIZE, ByteStream

__all__ = ["Body", "BytesBody", "FileBody", "StreamBody"]

_O_CLOEXEC = getattr(os, "O_CLOEXEC", 0)


class Body:
    """A response body of ``size`` bytes; ``chunks(start, end)`` yields an inclusive range."""

    size: int = 0
    #: a filesystem path the server may send itself (ASGI ``http.response.pathsend``)
    path: str | None = None

    #: whether :meth:`read_all` may be used (small enough to hold and read at once)
    small: bool = False

    def chunks(self, start: int, end: int) -> AsyncIterator[bytes]:
        """The bytes ``start``..``end`` (inclusive), in bounded chunks."""
        raise NotImplementedError

    def read_all(self) -> bytes:
        """The whole body at once (only when ``small``); checked like :meth:`chunks`."""
        raise NotImplementedError

    async def aclose(self) -> None:
        """Release the file or connection behind the body."""


class BytesBody(Body):
    """Bytes already in memory (generated files: config, refs, indexes, tombstones)."""

    small = True

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.size = len(data)

    def read_all(self) -> bytes:
        """The bytes."""
        return self.data

    async def chunks(self, start: int, end: int) -> AsyncIterator[bytes]:
        """The requested slice, at once."""
        if end >= start:
            yield self.data[start : end + 1]


class _Check:
    """SHA-256 over a whole blob as it is sent."""

    def __init__(self, digest: str | None, size: int, start: int, end: int) -> None:
        whole = start == 0 and end == size - 1
        self.digest = digest if whole else None
        self._hash = hashlib.sha256() if self.digest else None

    def update(self, chunk: bytes) -> None:
        if self._hash is not None:
            self._hash.update(chunk)

    def finish(self) -> None:
        if self._hash is not None and self.digest is not None:
            actual = self._hash.hexdigest()
            if actual != self.digest:
                raise ChecksumMismatchError(self.digest, actual, "blob")


class FileBody(Body):
    """An open file of a filesystem store.

    Files up to ``inline_max`` bytes are read directly on the event loop (one ``pread``,
    as nginx without AIO does): cheaper than a thread hop for the small objects that make
    up most of a pull. Larger files are read in worker threads, 1 MiB at a time, or left
    to the server through ``path`` (``http.response.pathsend``) when it supports that and
    nothing needs checking. ``digest``: verify a blob's SHA-256 while sending it whole.
    """

    def __init__(self, path: str, *, inline_max: int, digest: str | None = None) -> None:
        self._fd = os.open(path, os.O_RDONLY | _O_CLOEXEC)
        try:
            self.size = os.fstat(self._fd).st_size
        except BaseException:
            os.close(self._fd)
            raise
        self._inline = self.small = self.size <= inline_max
        self.digest = digest
        self.path = path if digest is None else None

    @classmethod
    def open(cls, path: str, *, inline_max: int, digest: str | None = None) -> FileBody:
        """Open ``path``; FileNotFoundError if it does not exist."""
        try:
            return cls(path, inline_max=inline_max, digest=digest)
        except (IsADirectoryError, NotADirectoryError):
            raise FileNotFoundError(path) from None

    def _read(self, offset: int, length: int) -> bytes:
        data = os.pread(self._fd, length, offset)
        if len(data) < length:  # pread may return less; loop until done or EOF
            parts = [data]
            got = len(data)
            while got < length:
                more = os.pread(self._fd, length - got, offset + got)
                if not more:
                    break
                parts.append(more)
                got += len(more)
            data = b"".join(parts)
        return data

    def read_all(self) -> bytes:
        """Read a small file in one go (on the event loop), checking a blob's digest."""
        data = self._read(0, self.size)
        if len(data) != self.size:
            raise OSError(f"file shrank while being sent ({len(data)} of {self.size} bytes)")
        if self.digest is not None:
            actual = hashlib.sha256(data).hexdigest()
            if actual != self.digest:
                raise ChecksumMismatchError(self.digest, actual, "blob")
        return data

    async def chunks(self, start: int, end: int) -> AsyncIterator[bytes]:
        """Read the range: inline for small files, else in worker threads."""
        check = _Check(self.digest, self.size, start, end)
        offset = start
        while offset <= end:
            length = min(CHUNK_SIZE, end + 1 - offset)
            if self._inline:
                chunk = self._read(offset, length)
            else:
                chunk = await anyio.to_thread.run_sync(self._read, offset, length)
            if not chunk:
                raise OSError(f"file shrank while being sent ({offset} of {end + 1} bytes)")
            offset += len(chunk)
            check.update(chunk)
            if offset > end:
                check.finish()
            yield chunk

    async def aclose(self) -> None:
        """Close the file."""
        if self._fd >= 0:
            fd, self._fd = self._fd, -1
            os.close(fd)

    def __del__(self) -> None:
        if getattr(self, "_fd", -1) >= 0:
            os.close(self._fd)


class StreamBody(Body):
    """A stream from any store (S3, memory, ...); a range start is reached by skipping."""

    def __init__(self, stream: ByteStream, manager: Any, digest: str | None = None) -> None:
        self._stream = stream
        self._manager = manager  # the store's context manager, exited by aclose
        self.size = stream.size
        self.digest = digest

    async def chunks(self, start: int, end: int) -> AsyncIterator[bytes]:
        """Pass the stream's chunks through, cut to the range."""
        check = _Check(self.digest, self.size, start, end)
        position = 0
        async for chunk in self._stream:
            chunk_end = position + len(chunk)
            if chunk_end > start and position <= end:
                piece = chunk[max(start - position, 0) : end + 1 - position]
                check.update(piece)
                if position + len(chunk) > end:
                    check.finish()
                yield piece
            position = chunk_end
            if position > end:
                return
        if position <= end:
            raise OSError(f"stream ended early ({position} of {end + 1} bytes)")

    async def aclose(self) -> None:
        """Close the stream."""
        manager, self._manager = self._manager, None
        if manager is not None:
            await manager.__aexit__(None, None, None)
