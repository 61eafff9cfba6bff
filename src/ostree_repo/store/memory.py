"""An in-memory store, for tests: ``memory://`` (private) or ``memory://NAME`` (shared).

Stores opened with the same name in one process share their contents, so code under test
and the test itself can open the same store by URL. Nothing is shared across processes.
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections.abc import AsyncIterator

from ostree_repo.errors import ConflictError, NotFoundError
from ostree_repo.store._base import Entry, ObjectStore, PutMode
from ostree_repo.store._chunks import (
    CHUNK_SIZE,
    ByteStream,
    Source,
    Verifier,
    coalesce,
    verified,
    verify_buffer_async,
)
from ostree_repo.store._keys import RESERVED_TOP_LEVEL

__all__ = ["MemoryStore"]

_LIST_BATCH = 1000


class _Contents:
    """The files of one memory store: path -> (bytes, token), guarded by a lock."""

    def __init__(self) -> None:
        self.files: dict[str, tuple[bytes, str, float]] = {}  # data, token, mtime
        self.lock = threading.Lock()


_registry: dict[str, _Contents] = {}
_registry_lock = threading.Lock()


def _token(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


class MemoryStore(ObjectStore):
    """A store kept in a dict. ``name=None`` makes a private store; a name shares one."""

    def __init__(self, name: str | None = None) -> None:
        if name is None:
            self._contents = _Contents()
            self.url = "memory://"
        else:
            with _registry_lock:
                self._contents = _registry.setdefault(name, _Contents())
            self.url = f"memory://{name}"

    @staticmethod
    def discard(name: str) -> None:
        """Forget the shared store ``name`` (open stores keep their contents)."""
        with _registry_lock:
            _registry.pop(name, None)

    def _get(self, path: str) -> tuple[bytes, str, float]:
        try:
            return self._contents.files[path]
        except KeyError:
            raise NotFoundError(f"{path} not found in {self.url}") from None

    async def _exists(self, path: str) -> bool:
        return path in self._contents.files

    async def _size(self, path: str) -> int:
        return len(self._get(path)[0])

    async def _read(self, path: str, *, want_token: bool) -> tuple[bytes, str]:
        data, token, _ = self._get(path)
        return data, token

    async def _open(self, path: str) -> ByteStream:
        data = self._get(path)[0]

        async def chunks() -> AsyncIterator[bytes]:
            for start in range(0, len(data), CHUNK_SIZE):
                yield data[start : start + CHUNK_SIZE]

        return ByteStream(len(data), chunks())

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
            if mode is PutMode.IDEMPOTENT and path in self._contents.files:
                return None
            if verifier is not None:
                await verify_buffer_async(verifier, data)
        else:
            source = coalesce(data)
            if verifier is not None:
                source = verified(source, verifier)
            data = b"".join([chunk async for chunk in source])
        token = _token(data)
        with self._contents.lock:
            existing = self._contents.files.get(path)
            if existing is not None and mode is PutMode.IDEMPOTENT:
                return None
            if existing is not None and mode is PutMode.CREATE:
                raise ConflictError(f"{path} already exists in {self.url}")
            self._contents.files[path] = (data, token, time.time())
        return token

    async def _replace(self, path: str, data: bytes, token: str) -> str:
        new_token = _token(data)
        with self._contents.lock:
            existing = self._contents.files.get(path)
            if existing is None or existing[1] != token:
                raise ConflictError(f"{path} changed since version {token!r} in {self.url}")
            self._contents.files[path] = (data, new_token, time.time())
        return new_token

    async def _delete(self, path: str) -> None:
        with self._contents.lock:
            self._contents.files.pop(path, None)

    async def _list(self, prefix: str, *, info: bool) -> AsyncIterator[list[Entry]]:
        with self._contents.lock:
            entries = [(p, len(f[0]), f[2]) for p, f in self._contents.files.items()]
        if prefix:
            start = prefix + "/"
            entries = [e for e in entries if e[0].startswith(start)]
        else:
            entries = [e for e in entries if e[0].split("/", 1)[0] not in RESERVED_TOP_LEVEL]
        for i in range(0, len(entries), _LIST_BATCH):
            yield entries[i : i + _LIST_BATCH]
