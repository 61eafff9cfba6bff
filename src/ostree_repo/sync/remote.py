"""HTTP access to a remote OSTree repository: retries, verification, streaming.

:class:`Remote` sends its GETs with the lean pipelining HTTP/1.1 client of
:mod:`ostree_repo.sync._h1client` when it applies (``http://``, or ``https://`` without
HTTP/2; no proxy), and with httpx otherwise (proxies, HTTP/2) and for any response the
lean client leaves to a full one (redirects, content codings). Every request is retried
with exponential backoff on 408, 429 and 5xx replies, timeouts, connection resets and
truncated bodies; a body that fails verification is fetched again, then reported.
Objects are verified before they are stored (large ones while they stream, never held
in memory), so no byte that does not match its name is ever stored.

:meth:`Remote.fetch_small_objects` fetches a group of small objects in one pipelined
batch of the lean client; what the batch does not answer with a 2xx and a small body is
left to the caller, to be fetched one by one with the retries above.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.util
import math
import os
import random
import ssl
import urllib.parse
import urllib.request
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from types import TracebackType
from typing import Protocol, Self, TypeVar

import anyio
import attrs
import certifi
import httpx

from ostree_repo import __version__
from ostree_repo._urls import redact_url
from ostree_repo.errors import ChecksumMismatchError, InvalidObjectError
from ostree_repo.objects import ObjectType, object_path, verify_bytes
from ostree_repo.objects.verify import MAX_METADATA_SIZE
from ostree_repo.repository.layout import blob_path
from ostree_repo.store import CHUNK_SIZE, ObjectStore, Staging
from ostree_repo.sync import _h1client as http1
from ostree_repo.sync.errors import RemoteChecksumError, RemoteError, UnsupportedRemoteError

__all__ = ["Remote", "RemoteOptions", "RemoteStats"]

_T = TypeVar("_T")

#: Replies that mean "absent" (as libostree treats them).
NOT_FOUND = frozenset({403, 404, 410})
#: Replies worth retrying.
RETRY_STATUSES = frozenset({408, 429, 500, 502, 503, 504})
#: Bodies up to this size are read whole and written in one go; larger ones stream.
SMALL_BODY = CHUNK_SIZE
#: Body bytes one batch of :meth:`Remote.fetch_small_objects` collects at most before it
#: sends no more requests (bounded memory with large objects; the rest go one by one).
BATCH_BUDGET = 4 * 1024 * 1024
#: Connections of the lean HTTP/1.1 client (requests in flight are spread over them).
CONNECTIONS = 8


@attrs.frozen
class RemoteOptions:
    """How to talk to the remote.

    ``verify``: True, False or the path of a CA bundle. ``cert``: a client certificate
    (path, or (cert, key)). ``headers``: extra headers on every request (tokens; never
    echoed in errors). ``proxy``: a proxy URL. ``http2``: use HTTP/2 for ``https://``
    when the ``h2`` package is installed. ``timeout``: seconds for connect, read and write
    (a stalled body counts). ``retries``: attempts after the first; ``backoff``: first
    delay in seconds, doubled each time up to ``max_backoff``. ``trust_env``: honour the
    ``*_PROXY`` environment variables (httpx's rule). ``lean``: use the built-in
    pipelining HTTP/1.1 client where it applies (see :class:`Remote`); False sends
    everything through httpx. ``connections``: connections of the built-in client.
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
    lean: bool = True
    connections: int = CONNECTIONS


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


class _Reply(Protocol):
    """A response as the consumers see it, whichever client fetched it."""

    @property
    def status(self) -> int: ...

    @property
    def length(self) -> int | None:
        """The Content-Length, if any."""

    @property
    def body(self) -> bytes | None:
        """The whole body when the client already read it, else None."""

    def chunks(self) -> AsyncIterator[bytes]:
        """The body in pieces."""


class _HttpxReply:
    """An httpx response as a :class:`_Reply`."""

    body = None

    def __init__(self, response: httpx.Response) -> None:
        self.response = response
        self.status = response.status_code
        length = response.headers.get("content-length")
        self.length = int(length) if length is not None and length.isdigit() else None

    def chunks(self) -> AsyncIterator[bytes]:
        return self.response.aiter_bytes(CHUNK_SIZE)


class _UseHttpx(Exception):  # noqa: N818 - a signal, not an error
    """The lean client left this request to httpx."""


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
        ctx = ssl.create_default_context(cafile=certifi.where())
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
            f"cannot sync from {redact_url(url)!r}: only http:// and https:// URLs are supported"
        )
    return url if url.endswith("/") else url + "/"


def _proxied(url: str, options: RemoteOptions) -> bool:
    """Whether httpx would send requests to ``url`` through a proxy."""
    if options.proxy is not None:
        return True
    if not options.trust_env:
        return False
    parts = urllib.parse.urlsplit(url)
    proxies = urllib.request.getproxies_environment()
    if not (proxies.get(parts.scheme) or proxies.get("all")):
        return False
    bypass: Callable[[str, dict[str, str]], bool] | None = getattr(
        urllib.request, "proxy_bypass_environment", None
    )  # NO_PROXY (not in typeshed)
    return bypass is None or not bypass(parts.hostname or "", proxies)


class Remote:
    """A remote repository at ``url``: ``async with Remote(url) as remote: ...``.

    ``concurrency`` is the number of requests in flight. They go through the lean
    HTTP/1.1 client (:mod:`ostree_repo.sync._h1client`: ``options.connections`` persistent
    connections, requests pipelined on them) when the URL is ``http://``, or ``https://``
    and HTTP/2 is not to be used (``http2`` off or ``h2`` not installed), no proxy
    applies and ``options.lean`` is on; else, and for any reply the lean client cannot
    handle (redirects, content codings), through httpx.
    """

    def __init__(
        self, url: str, options: RemoteOptions | None = None, *, concurrency: int = 32
    ) -> None:
        self.base = check_url(url)
        self.options = options or RemoteOptions()
        self.stats = RemoteStats()
        self.concurrency = max(1, concurrency)
        self._limiter = anyio.CapacityLimiter(self.concurrency)
        self._ssl = _ssl_context(self.options)  # one CA load shared by every client
        # httpx: one client per request slot, each with a single keep-alive connection
        # (httpx's pool costs O(connections) per request); made when first needed.
        self._clients: list[httpx.AsyncClient] = []
        self._idle: list[httpx.AsyncClient] = []
        self._lean = self._lean_client()

    def _lean_client(self) -> http1.Client | None:
        o = self.options
        scheme = urllib.parse.urlsplit(self.base).scheme
        if not o.lean or _proxied(self.base, o):
            return None
        if scheme == "https" and o.http2 and _h2_available():
            return None
        connections = max(1, min(o.connections, self.concurrency))
        try:
            return http1.Client(
                self.base,
                headers=o.headers,
                user_agent=f"ostree-repo/{__version__}",
                timeout=o.timeout,
                connections=connections,
                pipeline=math.ceil(self.concurrency / connections),
                eager_limit=SMALL_BODY,
                ssl_context=self._ssl,
            )
        except ValueError:  # a URL or header it cannot send as it is: httpx decides
            return None

    @property
    def lean(self) -> bool:
        """Whether requests go through the lean HTTP/1.1 client."""
        return self._lean is not None

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
        if self._lean is not None:
            await self._lean.aclose()
        for client in self._clients:
            await client.aclose()

    @contextlib.asynccontextmanager
    async def _client(self) -> AsyncIterator[httpx.AsyncClient]:
        # the limiter guarantees that at most ``concurrency`` clients are in use
        client = self._idle.pop() if self._idle else None
        if client is None:
            client = self._new_client()
            self._clients.append(client)
        try:
            yield client
        finally:
            self._idle.append(client)

    def url(self, path: str) -> str:
        """The full URL of ``path`` (redacted: no password)."""
        return redact_url(self.base + path)

    # -- the retry loop --------------------------------------------------------------------

    async def _request(
        self,
        path: str,
        consume: Callable[[_Reply], Awaitable[_T]],
        *,
        optional: bool,
        what: str,
        attempt: int = 0,
    ) -> _T | None:
        """GET ``path`` and hand a 2xx reply to ``consume``, retrying transient failures.

        ``attempt``: how many attempts were already made (by a caller that fetched the
        body itself and found it bad)."""
        while True:
            failure: _TransientError
            try:
                if self._lean is not None:
                    try:
                        return await self._lean_attempt(path, consume, optional, what)
                    except _UseHttpx:
                        pass
                return await self._httpx_attempt(path, consume, optional, what)
            except _TransientError as e:
                failure = e
            except ChecksumMismatchError as e:
                if attempt >= self.options.retries:
                    raise RemoteChecksumError(e.expected, e.actual, self.url(path), what) from None
                failure = _TransientError(str(e))
            except InvalidObjectError as e:
                if attempt >= self.options.retries:
                    shown = self.url(path)
                    raise RemoteError(f"{shown}: invalid {what}: {e}", url=shown) from None
                failure = _TransientError(str(e))
            if attempt >= self.options.retries:
                shown = self.url(path)
                raise RemoteError(
                    f"{shown}: {failure} (gave up after {attempt + 1} attempts)",
                    url=shown,
                    status=failure.status,
                )
            attempt += 1
            self.stats.retries += 1
            delay = min(self.options.max_backoff, self.options.backoff * 2 ** (attempt - 1))
            await anyio.sleep(delay * (0.5 + random.random() / 2))

    async def _lean_attempt(
        self,
        path: str,
        consume: Callable[[_Reply], Awaitable[_T]],
        optional: bool,
        what: str,
    ) -> _T | None:
        assert self._lean is not None
        self.stats.requests += 1
        try:
            async with self._lean.stream(path) as response:
                return await self._respond(response, path, consume, optional, what)
        except http1.FallbackError:
            raise _UseHttpx from None
        except http1.HTTPError as e:
            raise _TransientError(str(e)) from None

    async def _httpx_attempt(
        self,
        path: str,
        consume: Callable[[_Reply], Awaitable[_T]],
        optional: bool,
        what: str,
    ) -> _T | None:
        async with self._limiter, self._client() as client:
            self.stats.requests += 1
            try:
                async with client.stream("GET", self.base + path) as response:
                    return await self._respond(_HttpxReply(response), path, consume, optional, what)
            except httpx.TransportError as e:
                raise _TransientError(f"{type(e).__name__}: {e}".rstrip(": ")) from None

    async def _respond(
        self,
        reply: _Reply,
        path: str,
        consume: Callable[[_Reply], Awaitable[_T]],
        optional: bool,
        what: str,
    ) -> _T | None:
        status = reply.status
        if 200 <= status < 300:
            return await consume(reply)
        if status in NOT_FOUND:
            if optional:
                return None
            shown = self.url(path)
            raise RemoteError(
                f"{shown}: HTTP {status}: {what} not found on the remote", url=shown, status=status
            )
        if status in RETRY_STATUSES:
            raise _TransientError(f"HTTP {status}", status)
        shown = self.url(path)
        raise RemoteError(f"{shown}: HTTP {status} fetching {what}", url=shown, status=status)

    async def _read(self, reply: _Reply, limit: int, what: str, path: str) -> bytes:
        length = reply.length
        if length is not None and length > limit:
            shown = self.url(path)
            raise RemoteError(f"{shown}: {what} of {length} bytes exceeds {limit}", url=shown)
        data = reply.body
        if data is None:
            body = bytearray()
            async for chunk in reply.chunks():
                body += chunk
                if len(body) > limit:
                    shown = self.url(path)
                    raise RemoteError(f"{shown}: {what} exceeds {limit} bytes", url=shown)
            data = bytes(body)
        elif len(data) > limit:
            shown = self.url(path)
            raise RemoteError(f"{shown}: {what} exceeds {limit} bytes", url=shown)
        self.stats.bytes += len(data)
        return data

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

        async def consume(reply: _Reply) -> bytes:
            data = await self._read(reply, limit, what, path)
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

    async def store_object(
        self,
        store: ObjectStore | Staging,
        checksum: str,
        objtype: ObjectType,
        *,
        small: Callable[[str, ObjectType, bytes], Awaitable[None]] | None = None,
        attempt: int = 0,
    ) -> int:
        """Fetch an object into ``store`` (or a staging), verified; return its size.

        Bodies up to :data:`SMALL_BODY` are read whole and written in one go, or, with
        ``small``, handed to it *unverified*: the caller must write them with a verifying
        write (``write_objects``) and fetch any that fails again with
        ``store_object(..., attempt=1)``. Larger bodies stream through the store's
        verifying write in chunks, so memory stays bounded whatever the object's size.
        ``attempt``: attempts already spent on this object.
        """

        async def consume(reply: _Reply) -> int:
            length = reply.length
            if length is not None and length <= SMALL_BODY:
                data = await self._read(reply, SMALL_BODY, "object", path)
                if small is not None:
                    await small(checksum, objtype, data)
                else:
                    await store.write_object(checksum, objtype, data)
                self.stats.objects += 1
                return len(data)
            received = 0

            async def chunks() -> AsyncIterator[bytes]:
                nonlocal received
                async for chunk in reply.chunks():
                    received += len(chunk)
                    yield chunk

            await store.write_object(checksum, objtype, chunks())
            self.stats.bytes += received
            self.stats.objects += 1
            return received

        path = object_path(checksum, objtype)
        size = await self._request(
            path,
            consume,
            optional=False,
            what=f"{objtype.value} object {checksum}",
            attempt=attempt,
        )
        assert size is not None
        return size

    async def fetch_small_objects(
        self, items: Sequence[tuple[str, ObjectType]]
    ) -> tuple[list[tuple[str, ObjectType, bytes]], list[tuple[str, ObjectType]]]:
        """Fetch objects in one pipelined batch: (the objects fetched, with their bodies
        *unverified*, as ``store_object``'s ``small`` gets them; the items left to fetch
        one by one with :meth:`store_object`).

        Only with the lean client (else every item is left over). Items whose reply
        was not a 2xx with a body up to :data:`SMALL_BODY` are left over, so that errors,
        retries and large bodies go through :meth:`store_object` as usual.
        """
        if self._lean is None or not items:
            return [], list(items)
        paths = [object_path(checksum, objtype) for checksum, objtype in items]
        results = await self._lean.get_many(paths, SMALL_BODY, BATCH_BUDGET)
        fetched: list[tuple[str, ObjectType, bytes]] = []
        rest: list[tuple[str, ObjectType]] = []
        stats = self.stats
        for item, result in zip(items, results, strict=True):
            if result is None:
                rest.append(item)
                continue
            stats.requests += 1
            status, body = result
            if 200 <= status < 300:
                stats.bytes += len(body)
                stats.objects += 1
                fetched.append((item[0], item[1], body))
            else:
                rest.append(item)
        return fetched, rest

    async def store_blob(self, store: ObjectStore, path: str, digest: str, what: str) -> str:
        """Fetch ``path`` into the store as the blob named ``digest`` (its SHA-256),
        streaming; the blob becomes visible only if the bytes hash to ``digest``."""

        async def consume(reply: _Reply) -> str:
            received = 0

            async def chunks() -> AsyncIterator[bytes]:
                nonlocal received
                hasher = hashlib.sha256()
                async for chunk in reply.chunks():
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
