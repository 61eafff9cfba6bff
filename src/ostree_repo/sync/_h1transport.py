"""The built-in pipelining HTTP/1.1 client (:mod:`ostree_repo.sync._h1client`) as a
:class:`~ostree_repo.sync._transport.Transport`: the fast path for ``http://`` and
``https://`` remotes without a proxy."""

from __future__ import annotations

import contextlib
import math
import ssl
from collections.abc import AsyncIterator, Sequence

from ostree_repo import __version__
from ostree_repo.sync import _h1client
from ostree_repo.sync._transport import DeclinedError, Reply, TransportError
from ostree_repo.sync.options import RemoteOptions

__all__ = ["H1Transport"]


class H1Transport:
    """``options.connections`` persistent connections (at most ``concurrency``), the
    requests in flight pipelined over them; bodies up to ``eager_limit`` bytes are read
    with their head; ``ssl_context`` is for ``https://``. Raises ValueError for a URL or
    headers it cannot send as they are (then httpx must carry the requests)."""

    name = "http1"
    batches = True

    def __init__(
        self,
        base: str,
        options: RemoteOptions,
        ssl_context: ssl.SSLContext | None,
        *,
        eager_limit: int,
    ) -> None:
        connections = max(1, min(options.connections, options.concurrency))
        self.client = _h1client.Client(
            base,
            headers=options.headers,
            user_agent=f"ostree-repo/{__version__}",
            timeout=options.timeout,
            connections=connections,
            pipeline=math.ceil(options.concurrency / connections),
            eager_limit=eager_limit,
            ssl_context=ssl_context,
        )

    @contextlib.asynccontextmanager
    async def request(self, path: str) -> AsyncIterator[Reply]:
        try:
            async with self.client.stream(path) as response:
                yield response
        except _h1client.FallbackError:
            raise DeclinedError from None
        except _h1client.HTTPError as e:  # (also while the caller read the body)
            raise TransportError(str(e)) from None

    async def get_many(
        self, paths: Sequence[str], limit: int, budget: int
    ) -> list[tuple[int, bytes] | None]:
        return await self.client.get_many(paths, limit, budget)

    async def aclose(self) -> None:
        await self.client.aclose()
