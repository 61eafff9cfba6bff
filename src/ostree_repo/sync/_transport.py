"""The interface between :class:`~ostree_repo.sync.remote.Remote` (retries, verification,
what to fetch) and the HTTP clients that carry its GETs.

A :class:`Transport` sends one GET per :meth:`~Transport.request` and yields the reply
(any status); it raises :class:`TransportError` for a failure worth retrying (a lost
connection, a timeout, a protocol violation, a truncated body: also while the body is
read) and :class:`DeclinedError` for a response it leaves to the next transport of the
remote's list (the built-in HTTP/1.1 client leaves redirects and content codings to
httpx). :meth:`~Transport.get_many` is an optional batched fast path: a transport
without one answers every item with None ("send it with :meth:`~Transport.request`").
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import AbstractAsyncContextManager
from typing import Protocol

__all__ = ["DeclinedError", "Deferred", "Reply", "Transport", "TransportError"]


class TransportError(Exception):
    """A failure worth retrying; ``status`` is the HTTP status if there was one."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class DeclinedError(Exception):
    """This transport does not handle this response: send the request with the next."""


class Reply(Protocol):
    """A response as the consumers see it, whichever transport fetched it."""

    @property
    def status(self) -> int: ...

    @property
    def length(self) -> int | None:
        """The Content-Length, if any."""

    @property
    def body(self) -> bytes | None:
        """The whole body when the transport already read it, else None."""

    def chunks(self) -> AsyncIterator[bytes]:
        """The body in pieces (raising :class:`TransportError` if it breaks off)."""


class Transport(Protocol):
    """Carries GETs of paths relative to one base URL."""

    #: what it is, for results and diagnostics ("http1", "httpx-http1", "httpx-http2")
    name: str
    #: whether :meth:`get_many` really batches (else every result is None)
    batches: bool

    def request(self, path: str) -> AbstractAsyncContextManager[Reply]:
        """``async with transport.request(path) as reply``: one GET."""
        ...

    async def get_many(
        self, paths: Sequence[str], limit: int, budget: int
    ) -> list[tuple[int, bytes] | None]:
        """(status, whole body) per path, in order, None for those left undone (bodies
        over ``limit``, anything after the bodies reach ``budget`` bytes, errors). Never
        raises :class:`TransportError`."""
        ...

    async def aclose(self) -> None:
        """Close the connections."""
        ...


class Deferred:
    """A transport made when first used (so that, e.g., httpx is imported only by a sync
    that needs it)."""

    batches = False

    def __init__(self, name: str, make: Callable[[], Transport]) -> None:
        self.name = name
        self._make = make
        self._transport: Transport | None = None

    def _get(self) -> Transport:
        if self._transport is None:
            self._transport = self._make()
        return self._transport

    def request(self, path: str) -> AbstractAsyncContextManager[Reply]:
        return self._get().request(path)

    async def get_many(
        self, paths: Sequence[str], limit: int, budget: int
    ) -> list[tuple[int, bytes] | None]:
        return await self._get().get_many(paths, limit, budget)

    async def aclose(self) -> None:
        if self._transport is not None:
            await self._transport.aclose()
