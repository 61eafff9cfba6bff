"""The sans-IO response parser against h11 on single responses (hypothesis), and its
limits and errors."""

from __future__ import annotations

from collections.abc import Sequence

import h11
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ostree_repo.sync._h1parser import (
    CLOSED,
    END,
    MAX_HEAD,
    MAX_TRAILERS,
    ProtocolError,
    ResponseParser,
    UnsupportedFramingError,
)

#: Header fields the parser interprets; compared through their effect (the body), since
#: h11 normalizes their values.
FRAMING = ("content-length", "transfer-encoding")

Outcome = tuple[object, ...]


def _joined(fields: Sequence[tuple[str, str]]) -> dict[str, str]:
    out: dict[str, str] = {}
    for name, value in fields:
        if name not in FRAMING:
            out[name] = f"{out[name]}, {value}" if name in out else value
    return out


def ours(pieces: Sequence[bytes]) -> Outcome:
    """What our parser makes of one response fed in ``pieces`` (then the end of stream)."""
    parser = ResponseParser()
    feed = iter(pieces)

    def more() -> None:
        piece = next(feed, None)
        if piece is None:
            parser.feed_eof()
        else:
            parser.feed(piece)

    try:
        while (head := parser.next_head()) is None:
            more()
        if head is CLOSED:
            return ("error",)
        body = bytearray()
        while True:
            part = parser.next_data()
            if part is None:
                more()
            elif part is END:
                break
            else:
                body += part
    except (ProtocolError, UnsupportedFramingError):
        return ("error",)
    assert not parser.in_body
    trailers = _joined(parser.trailers) if head.framing == "chunked" else {}
    return ("ok", head.status, head.reason, _joined(list(head.headers.items())), bytes(body),
            trailers, head.close)  # fmt: skip


def theirs(pieces: Sequence[bytes]) -> Outcome:
    """What h11 makes of the same bytes, as the client of a GET."""
    conn = h11.Connection(h11.CLIENT, max_incomplete_event_size=4 * MAX_HEAD)
    conn.send(h11.Request(method="GET", target="/", headers=[("Host", "example")]))
    conn.send(h11.EndOfMessage())
    feed = iter(pieces)
    head: h11.Response | None = None
    body = bytearray()
    try:
        while True:
            event = conn.next_event()
            if event is h11.NEED_DATA:
                conn.receive_data(next(feed, b""))
            elif isinstance(event, h11.InformationalResponse):
                continue
            elif isinstance(event, h11.Response):
                head = event
            elif isinstance(event, h11.Data):
                body += event.data
            elif isinstance(event, h11.EndOfMessage):
                break
            else:  # ConnectionClosed before a response
                return ("error",)
    except h11.RemoteProtocolError:
        return ("error",)
    assert head is not None

    def text(fields: Sequence[tuple[bytes, bytes]]) -> dict[str, str]:
        return _joined([(n.decode("latin-1"), v.decode("latin-1")) for n, v in fields])

    keep_alive = conn.their_state is h11.DONE
    return ("ok", head.status_code, head.reason.decode("latin-1"), text(list(head.headers)),
            bytes(body), text(list(event.headers)), not keep_alive)  # fmt: skip


def same(a: Outcome, b: Outcome, raw: bytes) -> bool:
    """Equal outcomes; ``close`` is compared where both define it the same way (h11 does
    not know HTTP/1.0 keep-alive, does not close after chunked with a Content-Length, and
    has nothing left to close once a read-to-close body ended)."""
    if a[0] != b[0] or a[0] == "error":
        return a[0] == b[0]
    head = raw.split(b"\r\n\r\n", 1)[0].split(b"\r\n")[1:]
    names = {line.split(b":", 1)[0].strip().lower() for line in head}  # not substrings:
    # a header named "Content-Length0" does not frame the body
    if b"HTTP/1.0 " in raw or b"transfer-encoding" in names or b"content-length" not in names:
        return a[:-1] == b[:-1]
    return a == b


# -- strategies -------------------------------------------------------------------------------

TOKEN = "!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
VCHAR = st.sampled_from(
    [chr(c) for c in range(0x21, 0x7F)] + [chr(c) for c in (0x80, 0xA0, 0xE9, 0xFF, 0x01, 0x7F)]
)
names = st.text(TOKEN, min_size=1, max_size=12).filter(
    lambda n: n.lower() not in (*FRAMING, "connection")
)
ows = st.sampled_from(["", " ", "\t", "  ", " \t"])
content = st.lists(
    st.tuples(st.text(VCHAR, min_size=1, max_size=8), st.sampled_from([" ", "\t", "  "])),
    max_size=4,
).map(lambda words: "".join(w + s for w, s in words).rstrip(" \t"))
fields = st.lists(
    st.tuples(names, ows, content, ows).map(lambda f: f"{f[0]}:{f[1]}{f[2]}{f[3]}"), max_size=8
)
reasons = st.one_of(st.none(), st.text(st.one_of(VCHAR, st.sampled_from([" ", "\t"])), max_size=20))
bodies = st.binary(max_size=3000)


@st.composite
def responses(draw: st.DrawFn) -> bytes:
    """One well-formed response, possibly after interim 1xx responses."""
    out = b""
    for status in draw(st.lists(st.sampled_from([100, 102, 103]), max_size=2)):
        out += f"HTTP/1.1 {status} Interim\r\n".encode()
        out += "".join(f + "\r\n" for f in draw(fields)).encode("latin-1") + b"\r\n"
    version = draw(st.sampled_from(["HTTP/1.1", "HTTP/1.1", "HTTP/1.0"]))
    status = draw(st.sampled_from([200, 200, 203, 204, 206, 304, 404, 410, 500, 503, 299, 599]))
    reason = draw(reasons)
    head = f"{version} {status}" + ("" if reason is None else f" {reason}")
    lines = draw(fields)
    connection = draw(st.sampled_from([None, "close", "keep-alive", "Keep-Alive, X", "CLOSE"]))
    if connection is not None:
        lines.insert(draw(st.integers(0, len(lines))), f"Connection: {connection}")
    body = draw(bodies)
    framing = draw(st.sampled_from(["length", "chunked", "close"]))
    wire = b""
    if framing == "length":
        cl = draw(st.sampled_from(["Content-Length", "content-length", "CONTENT-LENGTH"]))
        n = len(body)
        value = draw(st.sampled_from([str(n), f" {n} ", f"{n}, {n}", f"000{n}"]))
        lines.insert(draw(st.integers(0, len(lines))), f"{cl}: {value}")
        if draw(st.booleans()):
            lines.append(f"Content-Length: {value.split(',')[0].strip()}")  # same value again
        wire = body
    elif framing == "chunked":
        coding = draw(st.sampled_from(["chunked", "Chunked", " chunked", "CHUNKED "]))
        lines.insert(draw(st.integers(0, len(lines))), f"Transfer-Encoding:{coding}")
        cuts = sorted(draw(st.lists(st.integers(1, max(1, len(body))), max_size=5)))
        pieces = [body[a:b] for a, b in zip([0, *cuts], [*cuts, len(body)], strict=True)]
        for piece in (p for p in pieces if p):
            size = draw(st.sampled_from(["{:x}", "{:X}", "0{:x}"])).format(len(piece))
            ext = draw(st.sampled_from(["", ";a=b", ';name="v x"', ";x", " "]))
            wire += f"{size}{ext}\r\n".encode() + piece + b"\r\n"
        wire += b"0" + draw(st.sampled_from([b"", b";last"])) + b"\r\n"
        wire += "".join(f + "\r\n" for f in draw(fields)).encode("latin-1") + b"\r\n"
    else:
        wire = body
    out += (head + "".join("\r\n" + line for line in lines) + "\r\n\r\n").encode("latin-1")
    return out + wire


@st.composite
def split(draw: st.DrawFn, data: bytes) -> list[bytes]:
    cuts = sorted(set(draw(st.lists(st.integers(0, len(data)), max_size=12))))
    return [data[a:b] for a, b in zip([0, *cuts], [*cuts, len(data)], strict=True)]


@st.composite
def mutated(draw: st.DrawFn) -> bytes:
    data = bytearray(draw(responses()))
    for _ in range(draw(st.integers(1, 3))):
        kind = draw(st.sampled_from(["flip", "insert", "delete", "cut"]))
        at = draw(st.integers(0, max(0, len(data) - 1)))
        special = st.sampled_from(b"\r\n\x00\x0b\x0c:; \t0a9fF-,\x7f\x80")
        if kind == "flip" and data:
            data[at] = draw(st.one_of(special, st.integers(0, 255)))
        elif kind == "insert":
            data[at:at] = bytes([draw(special)])
        elif kind == "delete" and data:
            del data[at]
        else:
            del data[at:]
    return bytes(data)


SETTINGS = settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@SETTINGS
@given(st.data())
def test_well_formed_responses_parse_as_h11_parses_them(data: st.DataObject) -> None:
    raw = data.draw(responses())
    pieces = data.draw(split(raw))
    a, b = ours(pieces), theirs([raw])
    assert b[0] == "ok", raw  # (the strategy makes only valid responses)
    assert same(a, b, raw), (raw, a, b)


@SETTINGS
@given(st.data())
def test_whatever_we_accept_h11_accepts_alike(data: st.DataObject) -> None:
    raw = data.draw(mutated())
    a = ours(data.draw(split(raw)))
    if a[0] == "ok":
        b = theirs([raw])
        assert same(a, b, raw), (raw, a, b)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=400), st.data())
def test_arbitrary_bytes_give_a_result_or_our_error(raw: bytes, data: st.DataObject) -> None:
    ours(data.draw(split(b"HTTP/1.1 200 OK\r\n" + raw)))
    ours(data.draw(split(raw)))


# -- examples -----------------------------------------------------------------------------------


def parse(raw: bytes) -> Outcome:
    return ours([raw])


def test_pipelined_responses_in_order() -> None:
    parser = ResponseParser()
    parser.feed(
        b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nabc"
        b"HTTP/1.1 404 Not Found\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nno\r\n0\r\n\r\n"
        b"HTTP/1.1 204 No Content\r\n\r\n"
        b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n"
    )
    first = parser.next_head()
    assert first is not None and first is not CLOSED
    assert (first.status, first.length, first.framing) == (200, 3, "length")
    assert parser.body_whole() == b"abc" and not parser.in_body
    second = parser.next_head()
    assert second is not None and second is not CLOSED
    assert (second.status, second.length, second.framing) == (404, None, "chunked")
    assert parser.next_data() == b"no"
    assert parser.next_data() is END
    third = parser.next_head()
    assert third is not None and third is not CLOSED and third.length == 0
    assert not parser.in_body
    assert parser.next_head() is None  # the fourth head is incomplete
    parser.feed(b"\r\nhi")
    fourth = parser.next_head()
    assert fourth is not None and fourth is not CLOSED
    assert parser.body_whole() == b"hi"
    assert parser.next_head() is None
    parser.feed_eof()
    assert parser.next_head() is CLOSED


def test_interim_responses_are_skipped() -> None:
    raw = b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early\r\nLink: x\r\n\r\n" + (
        b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nz"
    )
    assert parse(raw)[:5] == ("ok", 200, "OK", {}, b"z")


@pytest.mark.parametrize(
    "raw",
    [
        b"HTTP/2 200 OK\r\n\r\n",
        b"HTTP/1.1 2OO OK\r\n\r\n",
        b"HTTP/1.1 101 Switching Protocols\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nBad Header: x\r\n\r\n",
        b"HTTP/1.1 200 OK\r\n folded: x\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nX: a\x0bb\r\n\r\n",
        b"HTTP/1.1 200 O\x0cK\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nContent-Length: 3, 4\r\n\r\nabcd",
        b"HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n",
        b"HTTP/1.1 204 OK\r\nContent-Length: x\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nabc",
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n 5\r\nhello\r\n0\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhelloXX0\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\nbad\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhel",
        b"HTTP/1.1 200 OK\r\nContent-",
        b"\r\nHTTP/1.1 200 OK\r\n\r\n",
        b"HTTP/1.1 200 OK\nContent-Length: 0\n\n",
    ],
)
def test_malformed_or_truncated_responses_are_protocol_errors(raw: bytes) -> None:
    parser = ResponseParser()
    parser.feed(raw)
    parser.feed_eof()
    with pytest.raises(ProtocolError):
        head = parser.next_head()
        assert head is not None and head is not CLOSED
        while parser.next_data() is not END:
            pass


def test_other_transfer_codings_are_unsupported() -> None:
    parser = ResponseParser()
    parser.feed(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n")
    with pytest.raises(UnsupportedFramingError) as info:
        parser.next_head()
    assert info.value.status == 200


def test_limits() -> None:
    parser = ResponseParser()
    parser.feed(b"HTTP/1.1 200 OK\r\nX-Pad: " + b"a" * MAX_HEAD)
    with pytest.raises(ProtocolError, match="head exceeds"):
        parser.next_head()
    parser = ResponseParser()
    parser.feed(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1;" + b"x" * 5000)
    assert parser.next_head() is not None
    with pytest.raises(ProtocolError, match="line too long"):
        parser.next_data()
    trailers = b"".join(b"T%d: v\r\n" % i for i in range(MAX_TRAILERS + 1))
    parser = ResponseParser()
    parser.feed(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n" + trailers + b"\r\n")
    assert parser.next_head() is not None
    with pytest.raises(ProtocolError, match="too many trailer"):
        parser.next_data()


def test_head_found_when_fed_byte_by_byte() -> None:
    raw = b"HTTP/1.1 200 OK\r\nA: b\r\nContent-Length: 2\r\n\r\nok"
    outcome = ours([raw[i : i + 1] for i in range(len(raw))])
    assert outcome[:5] == ("ok", 200, "OK", {"a": "b"}, b"ok")


def test_close_framing() -> None:
    assert parse(b"HTTP/1.0 200 OK\r\n\r\nuntil the end")[4:] == (b"until the end", {}, True)
    empty = b"Content-Length: 0\r\n\r\n"
    assert parse(b"HTTP/1.0 200 OK\r\nConnection: keep-alive\r\n" + empty)[-1] is False
    assert parse(b"HTTP/1.1 200 OK\r\nConnection: x, Close\r\n" + empty)[-1] is True
    chunked_and_length = (
        b"HTTP/1.1 200 OK\r\nContent-Length: 99\r\nTransfer-Encoding: chunked\r\n\r\n"
        b"2\r\nab\r\n0\r\nT: x\r\n\r\n"
    )
    assert parse(chunked_and_length)[4:] == (b"ab", {"t": "x"}, True)
