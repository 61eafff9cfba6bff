"""HTTP access to a remote OSTree repository: retries, verification, streaming.

:class:`Remote` sends its GETs through a list of transports
(:class:`~ostree_repo.sync._transport.Transport`), chosen for the URL and the options by
:func:`choose_transports`: the built-in pipelining HTTP/1.1 client
(:mod:`ostree_repo.sync._h1transport`) where it applies, then httpx
(:mod:`ostree_repo.sync._httpx_transport`) for what it leaves (redirects, content
codings), or httpx alone (proxies, HTTP/2 when asked for). Every request is retried
with exponential backoff on 408, 429 and 5xx replies, timeouts, connection resets and
truncated bodies; a body that fails verification is fetched again, then reported.
Objects are verified before they are stored (large ones while they stream, never held
in memory), so no byte that does not match its name is ever stored.

:meth:`Remote.fetch_small_objects` fetches a group of small objects in one batch of the
first transport (pipelined, with the built-in client); what the batch does not answer
with a 2xx and a small body is left to the caller, to be fetched one by one with the
retries above.
"""

from __future__ import annotations

import functools
import hashlib
import importlib.util
import os
import random
import ssl
import urllib.parse
import urllib.request
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from types import TracebackType
from typing import Self, TypeVar

import anyio
import attrs

from ostree_repo._urls import redact_url
from ostree_repo.errors import ChecksumMismatchError, InvalidObjectError
from ostree_repo.objects import ObjectType, object_path, verify_bytes
from ostree_repo.objects.verify import MAX_METADATA_SIZE
from ostree_repo.repository.layout import blob_path
from ostree_repo.store import CHUNK_SIZE, ObjectStore, Staging
from ostree_repo.sync._transport import (
    DeclinedError,
    Deferred,
    Reply,
    Transport,
    TransportError,
)
from ostree_repo.sync.errors import RemoteChecksumError, RemoteError, UnsupportedRemoteError
from ostree_repo.sync.options import RemoteOptions

__all__ = ["Remote", "RemoteStats"]

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


@attrs.define
class RemoteStats:
    """What went over the wire: requests sent (each attempt counts), retries, body
    bytes received and objects fetched."""

    requests: int = 0
    retries: int = 0
    bytes: int = 0
    objects: int = 0


def _h2_available() -> bool:
    return importlib.util.find_spec("h2") is not None


def ssl_context(options: RemoteOptions) -> ssl.SSLContext:
    """The TLS settings: CA bundle (certifi's by default, as httpx), client certificate."""
    if isinstance(options.verify, str):
        path = options.verify
        ctx = ssl.create_default_context(
            cafile=None if os.path.isdir(path) else path,
            capath=path if os.path.isdir(path) else None,
        )
    else:
        import certifi

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


def choose_transports(
    base: str, options: RemoteOptions, tls: Callable[[], ssl.SSLContext]
) -> list[Transport]:
    """The transports for the remote at ``base``, in the order a request tries them.

    * The built-in HTTP/1.1 client first, whenever it applies: ``options.lean``, no
      proxy, and not ``https://`` with ``http2=True`` (and ``h2`` installed); then httpx
      for the responses it leaves (redirects, content codings).
    * Else httpx alone: HTTP/2 for ``https://`` when ``h2`` is installed and ``http2``
      is not False (through a proxy, or when asked for), HTTP/1.1 otherwise.

    By measurement (``docs/sync.md``), the built-in client is faster than HTTP/2 through
    httpx on https, so installing ``h2`` moves no sync to HTTP/2 unless ``http2=True``
    (or a proxy leaves httpx as the only choice). ``tls`` makes the SSL context (once,
    when a transport needs it). httpx is imported only when a request reaches it.
    """
    https = urllib.parse.urlsplit(base).scheme == "https"
    h2 = https and options.http2 is not False and _h2_available()

    def httpx_transport(http2: bool) -> Transport:
        from ostree_repo.sync._httpx_transport import HttpxTransport

        return HttpxTransport(base, options, tls(), http2=http2)

    if options.lean and not _proxied(base, options) and not (h2 and options.http2):
        from ostree_repo.sync._h1transport import H1Transport

        try:
            lean = H1Transport(base, options, tls() if https else None, eager_limit=SMALL_BODY)
        except ValueError:  # a URL or header it cannot send as it is: httpx decides
            pass
        else:
            fallback = functools.partial(httpx_transport, h2)
            name = "httpx-http2" if h2 else "httpx-http1"
            return [lean, Deferred(name, fallback)]
    name = "httpx-http2" if h2 else "httpx-http1"
    return [Deferred(name, functools.partial(httpx_transport, h2))]


class Remote:
    """A remote repository at ``url``: ``async with Remote(url) as remote: ...``.

    ``options.concurrency`` requests are in flight at most (``concurrency`` overrides
    it). Requests go through the transports :func:`choose_transports` picks: the
    built-in pipelining HTTP/1.1 client (``options.connections`` persistent connections)
    where it applies, httpx otherwise and for the replies the built-in client cannot
    handle (redirects, content codings).
    """

    def __init__(
        self, url: str, options: RemoteOptions | None = None, *, concurrency: int | None = None
    ) -> None:
        self.base = check_url(url)
        options = options or RemoteOptions()
        if concurrency is not None:
            options = attrs.evolve(options, concurrency=concurrency)
        self.options = options
        self.concurrency = options.concurrency
        self.stats = RemoteStats()
        self._ssl: ssl.SSLContext | None = None
        self.transports = choose_transports(self.base, options, self._tls)

    def _tls(self) -> ssl.SSLContext:
        if self._ssl is None:  # one CA load shared by every transport
            self._ssl = ssl_context(self.options)
        return self._ssl

    @property
    def transport(self) -> str:
        """The name of the transport requests try first (``"http1"``: the built-in
        client; ``"httpx-http1"``, ``"httpx-http2"``)."""
        return self.transports[0].name

    @property
    def lean(self) -> bool:
        """Whether requests go through the built-in HTTP/1.1 client first."""
        return self.transport == "http1"

    @property
    def batches(self) -> bool:
        """Whether :meth:`fetch_small_objects` fetches in batches (else it leaves every
        item to :meth:`store_object`)."""
        return self.transports[0].batches

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the connections."""
        for transport in self.transports:
            await transport.aclose()

    def url(self, path: str) -> str:
        """The full URL of ``path`` (redacted: no password)."""
        return redact_url(self.base + path)

    # -- the retry loop --------------------------------------------------------------------

    async def _request(
        self,
        path: str,
        consume: Callable[[Reply], Awaitable[_T]],
        *,
        optional: bool,
        what: str,
        attempt: int = 0,
    ) -> _T | None:
        """GET ``path`` and hand a 2xx reply to ``consume``, retrying transient failures.

        ``attempt``: how many attempts were already made (by a caller that fetched the
        body itself and found it bad)."""
        while True:
            failure: TransportError
            try:
                return await self._attempt(path, consume, optional, what)
            except TransportError as e:
                failure = e
            except ChecksumMismatchError as e:
                if attempt >= self.options.retries:
                    raise RemoteChecksumError(e.expected, e.actual, self.url(path), what) from None
                failure = TransportError(str(e))
            except InvalidObjectError as e:
                if attempt >= self.options.retries:
                    shown = self.url(path)
                    raise RemoteError(f"{shown}: invalid {what}: {e}", url=shown) from None
                failure = TransportError(str(e))
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

    async def _attempt(
        self,
        path: str,
        consume: Callable[[Reply], Awaitable[_T]],
        optional: bool,
        what: str,
    ) -> _T | None:
        """One attempt: the first transport that does not decline the response."""
        for transport in self.transports:
            self.stats.requests += 1
            try:
                async with transport.request(path) as reply:
                    return await self._respond(reply, path, consume, optional, what)
            except DeclinedError:
                continue
        shown = self.url(path)
        raise RemoteError(f"{shown}: no HTTP client could read the response", url=shown)

    async def _respond(
        self,
        reply: Reply,
        path: str,
        consume: Callable[[Reply], Awaitable[_T]],
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
            raise TransportError(f"HTTP {status}", status)
        shown = self.url(path)
        raise RemoteError(f"{shown}: HTTP {status} fetching {what}", url=shown, status=status)

    async def _read(self, reply: Reply, limit: int, what: str, path: str) -> bytes:
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

        async def consume(reply: Reply) -> bytes:
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

        async def consume(reply: Reply) -> int:
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
        """Fetch objects in one batch: (the objects fetched, with their bodies
        *unverified*, as ``store_object``'s ``small`` gets them; the items left to fetch
        one by one with :meth:`store_object`).

        Only when the first transport batches (the built-in client pipelines the batch on
        one connection; else every item is left over). Items whose reply was not a 2xx
        with a body up to :data:`SMALL_BODY` are left over, so that errors, retries and
        large bodies go through :meth:`store_object` as usual.
        """
        transport = self.transports[0]
        if not transport.batches or not items:
            return [], list(items)
        paths = [object_path(checksum, objtype) for checksum, objtype in items]
        results = await transport.get_many(paths, SMALL_BODY, BATCH_BUDGET)
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

        async def consume(reply: Reply) -> str:
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
