"""The URL layout: which file of which repository version a request path names.

::

    /NAME/FILE                 FILE of the latest version of repository NAME
    /NAME/versions/N/FILE      FILE of version N

    FILE:  config | summary | summary.sig
           refs/heads/REF | refs/mirrors/COLLECTION-ID/REF
           objects/XX/REST.{commit,dirtree,dirmeta,filez,commitmeta,tombstone-commit}
           deltas/XX/REST/{superblock,N}             (from scratch; mbase64 of TO)
           deltas/XX/REST-TO/{superblock,N}          (mbase64 of FROM, then of TO)
           delta-indexes/XX/REST.index

Parsing is purely syntactic and strict: anything that is not exactly one of these forms
is refused, so no request path ever reaches a store path except through a validated
checksum. Paths with ``.`` or ``..`` segments, NUL or backslashes are *malformed* (400);
every other mismatch is *not found* (404), which is how libostree expects absent files.
"""

from __future__ import annotations

import re
from typing import NamedTuple

from ostree_repo.errors import InvalidNameError
from ostree_repo.objects import ObjectType, from_mbase64, validate_collection_id, validate_ref
from ostree_repo.repository.layout import validate_repository_name

__all__ = ["BadPathError", "Route", "parse_path"]

_HEX62 = re.compile(r"[0-9a-f]{62}")
_HEX2 = re.compile(r"[0-9a-f]{2}")
_VERSION = re.compile(r"0|[1-9][0-9]{0,17}")
_PART = re.compile(r"0|[1-9][0-9]{0,8}")
#: The common case (objects), matched in one go.
_OBJECT = re.compile(
    r"/([A-Za-z0-9][A-Za-z0-9._-]{0,127})/(?:versions/(0|[1-9][0-9]{0,17})/)?"
    r"objects/([0-9a-f]{2})/([0-9a-f]{62})\.(commit|dirtree|dirmeta|filez|commitmeta|tombstone-commit)"
)
_EXTENSIONS = {
    "commit": ObjectType.COMMIT,
    "dirtree": ObjectType.DIRTREE,
    "dirmeta": ObjectType.DIRMETA,
    "filez": ObjectType.FILE,
    "commitmeta": ObjectType.COMMITMETA,
    "tombstone-commit": ObjectType.TOMBSTONE_COMMIT,
}


class BadPathError(Exception):
    """A malformed request path (answered with 400)."""


class Route(NamedTuple):
    """What a request path names.

    ``kind`` is one of ``config``, ``summary``, ``summary.sig``, ``ref`` (``ref`` and
    ``collection``), ``object`` (``checksum``, ``objtype``), ``delta`` (``delta``: the
    delta name, ``member``: ``superblock`` or a part number) and ``delta-index``
    (``checksum``: the target commit). ``version`` is None for the latest version.
    """

    repository: str
    version: int | None
    kind: str
    checksum: str = ""
    objtype: ObjectType | None = None
    ref: str = ""
    collection: str | None = None
    delta: str = ""
    member: str = ""


def parse_path(path: str) -> Route | None:
    """The route of a (percent-decoded, ``root_path``-relative) request path.

    None when the path names nothing we serve (404); :class:`BadPathError` when it is
    malformed (400).
    """
    fast = _OBJECT.fullmatch(path)
    if fast is not None:
        name, number, head, tail, ext = fast.groups()
        if name.endswith(".json"):
            return None
        pinned = None if number is None else int(number)
        return Route(name, pinned, "object", head + tail, _EXTENSIONS[ext])
    if not path.startswith("/") or "\0" in path or "\\" in path:
        raise BadPathError(path)
    segments = path[1:].split("/")
    if any(s in (".", "..") for s in segments):
        raise BadPathError(path)
    if len(segments) < 2 or "" in segments:
        return None  # directories (no listings), empty segments
    try:
        name = validate_repository_name(segments[0])
    except InvalidNameError:
        return None
    version: int | None = None
    rest = segments[1:]
    if rest[0] == "versions":
        if len(rest) < 3 or _VERSION.fullmatch(rest[1]) is None:
            return None
        version = int(rest[1])
        rest = rest[2:]
    return _file(name, version, rest)


def _file(name: str, version: int | None, rest: list[str]) -> Route | None:
    head = rest[0]
    if len(rest) == 1:
        if head in ("config", "summary", "summary.sig"):
            return Route(name, version, head)
        return None
    if head == "objects":
        return _object(name, version, rest[1:])
    if head == "refs":
        return _ref(name, version, rest[1:])
    if head == "deltas":
        return _delta(name, version, rest[1:])
    if head == "delta-indexes" and len(rest) == 3:
        stem, dot, ext = rest[2].partition(".")
        if not dot or ext != "index":
            return None
        target = _from_mbase64(rest[1] + stem)
        if target is None or len(rest[1]) != 2:
            return None
        return Route(name, version, "delta-index", checksum=target)
    return None


def _object(name: str, version: int | None, rest: list[str]) -> Route | None:
    if len(rest) != 2 or _HEX2.fullmatch(rest[0]) is None:
        return None
    stem, dot, ext = rest[1].partition(".")
    objtype = _EXTENSIONS.get(ext)
    if not dot or objtype is None or _HEX62.fullmatch(stem) is None:
        return None
    return Route(name, version, "object", checksum=rest[0] + stem, objtype=objtype)


def _ref(name: str, version: int | None, rest: list[str]) -> Route | None:
    try:
        if len(rest) >= 2 and rest[0] == "heads":
            return Route(name, version, "ref", ref=validate_ref("/".join(rest[1:])))
        if len(rest) >= 3 and rest[0] == "mirrors":
            cid = validate_collection_id(rest[1])
            return Route(name, version, "ref", ref=validate_ref("/".join(rest[2:])), collection=cid)
    except InvalidNameError:
        return None
    return None


def _delta(name: str, version: int | None, rest: list[str]) -> Route | None:
    if len(rest) != 3 or len(rest[0]) != 2:
        return None
    member = rest[2]
    if member != "superblock" and _PART.fullmatch(member) is None:
        return None
    first, dash, second = rest[1].partition("-")
    start = _from_mbase64(rest[0] + first)
    if start is None:
        return None
    if not dash:
        return Route(name, version, "delta", delta=start, member=member)
    end = _from_mbase64(second)
    if end is None:
        return None
    return Route(name, version, "delta", delta=f"{start}-{end}", member=member)


def _from_mbase64(text: str) -> str | None:
    try:
        return from_mbase64(text)
    except InvalidNameError:
        return None
