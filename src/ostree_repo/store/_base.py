"""The async object-store interface every backend implements.

A store holds two kinds of things:

* **objects**, keyed by ``(checksum, ObjectType)``. Writes are verified through the
  objects layer (``ostree_repo.objects.verify``): bytes that do not match their checksum
  are refused with :class:`~ostree_repo.errors.ChecksumMismatchError` and nothing is
  stored. Writing an object that is already present is a cheap no-op.
* **named files**, keyed by a relative POSIX path (refs, summaries, deltas, version
  records, ...). Besides plain read/write/delete they support the two conditional writes a
  version log needs: :meth:`ObjectStore.create_named` (create-if-absent) and
  :meth:`ObjectStore.replace_named` (compare-and-swap on the token a read returned).

Every write is atomic: readers see the old state or the new one, never a partial file,
even if the writer is killed. Streams use chunks of about 1 MiB, so objects of any size
pass through bounded memory.

Backends subclass :class:`ObjectStore` and implement its path-based primitives (the
``_``-prefixed abstract methods); the public methods validate names, pick the path and wrap
verification around them.
"""

from __future__ import annotations

import abc
import enum
import secrets
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from types import TracebackType
from typing import NamedTuple, Self, TypeAlias, TypeVar

import anyio
import anyio.from_thread

from ostree_repo._tasks import task_group
from ostree_repo.errors import ConflictError, StoreError
from ostree_repo.objects.objtype import ObjectType
from ostree_repo.store._chunks import Buffer, ByteStream, Chunks, Source, Verifier, as_bytes
from ostree_repo.store._keys import (
    check_named_path,
    check_prefix,
    object_path,
    parse_object_path,
)

__all__ = [
    "BATCH_CONCURRENCY",
    "Entry",
    "NamedInfo",
    "ObjectInfo",
    "ObjectStore",
    "PutEntry",
    "PutMode",
    "Staging",
    "Versioned",
]

_T = TypeVar("_T")
_R = TypeVar("_R")

BATCH_CONCURRENCY = 16
"""How many operations of one batch call a backend without a batch primitive runs at once."""


class Versioned(NamedTuple):
    """A named file's bytes and the opaque version token to pass to ``replace_named``."""

    data: bytes
    token: str


class ObjectInfo(NamedTuple):
    """A stored object as a listing sees it."""

    checksum: str
    objtype: ObjectType
    size: int
    """Stored size in bytes (the ``.filez`` for FILE objects)."""
    mtime: float
    """When it was stored, in seconds since the epoch (S3: ``Last-Modified``)."""


class NamedInfo(NamedTuple):
    """A named file as a listing sees it."""

    path: str
    size: int
    mtime: float
    """When it was last written, in seconds since the epoch (S3: ``Last-Modified``)."""


Entry: TypeAlias = tuple[str, int, float]
"""What backends list: (path, size, mtime); size -1 and mtime 0.0 when not asked for."""


class PutMode(enum.Enum):
    """How a backend's ``_put`` treats an existing file at the target path."""

    OVERWRITE = "overwrite"
    """Replace it (atomically)."""
    CREATE = "create"
    """Refuse with ConflictError: atomic create-if-absent across processes and machines."""
    IDEMPOTENT = "idempotent"
    """Keep it and report the write as skipped (content-addressed objects)."""


PutEntry: TypeAlias = "tuple[str, bytes, Verifier, PutMode]"
"""One object of a batch write, as backends receive it: path, bytes, verifier, mode."""


def _new_verifier(objtype: ObjectType, checksum: str) -> Verifier:
    from ostree_repo.objects.verify import new_verifier

    verifier: Verifier = new_verifier(objtype, checksum)
    return verifier


class ObjectStore(abc.ABC):
    """A content-addressed object store with named files beside the objects.

    Use as an async context manager; a store must be entered before use::

        async with open_store("s3://bucket/repo") as store:
            await store.write_object(checksum, ObjectType.DIRMETA, data)

    Concurrency: any number of tasks may use one store at once. Cross-process and
    cross-machine safety of the conditional writes depends on the backend (see
    ``docs/stores.md``).
    """

    url: str
    """Where the store lives, as a URL that :func:`open_store` accepts (never credentials)."""

    _state: str = "new"

    # -- lifecycle ---------------------------------------------------------------------

    async def __aenter__(self) -> Self:
        if self._state != "new":
            raise StoreError(f"{self!r} was already opened")
        await self._open_store()
        self._state = "open"
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Release connections and other resources; the store cannot be used afterwards."""
        if self._state == "open":
            self._state = "closed"
            await self._close_store()

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.url!r})"

    def _check_open(self) -> None:
        if self._state != "open":
            raise StoreError(
                f"{self!r} is {self._state}: use it inside 'async with' (or after __aenter__)"
            )

    # -- objects -----------------------------------------------------------------------

    async def has_object(self, checksum: str, objtype: ObjectType) -> bool:
        """True when the object is stored."""
        path = object_path(checksum, objtype)
        self._check_open()
        return await self._exists(path)

    async def object_size(self, checksum: str, objtype: ObjectType) -> int:
        """The stored size in bytes (for FILE objects, the size of the ``.filez``)."""
        path = object_path(checksum, objtype)
        self._check_open()
        return await self._size(path)

    async def read_object(self, checksum: str, objtype: ObjectType) -> bytes:
        """The object's stored bytes (the ``.filez`` form for FILE objects).

        Raises NotFoundError if absent. Use :meth:`open_object` for large objects.
        """
        path = object_path(checksum, objtype)
        self._check_open()
        data, _ = await self._read(path, want_token=False)
        return data

    def open_object(
        self, checksum: str, objtype: ObjectType
    ) -> AbstractAsyncContextManager[ByteStream]:
        """Stream the object's stored bytes: ``async with store.open_object(c, t) as s``.

        Entering raises NotFoundError if the object is absent.
        """
        return self._stream(object_path(checksum, objtype))

    async def write_object(self, checksum: str, objtype: ObjectType, data: Chunks) -> bool:
        """Verify and store an object; return False if it was already present.

        ``data`` is the stored form (``.filez`` for FILE objects), as bytes or as a sync or
        async iterable of chunks. If the bytes are not the object ``checksum`` names,
        ChecksumMismatchError (or InvalidObjectError) is raised and nothing is stored.

        Hashed objects are immutable, so writing one that exists does nothing. A
        ``.commitmeta`` or ``.tombstone-commit`` is named after its commit rather than its
        bytes; writing one replaces the stored version atomically.
        """
        path = object_path(checksum, objtype)
        self._check_open()
        verifier = _new_verifier(objtype, checksum)
        mode = PutMode.IDEMPOTENT if objtype.is_hashed else PutMode.OVERWRITE
        if isinstance(data, bytes | bytearray | memoryview):
            token = await self._put(path, as_bytes(data), verifier, mode, want_token=False)
        else:
            if mode is PutMode.IDEMPOTENT and await self._exists(path):
                return False
            token = await self._put(path, data, verifier, mode, want_token=False)
        return token is not None

    async def has_objects(self, keys: Iterable[tuple[str, ObjectType]]) -> list[bool]:
        """:meth:`has_object` for many objects at once, in order.

        Cheaper than one call each: the filesystem store checks a whole batch in one
        worker-thread hop, S3 sends its requests concurrently.
        """
        paths = [object_path(checksum, objtype) for checksum, objtype in keys]
        self._check_open()
        return await self._exists_many(paths)

    async def write_objects(self, objects: Iterable[tuple[str, ObjectType, Buffer]]) -> list[bool]:
        """:meth:`write_object` for many objects held in memory; in order, whether each was new.

        Every object is verified as by :meth:`write_object`. If one is bad, its error
        (ChecksumMismatchError, InvalidObjectError) is raised and it is not stored; which of
        the batch's good objects were stored then is unspecified (they are sound either
        way). The filesystem store writes a whole batch in one worker-thread hop and, with
        fsync on, makes it durable with two filesystem syncs instead of two ``fsync`` calls
        per object; S3 uploads a batch concurrently. Meant for small objects (metadata and
        small files, in batches of some megabytes); stream large ones with
        :meth:`write_object`.
        """
        entries = _put_entries(objects)
        self._check_open()
        if not entries:
            return []
        return await self._put_many(entries)

    @asynccontextmanager
    async def staging(self) -> AsyncIterator[Staging]:
        """Write many objects, made durable and visible together: ``async with
        store.staging() as staging: await staging.write_objects(...)``.

        On the filesystem, objects written through a :class:`Staging` are verified and
        written at once but stay out of sight until :meth:`Staging.flush` (called on a
        clean exit, and on its own every :data:`Staging.FLUSH_EVERY` objects), which makes
        them all durable with one filesystem sync and then visible. So a store with fsync on
        pays two syncs per flush instead of two per object, like a libostree transaction.
        If the block raises, objects not yet flushed are discarded. Other backends store
        each object as it is written (S3 and memory writes are durable on return).
        """
        self._check_open()
        staging = self._new_staging()
        try:
            yield staging
        except BaseException:
            with anyio.CancelScope(shield=True):
                await staging.discard()
            raise
        await staging.flush()

    async def delete_object(self, checksum: str, objtype: ObjectType) -> None:
        """Remove an object; deleting an absent object is not an error."""
        path = object_path(checksum, objtype)
        self._check_open()
        await self._delete(path)

    async def list_objects(
        self, objtype: ObjectType | None = None
    ) -> AsyncIterator[tuple[str, ObjectType]]:
        """Yield ``(checksum, type)`` for every stored object, or those of one type.

        The order is unspecified. Files under ``objects/`` that are not loose objects
        (foreign temporaries, bare-repo ``.file`` objects) are skipped.
        """
        self._check_open()
        async for batch in self._list("objects", info=False):
            for path, _, _ in batch:
                key = parse_object_path(path)
                if key is not None and (objtype is None or key[1] is objtype):
                    yield key

    async def list_objects_info(
        self, objtype: ObjectType | None = None
    ) -> AsyncIterator[ObjectInfo]:
        """Like :meth:`list_objects`, with each object's stored size and modification time.

        On the filesystem this costs a ``stat`` per object; on S3 it is free. An S3 object
        uploaded in parts may report the time its upload started.
        """
        self._check_open()
        async for batch in self._list("objects", info=True):
            for path, size, mtime in batch:
                key = parse_object_path(path)
                if key is not None and (objtype is None or key[1] is objtype):
                    yield ObjectInfo(key[0], key[1], size, mtime)

    # -- files on this machine ---------------------------------------------------------

    def local_object_path(self, checksum: str, objtype: ObjectType) -> str | None:
        """A path on this machine where the object's stored bytes are a plain file, which
        may be read directly (a server's ``sendfile``, an export's hard link); None when
        the store keeps no such file (S3, memory).

        No I/O: the file may be missing (never written, or deleted meanwhile), so open it
        and handle ``FileNotFoundError``. Never write to it.
        """
        object_path(checksum, objtype)  # a bad name is refused on every backend
        return None

    def local_named_path(self, path: str) -> str | None:
        """Like :meth:`local_object_path`, for the named file ``path``."""
        check_named_path(path)
        return None

    # -- named files -------------------------------------------------------------------

    async def read_named(self, path: str) -> Versioned:
        """A named file's bytes and version token; NotFoundError if absent."""
        check_named_path(path)
        self._check_open()
        data, token = await self._read(path, want_token=True)
        return Versioned(data, token)

    def open_named(self, path: str) -> AbstractAsyncContextManager[ByteStream]:
        """Stream a named file: ``async with store.open_named(path) as stream``."""
        return self._stream(check_named_path(path))

    async def write_named(self, path: str, data: Chunks) -> str:
        """Create or replace a named file atomically; return its new version token.

        ``data`` may be bytes or a sync or async iterable of chunks (large delta parts).
        """
        check_named_path(path)
        self._check_open()
        body = as_bytes(data) if isinstance(data, bytes | bytearray | memoryview) else data
        token = await self._put(path, body, None, PutMode.OVERWRITE, want_token=True)
        assert token is not None
        return token

    async def create_named(self, path: str, data: Buffer) -> str:
        """Create a named file only if no file exists at ``path``; return its token.

        Raises ConflictError if it exists. Atomic across processes and machines: of any
        number of concurrent creators of one path, exactly one succeeds.
        """
        check_named_path(path)
        self._check_open()
        token = await self._put(path, as_bytes(data), None, PutMode.CREATE, want_token=True)
        assert token is not None
        return token

    async def replace_named(self, path: str, data: Buffer, token: str) -> str:
        """Replace a named file only if it is still at version ``token``; return the new one.

        Raises ConflictError if the file changed (or disappeared) since ``token`` was read.
        Tokens are opaque: an ETag on S3, a content hash elsewhere. A file rewritten with
        identical bytes keeps its token (as with S3 ETags), which is harmless for a
        compare-and-swap on content.
        """
        check_named_path(path)
        if not isinstance(token, str) or not token:
            raise TypeError("token must be the non-empty str a read or write returned")
        self._check_open()
        return await self._replace(path, as_bytes(data), token)

    async def delete_named(self, path: str) -> None:
        """Remove a named file; deleting an absent file is not an error."""
        check_named_path(path)
        self._check_open()
        await self._delete(path)

    async def list_named(self, prefix: str = "") -> AsyncIterator[str]:
        """Yield the paths of the named files under the directory ``prefix``, recursively.

        ``prefix`` is a directory path: ``"refs/heads"`` lists ``refs/heads/main`` but not
        ``refs/headsx``. ``""`` lists every named file. The order is unspecified.
        """
        prefix = check_prefix(prefix)
        self._check_open()
        async for batch in self._list(prefix, info=False):
            for path, _, _ in batch:
                yield path

    async def list_named_info(self, prefix: str = "") -> AsyncIterator[NamedInfo]:
        """Like :meth:`list_named`, with each file's size and modification time."""
        prefix = check_prefix(prefix)
        self._check_open()
        async for batch in self._list(prefix, info=True):
            for path, size, mtime in batch:
                yield NamedInfo(path, size, mtime)

    async def check_conditional_writes(self) -> None:
        """Raise StoreError unless the backend really enforces conditional writes.

        Some S3-compatible servers accept ``If-None-Match``/``If-Match`` and ignore them,
        which silently breaks create-if-absent and compare-and-swap (and any version log
        built on them). This probes with a throwaway file: a second create of the same
        path and a replace with a wrong token must both be refused.
        """
        self._check_open()
        path = f".conditional-write-probe-{secrets.token_hex(8)}"
        token = await self.create_named(path, b"1")
        try:
            problems = []
            try:
                await self.create_named(path, b"2")
                problems.append("create-if-absent overwrote an existing file")
            except ConflictError:
                pass
            await self.write_named(path, b"3")  # now ``token`` is stale
            try:
                await self.replace_named(path, b"4", token)
                problems.append("compare-and-swap accepted a stale version token")
            except ConflictError:
                pass
        finally:
            await self.delete_named(path)
        if problems:
            raise StoreError(f"{self!r} does not enforce conditional writes: {'; '.join(problems)}")

    # -- helpers -----------------------------------------------------------------------

    @asynccontextmanager
    async def _stream(self, path: str) -> AsyncIterator[ByteStream]:
        self._check_open()
        stream = await self._open(path)
        try:
            yield stream
        finally:
            await stream.aclose()

    # -- backend primitives ------------------------------------------------------------

    async def _open_store(self) -> None:  # noqa: B027 - optional hook
        """Prepare the backend (create directories, check configuration)."""

    async def _close_store(self) -> None:  # noqa: B027 - optional hook
        """Release the backend's resources."""

    @abc.abstractmethod
    async def _exists(self, path: str) -> bool:
        """True when a file exists at ``path``."""

    @abc.abstractmethod
    async def _size(self, path: str) -> int:
        """The size of the file at ``path``; NotFoundError if absent."""

    @abc.abstractmethod
    async def _read(self, path: str, *, want_token: bool) -> tuple[bytes, str]:
        """The whole file and, if ``want_token``, its version token (else ``""``)."""

    @abc.abstractmethod
    async def _open(self, path: str) -> ByteStream:
        """An open stream over the file; NotFoundError if absent."""

    @abc.abstractmethod
    async def _put(
        self,
        path: str,
        data: Source,
        verifier: Verifier | None,
        mode: PutMode,
        *,
        want_token: bool,
    ) -> str | None:
        """Write a file atomically; return its token (``""`` if not ``want_token``).

        ``data`` is bytes or an iterable of chunks (never bytes-like other than bytes).
        If ``verifier`` is given, every chunk goes through ``update`` and ``finish`` must
        return before the file may become visible. IDEMPOTENT returns None when the file
        already existed; CREATE raises ConflictError in that case. Only bytes are passed
        with CREATE.
        """

    def _new_staging(self) -> Staging:
        """The :class:`Staging` for :meth:`staging` (override to defer visibility)."""
        return Staging(self)

    async def _exists_many(self, paths: Sequence[str]) -> list[bool]:
        """:meth:`_exists` for each path, in order (override to batch)."""
        return await _map_concurrently(self._exists, paths)

    async def _put_many(self, entries: Sequence[PutEntry]) -> list[bool]:
        """Write verified objects held in memory; in order, whether each was written.

        The default calls :meth:`_put` for each, :data:`BATCH_CONCURRENCY` at a time;
        backends override it to do a batch more cheaply.
        """

        async def put(entry: PutEntry) -> bool:
            path, data, verifier, mode = entry
            return await self._put(path, data, verifier, mode, want_token=False) is not None

        return await _map_concurrently(put, entries)

    @abc.abstractmethod
    async def _replace(self, path: str, data: bytes, token: str) -> str:
        """Compare-and-swap: write ``data`` if the file's token is ``token``."""

    @abc.abstractmethod
    async def _delete(self, path: str) -> None:
        """Remove the file at ``path`` if it exists."""

    @abc.abstractmethod
    def _list(self, prefix: str, *, info: bool) -> AsyncIterator[list[Entry]]:
        """Batches of (path, size, mtime) of all files under the directory ``prefix``.

        With ``prefix == ""``, everything except the reserved top-level areas. Without
        ``info``, size and mtime may be left as -1 and 0.0.
        """


class Staging:
    """Object writes whose durability and visibility a :meth:`ObjectStore.staging` block
    settles together; any number of tasks may share one.

    This base class writes through to the store at once; the filesystem store's subclass
    defers. Whether an object was *new* is decided when it is written: an object staged
    twice (by two tasks, say) counts as new both times.
    """

    FLUSH_EVERY = 4096
    """Objects a staging holds back at most before it flushes them on its own: its memory
    stays bounded, and an interrupted long job keeps what it has flushed."""

    blocking = False
    """True when :meth:`write_objects_blocking` does its work in the calling thread (the
    filesystem store): a producer that runs in a worker thread anyway should then write
    there itself rather than hand batches to the event loop. False when it only waits
    for the event loop (S3, memory), where handing over keeps uploads concurrent."""

    def __init__(self, store: ObjectStore) -> None:
        self.store = store

    async def write_object(self, checksum: str, objtype: ObjectType, data: Chunks) -> bool:
        """Like :meth:`ObjectStore.write_object`; visible once flushed."""
        return await self.store.write_object(checksum, objtype, data)

    async def write_objects(self, objects: Iterable[tuple[str, ObjectType, Buffer]]) -> list[bool]:
        """Like :meth:`ObjectStore.write_objects`; visible once flushed."""
        return await self.store.write_objects(objects)

    def write_objects_blocking(
        self, objects: Iterable[tuple[str, ObjectType, Buffer]]
    ) -> list[bool]:
        """:meth:`write_objects` from a worker thread (one started by ``anyio.to_thread``)."""
        return anyio.from_thread.run(self.write_objects, objects)

    async def flush(self) -> None:
        """Make every object written so far durable, then visible."""

    async def discard(self) -> None:
        """Drop the objects not flushed yet (after a failure)."""


def _put_entries(objects: Iterable[tuple[str, ObjectType, Buffer]]) -> list[PutEntry]:
    from ostree_repo.objects.verify import whole_verifier

    entries: list[PutEntry] = []
    for checksum, objtype, data in objects:
        path = object_path(checksum, objtype)
        mode = PutMode.IDEMPOTENT if objtype.is_hashed else PutMode.OVERWRITE
        entries.append((path, as_bytes(data), whole_verifier(objtype, checksum), mode))
    return entries


async def _map_concurrently(
    func: Callable[[_T], Awaitable[_R]], items: Sequence[_T], limit: int = BATCH_CONCURRENCY
) -> list[_R]:
    """``[await func(item) for item in items]``, up to ``limit`` calls at a time."""
    if len(items) <= 1:
        return [await func(item) for item in items]
    results: list[_R | None] = [None] * len(items)
    indexes = iter(range(len(items)))

    async def worker() -> None:
        for i in indexes:
            results[i] = await func(items[i])

    async with task_group() as tg:
        for _ in range(min(limit, len(items))):
            tg.start_soon(worker)
    return results  # type: ignore[return-value]
