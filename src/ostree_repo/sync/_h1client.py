"""A lean HTTP/1.1 client for fetching many files from one server: persistent connections
and request pipelining, nothing else.

A sync fetches tens of thousands of small objects; a general-purpose client spends about
a millisecond of CPU on each request, more than the transfer itself. :class:`Client`
keeps a fixed number of keep-alive connections to one origin and pipelines GET requests
on them (several requests written before the first response is read; responses come back
in order). Per request it writes one preformatted request and parses one response head.
The bytes are parsed by the sans-IO :class:`~ostree_repo.sync._h1parser.ResponseParser`
(one per connection); this module does the I/O, the pipelining and the recovery.

Each request takes a *ticket* on a connection: it writes its request (or lets the task
that is already writing on that connection do it), waits until the response before its
own has been read, then reads its own response head and, for bodies up to
``eager_limit``, its body, and hands the connection's read side to the next ticket. A
larger body, a chunked body or one that lasts until the connection closes is streamed
by the caller while it holds the read side. Tickets exist because HTTP/1.1 answers
pipelined requests strictly in order on one byte stream: the ticket chain (each waits for
the ``done`` event of the one before) is the order in which tasks may read, and a task
never reads bytes that belong to another's response.

What it handles: ``Content-Length``, ``Transfer-Encoding: chunked`` (with trailers),
bodies delimited by the connection closing, ``Connection: close`` and HTTP/1.0 replies
(the connection is not reused; requests already written behind it are sent again on
another connection), 1xx interim responses, bodies of 204/304. Response heads are
bounded (:data:`MAX_HEAD`); every read, write and connect is bounded by ``timeout``
(so a stalled body times out). Until the server has answered once with a persistent
connection, requests are not pipelined.

:meth:`Client.get_many` is a batched fast path for many small bodies: it borrows one
connection for itself (no other request is written on it meanwhile), keeps up to
``pipeline`` of its requests in flight there and reads each response whole, without a
ticket per request. It stops at the first response it cannot read whole (too large,
chunked, until close, a redirect or content coding), at ``Connection: close`` and at any
error, and reports the requests left unanswered so that the caller sends them one by one.

What it refuses, raising :class:`FallbackError` so that the caller can use a full client:
redirects (3xx other than 304), a ``Content-Encoding`` other than identity, transfer
codings other than chunked. Protocol violations, lost connections and timeouts raise
:class:`HTTPError` (worth retrying). Requests written behind one that failed, which
never got an answer, are sent again on another connection without an error.

Works on any anyio backend (asyncio, trio); ``https`` uses the given ``ssl.SSLContext``.
"""

from __future__ import annotations

import asyncio
import base64
import collections
import contextlib
import re
import ssl
import typing
import urllib.parse
from collections.abc import AsyncIterator, Mapping, Sequence
from typing import Final

import anyio
import anyio.abc

from ostree_repo.sync._h1parser import (
    CLOSED,
    END,
    MAX_HEAD,
    HTTPError,
    ResponseHead,
    ResponseParser,
    UnsupportedFramingError,
)

__all__ = [
    "DEFAULT_PORTS",
    "MAX_HEAD",
    "BodyTooLargeError",
    "Client",
    "FallbackError",
    "HTTPError",
    "HTTPTimeoutError",
    "Response",
]

#: Bytes asked for per receive (anyio streams).
RECEIVE_SIZE: Final = 256 * 1024
#: Unread bytes buffered before an asyncio connection stops reading from its socket.
HIGH_WATER: Final = 1024 * 1024
#: A body left unread up to this size is read and dropped to keep the connection.
DRAIN_LIMIT: Final = 1024 * 1024
#: Times one request is sent again for free when a reused connection closes right under it.
MAX_FREE_RESENDS: Final = 3

DEFAULT_PORTS: Final = {"http": 80, "https": 443}

_TOKEN = re.compile(rb"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
_CONNECTION_ERRORS = (
    OSError,
    ssl.SSLError,
    anyio.BrokenResourceError,
    anyio.ClosedResourceError,
    anyio.EndOfStream,
)


class HTTPTimeoutError(HTTPError):
    """Nothing arrived (or could be sent) within the timeout."""


class FallbackError(Exception):
    """The response needs a full HTTP client (a redirect, a content coding): send the
    request with one. ``status`` is the response's status."""

    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.status = status


class BodyTooLargeError(Exception):
    """A body exceeded the limit given to :meth:`Response.read`."""


class _ResendError(Exception):
    """The request got no answer on its connection through no fault of its own.

    A server may close an idle keep-alive connection at any time, and pipelined requests
    behind a response that said ``Connection: close`` are never answered: such requests
    are sent again on another connection, without counting as a failure. ``free``
    resends (the request was never reached) are unlimited; a reused connection closing
    right under the request itself is allowed :data:`MAX_FREE_RESENDS` times, so that a
    server that always drops a request is not asked forever."""

    def __init__(self, free: bool) -> None:
        super().__init__()
        self.free = free  # False: a reused connection closed under this very request


class Response:
    """One response: ``status``, ``reason``, ``headers`` (lower-case names, repeated
    fields joined with ``", "``), ``length`` (the Content-Length, None when the body is
    chunked or lasts until the connection closes), and ``body`` when it was read with
    the head (bodies up to the client's ``eager_limit``). Otherwise read the body with
    :meth:`read` or :meth:`chunks` inside the ``async with client.stream(...)`` block."""

    __slots__ = (
        "_conn",
        "_ticket",
        "body",
        "close",
        "complete",
        "framing",
        "headers",
        "length",
        "reason",
        "status",
    )

    def __init__(self, conn: _Connection, ticket: _Ticket, head: ResponseHead) -> None:
        self._conn = conn
        self._ticket = ticket
        self.status = head.status
        self.reason = head.reason
        self.headers = head.headers
        self.length = head.length
        self.framing = head.framing
        self.close = head.close
        self.body: bytes | None = None
        self.complete = False

    async def read(self, limit: int) -> bytes:
        """The whole body; :class:`BodyTooLargeError` beyond ``limit`` bytes."""
        if self.body is not None:
            if len(self.body) > limit:
                raise BodyTooLargeError(f"body of {len(self.body)} bytes exceeds {limit}")
            return self.body
        if self.length is not None and self.length > limit:
            raise BodyTooLargeError(f"body of {self.length} bytes exceeds {limit}")
        parts = bytearray()
        while (part := await self._conn.body_part(self)) is not None:
            parts += part
            if len(parts) > limit:
                raise BodyTooLargeError(f"body exceeds {limit} bytes")
        return bytes(parts)

    def chunks(self) -> AsyncIterator[bytes]:
        """The body, piece by piece as it arrives."""
        return _BodyIterator(self)


class _BodyIterator:
    """An async iterator over a body (a class, not a generator: nothing to finalise)."""

    __slots__ = ("_response", "_sent")

    def __init__(self, response: Response) -> None:
        self._response = response
        self._sent = False

    def __aiter__(self) -> _BodyIterator:
        return self

    async def __anext__(self) -> bytes:
        response = self._response
        if response.body is not None:
            if self._sent or not response.body:
                raise StopAsyncIteration
            self._sent = True
            return response.body
        part = await response._conn.body_part(response)
        if part is None:
            raise StopAsyncIteration
        return part


class _Ticket:
    """A request's place on a connection: its index and the turn of the read side.

    ``previous`` is set when the response before this one has been read (or given up),
    so the read side passes from ticket to ticket in the order the requests were
    written; ``done`` is this ticket's turn ending (set exactly once, by
    :meth:`_Connection.release`)."""

    __slots__ = ("done", "index", "previous")

    def __init__(self, index: int, previous: anyio.Event | None) -> None:
        self.index = index
        self.previous = previous
        self.done = anyio.Event()


class _Connection:
    """One connection and the requests pipelined on it, answered in order.

    The I/O primitives (:meth:`_open`, :meth:`_queue`, :meth:`_push`, :meth:`_fill`,
    :meth:`_shutdown`) are the subclasses': asyncio's protocol API where it is available
    (no per-read overhead), anyio streams elsewhere."""

    def __init__(self, client: Client) -> None:
        self.client = client
        self.parser = ResponseParser()
        self.tail: anyio.Event | None = None
        self.submitted = 0
        self.inflight = 0
        self.served = 0
        self.usable = True  # takes new requests
        self.failure: HTTPError | None = None  # why it died, if it did
        self.closed = False

    # -- I/O primitives ----------------------------------------------------------------

    async def _open(self) -> None:
        """Connect; on failure, :meth:`kill` the connection (the first ticket reports it)."""
        raise NotImplementedError

    def _queue(self, request: bytes) -> None:
        """Have ``request`` written (now or once connected)."""
        raise NotImplementedError

    async def _push(self) -> None:
        """Write queued requests if this transport needs a task to do it."""

    async def _fill(self) -> bool:
        """Wait for more bytes and feed them to :attr:`parser`; at the end of the stream
        feed it the end and return False."""
        raise NotImplementedError

    async def _shutdown(self) -> None:
        """Close the transport."""
        raise NotImplementedError

    # -- requests ----------------------------------------------------------------------

    def submit(self, request: bytes) -> _Ticket:
        ticket = _Ticket(self.submitted, self.tail)
        self.submitted += 1
        self.inflight += 1
        self.tail = ticket.done
        self._queue(request)
        return ticket

    async def exchange(self, ticket: _Ticket) -> Response:
        """Send (or have sent) the ticket's request and read its response head."""
        try:
            if ticket.index == 0:
                await self._open()
            await self._push()
            previous = ticket.previous
            if previous is not None and not previous.is_set():
                await previous.wait()
            if self.failure is not None or not self.usable:
                if self.failure is not None and self.served == 0 and ticket.index == 0:
                    raise self.failure  # the connection never worked: the first one pays
                raise _ResendError(free=True)
            return await self._response(ticket)
        except BaseException as e:
            if isinstance(e, HTTPError):
                self.kill(e)
            elif isinstance(e, _ResendError):
                if not e.free:
                    self.kill(HTTPError("connection closed"))
            else:
                self.kill(HTTPError("interrupted"))
            await self.release(ticket)
            raise

    async def release(self, ticket: _Ticket) -> None:
        """The ticket is finished with: pass the read side on; close when unused."""
        if not ticket.done.is_set():
            ticket.done.set()
            self.inflight -= 1
            if (self.failure is not None or not self.usable) and self.inflight == 0:
                await self.close()

    def kill(self, failure: HTTPError) -> None:
        """Give the connection up; requests behind the current one are sent elsewhere."""
        if self.failure is None:
            self.failure = failure
        self.retire()

    def retire(self) -> None:
        """Take no new requests; close once the ones in flight are answered."""
        self.usable = False
        with contextlib.suppress(ValueError):
            self.client._conns.remove(self)
        if not self.inflight:
            self.client._closing.append(self)

    async def close(self) -> None:
        if not self.closed:
            self.closed = True
            self.usable = False
            self.client._all.discard(self)
            with anyio.CancelScope(shield=True):
                await self._shutdown()

    async def batch(
        self,
        ticket: _Ticket,
        requests: Sequence[bytes],
        limit: int,
        results: list[tuple[int, bytes] | None],
        budget: int,
    ) -> None:
        """Send ``requests`` (the connection is the caller's alone, ``ticket`` its turn)
        with up to ``pipeline`` in flight and fill ``results`` with each (status, body),
        in order, until one cannot be read whole within ``limit`` bytes, the server
        closes or something fails: the connection is then given up (never left with a
        body half read) and the remaining results stay None. Once the bodies add up to
        ``budget`` bytes no more requests are sent (those results stay None too).

        The whole batch is one ticket: no other task reads or writes on the connection
        meanwhile, so a window of ``pipeline`` requests can be kept in flight (one sent
        for each answer read) without a ticket, event or context manager per request."""
        total = len(requests)
        sent = received = 0
        depth = self.client.pipeline
        parser = self.parser
        try:
            if ticket.index == 0:
                await self._open()
            if self.failure is not None:
                return
            while sent < total and sent < depth:
                self._queue(requests[sent])
                sent += 1
            self.submitted += sent
            await self._push()
            previous = ticket.previous
            if previous is not None and not previous.is_set():
                await previous.wait()
            for index in range(total):
                if index == sent:
                    return  # the budget was spent: the rest were not sent
                if self.failure is not None or not self.usable:
                    return
                head = await self._head()
                if head is None:
                    raise HTTPError("connection closed")
                length = head.length
                if (
                    length is None
                    or length > limit
                    or head.framing != "length"
                    or _fallback_reason(head) is not None
                ):
                    self.kill(HTTPError("response left to a single request"))
                    return
                if self.served == 0:
                    self.client.keepalive = not head.close
                while (body := parser.body_whole()) is None:
                    await self._fill()
                self._served(head.close)  # retires the connection after "close"
                results[index] = (head.status, body)
                received += len(body)
                if sent < total and self.usable and received < budget:
                    self._queue(requests[sent])
                    self.submitted += 1
                    sent += 1
                    await self._push()
        except HTTPError as e:
            self.kill(e)
        except (FallbackError, UnsupportedFramingError):
            self.kill(HTTPError("response left to a full client"))
        except BaseException:
            self.kill(HTTPError("interrupted"))
            raise

    # -- reading -----------------------------------------------------------------------

    async def _head(self) -> ResponseHead | None:
        """The next response head; None if the stream ended before its first byte."""
        parser = self.parser
        while (head := parser.next_head()) is None:
            await self._fill()  # (after the end of the stream, next_head never gives None)
        return None if head is CLOSED else head

    async def _response(self, ticket: _Ticket) -> Response:
        try:
            head = await self._head()
        except HTTPTimeoutError:
            raise
        except UnsupportedFramingError as e:
            self.kill(HTTPError(str(e)))
            raise FallbackError(str(e), e.status) from None
        except HTTPError:
            if self.served > 0 and not self.parser.buffered:
                raise _ResendError(free=False) from None  # a reused connection went away
            raise
        if head is None:
            if self.served == 0:
                raise HTTPError("the server closed the connection without a response")
            raise _ResendError(free=False)
        response = Response(self, ticket, head)
        client = self.client
        if self.served == 0:
            client.keepalive = not response.close
        length = response.length
        if length is not None and length <= client.eager_limit:
            parser = self.parser
            while (body := parser.body_whole()) is None:
                await self._fill()
            response.body = body
            self._complete(response)
            await self.release(ticket)
        return response

    async def body_part(self, response: Response) -> bytes | None:
        """The next piece of ``response``'s body; None after the last."""
        if response.complete:
            return None
        parser = self.parser
        while (part := parser.next_data()) is None:
            await self._fill()  # (after the end of the stream, next_data never gives None)
        if part is END:
            self._complete(response)
            return None
        if not parser.in_body:
            self._complete(response)  # that was the last piece
        return part

    def _served(self, close: bool) -> None:
        self.served += 1
        if close:
            self.retire()  # requests written behind this one get sent elsewhere

    def _complete(self, response: Response) -> None:
        response.complete = True
        self._served(response.close)

    async def finish(self, response: Response, ok: bool) -> None:
        """After the caller is done with ``response``: read what is left of a small
        body (when ``ok``) or give the connection up, then pass the read side on."""
        try:
            if not response.complete:
                if ok and response.framing != "close":
                    drained = 0
                    while (part := await self.body_part(response)) is not None:
                        drained += len(part)
                        if drained > DRAIN_LIMIT:
                            self.kill(HTTPError("response body left unread"))
                            break
                else:
                    self.kill(HTTPError("response body left unread"))
        except HTTPError as e:
            self.kill(e)
        except BaseException:
            self.kill(HTTPError("interrupted"))
            raise
        finally:
            await self.release(response._ticket)


class _AsyncioConnection(_Connection, asyncio.Protocol):
    """A connection on asyncio's transport and protocol API: bytes land in the parser
    as they arrive, requests queued in one loop iteration go out in one write."""

    def __init__(self, client: Client) -> None:
        super().__init__(client)
        self._loop = asyncio.get_running_loop()
        self._transport: asyncio.Transport | None = None
        self._out: list[bytes] = []
        self._flush_soon = False
        self._waiter: asyncio.Future[None] | None = None
        self._eof = False
        self._lost: BaseException | None = None
        self._paused = False

    # protocol callbacks

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # (uvloop's transports implement the interface without subclassing it)
        self._transport = typing.cast(asyncio.Transport, transport)
        self._flush()

    def data_received(self, data: bytes) -> None:
        # (readers never hold a buffer position across a wait, so the parser may compact
        # its buffer now; it does once enough was consumed, else a reader that never
        # waits would keep every byte)
        parser = self.parser
        parser.feed(data)
        if parser.buffered > HIGH_WATER and not self._paused and self._transport:
            self._transport.pause_reading()
            self._paused = True
        self._wake()

    def eof_received(self) -> bool:
        self._eof = True
        self._wake()
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        self._eof = True
        self._lost = exc
        self._wake()

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    # primitives

    async def _open(self) -> None:
        client = self.client
        try:
            with anyio.fail_after(client.timeout):
                await self._loop.create_connection(
                    lambda: self,
                    client.host,
                    client.port,
                    ssl=client.ssl_context,
                    server_hostname=client.host if client.ssl_context is not None else None,
                )
        except TimeoutError:
            self.kill(HTTPTimeoutError(f"connecting to {client.origin} timed out"))
        except (OSError, ssl.SSLError) as e:
            self.kill(HTTPError(f"cannot connect to {client.origin}: {_why(e)}"))
        else:
            client.opened += 1

    def _queue(self, request: bytes) -> None:
        # requests queued in one iteration of the event loop go out in one write
        self._out.append(request)
        if self._transport is not None and not self._flush_soon:
            self._flush_soon = True
            self._loop.call_soon(self._flush)

    def _flush(self) -> None:
        self._flush_soon = False
        transport = self._transport
        if self._out and transport is not None and not transport.is_closing():
            transport.write(b"".join(self._out))
        self._out.clear()

    async def _fill(self) -> bool:
        parser = self.parser
        parser.compact()
        if self._paused and self._transport is not None:
            self._transport.resume_reading()
            self._paused = False
        if self._eof or self.closed:
            return self._ended()
        have = parser.buffered
        waiter = self._loop.create_future()
        self._waiter = waiter
        timer = self._loop.call_later(self.client.timeout, _expire, waiter)
        try:
            await waiter
        except TimeoutError:
            raise HTTPTimeoutError(f"no data for {self.client.timeout:g} s (timed out)") from None
        finally:
            timer.cancel()
            self._waiter = None
        return parser.buffered > have or self._ended()

    def _ended(self) -> bool:
        if self._lost is not None:
            raise HTTPError(f"connection lost: {_why(self._lost)}")
        if self.closed:
            raise HTTPError("connection closed")
        self.parser.feed_eof()
        return False

    async def _shutdown(self) -> None:
        transport = self._transport
        if transport is not None:
            if self.failure is None:
                transport.close()
            else:
                transport.abort()


def _expire(waiter: asyncio.Future[None]) -> None:
    if not waiter.done():
        waiter.set_exception(TimeoutError())


class _StreamConnection(_Connection):
    """A connection on an anyio byte stream (any backend, e.g. trio)."""

    def __init__(self, client: Client) -> None:
        super().__init__(client)
        self._stream: anyio.abc.ByteStream | None = None
        self._out: list[bytes] = []
        self._sending = False

    async def _open(self) -> None:
        client = self.client
        try:
            with anyio.fail_after(client.timeout):
                if client.ssl_context is not None:
                    self._stream = await anyio.connect_tcp(
                        client.host,
                        client.port,
                        ssl_context=client.ssl_context,
                        tls_standard_compatible=False,
                    )
                else:
                    self._stream = await anyio.connect_tcp(client.host, client.port)
        except TimeoutError:
            self.kill(HTTPTimeoutError(f"connecting to {client.origin} timed out"))
        except _CONNECTION_ERRORS as e:
            self.kill(HTTPError(f"cannot connect to {client.origin}: {_why(e)}"))
        else:
            client.opened += 1

    def _queue(self, request: bytes) -> None:
        self._out.append(request)

    async def _push(self) -> None:
        # one task writes at a time; requests queued meanwhile go out with its next send
        if self._sending or self._stream is None:
            return
        self._sending = True
        try:
            while self._out and self.failure is None and not self.closed:
                data = b"".join(self._out)
                self._out.clear()
                try:
                    with anyio.fail_after(self.client.timeout):
                        await self._stream.send(data)
                except TimeoutError:
                    self.kill(HTTPTimeoutError("sending the request timed out"))
                except _CONNECTION_ERRORS as e:
                    self.kill(HTTPError(f"connection lost while sending: {_why(e)}"))
        finally:
            self._sending = False

    async def _fill(self) -> bool:
        stream = self._stream
        if stream is None or self.closed:
            self.parser.feed_eof()
            return False
        try:
            with anyio.fail_after(self.client.timeout):
                data = await stream.receive(RECEIVE_SIZE)
        except anyio.EndOfStream:
            self.parser.feed_eof()
            return False
        except TimeoutError:
            raise HTTPTimeoutError(f"no data for {self.client.timeout:g} s (timed out)") from None
        except _CONNECTION_ERRORS as e:
            raise HTTPError(f"connection lost: {_why(e)}") from None
        self.parser.compact()
        self.parser.feed(data)
        return True

    async def _shutdown(self) -> None:
        if self._stream is not None:
            with contextlib.suppress(*_CONNECTION_ERRORS):
                await self._stream.aclose()


def _fallback_reason(response: Response | ResponseHead) -> str | None:
    """Why a full client should handle ``response`` (None when this one can)."""
    if 300 <= response.status < 400 and response.status != 304:
        return f"redirected (HTTP {response.status})"
    encoding = response.headers.get("content-encoding", "identity").strip().lower()
    if encoding not in ("identity", ""):
        return f"content coding {encoding!r}"
    return None


def _why(e: BaseException) -> str:
    text = str(e) or type(e).__name__
    cause = e.__cause__
    if not str(e) and cause is not None:
        text = f"{type(e).__name__}: {cause}"
    return text


class Client:
    """Keep-alive, pipelining GET client for one origin (``scheme://host:port``).

    ``base``: the URL that request paths are relative to (``http://host/repo/``).
    ``headers``: sent with every request (besides Host, User-Agent, Accept and
    Accept-Encoding: identity); header names and values are never shown in errors.
    ``connections * pipeline`` requests are in flight at most. ``timeout`` bounds
    every connect, write and read. Bodies up to ``eager_limit`` bytes are read with their
    head. ``ssl_context`` is used for ``https``. ``native``: on asyncio, use its transport
    and protocol API (False: anyio streams, as on other backends).

    ``async with client.stream(path) as response: ...``; :meth:`aclose` at the end.
    Raises ValueError at construction for URLs or headers it cannot send verbatim.
    """

    def __init__(
        self,
        base: str,
        *,
        headers: Mapping[str, str] | None = None,
        user_agent: str = "ostree-repo",
        timeout: float = 30.0,
        connections: int = 8,
        pipeline: int = 8,
        eager_limit: int = 1024 * 1024,
        ssl_context: ssl.SSLContext | None = None,
        native: bool = True,
    ) -> None:
        parts = urllib.parse.urlsplit(base)
        if parts.scheme not in DEFAULT_PORTS or not parts.hostname:
            raise ValueError("only http:// and https:// URLs with a host")
        if parts.query or parts.fragment:
            raise ValueError("base URLs with a query or fragment are not supported")
        self.scheme = parts.scheme
        self.host = parts.hostname
        port = parts.port or DEFAULT_PORTS[parts.scheme]
        self.port = port
        host_header = f"[{self.host}]" if ":" in self.host else self.host
        if port != DEFAULT_PORTS[parts.scheme]:
            host_header += f":{port}"
        self.origin = f"{self.scheme}://{host_header}"
        self.base_path = parts.path if parts.path.endswith("/") else parts.path + "/"
        self.timeout = timeout
        self.connections = max(1, connections)
        self.pipeline = max(1, pipeline)
        self.limit = self.connections * self.pipeline
        self.eager_limit = eager_limit
        self.native = native
        self.ssl_context = ssl_context if self.scheme == "https" else None
        if self.scheme == "https" and ssl_context is None:
            self.ssl_context = ssl.create_default_context()
        fields: dict[str, tuple[str, str]] = {}

        def put(name: str, value: str) -> None:
            fields[name.lower()] = (name, value)

        put("Host", host_header)
        put("Accept", "*/*")
        put("Accept-Encoding", "identity")
        put("Connection", "keep-alive")
        put("User-Agent", user_agent)
        for name, value in (headers or {}).items():
            put(name, value)
        if parts.username is not None or parts.password is not None:
            user = urllib.parse.unquote(parts.username or "")
            password = urllib.parse.unquote(parts.password or "")
            token = base64.b64encode(f"{user}:{password}".encode()).decode("ascii")
            put("Authorization", f"Basic {token}")
        block = bytearray()
        for name, value in fields.values():
            raw_name, raw_value = name.encode("ascii"), value.encode("latin-1")
            if not _TOKEN.fullmatch(raw_name) or any(c in raw_value for c in b"\r\n\0"):
                raise ValueError("a header name or value cannot be sent as it is")
            block += raw_name + b": " + raw_value + b"\r\n"
        self._header_block = bytes(block) + b"\r\n"
        self._conns: list[_Connection] = []  # those taking requests
        self._all: set[_Connection] = set()  # every connection not closed yet
        self._closing: list[_Connection] = []  # idle connections to close
        self._active = 0
        self._waiters: collections.deque[anyio.Event] = collections.deque()
        self._gathering = anyio.Lock()  # one get_many at a time collects its slots
        self._borrowed = 0  # connections taken out of _conns by get_many
        #: whether the server keeps connections open (None until its first answer)
        self.keepalive: bool | None = None
        #: requests sent again because their connection closed before answering them
        self.resent = 0
        self.opened = 0

    def request_bytes(self, path: str) -> bytes:
        """The request line and headers of a GET of ``path`` (relative to the base)."""
        target = urllib.parse.quote(self.base_path + path, safe="/!$&'()*+,;=:@-._~%")
        return b"GET " + target.encode("ascii") + b" HTTP/1.1\r\n" + self._header_block

    async def _acquire(self) -> None:
        if self._active < self.limit and not self._waiters:
            self._active += 1
            return
        event = anyio.Event()
        self._waiters.append(event)
        try:
            await event.wait()
        except BaseException:
            if event.is_set():
                self._release()  # a slot was handed over meanwhile: pass it on
            else:
                self._waiters.remove(event)
            raise

    def _release(self) -> None:
        if self._waiters:
            self._waiters.popleft().set()  # hand the slot over
        else:
            self._active -= 1

    def _pick(self) -> _Connection:
        """The connection for the next request: the least busy one below the pipeline
        depth, or a new one while there is room (spreading requests before queueing
        them behind others). Until the first answer shows that the server keeps
        connections open, each connection carries one request at a time: pipelining to
        a server that closes after each response would only make every request behind
        the first wait and be sent again."""
        if self.keepalive:
            depth, most = self.pipeline, self.connections
            if len(self._conns) > most:  # opened before pipelining was known to work
                for conn in self._conns[most:]:
                    conn.retire()
        else:  # not known yet, or no: one request per connection at a time
            depth, most = 1, self.limit
        best: _Connection | None = None
        for conn in self._conns:
            if conn.inflight < depth and (best is None or conn.inflight < best.inflight):
                best = conn
                if not conn.inflight:
                    break
        if best is None or (best.inflight and len(self._conns) + self._borrowed < most):
            best = self._new_connection()
            self._conns.append(best)
        return best

    def _new_connection(self) -> _Connection:
        conn: _Connection
        if self.native and _on_asyncio():
            conn = _AsyncioConnection(self)
        else:
            conn = _StreamConnection(self)
        self._all.add(conn)
        return conn

    def _borrow(self) -> _Connection:
        """A connection for :meth:`get_many` alone, out of :attr:`_conns` (so no other
        request is written on it): an idle one, a new one if there is room, else the
        least busy one (its requests in flight are answered before the borrower's).

        Taking it out of :attr:`_conns` is what makes the borrower the only writer and
        reader after the tickets already on it; :attr:`_borrowed` keeps the connection
        count within ``connections`` while it is out; :meth:`get_many` puts it back
        when the batch leaves it usable."""
        best: _Connection | None = None
        for conn in self._conns:
            if best is None or conn.inflight < best.inflight:
                best = conn
                if not conn.inflight:
                    break
        if best is None or (best.inflight and len(self._conns) + self._borrowed < self.connections):
            best = self._new_connection()
        else:
            self._conns.remove(best)
        self._borrowed += 1
        return best

    async def get_many(
        self, paths: Sequence[str], limit: int, budget: int | None = None
    ) -> list[tuple[int, bytes] | None]:
        """GET every path on one connection, pipelined; (status, body) of each, in order.

        A fast path for many small bodies: no per-request ticket, context manager or
        limiter round trip. It takes ``pipeline`` of the client's request slots and a
        connection to itself, and keeps up to ``pipeline`` requests in flight on it. A
        None result means "not done, send it with :meth:`stream`": every result after a
        response this cannot read whole (Content-Length above ``limit``, chunked or
        until close, a redirect or content coding), after ``Connection: close``, after
        any error (lost connection, timeout, protocol violation), and all of them until
        the server is known to keep connections open. Once the bodies read add up to
        ``budget`` bytes (default: no limit), no more requests are sent: the results of
        those not sent are None too, and memory stays within ``budget + pipeline *
        limit``. Never raises :class:`HTTPError`.
        """
        results: list[tuple[int, bytes] | None] = [None] * len(paths)
        if not paths or not self.keepalive:
            return results
        requests = [self.request_bytes(path) for path in paths]
        while self._closing:
            await self._closing.pop().close()
        taken = 0
        try:
            async with self._gathering:  # (two collecting at once could starve each other)
                while taken < self.pipeline:
                    await self._acquire()
                    taken += 1
            conn = self._borrow()
            ticket = _Ticket(conn.submitted, conn.tail)
            conn.tail = ticket.done
            conn.inflight += 1
            try:
                await conn.batch(
                    ticket, requests, limit, results, budget if budget is not None else 1 << 62
                )
            finally:
                self._borrowed -= 1
                if conn.usable and conn.failure is None and not conn.closed:
                    self._conns.append(conn)
                await conn.release(ticket)
        finally:
            for _ in range(taken):
                self._release()
        return results

    @contextlib.asynccontextmanager
    async def stream(self, path: str) -> AsyncIterator[Response]:
        """GET ``path``: ``async with client.stream(path) as response``.

        Raises :class:`HTTPError` (retry it), :class:`FallbackError` (use a full client).
        Leaving the block passes the connection on: a body not read to its end is
        read and dropped if small, else the connection is closed.
        """
        request = self.request_bytes(path)
        while self._closing:
            await self._closing.pop().close()
        await self._acquire()
        try:
            resends = 0
            while True:
                conn = self._pick()
                ticket = conn.submit(request)
                try:
                    response = await conn.exchange(ticket)
                except _ResendError as e:
                    self.resent += 1
                    if not e.free:
                        resends += 1
                        if resends > MAX_FREE_RESENDS:
                            raise HTTPError("the server keeps closing the connection") from None
                    continue
                break
            reason = _fallback_reason(response)
            if reason is not None:
                await conn.finish(response, True)
                raise FallbackError(reason, response.status)
            if response.complete and response._ticket.done.is_set():
                yield response  # fast path: nothing left to do on the connection
                return
            ok = False
            try:
                yield response
                ok = True
            finally:
                await conn.finish(response, ok)
        finally:
            self._release()

    async def aclose(self) -> None:
        """Close every connection."""
        self._conns = []
        while self._all:
            await self._all.pop().close()


def _on_asyncio() -> bool:
    """Whether the running event loop is asyncio's (under trio there is none running)."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True
