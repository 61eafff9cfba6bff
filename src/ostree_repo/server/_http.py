"""HTTP details the server needs, without a framework: dates, ETags, conditions, ranges.

Everything here is pure (no I/O) so it can be tested on its own. The rules follow
RFC 9110: ``If-Match`` and ``If-Unmodified-Since`` fail with 412, ``If-None-Match``
takes precedence over ``If-Modified-Since`` and gives 304 for GET and HEAD, and a single
``Range`` is honoured (206, or 416 when it cannot be satisfied) unless ``If-Range`` says
the client's copy is stale. Several ranges in one request are answered with the whole
representation, which RFC 9110 allows.
"""

from __future__ import annotations

import datetime
import email.utils
from collections.abc import Iterable
from typing import NamedTuple

import attrs

__all__ = [
    "ByteRange",
    "Conditions",
    "RangeNotSatisfiableError",
    "etag_matches",
    "evaluate",
    "format_http_date",
    "parse_etags",
    "parse_http_date",
    "parse_range",
]


def format_http_date(seconds: float) -> str:
    """An IMF-fixdate (``Sun, 06 Nov 1994 08:49:37 GMT``) for seconds since the epoch."""
    return email.utils.formatdate(int(seconds), usegmt=True)


def parse_http_date(text: str) -> int | None:
    """Seconds since the epoch of an HTTP date, or None if it is not one.

    Accepts the three formats of RFC 9110 and any zone name :mod:`email.utils` knows;
    libostree writes ``If-Modified-Since`` with ``%Z``, i.e. ``… 22:09:48 UTC``.
    """
    try:
        moment = email.utils.parsedate_to_datetime(text.strip())
    except (TypeError, ValueError, IndexError):
        return None
    if moment.tzinfo is None:  # asctime format: UTC by definition
        moment = moment.replace(tzinfo=datetime.UTC)
    try:
        return int(moment.timestamp())
    except (OverflowError, OSError, ValueError):
        return None


def parse_etags(header: str) -> list[str] | None:
    """The entity tags of an ``If-Match``/``If-None-Match`` header (``W/`` prefix kept);
    None for ``*``. Malformed members are skipped."""
    if header.strip() == "*":
        return None
    tags = []
    rest = header
    while rest:
        rest = rest.lstrip(" \t,")
        if not rest:
            break
        weak = rest.startswith("W/")
        body = rest[2:] if weak else rest
        if not body.startswith('"'):
            rest = rest.partition(",")[2]
            continue
        end = body.find('"', 1)
        if end < 0:
            break
        tags.append(("W/" if weak else "") + body[: end + 1])
        rest = body[end + 1 :]
    return tags


def etag_matches(etag: str, tags: Iterable[str] | None, *, strong: bool) -> bool:
    """Whether ``etag`` (a strong tag, quoted) matches any of ``tags`` (None: ``*``).

    ``strong`` comparison refuses weak tags; weak comparison ignores the ``W/`` prefix.
    """
    if tags is None:
        return True
    for tag in tags:
        weak = tag.startswith("W/")
        if weak and strong:
            continue
        if (tag[2:] if weak else tag) == etag:
            return True
    return False


@attrs.frozen
class ByteRange:
    """The inclusive byte range ``start``..``end`` of a representation of ``size`` bytes."""

    start: int
    end: int
    size: int

    @property
    def length(self) -> int:
        """Bytes in the range."""
        return self.end - self.start + 1

    @property
    def content_range(self) -> str:
        """The ``Content-Range`` header value."""
        return f"bytes {self.start}-{self.end}/{self.size}"


class RangeNotSatisfiableError(Exception):
    """A syntactically valid range that no byte of the representation satisfies."""


def parse_range(header: str, size: int) -> ByteRange | None:
    """The one range a ``Range`` header asks for, or None to send the whole representation.

    None for anything but a single valid ``bytes=`` range (other units, several ranges,
    syntax errors: RFC 9110 lets a server ignore those). Raises
    :class:`RangeNotSatisfiableError` for a valid range beyond the end.
    """
    unit, sep, spec = header.partition("=")
    if not sep or unit.strip().lower() != "bytes" or "," in spec:
        return None
    first, dash, last = spec.strip().partition("-")
    if not dash or not (first.isdigit() or first == "") or not (last.isdigit() or last == ""):
        return None
    if first == "":
        if last == "":
            return None
        suffix = int(last)
        if suffix == 0:
            raise RangeNotSatisfiableError
        start = max(size - suffix, 0)
        end = size - 1
    else:
        start = int(first)
        if last and int(last) < start:
            return None  # invalid: ignored
        end = min(int(last), size - 1) if last else size - 1
    if start >= size or size == 0:
        raise RangeNotSatisfiableError
    return ByteRange(start, end, size)


class Conditions(NamedTuple):
    """The request headers that make a request conditional (lower-case names)."""

    if_match: str | None = None
    if_none_match: str | None = None
    if_modified_since: str | None = None
    if_unmodified_since: str | None = None
    if_range: str | None = None
    range: str | None = None


def evaluate(
    conditions: Conditions, etag: str, last_modified: int, size: int, method: str
) -> tuple[int, ByteRange | None]:
    """(status, range) for a GET or HEAD of a representation: 200, 206 (with the range),
    304, 412 or 416 (range None)."""
    if conditions.if_match is not None:
        if not etag_matches(etag, parse_etags(conditions.if_match), strong=True):
            return 412, None
    elif conditions.if_unmodified_since is not None:
        since = parse_http_date(conditions.if_unmodified_since)
        if since is not None and last_modified > since:
            return 412, None
    if conditions.if_none_match is not None:
        if etag_matches(etag, parse_etags(conditions.if_none_match), strong=False):
            return (304 if method in ("GET", "HEAD") else 412), None
    elif conditions.if_modified_since is not None and method in ("GET", "HEAD"):
        since = parse_http_date(conditions.if_modified_since)
        if since is not None and last_modified <= since:
            return 304, None
    if conditions.range is None or method != "GET":
        return 200, None
    if conditions.if_range is not None and not _if_range_holds(
        conditions.if_range, etag, last_modified
    ):
        return 200, None
    try:
        byte_range = parse_range(conditions.range, size)
    except RangeNotSatisfiableError:
        return 416, None
    return (200, None) if byte_range is None else (206, byte_range)


def _if_range_holds(value: str, etag: str, last_modified: int) -> bool:
    value = value.strip()
    if value.startswith('"') or value.startswith("W/"):
        return not value.startswith("W/") and value == etag  # strong comparison only
    date = parse_http_date(value)
    return date is not None and date == last_modified
