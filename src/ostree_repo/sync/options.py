"""How a sync talks to its remote: :class:`RemoteOptions`, and :class:`RemoteKeywords`
(the same options as typed keyword arguments of ``sync_repository`` and the blocking
facade's ``sync``)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TypedDict

import attrs

from ostree_repo.sync.errors import InvalidOptionsError

__all__ = ["RemoteKeywords", "RemoteOptions"]

#: Requests in flight by default (libostree keeps 8).
CONCURRENCY = 32
#: Connections of the built-in HTTP/1.1 client by default (requests in flight are
#: pipelined over them).
CONNECTIONS = 8


def _headers(value: Mapping[str, str] | None) -> Mapping[str, str]:
    return dict(value or {})


@attrs.frozen
class RemoteOptions:
    """How to talk to the remote.

    ``headers``: extra headers on every request (tokens; never echoed in errors).
    ``timeout``: seconds for connect, read and write (a stalled body counts).
    ``retries``: attempts after the first; ``backoff``: first delay in seconds, doubled
    each time up to ``max_backoff``. ``verify``: True, False or the path of a CA bundle
    (or directory). ``cert``: a client certificate (path, or (cert, key)). ``proxy``: a
    proxy URL. ``trust_env``: honour the ``*_PROXY``/``NO_PROXY`` environment variables
    (httpx's rule). ``concurrency``: requests in flight. ``connections``: connections of
    the built-in HTTP/1.1 client (HTTP/2 multiplexes on one or two).

    ``http2``: None (the default) lets the sync choose by measurement: the built-in
    HTTP/1.1 client wherever it applies (it was measured faster than HTTP/2 through
    httpx on https, see ``docs/sync.md``), HTTP/2 through a proxy when the ``h2`` package
    is installed; True asks for HTTP/2 on ``https://`` (when ``h2`` is installed); False
    never uses it. ``lean``: use the built-in pipelining HTTP/1.1 client where it applies;
    False sends everything through httpx.
    """

    headers: Mapping[str, str] = attrs.field(factory=dict, converter=_headers)
    timeout: float = 30.0
    retries: int = 5
    backoff: float = 0.25
    max_backoff: float = 10.0
    verify: bool | str = True
    cert: str | tuple[str, str] | None = None
    proxy: str | None = None
    http2: bool | None = None
    trust_env: bool = True
    lean: bool = True
    concurrency: int = CONCURRENCY
    connections: int = CONNECTIONS

    def __attrs_post_init__(self) -> None:
        if self.concurrency < 1 or self.connections < 1:
            raise InvalidOptionsError("concurrency and connections must be at least 1")
        if self.timeout <= 0 or self.retries < 0 or self.backoff < 0 or self.max_backoff < 0:
            raise InvalidOptionsError("timeout must be positive, retries and backoffs >= 0")


class RemoteKeywords(TypedDict, total=False):
    """:class:`RemoteOptions`' fields as keyword arguments (each overrides the field)."""

    headers: Mapping[str, str] | None
    timeout: float
    retries: int
    backoff: float
    max_backoff: float
    verify: bool | str
    cert: str | tuple[str, str] | None
    proxy: str | None
    http2: bool | None
    trust_env: bool
    lean: bool
    concurrency: int
    connections: int
