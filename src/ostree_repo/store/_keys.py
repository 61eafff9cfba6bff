"""Where objects and named files live inside a store, and what names are allowed.

Every backend uses the same relative POSIX paths, which are also the paths of an OSTree
archive repository: objects at ``objects/XX/REST.EXT`` and named files (refs, summaries,
deltas, version records, ...) anywhere else. The top-level entries ``objects`` and ``tmp``
are reserved for the store itself, so a named file can never shadow an object or a
temporary file.
"""

from __future__ import annotations

from ostree_repo.errors import InvalidNameError
from ostree_repo.objects import names
from ostree_repo.objects.objtype import ObjectType

__all__ = [
    "RESERVED_TOP_LEVEL",
    "check_checksum",
    "check_named_path",
    "check_prefix",
    "object_path",
    "parse_object_path",
]

RESERVED_TOP_LEVEL = frozenset({"objects", "tmp"})
"""Top-level names that named files may not use: the store keeps objects and temporaries there."""


def check_checksum(checksum: str) -> str:
    """Return ``checksum`` if it is 64 lowercase hex digits, else raise InvalidNameError."""
    return names.validate_checksum(checksum)


def object_path(checksum: str, objtype: ObjectType) -> str:
    """The archive-repository path of an object: ``objects/XX/REST.EXT``."""
    if not isinstance(objtype, ObjectType):
        raise InvalidNameError(f"not an object type: {objtype!r}")
    return names.object_path(checksum, objtype)


def parse_object_path(path: str) -> tuple[str, ObjectType] | None:
    """Inverse of :func:`object_path`; None for anything that is not a loose object path.

    Foreign files (temporary files other tools leave, ``.file`` objects of bare repos, ...)
    are skipped by listings rather than reported as errors.
    """
    try:
        return names.parse_object_path(path)
    except InvalidNameError:
        return None


def _check_segments(path: str, what: str) -> list[str]:
    if not isinstance(path, str):
        raise InvalidNameError(f"{what} must be a str, not {type(path).__name__}")
    if "\0" in path or "\\" in path:
        raise InvalidNameError(f"{what} {path!r} contains NUL or a backslash")
    if path.startswith("/"):
        raise InvalidNameError(f"{what} {path!r} is absolute")
    segments = path.split("/")
    for segment in segments:
        if segment in ("", ".", ".."):
            raise InvalidNameError(f"{what} {path!r} has an empty, '.' or '..' segment")
    if segments[0] in RESERVED_TOP_LEVEL:
        raise InvalidNameError(f"{what} {path!r} is inside the reserved {segments[0]!r} area")
    return segments


def check_named_path(path: str) -> str:
    """Return ``path`` if it is a valid named-file path, else raise InvalidNameError.

    Valid paths are relative POSIX paths with non-empty segments, no ``.``/``..``, no NUL,
    no backslash, and not inside ``objects/`` or ``tmp/``.
    """
    _check_segments(path, "path")
    return path


def check_prefix(prefix: str) -> str:
    """Validate a listing prefix: ``""`` (everything) or a directory path like a named path.

    A trailing ``/`` is accepted and removed.
    """
    if prefix == "":
        return ""
    if isinstance(prefix, str) and prefix.endswith("/"):
        prefix = prefix[:-1]
    _check_segments(prefix, "prefix")
    return prefix
