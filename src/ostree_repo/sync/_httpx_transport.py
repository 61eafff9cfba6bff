"""httpx as a :class:`~ostree_repo.sync._transport.Transport`: proxies, HTTP/2, and the
responses the built-in client leaves to a full one (redirects, which it follows;
content codings). Imported only when a sync needs it."""

from __future__ import annotations

import contextlib
import ssl
from collections.abc import AsyncIterator, Sequence

import anyio
import httpx

from ostree_repo import __version__
from ostree_repo.store import CHUNK_SIZE
from ostree_repo.sync._transport import Reply, TransportError
from ostree_repo.sync.options import RemoteOptions

__all__ = ["HttpxTransport"]

#: Connections HTTP/2 multiplexes its streams on.
H2_CONNECTIONS = 2


class _HttpxReply:
    """An httpx response as a :class:`~ostree_repo.sync._transport.Reply`."""

    body = None

    def __init__(self, response: httpx.Response) -> None:
        self.response = response
        self.status = response.status_code
        length = response.headers.get("content-length")
        self.length = int(length) if length is not None and length.isdigit() else None

    def chunks(self) -> AsyncIterator[bytes]:
        return self.response.aiter_bytes(CHUNK_SIZE)


class HttpxTransport:
    """``options.concurrency`` requests in flight. HTTP/1.1 (``http2`` False): one
    client per request slot, each with a single keep-alive connection (with one shared
    pool, httpx polls every idle connection on each request, O(connections) per
    request); HTTP/2: one client whose streams are multiplexed on at most
    :data:`H2_CONNECTIONS` connections (a server that does not negotiate HTTP/2 gets
    HTTP/1.1 on those)."""

    batches = False

    def __init__(self, base: str, options: RemoteOptions, ssl_context: ssl.SSLContext, *,
                 http2: bool) -> None:  # fmt: skip
        self.base = base
        self.options = options
        self.http2 = http2
        self.name = "httpx-http2" if http2 else "httpx-http1"
        self._ssl = ssl_context
        self._limiter = anyio.CapacityLimiter(options.concurrency)
        self._clients: list[httpx.AsyncClient] = []  # every client made
        self._idle: list[httpx.AsyncClient] = []  # (HTTP/1.1) those not in use

    def _new_client(self) -> httpx.AsyncClient:
        o = self.options
        connections = H2_CONNECTIONS if self.http2 else 1
        return httpx.AsyncClient(
            headers={"User-Agent": f"ostree-repo/{__version__}", **dict(o.headers)},
            timeout=httpx.Timeout(o.timeout),
            limits=httpx.Limits(max_connections=connections, max_keepalive_connections=connections),
            http2=self.http2,
            verify=self._ssl,
            proxy=o.proxy,
            trust_env=o.trust_env,
            follow_redirects=True,
        )

    @contextlib.asynccontextmanager
    async def _client(self) -> AsyncIterator[httpx.AsyncClient]:
        if self.http2:
            if not self._clients:
                self._clients.append(self._new_client())
            yield self._clients[0]
            return
        # the limiter guarantees that at most ``concurrency`` clients are in use
        client = self._idle.pop() if self._idle else None
        if client is None:
            client = self._new_client()
            self._clients.append(client)
        try:
            yield client
        finally:
            self._idle.append(client)

    @contextlib.asynccontextmanager
    async def request(self, path: str) -> AsyncIterator[Reply]:
        async with self._limiter, self._client() as client:
            try:
                async with client.stream("GET", self.base + path) as response:
                    yield _HttpxReply(response)
            except httpx.TransportError as e:  # (also while the caller read the body)
                raise TransportError(f"{type(e).__name__}: {e}".rstrip(": ")) from None

    async def get_many(
        self, paths: Sequence[str], limit: int, budget: int
    ) -> list[tuple[int, bytes] | None]:
        return [None] * len(paths)

    async def aclose(self) -> None:
        for client in self._clients:
            await client.aclose()
