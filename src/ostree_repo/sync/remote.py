"""HTTP access to a remote OSTree repository: retries, verification, streaming.

:class:`Remote` wraps one ``httpx.AsyncClient`` (keep-alive, optional HTTP/2) and limits
the requests in flight with a capacity limiter. Every request is retried with exponential
backoff on 408, 429 and 5xx replies, timeouts, connection resets and truncated bodies;
a body that fails verification is fetched again, then reported. Objects are verified
while they stream into the store (large ones are never held in memory), so no byte that
does not match its name is ever stored.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.util
import os
import random
import ssl
import urllib.parse
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from types import TracebackType
from typing import Self, TypeVar

import anyio
import attrs
import httpx

from ostree_repo import __version__
from ostree_repo.errors import ChecksumMismatchError, InvalidObjectError
from ostree_repo.objects import ObjectType, object_path, verify_bytes
from ostree_repo.objects.verify import MAX_METADATA_SIZE
from ostree_repo.repository.layout import blob_path
from ostree_repo.store import ObjectStore
from ostree_repo.store.chunks import CHUNK_SIZE
from ostree_repo.sync.errors import RemoteChecksumError, RemoteError, UnsupportedRemoteError

__all__ = ["Remote", "RemoteOptions", "RemoteStats"]

_T = TypeVar("_T")

#: Replies that mean "absent" (as libostree treats them).
NOT_FOUND = frozenset({403, 404, 410})
#: Replies worth retrying.
RETRY_STATUSES = frozenset({408, 429, 500, 502, 503, 504})
#: Bodies up to this size are read whole and written in one go; larger ones stream.
SMALL_BODY = CHUNK_SIZE


@attrs.frozen
class RemoteOptions:
    """How to talk to the remote. Everything is passed through to httpx.

    ``verify``: True, False or the path of a CA bundle. ``cert``: a client certificate
    (path, or (cert, key)). ``headers``: extra headers on every request (tokens; never
    echoed in errors). ``proxy``: a proxy URL. ``http2``: use HTTP/2 when the ``h2``
    package is installed. ``timeout``: seconds for connect, read and write (a stalled
    body counts). ``retries``: attempts after the first; ``backoff``: first delay in
    seconds, doubled each time up to ``max_backoff``.
    """

    headers: Mapping[str, str] = attrs.field(factory=dict)
    timeout: float = 30.0
    retries: int = 5
    backoff: float = 0.25
    max_backoff: float = 10.0
    verify: bool | str = True
    cert: str | tuple[str, str] | None = None
    proxy: str | None = None
    http2: bool = True
    trust_env: bool = True


@attrs.define
class RemoteStats:
    """What went over the wire."""

    requests: int = 0
    retries: int = 0
    bytes: int = 0
    objects: int = 0


class _TransientError(Exception):
    """A failure worth retrying (status, network, or a body that did not verify)."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


def _h2_available() -> bool:
    return importlib.util.find_spec("h2") is not None


def _ssl_context(options: RemoteOptions) -> ssl.SSLContext:
    """The TLS settings: CA bundle (certifi's by default), client certificate."""
    if isinstance(options.verify, str):
        path = options.verify
        ctx = ssl.create_default_context(
            cafile=None if os.path.isdir(path) else path,
            capath=path if os.path.isdir(path) else None,
        )
    else:
        try:
            import certifi

            ctx = ssl.create_default_context(cafile=certifi.where())
        except ImportError:  # pragma: no cover - httpx depends on certifi
            ctx = ssl.create_default_context()
        if not options.verify:
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
    if options.cert is not None:
        if isinstance(options.cert, str):
            ctx.load_cert_chain(options.cert)
        else:
            ctx.load_cert_chain(*options.cert)
    return ctx


def check_url(url: str) -> str:
    """``url`` with a trailing slash; UnsupportedRemoteError unless it is http(s)."""
    parts = urllib.parse.urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise UnsupportedRemoteError(
            f"cannot sync from {_redact(url)!r}: only http:// and https:// URLs are supported"
        )
    return url if url.endswith("/") else url + "/"


def _redact(url: str) -> str:
    """``url`` without a password."""
    parts = urllib.parse.urlsplit(url)
    if parts.password is None:
        return url
    host = parts.hostname or ""
    if parts.port is not None:
        host += f":{parts.port}"
    return urllib.parse.urlunsplit(parts._replace(netloc=f"{parts.username}:***@{host}"))


class Remote:
    """A remote repository at ``url``: ``async with Remote(url) as remote: ...``."""

    def __init__(
        self, url: str, options: RemoteOptions | None = None, *, concurrency: int = 32
    ) -> None:
        self.base = check_url(url)
        self.options = options or RemoteOptions()
        self.stats = RemoteStats()
        self._limiter = anyio.CapacityLimiter(max(1, concurrency))
        # One client per request slot, each with a single keep-alive connection: httpx's
        # connection pool costs O(connections) per request (a poll of every idle socket),
        # which dominates with thousands of small objects; a free list of one-connection
        # clients keeps that constant.
        self._ssl = _ssl_context(self.options)  # one CA load shared by every client
        self._clients = [self._new_client() for _ in range(max(1, concurrency))]
        self._idle = list(self._clients)

    def _new_client(self) -> httpx.AsyncClient:
        o = self.options
        return httpx.AsyncClient(
            headers={"User-Agent": f"ostree-repo/{__version__}", **dict(o.headers)},
            timeout=httpx.Timeout(o.timeout),
            limits=httpx.Limits(max_connections=1, max_keepalive_connections=1),
            http2=o.http2 and _h2_available(),
            verify=self._ssl,
            proxy=o.proxy,
            trust_env=o.trust_env,
            follow_redirects=True,
        )

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the connections."""
        for client in self._clients:
            await client.aclose()

    @contextlib.asynccontextmanager
    async def _client(self) -> AsyncIterator[httpx.AsyncClient]:
        client = self._idle.pop()  # the limiter guarantees one is idle
        try:
            yield client
        finally:
            self._idle.append(client)

    def url(self, path: str) -> str:
        """The full URL of ``path`` (redacted: no password)."""
        return _redact(self.base + path)

    # -- the retry loop --------------------------------------------------------------------

    async def _request(
        self,
        path: str,
        consume: Callable[[httpx.Response], Awaitable[_T]],
        *,
        optional: bool,
        what: str,
    ) -> _T | None:
        url = self.base + path
        shown = self.url(path)
        attempt = 0
        while True:
            failure: _TransientError
            try:
                async with self._limiter, self._client() as client:
                    self.stats.requests += 1
                    async with client.stream("GET", url) as response:
                        status = response.status_code
                        if status in NOT_FOUND:
                            if optional:
                                return None
                            raise RemoteError(
                                f"{shown}: HTTP {status}: {what} not found on the remote",
                                url=shown,
                                status=status,
                            )
                        if status in RETRY_STATUSES:
                            raise _TransientError(f"HTTP {status}", status)
                        if not 200 <= status < 300:
                            raise RemoteError(
                                f"{shown}: HTTP {status} fetching {what}", url=shown, status=status
                            )
                        return await consume(response)
            except _TransientError as e:
                failure = e
            except httpx.TransportError as e:
                failure = _TransientError(f"{type(e).__name__}: {e}".rstrip(": "))
            except ChecksumMismatchError as e:
                if attempt >= self.options.retries:
                    raise RemoteChecksumError(e.expected, e.actual, shown, what) from None
                failure = _TransientError(str(e))
            except InvalidObjectError as e:
                if attempt >= self.options.retries:
                    raise RemoteError(f"{shown}: invalid {what}: {e}", url=shown) from None
                failure = _TransientError(str(e))
            if attempt >= self.options.retries:
                raise RemoteError(
                    f"{shown}: {failure} (gave up after {attempt + 1} attempts)",
                    url=shown,
                    status=failure.status,
                )
            attempt += 1
            self.stats.retries += 1
            delay = min(self.options.max_backoff, self.options.backoff * 2 ** (attempt - 1))
            await anyio.sleep(delay * (0.5 + random.random() / 2))

    async def _read(self, response: httpx.Response, limit: int, what: str) -> bytes:
        length = response.headers.get("content-length")
        if length is not None and length.isdigit() and int(length) > limit:
            raise RemoteError(
                f"{self.url(str(response.url))}: {what} of {length} bytes exceeds {limit}",
                url=str(response.url),
            )
        body = bytearray()
        async for chunk in response.aiter_bytes(CHUNK_SIZE):
            body += chunk
            if len(body) > limit:
                raise RemoteError(f"{what} exceeds {limit} bytes", url=str(response.url))
        self.stats.bytes += len(body)
        return bytes(body)

    # -- what sync asks for ------------------------------------------------------------------

    async def get_bytes(
        self,
        path: str,
        *,
        optional: bool = False,
        limit: int = MAX_METADATA_SIZE,
        check: Callable[[bytes], object] | None = None,
        what: str = "file",
    ) -> bytes | None:
        """The body of ``path`` (None if absent and ``optional``), checked by ``check``
        (which raises ChecksumMismatchError or InvalidObjectError to have it fetched
        again)."""

        async def consume(response: httpx.Response) -> bytes:
            data = await self._read(response, limit, what)
            if check is not None:
                check(data)
            return data

        return await self._request(path, consume, optional=optional, what=what)

    async def get_metadata(
        self, checksum: str, objtype: ObjectType, *, optional: bool = False, limit: int = 0
    ) -> bytes | None:
        """A metadata object (commit, dirtree, dirmeta, commitmeta, tombstone), verified."""
        return await self.get_bytes(
            object_path(checksum, objtype),
            optional=optional,
            limit=limit or MAX_METADATA_SIZE,
            check=lambda data: verify_bytes(objtype, checksum, data),
            what=f"{objtype.value} object {checksum}",
        )

    async def store_object(self, store: ObjectStore, checksum: str, objtype: ObjectType) -> int:
        """Fetch an object into ``store``, verified on the way; return its size.

        Small bodies are read whole; larger ones stream through the store's verifying
        write in chunks, so memory stays bounded whatever the object's size.
        """

        async def consume(response: httpx.Response) -> int:
            length = response.headers.get("content-length")
            if length is not None and length.isdigit() and int(length) <= SMALL_BODY:
                data = await self._read(response, SMALL_BODY, "object")
                await store.write_object(checksum, objtype, data)
                self.stats.objects += 1
                return len(data)
            received = 0

            async def chunks() -> AsyncIterator[bytes]:
                nonlocal received
                async for chunk in response.aiter_bytes(CHUNK_SIZE):
                    received += len(chunk)
                    yield chunk

            await store.write_object(checksum, objtype, chunks())
            self.stats.bytes += received
            self.stats.objects += 1
            return received

        size = await self._request(
            object_path(checksum, objtype),
            consume,
            optional=False,
            what=f"{objtype.value} object {checksum}",
        )
        assert size is not None
        return size

    async def store_blob(self, store: ObjectStore, path: str, digest: str, what: str) -> str:
        """Fetch ``path`` into the store as the blob named ``digest`` (its SHA-256),
        streaming; the blob becomes visible only if the bytes hash to ``digest``."""

        async def consume(response: httpx.Response) -> str:
            received = 0

            async def chunks() -> AsyncIterator[bytes]:
                nonlocal received
                hasher = hashlib.sha256()
                async for chunk in response.aiter_bytes(CHUNK_SIZE):
                    hasher.update(chunk)
                    received += len(chunk)
                    yield chunk
                actual = hasher.hexdigest()
                if actual != digest:  # raised before the write completes: nothing stored
                    raise ChecksumMismatchError(digest, actual, what)

            await store.write_named(blob_path(digest), chunks())
            self.stats.bytes += received
            return digest

        result = await self._request(path, consume, optional=False, what=what)
        assert result is not None
        return result
