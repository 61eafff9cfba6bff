"""A sans-IO HTTP/1.1 response parser: bytes in, response heads and body pieces out.

Like h11's reader half, it never touches a socket and never waits: the connection that
owns it :meth:`~ResponseParser.feed`\\ s it what arrives (and
:meth:`~ResponseParser.feed_eof` when the stream ends) and asks for the next event.
Every method that needs more bytes than are buffered returns ``None`` ("feed me"); once
the end of the stream was fed, none of them returns ``None`` again: they return what is
complete, :data:`CLOSED` or :data:`END`, or raise.

One parser reads the responses of one connection, in order (pipelined requests are
answered in order). The states are the position in that stream:

* between responses: :meth:`~ResponseParser.next_head` returns the next response head
  (1xx interim responses are skipped), :data:`CLOSED` if the stream ended cleanly there;
* in a body: :meth:`~ResponseParser.next_data` returns the next piece and :data:`END`
  after the last one (:meth:`~ResponseParser.body_whole` takes a ``Content-Length``
  body whole once it is all buffered). Back between responses after the end, unless the
  response said the connection closes.

Framing (RFC 9112 section 6): ``Transfer-Encoding: chunked`` (with extensions and
trailers; it wins over a ``Content-Length``, and the connection then closes), else
``Content-Length``, else the body lasts until the connection closes; 204 and 304 have
no body. Other transfer codings raise :class:`UnsupportedFramingError` (a full client
must handle them). The grammar is h11's, or stricter: status line ``HTTP/1.0`` or
``HTTP/1.1``, header names are tokens, no obs-fold, no NUL, CR, LF, VT or FF in values
or the reason phrase, CRLF line ends only, heads up to :data:`MAX_HEAD` bytes; anything
else raises :class:`ProtocolError`. The tests check it against h11 on single responses.
"""

from __future__ import annotations

import enum
import re
from typing import Final, Literal

__all__ = [
    "CLOSED",
    "END",
    "MAX_HEAD",
    "MAX_LINE",
    "HTTPError",
    "ProtocolError",
    "ResponseHead",
    "ResponseParser",
    "UnsupportedFramingError",
]

#: Largest response head accepted (status line and headers), in bytes.
MAX_HEAD: Final = 64 * 1024
#: Longest chunk-size line or trailer line of a chunked body.
MAX_LINE: Final = 4096
#: Most trailer fields after a chunked body.
MAX_TRAILERS: Final = 100
#: Consumed bytes at the head of the buffer that :meth:`ResponseParser.feed` drops.
COMPACT_AT: Final = 64 * 1024

_STATUS = re.compile(r"HTTP/1\.([01]) ([0-9]{3})(?: ([^\r\n\x00\x0b\x0c]*))?")
_FIELDS = re.compile(r"(?:\r\n[!#$%&'*+\-.^_`|~0-9A-Za-z]+:[^\r\n\x00\x0b\x0c]*)*")
_FIELD = re.compile(r"\r\n([^:]+):[ \t]*([^\r\n]*)")
_CHUNK_SIZE = re.compile(rb"([0-9A-Fa-f]{1,16})(?:;.*)?[ \t]*")


class HTTPError(Exception):
    """An HTTP/1.1 exchange failed in a way worth retrying (the base of the client's
    errors: a lost connection, a timeout, a response that breaks the protocol)."""


class ProtocolError(HTTPError):
    """The bytes are not a well-formed HTTP/1.1 response (or were cut short)."""


class UnsupportedFramingError(Exception):
    """The response uses a transfer coding other than chunked: a full client must read
    it. The head was consumed; the rest of the stream cannot be parsed."""

    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.status = status


class Event(enum.Enum):
    """Markers returned instead of data."""

    END = "end"
    CLOSED = "closed"


#: :meth:`ResponseParser.next_data`: the body is complete.
END: Final = Event.END
#: :meth:`ResponseParser.next_head`: the stream ended cleanly between two responses.
CLOSED: Final = Event.CLOSED

# parser states
_HEAD: Final = 0  # between responses
_LENGTH: Final = 1  # in a Content-Length body
_CHUNKED: Final = 2  # in a chunked body
_UNTIL_CLOSE: Final = 3  # in a body that lasts until the connection closes
_DONE: Final = 4  # after a response that closes the connection


class ResponseHead:
    """A response head: ``status``, ``reason``, ``headers`` (lower-case names, repeated
    fields joined with ``", "``), ``length`` (the Content-Length, 0 for 204/304; None
    when the body is chunked or lasts until the connection closes), ``framing``
    (``"length"``, ``"chunked"`` or ``"close"``) and ``close`` (the connection closes
    after this response: ``Connection: close``, HTTP/1.0 without keep-alive, a body
    until close, chunked with a Content-Length)."""

    __slots__ = ("close", "framing", "headers", "length", "reason", "status")

    def __init__(
        self,
        status: int,
        reason: str,
        headers: dict[str, str],
        *,
        length: int | None,
        framing: str,
        close: bool,
    ) -> None:
        self.status = status
        self.reason = reason
        self.headers = headers
        self.length = length
        self.framing = framing
        self.close = close


class ResponseParser:
    """The responses of one connection, parsed from the bytes fed to it (see the module
    docstring for the protocol). ``trailers`` holds the trailer fields of the last
    chunked body, as (lower-case name, value) pairs."""

    __slots__ = (
        "_chunk_left",
        "_close",
        "_left",
        "_scanned",
        "_state",
        "buf",
        "eof",
        "pos",
        "trailers",
    )

    def __init__(self) -> None:
        self.buf = bytearray()
        self.pos = 0  # bytes of buf already parsed
        self.eof = False
        self.trailers: list[tuple[str, str]] = []
        self._state = _HEAD
        self._left = 0  # _LENGTH: body bytes left; _CHUNKED: bytes left in this chunk
        # _CHUNKED: -1 before a chunk-size line, 0 before the CRLF after a chunk's data,
        # -2 in the trailers
        self._chunk_left = -1
        self._scanned = 0  # bytes after pos searched for the end of a head already
        self._close = False  # the current response closes the connection

    # -- input ---------------------------------------------------------------------------

    def feed(self, data: bytes) -> None:
        """Add bytes received (never after :meth:`feed_eof`)."""
        if self.pos:
            if self.pos >= len(self.buf):
                self.buf.clear()
                self.pos = 0
            elif self.pos > COMPACT_AT:
                self.compact()
        self.buf += data

    def feed_eof(self) -> None:
        """The stream ended: what is buffered is all there will be."""
        self.eof = True

    def compact(self) -> None:
        """Drop the bytes already parsed (a connection does it before it waits)."""
        if self.pos:
            del self.buf[: self.pos]
            self.pos = 0

    @property
    def buffered(self) -> int:
        """Bytes received and not parsed yet."""
        return len(self.buf) - self.pos

    @property
    def in_body(self) -> bool:
        """Whether the current response's body has bytes (or its end) still to come."""
        return _LENGTH <= self._state <= _UNTIL_CLOSE

    # -- heads ---------------------------------------------------------------------------

    def next_head(self) -> ResponseHead | Literal[Event.CLOSED] | None:
        """The next response head (interim 1xx responses skipped); :data:`CLOSED` if the
        stream ended before its first byte; None if more bytes are needed."""
        while True:
            if self._state != _HEAD:
                if self._state == _DONE:
                    raise ProtocolError("data after a response that closes the connection")
                raise RuntimeError("next_head() in the middle of a body")
            buf, pos = self.buf, self.pos
            end = buf.find(b"\r\n\r\n", pos + self._scanned)
            if end < 0:
                if len(buf) - pos > MAX_HEAD:
                    raise ProtocolError(f"response head exceeds {MAX_HEAD} bytes")
                if self.eof:
                    if len(buf) == pos:
                        return CLOSED
                    raise ProtocolError("connection closed in the middle of a response head")
                self._scanned = max(0, len(buf) - pos - 3)
                return None
            if end - pos > MAX_HEAD:
                raise ProtocolError(f"response head exceeds {MAX_HEAD} bytes")
            text = buf[pos:end].decode("latin-1")
            self.pos = end + 4
            self._scanned = 0
            head = self._parse(text)
            if head.status >= 200:
                return head
            if head.status == 101:
                raise ProtocolError("unexpected 101 Switching Protocols")
            # an interim response (100 Continue, 103 Early Hints): the real one follows

    def _parse(self, text: str) -> ResponseHead:
        """Parse a head and enter its body."""
        status_end = text.find("\r\n")
        status_line = text if status_end < 0 else text[:status_end]
        match = _STATUS.fullmatch(status_line)
        if match is None:
            raise ProtocolError(f"not an HTTP/1.x status line: {status_line[:80]!r}")
        http10 = match[1] == "0"
        status = int(match[2])
        headers: dict[str, str] = {}
        if status_end >= 0:
            fields = text[status_end:]
            # one pass checks every line (token, colon, allowed characters), one collects
            if _FIELDS.fullmatch(fields) is None:
                raise ProtocolError("malformed header line in the response head")
            for name, raw in _FIELD.findall(fields):
                key = name.lower()
                value = raw.rstrip(" \t")
                headers[key] = f"{headers[key]}, {value}" if key in headers else value
        connection = headers.get("connection")
        tokens = {t.strip().lower() for t in connection.split(",")} if connection else ()
        close = "close" in tokens or (http10 and "keep-alive" not in tokens)
        # the framing headers are checked on every response, even one without a body
        coding = headers.get("transfer-encoding")
        if coding is not None and coding.strip().lower() != "chunked":
            self._state = _DONE
            raise UnsupportedFramingError(f"transfer coding {coding!r}", status)
        length: int | None = None
        declared = headers.get("content-length")
        if declared is not None:
            values = {v.strip() for v in declared.split(",")}
            value = values.pop() if len(values) == 1 else ""
            if not value.isdigit() or not value.isascii() or len(value) > 18:
                raise ProtocolError(f"bad Content-Length: {declared[:40]!r}")
            length = int(value)
        reason = match[3] or ""
        framing = "length"
        if status < 200 or status in (204, 304):
            length = 0
            if status >= 200:
                self._close = close
                self._end()
        elif coding is not None:
            close = close or length is not None  # RFC 9112 6.3: chunked wins, then close
            length, framing = None, "chunked"
            self._state, self._chunk_left, self._close = _CHUNKED, -1, close
        elif length is not None:
            self._state, self._left, self._close = _LENGTH, length, close
        else:
            framing, close = "close", True
            self._state, self._close = _UNTIL_CLOSE, True
        return ResponseHead(status, reason, headers, length=length, framing=framing, close=close)

    # -- bodies --------------------------------------------------------------------------

    def _end(self) -> None:
        """The body is complete: on to the next response, if the connection stays."""
        self._state = _DONE if self._close else _HEAD

    def body_whole(self) -> bytes | None:
        """The rest of a ``Content-Length`` body once it is all buffered (the body is then
        complete), None until then; :class:`ProtocolError` if the stream ended first.
        ``b""`` after a response without a body (204, 304) or whose body was read."""
        if self._state != _LENGTH:
            if self._state in (_HEAD, _DONE):
                return b""
            raise RuntimeError("body_whole() in a body without a Content-Length")
        n = self._left
        pos = self.pos
        if len(self.buf) - pos < n:
            if self.eof:
                raise ProtocolError(
                    f"connection closed after {len(self.buf) - pos} of {n} body bytes "
                    "(truncated body)"
                )
            return None
        data = bytes(memoryview(self.buf)[pos : pos + n])
        self.pos = pos + n
        self._left = 0
        self._end()
        return data

    def next_data(self) -> bytes | Literal[Event.END] | None:
        """The next piece of the body (as much as is buffered), :data:`END` once it is
        complete (:attr:`in_body` turns False with the last piece), None if more bytes
        are needed."""
        state = self._state
        if state == _LENGTH:
            if self._left == 0:
                self._end()
                return END
            have = len(self.buf) - self.pos
            if not have:
                if self.eof:
                    raise ProtocolError(
                        f"connection closed with {self._left} body bytes missing (truncated body)"
                    )
                return None
            part = self._take(min(have, self._left))
            self._left -= len(part)
            if self._left == 0:
                self._end()
            return part
        if state == _UNTIL_CLOSE:
            have = len(self.buf) - self.pos
            if not have:
                if self.eof:
                    self._end()
                    return END
                return None
            return self._take(have)
        if state == _CHUNKED:
            return self._chunked()
        if state in (_HEAD, _DONE):
            return END  # (the body ended with the last piece)
        raise AssertionError(state)  # pragma: no cover

    def _take(self, n: int) -> bytes:
        data = bytes(memoryview(self.buf)[self.pos : self.pos + n])
        self.pos += n
        return data

    def _line(self) -> bytes | None:
        """The next CRLF-terminated line of a chunked body (without the CRLF)."""
        end = self.buf.find(b"\r\n", self.pos)
        if end < 0:
            if len(self.buf) - self.pos > MAX_LINE:
                raise ProtocolError("chunked body: line too long")
            if self.eof:
                raise ProtocolError("connection closed in a chunked body (truncated body)")
            return None
        if end - self.pos > MAX_LINE:
            raise ProtocolError("chunked body: line too long")
        line = bytes(self.buf[self.pos : end])
        self.pos = end + 2
        return line

    def _chunked(self) -> bytes | Literal[Event.END] | None:
        while self._chunk_left <= 0:
            if self._chunk_left == 0:  # the CRLF after a chunk's data
                if len(self.buf) - self.pos < 2:
                    if self.eof:
                        raise ProtocolError("connection closed in a chunked body (truncated body)")
                    return None
                if self.buf[self.pos : self.pos + 2] != b"\r\n":
                    raise ProtocolError("chunked body: missing CRLF after chunk data")
                self.pos += 2
                self._chunk_left = -1
            elif self._chunk_left == -1:  # a chunk-size line
                line = self._line()
                if line is None:
                    return None
                match = _CHUNK_SIZE.fullmatch(line)
                if match is None:
                    raise ProtocolError(f"chunked body: bad chunk size line {line[:40]!r}")
                size = int(match[1], 16)
                if size == 0:
                    self._chunk_left = -2
                    self.trailers = []
                else:
                    self._chunk_left = size
            else:  # trailer fields, up to an empty line
                line = self._line()
                if line is None:
                    return None
                if not line:
                    self._end()
                    return END
                text = "\r\n" + line.decode("latin-1")
                if _FIELDS.fullmatch(text) is None:
                    raise ProtocolError("chunked body: malformed trailer field")
                if len(self.trailers) >= MAX_TRAILERS:
                    raise ProtocolError("chunked body: too many trailer fields")
                name, value = _FIELD.findall(text)[0]
                self.trailers.append((name.lower(), value.rstrip(" \t")))
        have = len(self.buf) - self.pos
        if not have:
            if self.eof:
                raise ProtocolError("connection closed in a chunked body (truncated body)")
            return None
        part = self._take(min(have, self._chunk_left))
        self._chunk_left -= len(part)
        return part
