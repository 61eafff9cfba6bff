"""Stores in cloud object storage, through obstore: everything but the service's settings.

:class:`ObstoreStore` implements the store primitives over any obstore store (S3, Google
Cloud Storage, Azure Blob Storage, ...): keys are ``PREFIX/objects/XX/REST.EXT`` and
``PREFIX/<named path>``, the layout of an archive repository, so a bucket can be served
to ``ostree pull`` over HTTP as it is.

* Atomicity: a PUT is atomic; large writes are multipart uploads, which stay invisible
  until completed. A streamed object is verified while it uploads and the upload is only
  completed after the verifier accepted the last byte, so no reader ever sees an
  unverified object (an abandoned upload is aborted; a lifecycle rule should clean up
  uploads orphaned by a crash).
* Conditional writes: create-if-absent is obstore's ``mode="create"``
  (``If-None-Match: *`` on S3), compare-and-swap its update mode on the version token a
  read or write returned (``If-Match: <ETag>`` on S3 and Azure). Both need a service
  that honours them; see docs/stores.md.
* Retries with exponential backoff on 5xx, throttling, timeouts and dropped connections.
* Credentials never appear in ``repr``, exception messages or logs: messages are
  redacted (:mod:`._redact`) and obstore's exceptions are never chained to ours.

obstore's async API needs asyncio; under another anyio backend (trio), or with
``native_async=False``, the store uses obstore's blocking API in worker threads instead.

A backend for another service is a subclass that builds its obstore client in
``__init__`` (with :meth:`ObstoreStore._connect`), names its URL scheme and, if the
service compares something other than ETags, sets :attr:`ObstoreStore.token_field`:
:mod:`.s3` is the example.
"""

from __future__ import annotations

import asyncio
import datetime
import functools
from collections.abc import AsyncIterator, Callable, Iterable, Iterator, Sequence
from typing import TYPE_CHECKING, Any, ClassVar, Literal, TypeVar

import anyio.from_thread
import anyio.lowlevel
import anyio.to_thread
import obstore
import obstore.exceptions

from ostree_repo.errors import (
    ConflictError,
    InvalidNameError,
    NotFoundError,
    OstreeRepoError,
    StoreError,
)
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
from ostree_repo.store._redact import redact

if TYPE_CHECKING:
    from obstore import ObjectMeta, PutResult
    from obstore import PutMode as _ObstorePutMode

__all__ = ["ObstoreStore"]

_T = TypeVar("_T")

PART_SIZE = 8 << 20
"""Default multipart part size (and the largest object sent in one PUT)."""
PART_CONCURRENCY = 4
"""Default number of parts of one upload in flight."""


def client_options(timeout: str = "1h", *, allow_http: bool = False) -> dict[str, Any]:
    """obstore HTTP client options every backend uses (``allow_http`` for test servers)."""
    options: dict[str, Any] = {"timeout": timeout, "connect_timeout": "10s"}
    if allow_http:
        options["allow_http"] = True
    return options


def retry_config(max_retries: int = 10) -> dict[str, Any]:
    """obstore retries: exponential backoff from 100 ms to 15 s, for at most 3 minutes."""
    return {
        "max_retries": max_retries,
        "retry_timeout": datetime.timedelta(minutes=3),
        "backoff": {
            "init_backoff": datetime.timedelta(milliseconds=100),
            "max_backoff": datetime.timedelta(seconds=15),
            "base": 2,
        },
    }


def check_key_prefix(prefix: str) -> str:
    """A bucket key prefix from a URL path (``/a/b/`` -> ``a/b``); InvalidNameError for
    empty, ``.`` or ``..`` segments, NUL or backslashes."""
    prefix = prefix.strip("/")
    if prefix and any(seg in ("", ".", "..") for seg in prefix.split("/")):
        raise InvalidNameError(f"invalid key prefix {prefix!r}")
    if "\0" in prefix or "\\" in prefix:
        raise InvalidNameError(f"invalid key prefix {prefix!r}")
    return prefix


def _running_asyncio() -> bool:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True


class ObstoreStore(ObjectStore):
    """An object store over an obstore client (see the module docstring).

    Subclasses call ``super().__init__`` with the store's ``url`` (no credentials) and
    the ``secrets`` to mask in messages, then :meth:`_connect` with a function that
    builds the obstore client. ``part_size`` and ``part_concurrency`` bound a multipart
    upload's memory to about their product. ``native_async``: use obstore's async API
    (None: when running on asyncio, which it requires) or its blocking API in worker
    threads (False: what trio gets).
    """

    token_field: ClassVar[Literal["e_tag", "version"]] = "e_tag"
    """What identifies a version of a file for compare-and-swap: the ETag (S3, Azure),
    or the object version (Google Cloud Storage compares generations)."""

    def __init__(
        self,
        url: str,
        *,
        secrets: Iterable[str | None] = (),
        part_size: int = PART_SIZE,
        part_concurrency: int = PART_CONCURRENCY,
        native_async: bool | None = None,
    ) -> None:
        self.url = url
        self._secrets = tuple(s for s in secrets if s)
        self._part_size = max(part_size, 5 << 20)
        self._part_concurrency = part_concurrency
        self._native_async = native_async
        self._store: Any = None

    def _connect(self, make_client: Callable[[], Any]) -> None:
        """Build the obstore client; StoreError (redacted, unchained) if it is refused."""
        try:
            self._store = make_client()
            return
        except Exception as e:
            failure = StoreError(f"cannot configure {self.url}: {self._redact(e)}")
        raise failure  # outside the except block, so the original is not chained

    def _async_api(self) -> bool:
        if self._native_async is None:
            return _running_asyncio()
        return self._native_async

    async def _close_store(self) -> None:
        self._store = None  # drops the connection pool

    # -- errors ------------------------------------------------------------------------

    def _redact(self, error: BaseException | str) -> str:
        return redact(error, self._secrets)

    def _translate(self, error: Exception, path: str) -> StoreError:
        """Our error for an obstore one, with a redacted message.

        Callers raise it outside their ``except`` block, so the obstore exception (whose
        text may quote the server's response) is not attached as ``__context__``.
        """
        if isinstance(error, FileNotFoundError | obstore.exceptions.NotFoundError):
            return NotFoundError(f"{path} not found in {self.url}")
        if isinstance(
            error, obstore.exceptions.AlreadyExistsError | obstore.exceptions.PreconditionError
        ):
            return ConflictError(f"{path}: conditional write lost in {self.url}")
        return StoreError(f"{self.url}: {self._redact(error)}")

    async def _call(
        self,
        path: str,
        async_fn: Callable[..., Any],
        sync_fn: Callable[..., _T],
        *args: Any,
        **kwargs: Any,
    ) -> _T:
        """Run an obstore call: natively on asyncio, in a worker thread otherwise."""
        store = self._store
        if store is None:
            raise StoreError(f"{self!r} is closed")
        try:
            if self._async_api():
                result: _T = await async_fn(store, *args, **kwargs)
                return result
            call = functools.partial(sync_fn, store, *args, **kwargs)
            return await anyio.to_thread.run_sync(call)
        except OstreeRepoError:
            raise
        except Exception as e:
            failure = self._translate(e, path)
        raise failure

    # -- primitives --------------------------------------------------------------------

    async def _exists(self, path: str) -> bool:
        try:
            await self._call(path, obstore.head_async, obstore.head, path)
        except NotFoundError:
            return False
        return True

    async def _size(self, path: str) -> int:
        meta = await self._call(path, obstore.head_async, obstore.head, path)
        return meta["size"]

    async def _read(self, path: str, *, want_token: bool) -> tuple[bytes, str]:
        result = await self._call(path, obstore.get_async, obstore.get, path)
        try:
            if self._async_api():
                body = await result.bytes_async()
            else:
                body = await anyio.to_thread.run_sync(result.bytes)
            return bytes(body), result.meta[self.token_field] or ""
        except Exception as e:
            failure = self._translate(e, path)
        raise failure

    async def _open(self, path: str) -> ByteStream:
        result = await self._call(path, obstore.get_async, obstore.get, path)
        stream = result.stream(min_chunk_size=CHUNK_SIZE)

        async def chunks() -> AsyncIterator[bytes]:
            try:
                if self._async_api():
                    async for chunk in stream:
                        yield chunk
                else:
                    while (piece := await anyio.to_thread.run_sync(_next, stream)) is not None:
                        yield piece
                return
            except Exception as e:
                failure = self._translate(e, path)
            raise failure

        return ByteStream(result.meta["size"], chunks())

    async def _put(
        self,
        path: str,
        data: Source,
        verifier: Verifier | None,
        mode: PutMode,
        *,
        want_token: bool,
    ) -> str | None:
        if not isinstance(data, bytes):
            source = coalesce(data)
            if verifier is not None:
                source = verified(source, verifier)
            # Up to one part's worth goes in a single PUT; more becomes a multipart upload.
            head: list[bytes] = []
            size = 0
            async for chunk in source:
                head.append(chunk)
                size += len(chunk)
                if size > self._part_size:
                    return await self._put_stream(path, _chain(head, source), want_token)
            data, verifier = b"".join(head), None  # verified() has checked it already
        elif verifier is not None:
            await verify_buffer_async(verifier, data)
        put_mode: _ObstorePutMode = "overwrite" if mode is PutMode.OVERWRITE else "create"
        if mode is PutMode.IDEMPOTENT and len(data) > self._part_size:
            if await self._exists(path):  # don't upload megabytes for nothing
                return None
            put_mode = "overwrite"
        try:
            result = await self._put_call(path, data, put_mode, multipart=put_mode == "overwrite")
        except ConflictError:
            if mode is PutMode.IDEMPOTENT:
                return None
            raise
        return await self._token(path, result, want_token)

    async def _put_stream(self, path: str, source: AsyncIterator[bytes], want_token: bool) -> str:
        failure: list[BaseException] = []

        async def watched() -> AsyncIterator[bytes]:
            try:
                async for chunk in source:
                    yield chunk
            except GeneratorExit:  # obstore stopped reading: its own error says why
                raise
            except BaseException as e:
                failure.append(e)
                raise

        try:
            result = await self._put_call(path, watched(), "overwrite", multipart=True)
        except BaseException:
            if failure:  # the source (or its verifier) failed: report that, not obstore's error
                raise failure[0] from None
            raise
        return await self._token(path, result, want_token)

    async def _put_call(
        self, path: str, body: bytes | AsyncIterator[bytes], mode: _ObstorePutMode, multipart: bool
    ) -> PutResult:
        options: dict[str, Any] = {"mode": mode}
        if multipart:
            options.update(chunk_size=self._part_size, max_concurrency=self._part_concurrency)
            if isinstance(body, bytes) and len(body) <= self._part_size:
                options["use_multipart"] = False
        else:
            options["use_multipart"] = False
        if isinstance(body, bytes) or self._async_api():
            return await self._call(path, obstore.put_async, obstore.put, path, body, **options)
        return await self._call(
            path, obstore.put_async, obstore.put, path, _blocking(body), **options
        )

    async def _token(self, path: str, result: PutResult, want_token: bool) -> str:
        if not want_token:
            return ""
        token = result[self.token_field]
        if not token:
            token = (await self._call(path, obstore.head_async, obstore.head, path))[
                self.token_field
            ]
        if not token:
            raise StoreError(f"{self.url}: the server returned no {self.token_field} for {path}")
        return token

    async def _replace(self, path: str, data: bytes, token: str) -> str:
        update: _ObstorePutMode = {self.token_field: token}  # type: ignore[assignment]
        try:
            result = await self._put_call(path, data, update, multipart=False)
        except NotFoundError:
            raise ConflictError(f"{path} was deleted since version {token}") from None
        return await self._token(path, result, want_token=True)

    async def _delete(self, path: str) -> None:
        await self._call(path, obstore.delete_async, obstore.delete, path)

    async def _list(self, prefix: str, *, info: bool) -> AsyncIterator[list[Entry]]:
        if prefix:
            async for batch in self._list_tree(prefix):
                yield batch
            return
        top = await self._call(
            "", obstore.list_with_delimiter_async, obstore.list_with_delimiter, None
        )
        files = _paths(top["objects"])
        if files:
            yield files
        for sub in top["common_prefixes"]:
            if sub.rstrip("/") not in RESERVED_TOP_LEVEL:
                async for batch in self._list_tree(sub.rstrip("/")):
                    yield batch

    async def _list_tree(self, prefix: str) -> AsyncIterator[list[Entry]]:
        store = self._store
        if store is None:
            raise StoreError(f"{self!r} is closed")
        try:
            stream = obstore.list(store, prefix, chunk_size=1000)
            if self._async_api():
                async for batch in stream:
                    yield _paths(batch)
            else:
                while (page := await anyio.to_thread.run_sync(_next, stream)) is not None:
                    yield _paths(page)
            return
        except Exception as e:
            failure = self._translate(e, prefix)
        raise failure


def _paths(metas: Sequence[ObjectMeta]) -> list[Entry]:
    # Some servers (SeaweedFS) list directory markers: "" or names ending in "/".
    return [
        (m["path"], m["size"], m["last_modified"].timestamp())
        for m in metas
        if m["path"] and not m["path"].endswith("/")
    ]


def _next(iterator: Iterator[_T]) -> _T | None:
    return next(iterator, None)


async def _chain(head: list[bytes], rest: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
    while head:
        yield head.pop(0)
    async for chunk in rest:
        yield chunk


def _blocking(source: AsyncIterator[bytes]) -> Iterator[bytes]:
    """A blocking iterator over an async one, for obstore's sync put in a worker thread."""
    token = anyio.lowlevel.current_token()

    async def step() -> bytes | None:
        return await anext(source, None)

    def iterate() -> Iterator[bytes]:
        while (chunk := anyio.from_thread.run(step, token=token)) is not None:
            yield chunk

    return iterate()
