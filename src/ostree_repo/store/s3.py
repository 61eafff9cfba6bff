"""A store in an S3 bucket (AWS, MinIO, SeaweedFS, ...), through obstore.

Keys are ``PREFIX/objects/XX/REST.EXT`` and ``PREFIX/<named path>``: the same layout as an
archive repository, so the bucket can be served to ``ostree pull`` over HTTP.

* Atomicity: a PUT is atomic; large writes are multipart uploads, which stay invisible
  until completed. A streamed object is verified while it uploads and the upload is only
  completed after the verifier accepted the last byte, so no reader ever sees an
  unverified object (an abandoned upload is aborted; a lifecycle rule should clean up
  uploads orphaned by a crash).
* Conditional writes: create-if-absent is ``PUT`` with ``If-None-Match: *``,
  compare-and-swap is ``PUT`` with ``If-Match: <ETag>``. Both need a server that honours
  them (AWS since 2024, MinIO, SeaweedFS, Cloudflare R2); see docs/stores.md.
* Retries with exponential backoff on 5xx, throttling, timeouts and dropped connections.
* Credentials never appear in ``repr``, exception messages or logs.

obstore's async API needs asyncio; under another anyio backend (trio) the store uses
obstore's blocking API in worker threads instead.
"""

from __future__ import annotations

import asyncio
import datetime
import functools
from collections.abc import AsyncIterator, Callable, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

import anyio.from_thread
import anyio.lowlevel
import anyio.to_thread
import obstore
import obstore.exceptions
from obstore.store import S3Store as _ObstoreS3

from ostree_repo._urls import redact_url
from ostree_repo.errors import ConflictError, NotFoundError, OstreeRepoError, StoreError
from ostree_repo.store._redact import redact
from ostree_repo.store.base import Entry, ObjectStore, PutMode
from ostree_repo.store.chunks import (
    CHUNK_SIZE,
    ByteStream,
    Source,
    Verifier,
    coalesce,
    verified,
    verify_buffer_async,
)
from ostree_repo.store.keys import RESERVED_TOP_LEVEL

if TYPE_CHECKING:
    from obstore import ObjectMeta, PutResult
    from obstore import PutMode as _ObstorePutMode

__all__ = ["S3Store"]

_T = TypeVar("_T")

_PART_SIZE = 8 << 20
_PART_CONCURRENCY = 4


def _running_asyncio() -> bool:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True


class S3Store(ObjectStore):
    """An object store under ``prefix`` in S3 bucket ``bucket``.

    ``endpoint``: base URL of an S3-compatible server (default: AWS for ``region``);
    ``http://`` endpoints are allowed. Credentials not given here fall back to obstore's
    own lookup (``AWS_*`` environment variables, instance metadata, ...).
    ``max_retries``/``timeout`` tune the HTTP client; ``part_size`` and
    ``part_concurrency`` bound a multipart upload's memory to about their product.
    ``native_async``: use obstore's async API (None: when running on asyncio, which it
    requires) or its blocking API in worker threads (False: what trio gets).
    """

    def __init__(
        self,
        bucket: str,
        prefix: str = "",
        *,
        endpoint: str | None = None,
        region: str | None = None,
        access_key_id: str | None = None,
        secret_access_key: str | None = None,
        session_token: str | None = None,
        max_retries: int = 10,
        timeout: str = "1h",
        part_size: int = _PART_SIZE,
        part_concurrency: int = _PART_CONCURRENCY,
        native_async: bool | None = None,
    ) -> None:
        prefix = prefix.strip("/")
        self.bucket = bucket
        self.prefix = prefix
        self.endpoint = redact_url(endpoint, keep_user=False) if endpoint else None
        self.url = f"s3://{bucket}/{prefix}" if prefix else f"s3://{bucket}"
        self._secrets = tuple(s for s in (access_key_id, secret_access_key, session_token) if s)
        self._part_size = max(part_size, 5 << 20)
        self._part_concurrency = part_concurrency
        self._native_async = native_async
        config: dict[str, Any] = {"virtual_hosted_style_request": False, "conditional_put": "etag"}
        for key, value in (
            ("endpoint", endpoint),
            ("region", region),
            ("access_key_id", access_key_id),
            ("secret_access_key", secret_access_key),
            ("session_token", session_token),
        ):
            if value:
                config[key] = value
        client: dict[str, Any] = {"timeout": timeout, "connect_timeout": "10s"}
        if endpoint and endpoint.startswith("http://"):
            client["allow_http"] = True
        retry: dict[str, Any] = {
            "max_retries": max_retries,
            "retry_timeout": datetime.timedelta(minutes=3),
            "backoff": {
                "init_backoff": datetime.timedelta(milliseconds=100),
                "max_backoff": datetime.timedelta(seconds=15),
                "base": 2,
            },
        }
        try:
            self._store: _ObstoreS3 | None = _ObstoreS3(
                bucket,
                prefix=prefix or None,
                config=config,  # type: ignore[arg-type]
                client_options=client,  # type: ignore[arg-type]
                retry_config=retry,  # type: ignore[arg-type]
            )
            return
        except Exception as e:
            failure = StoreError(f"cannot configure {self.url}: {self._redact(e)}")
        raise failure  # outside the except block, so the original is not chained

    @classmethod
    def from_env(
        cls, bucket: str, prefix: str = "", env: Mapping[str, str] | None = None, **options: Any
    ) -> S3Store:
        """Configure from ``AWS_ENDPOINT_URL`` (or ``AWS_ENDPOINT_URL_S3``), ``AWS_REGION``
        (or ``AWS_DEFAULT_REGION``), ``AWS_ACCESS_KEY_ID``, ``AWS_SECRET_ACCESS_KEY`` and
        ``AWS_SESSION_TOKEN`` in ``env`` (default: ``os.environ``); ``options`` win."""
        if env is None:
            import os

            env = os.environ
        settings: dict[str, Any] = {
            "endpoint": env.get("AWS_ENDPOINT_URL_S3") or env.get("AWS_ENDPOINT_URL"),
            "region": env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION"),
            "access_key_id": env.get("AWS_ACCESS_KEY_ID"),
            "secret_access_key": env.get("AWS_SECRET_ACCESS_KEY"),
            "session_token": env.get("AWS_SESSION_TOKEN"),
        }
        settings.update(options)
        return cls(bucket, prefix, **settings)

    def _async_api(self) -> bool:
        if self._native_async is None:
            return _running_asyncio()
        return self._native_async

    def __repr__(self) -> str:
        if self.endpoint:
            return f"S3Store({self.url!r}, endpoint={self.endpoint!r})"
        return f"S3Store({self.url!r})"

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
            return bytes(body), result.meta["e_tag"] or ""
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
        token = result["e_tag"]
        if not token:
            token = (await self._call(path, obstore.head_async, obstore.head, path))["e_tag"]
        if not token:
            raise StoreError(f"{self.url}: the server returned no ETag for {path}")
        return token

    async def _replace(self, path: str, data: bytes, token: str) -> str:
        try:
            result = await self._put_call(path, data, {"e_tag": token}, multipart=False)
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
