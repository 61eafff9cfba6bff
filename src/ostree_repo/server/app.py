"""The ASGI application that serves repository versions to ``ostree pull`` clients.

A raw ASGI app (no framework): it is what every ASGI server and framework can host, and
it is the fastest way to serve many small files from Python. See ``docs/serving.md``.
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any, NamedTuple

import anyio

from ostree_repo.errors import NotFoundError, OstreeRepoError, StoreError
from ostree_repo.objects import ObjectType
from ostree_repo.repository.closure import object_key
from ostree_repo.repository.layout import blob_path
from ostree_repo.repository.manager import RepositoryManager
from ostree_repo.server._bodies import Body, BytesBody, FileBody, StreamBody
from ostree_repo.server._http import Conditions, evaluate
from ostree_repo.server._routes import BadPathError, Route, parse_path
from ostree_repo.server._versions import ServedVersion, VersionCache, content_etag
from ostree_repo.server.auth import TokenSource, accepted_tokens, presented_token, token_ok
from ostree_repo.store import ObjectStore, is_filesystem_url, open_store

__all__ = ["OstreeServer", "create_app"]

log = logging.getLogger("ostree_repo.server")
access_log = logging.getLogger("ostree_repo.server.access")

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

#: Cache-Control of what never changes: objects (content-addressed) and pinned versions.
IMMUTABLE = "max-age=31536000, immutable"
#: Cache-Control of what the latest version may change: caches must revalidate (ETag).
REVALIDATE = "no-cache"

_OCTET = b"application/octet-stream"
_TEXT = b"text/plain; charset=utf-8"
_ALLOW = [(b"allow", b"GET, HEAD")]
_CACHE_CONTROL = {
    (private, immutable): f"{'private' if private else 'public'}, "
    f"{IMMUTABLE if immutable else REVALIDATE}".encode()
    for private in (False, True)
    for immutable in (False, True)
}
_PUBLIC_IMMUTABLE = _CACHE_CONTROL[False, True]
_CONTENT_ADDRESSED = frozenset(t for t in ObjectType if t.is_hashed)
_READ_FLAGS = os.O_RDONLY | getattr(os, "O_CLOEXEC", 0)
_CONDITION_HEADERS = {
    b"if-match": "if_match",
    b"if-none-match": "if_none_match",
    b"if-modified-since": "if_modified_since",
    b"if-unmodified-since": "if_unmodified_since",
    b"if-range": "if_range",
    b"range": "range",
}


class _Resource(NamedTuple):
    """A file a route resolved to: where its bytes are and how to label them."""

    etag: str
    immutable: bool
    data: bytes | None = None
    text: bool = False
    checksum: str = ""
    objtype: ObjectType | None = None
    size: int = -1
    blob: str | None = None


class _StatusError(Exception):
    """Answer with an error status (raised while resolving a request)."""

    def __init__(self, status: int, headers: list[tuple[bytes, bytes]] | None = None) -> None:
        super().__init__(status)
        self.status = status
        self.headers = headers or []


class OstreeServer:
    """An ASGI application serving every repository of a store, read-only.

    Use :func:`create_app` to make one. The application never writes to the store.
    """

    def __init__(
        self,
        store: ObjectStore | RepositoryManager | str,
        *,
        tokens: TokenSource | None = None,
        latest_ttl: float = 1.0,
        version_ttl: float = 2.0,
        max_cached_objects: int = 2_000_000,
        inline_read_max: int = 256 << 10,
        store_options: dict[str, Any] | None = None,
    ) -> None:
        self._url: str | None = None
        self._store: ObjectStore | None = None
        self._owned = False
        if isinstance(store, RepositoryManager):
            self._store = store.store
        elif isinstance(store, ObjectStore):
            self._store = store
        elif isinstance(store, str):
            self._url = store
        else:
            raise TypeError("store must be an ObjectStore, a RepositoryManager or a store URL")
        self._store_options = dict(store_options or {})
        self._tokens = tokens
        self._latest_ttl = latest_ttl
        self._version_ttl = version_ttl
        self._max_objects = max_cached_objects
        self._inline_max = inline_read_max
        self._cache: VersionCache | None = None
        self._open_lock: anyio.Lock | None = None

    # -- lifecycle -------------------------------------------------------------------------

    async def open(self) -> None:
        """Open the store if the app was given a URL (done on ASGI lifespan startup or on
        the first request, whichever comes first)."""
        if self._cache is not None:
            return
        if self._open_lock is None:
            self._open_lock = anyio.Lock()
        async with self._open_lock:
            if self._cache is not None:
                return
            if self._store is None:
                assert self._url is not None
                options = dict(self._store_options)
                if is_filesystem_url(self._url):
                    options.setdefault("create", False)  # serving never makes a store
                store = open_store(self._url, **options)
                await store.__aenter__()
                self._store, self._owned = store, True
            self._cache = VersionCache(
                self._store,
                latest_ttl=self._latest_ttl,
                version_ttl=self._version_ttl,
                max_objects=self._max_objects,
            )

    async def aclose(self) -> None:
        """Close the store if the app opened it (ASGI lifespan shutdown does this)."""
        if self._owned and self._store is not None:
            store, self._store, self._owned = self._store, None, False
            self._cache = None
            await store.aclose()

    @property
    def cache(self) -> VersionCache:
        """The version cache (after :meth:`open`)."""
        if self._cache is None:
            raise RuntimeError("the server is not open yet")
        return self._cache

    # -- ASGI ------------------------------------------------------------------------------

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind == "http":
            await self._http(scope, send)
        elif kind == "lifespan":
            await self._lifespan(receive, send)
        elif kind == "websocket":
            await send({"type": "websocket.close", "code": 1008})

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                try:
                    await self.open()
                except Exception as e:
                    log.error("cannot open the store: %s", e)
                    await send({"type": "lifespan.startup.failed", "message": str(e)})
                    return
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await self.aclose()
                await send({"type": "lifespan.shutdown.complete"})
                return

    async def _http(self, scope: Scope, send: Send) -> None:
        method: str = scope["method"]
        path = _route_path(scope)
        status, sent = 500, 0
        started = False

        async def tracked(message: Message) -> None:
            nonlocal started
            started = True
            await send(message)

        try:
            status, sent = await self._respond(scope, method, path, tracked)
        except _StatusError as reply:
            status = reply.status
            sent = await _send_error(send, status, reply.headers, method == "HEAD")
        except Exception:
            log.exception("error serving %s %r", method, path)
            if started:
                raise  # the response is under way: let the server abort the connection
            sent = await _send_error(send, 500, [], method == "HEAD")
        finally:
            if access_log.isEnabledFor(logging.INFO):
                client = scope.get("client")
                access_log.info(
                    '%s "%s %s" %d %d',
                    client[0] if client else "-",
                    method,
                    path,
                    status,
                    sent,
                )

    async def _respond(self, scope: Scope, method: str, path: str, send: Send) -> tuple[int, int]:
        try:
            route = parse_path(path)
        except BadPathError:
            raise _StatusError(400) from None
        if route is None:
            raise _StatusError(404)
        if method not in ("GET", "HEAD"):
            raise _StatusError(405, _ALLOW)
        headers: list[tuple[bytes, bytes]] = scope["headers"]
        accepted = (
            await accepted_tokens(self._tokens, route.repository)
            if self._tokens is not None
            else None
        )
        if accepted is not None:
            authorization = _header(headers, b"authorization")
            token = presented_token(authorization)
            if token is None:
                realm = f'realm="{route.repository}"'.encode()
                challenge = [
                    (b"www-authenticate", b"Bearer " + realm),
                    (b"www-authenticate", b"Basic " + realm + b', charset="UTF-8"'),
                ]
                raise _StatusError(401, challenge)
            if not token_ok(token, accepted):
                raise _StatusError(403)
        cache = self._cache
        if cache is None:
            await self.open()
            cache = self.cache
        version = await cache.version(route.repository, route.version)
        if version is None:
            raise _StatusError(404)
        if method == "GET" and route.objtype in _CONTENT_ADDRESSED and accepted is None:
            sent = await self._send_small_object(route, version, headers, send)
            if sent is not None:
                return 200, sent
        resource = await self._resolve(route, version)
        if resource is None:
            raise _StatusError(404)
        extensions = scope.get("extensions") or {}
        pathsend = "http.response.pathsend" in extensions
        return await self._send_resource(
            method=method,
            headers=headers,
            resource=resource,
            version=version,
            private=accepted is not None,
            pathsend=pathsend,
            send=send,
        )

    async def _send_small_object(
        self,
        route: Route,
        version: ServedVersion,
        headers: list[tuple[bytes, bytes]],
        send: Send,
    ) -> int | None:
        """Most of a pull, answered in one go: an unconditional public GET of a small
        object kept in a local file. How many bytes were sent; None when this request is
        not that (a condition or range, a large file, a store without local files),
        for the general path.

        Its size is the one its closure records (what HEAD answers), so one ``pread``
        reads it with no ``fstat``; a file of another size is damaged, and answered with
        a 500 as a missing one is.
        """
        for key, _ in headers:
            if key in _CONDITION_HEADERS:
                return None
        objtype = route.objtype
        assert objtype is not None
        checksum = route.checksum
        objects = await self.cache.objects(version)
        size = objects.get(object_key(objtype, checksum))
        if size is None:
            raise _StatusError(404)
        local = (
            self.cache.store.local_object_path(checksum, objtype)
            if size <= self._inline_max
            else None
        )
        if local is None:
            return None
        try:
            fd = os.open(local, _READ_FLAGS)
        except (FileNotFoundError, NotADirectoryError):
            raise NotFoundError(
                f"{objtype.value} object {checksum} is missing from the store"
            ) from None
        try:
            data = os.pread(fd, size + 1, 0)
        finally:
            os.close(fd)
        if len(data) != size:
            raise StoreError(f"{local} has {len(data)} bytes where its closure records {size}")
        start = [
            (b"etag", b'"%s"' % checksum.encode()),
            (b"last-modified", version.last_modified_header),
            (b"cache-control", _PUBLIC_IMMUTABLE),
            (b"accept-ranges", b"bytes"),
            (b"content-type", _OCTET),
            (b"content-length", b"%d" % size),
        ]
        await send({"type": "http.response.start", "status": 200, "headers": start})
        await send({"type": "http.response.body", "body": data})
        return size

    async def _resolve(self, route: Route, version: ServedVersion) -> _Resource | None:
        pinned = route.version is not None
        kind = route.kind
        if kind == "object":
            objtype = route.objtype
            assert objtype is not None
            if objtype is ObjectType.COMMITMETA:
                blob = version.commitmeta(route.checksum)
                return None if blob is None else _Resource(f'"{blob}"', pinned, blob=blob)
            if objtype is ObjectType.TOMBSTONE_COMMIT:
                data = version.tombstone(route.checksum)
                return None if data is None else _Resource(content_etag(data), pinned, data=data)
            objects = await self.cache.objects(version)
            size = objects.get(object_key(objtype, route.checksum))
            if size is None:
                return None
            return _Resource(
                f'"{route.checksum}"', True, checksum=route.checksum, objtype=objtype, size=size
            )
        if kind == "config":
            return _Resource(version.config_etag, pinned, data=version.config, text=True)
        if kind == "ref":
            commit = version.ref(route.ref, route.collection)
            if commit is None:
                return None
            data = f"{commit}\n".encode()
            return _Resource(content_etag(data), pinned, data=data, text=True)
        if kind in ("summary", "summary.sig"):
            record = version.record
            blob = record.summary if kind == "summary" else record.summary_sig
            return None if blob is None else _Resource(f'"{blob}"', pinned, blob=blob)
        if kind == "delta":
            delta = version.delta(route.delta)
            if delta is None:
                return None
            if route.member == "superblock":
                blob = delta.superblock
            else:
                index = int(route.member)
                if index >= len(delta.parts) or delta.parts[index] is None:
                    return None  # no such part, or one the superblock carries inline
                blob = delta.parts[index]
            return None if blob is None else _Resource(f'"{blob}"', pinned, blob=blob)
        if kind == "delta-index":
            data = version.delta_index(route.checksum)
            return None if data is None else _Resource(content_etag(data), pinned, data=data)
        return None

    async def _open_body(self, resource: _Resource) -> Body:
        store = self.cache.store
        if resource.data is not None:
            return BytesBody(resource.data)
        if resource.blob is not None:
            digest = resource.blob
            local = store.local_named_path(blob_path(digest))
            if local is not None:
                try:
                    return FileBody.open(local, inline_max=self._inline_max, digest=digest)
                except FileNotFoundError:
                    raise NotFoundError(f"blob {digest} is missing from the store") from None
            manager = store.open_named(blob_path(digest))
            stream = await manager.__aenter__()
            return StreamBody(stream, manager, digest)
        assert resource.objtype is not None
        local = store.local_object_path(resource.checksum, resource.objtype)
        if local is not None:
            try:
                return FileBody.open(local, inline_max=self._inline_max)
            except FileNotFoundError:
                raise NotFoundError(
                    f"{resource.objtype.value} object {resource.checksum} is missing from the store"
                ) from None
        manager = store.open_object(resource.checksum, resource.objtype)
        stream = await manager.__aenter__()
        return StreamBody(stream, manager)

    async def _send_resource(
        self,
        *,
        method: str,
        headers: list[tuple[bytes, bytes]],
        resource: _Resource,
        version: ServedVersion,
        private: bool,
        pathsend: bool,
        send: Send,
    ) -> tuple[int, int]:
        cache_control = _CACHE_CONTROL[private, resource.immutable]
        common = [
            (b"etag", resource.etag.encode()),
            (b"last-modified", version.last_modified_header),
            (b"cache-control", cache_control),
            (b"accept-ranges", b"bytes"),
        ]
        conditions = _conditions(headers)
        if conditions is not None:
            # 304/412 need no body: decide before touching the store
            no_range = conditions._replace(range=None)
            status, _ = evaluate(no_range, resource.etag, version.last_modified, 0, method)
            if status == 412:
                raise _StatusError(412)
            if status == 304:
                await send({"type": "http.response.start", "status": 304, "headers": common})
                await send({"type": "http.response.body", "body": b""})
                return 304, 0
        content_type = _TEXT if resource.text else _OCTET
        if method == "HEAD" and resource.size >= 0:
            # an object's size is known from the closure: no store access
            common += [(b"content-type", content_type), (b"content-length", b"%d" % resource.size)]
            await send({"type": "http.response.start", "status": 200, "headers": common})
            await send({"type": "http.response.body", "body": b""})
            return 200, 0
        body = await self._open_body(resource)
        try:
            size = body.size
            status, byte_range = 200, None
            if conditions is not None and conditions.range is not None:
                status, byte_range = evaluate(
                    conditions, resource.etag, version.last_modified, size, method
                )
            if status == 416:
                raise _StatusError(416, [(b"content-range", b"bytes */%d" % size)])
            if byte_range is None:
                start, end = 0, size - 1
                if body.small and method == "GET":
                    # the common case: a small file read (and checked) before answering
                    data = body.read_all()
                    common += [(b"content-type", content_type), (b"content-length", b"%d" % size)]
                    await send({"type": "http.response.start", "status": 200, "headers": common})
                    await send({"type": "http.response.body", "body": data})
                    return 200, size
            else:
                start, end = byte_range.start, byte_range.end
            common += [
                (b"content-type", content_type),
                (b"content-length", b"%d" % (end - start + 1)),
            ]
            if byte_range is not None:
                common.append((b"content-range", byte_range.content_range.encode()))
            await send({"type": "http.response.start", "status": status, "headers": common})
            if method == "HEAD":
                await send({"type": "http.response.body", "body": b""})
                return status, 0
            if pathsend and byte_range is None and body.path is not None:
                await send({"type": "http.response.pathsend", "path": body.path})
                return status, size
            return status, await _send_body(body, start, end, send)
        finally:
            await body.aclose()


async def _send_body(body: Body, start: int, end: int, send: Send) -> int:
    """Send bytes ``start``..``end`` of ``body``; return how many were sent."""
    if end < start:
        await send({"type": "http.response.body", "body": b""})
        return 0
    sent = 0
    pending: bytes | None = None
    async for chunk in body.chunks(start, end):
        if pending is not None:
            await send({"type": "http.response.body", "body": pending, "more_body": True})
            sent += len(pending)
        pending = chunk
    await send({"type": "http.response.body", "body": pending or b""})
    return sent + len(pending or b"")


async def _send_error(
    send: Send, status: int, headers: list[tuple[bytes, bytes]], head: bool
) -> int:
    body = {
        400: b"bad request\n",
        401: b"authentication required\n",
        403: b"forbidden\n",
        404: b"not found\n",
        405: b"method not allowed\n",
        412: b"precondition failed\n",
        416: b"range not satisfiable\n",
    }.get(status, b"internal server error\n")
    start = [
        (b"content-type", _TEXT),
        (b"content-length", b"%d" % len(body)),
        (b"cache-control", b"no-cache"),
        *headers,
    ]
    with contextlib.suppress(Exception):  # the response may have started already
        await send({"type": "http.response.start", "status": status, "headers": start})
        await send({"type": "http.response.body", "body": b"" if head else body})
        return 0 if head else len(body)
    return 0


def _route_path(scope: Scope) -> str:
    """The request path relative to where the app is mounted (ASGI ``root_path``)."""
    path: str = scope["path"]
    root: str = scope.get("root_path", "")
    if root and path.startswith(root) and (len(path) == len(root) or path[len(root)] == "/"):
        return path[len(root) :]
    return path


def _header(headers: list[tuple[bytes, bytes]], name: bytes) -> str | None:
    for key, value in headers:
        if key == name:
            return value.decode("latin-1")
    return None


def _conditions(headers: list[tuple[bytes, bytes]]) -> Conditions | None:
    found: dict[str, str] = {}
    for key, value in headers:
        field = _CONDITION_HEADERS.get(key)
        if field is not None:
            text = value.decode("latin-1")
            found[field] = f"{found[field]}, {text}" if field in found else text
    return Conditions(**found) if found else None


def create_app(
    store_or_manager: ObjectStore | RepositoryManager | str,
    *,
    tokens: TokenSource | None = None,
    latest_ttl: float = 1.0,
    version_ttl: float = 2.0,
    max_cached_objects: int = 2_000_000,
    inline_read_max: int = 256 << 10,
    store_options: dict[str, Any] | None = None,
) -> OstreeServer:
    """An ASGI application serving the repositories of a store to ``ostree pull`` clients.

    ``store_or_manager``: an open :class:`~ostree_repo.store.ObjectStore` or
    :class:`~ostree_repo.repository.RepositoryManager` (the caller keeps it open while
    the app runs), or a store URL that the app opens itself on ASGI lifespan startup (or
    on the first request) and closes on shutdown (``store_options`` are passed to
    :func:`~ostree_repo.store.open_store`).

    ``tokens``: optional access control, see :mod:`ostree_repo.server.auth`.
    ``latest_ttl``/``version_ttl``: seconds for which the latest version of a repository,
    and the existence of a pinned version, are cached. ``max_cached_objects``: bound of the
    cache of version object sets (about 150 bytes each). ``inline_read_max``: files of a
    filesystem store up to this size are read without a thread hop.

    The URL layout is ``/NAME/…`` (latest version) and ``/NAME/versions/N/…``; mount the
    app under any prefix (ASGI ``root_path`` is honoured).
    """
    if isinstance(store_or_manager, str) and not store_or_manager:
        raise OstreeRepoError("empty store URL")
    return OstreeServer(
        store_or_manager,
        tokens=tokens,
        latest_ttl=latest_ttl,
        version_ttl=version_ttl,
        max_cached_objects=max_cached_objects,
        inline_read_max=inline_read_max,
        store_options=store_options,
    )
