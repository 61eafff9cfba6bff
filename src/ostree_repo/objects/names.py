"""Names of things in an OSTree repository: checksums, refs, object and delta paths.

The rules follow libostree: checksums are 64 lowercase hex digits (32 raw bytes inside
GVariants); ref names are ``/``-separated fragments matching ``[\\w\\d][-._\\w\\d]*``;
static deltas live under paths that spell checksums in "modified base64".
"""

from __future__ import annotations

import base64
import re

from ostree_repo.errors import InvalidNameError
from ostree_repo.objects.objtype import ObjectType

__all__ = [
    "checksum_from_bytes",
    "checksum_to_bytes",
    "delta_index_path",
    "delta_name",
    "delta_path",
    "from_mbase64",
    "is_checksum",
    "object_path",
    "parse_delta_name",
    "parse_object_path",
    "to_mbase64",
    "validate_checksum",
    "validate_collection_id",
    "validate_ref",
]

_CHECKSUM = re.compile(r"[0-9a-f]{64}")
# libostree: ^(?:FRAG/)*FRAG$ with FRAG = [\w\d][-._\w\d]*. Python's \w is Unicode-aware
# and includes digits and "_" like PCRE's in UTF-8 mode. Unlike PCRE's "$", fullmatch
# does not accept a trailing newline: "main\n" is refused on purpose.
_REF = re.compile(r"(?:\w[-.\w]*/)*\w[-.\w]*")
_COLLECTION_ELEMENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_EXTENSIONS = {objtype: objtype.extension for objtype in ObjectType}


def is_checksum(text: object) -> bool:
    """True when ``text`` is a 64-character lowercase hex checksum."""
    return isinstance(text, str) and _CHECKSUM.fullmatch(text) is not None


def validate_checksum(text: str) -> str:
    """Return ``text`` if it is a valid checksum, else raise :class:`InvalidNameError`."""
    if not is_checksum(text):
        raise InvalidNameError(f"invalid checksum {text!r}")
    return text


def checksum_to_bytes(checksum: str) -> bytes:
    """The 32 raw bytes of a hex checksum."""
    return bytes.fromhex(validate_checksum(checksum))


def checksum_from_bytes(raw: bytes) -> str:
    """The hex form of a 32-byte binary checksum."""
    if len(raw) != 32:
        raise InvalidNameError(f"binary checksum of {len(raw)} bytes instead of 32")
    return raw.hex()


def validate_ref(name: str) -> str:
    """Return ``name`` if libostree would accept it as a ref name, else raise.

    Checksum-like names are refused too, as libostree refuses to write such refs.
    """
    if not isinstance(name, str) or _REF.fullmatch(name) is None:
        raise InvalidNameError(f"invalid ref name {name!r}")
    if is_checksum(name):
        raise InvalidNameError(f"ref name {name!r} looks like a checksum")
    return name


def validate_collection_id(cid: str) -> str:
    """Return ``cid`` if it is a valid collection ID (D-Bus interface name rules), else raise."""
    elements = cid.split(".") if isinstance(cid, str) else []
    if (
        len(elements) < 2
        or len(cid) > 255
        or not all(_COLLECTION_ELEMENT.fullmatch(e) for e in elements)
    ):
        raise InvalidNameError(f"invalid collection ID {cid!r}")
    return cid


def object_path(checksum: str, objtype: ObjectType) -> str:
    """The loose path of an object in an archive repository, e.g. ``objects/ab/cd….filez``."""
    validate_checksum(checksum)
    extension = _EXTENSIONS.get(objtype) or objtype.extension  # (the dict: a hot path)
    return f"objects/{checksum[:2]}/{checksum[2:]}.{extension}"


def parse_object_path(path: str) -> tuple[str, ObjectType]:
    """Inverse of :func:`object_path`: ``objects/ab/cd….dirtree`` -> (checksum, type)."""
    parts = path.split("/")
    if len(parts) != 3 or parts[0] != "objects" or len(parts[1]) != 2 or "." not in parts[2]:
        raise InvalidNameError(f"not an object path: {path!r}")
    rest, _, ext = parts[2].partition(".")
    checksum = parts[1] + rest
    if not is_checksum(checksum):
        raise InvalidNameError(f"not an object path: {path!r}")
    objtype = ObjectType.from_extension(ext)
    if object_path(checksum, objtype) != path:  # e.g. a bare repository's ".file"
        raise InvalidNameError(f"not an archive-repository object path: {path!r}")
    return checksum, objtype


def to_mbase64(checksum: str) -> str:
    """A checksum in libostree's modified base64: 43 characters, ``/`` spelt ``_``."""
    raw = base64.b64encode(checksum_to_bytes(checksum)).decode("ascii")
    return raw.rstrip("=").replace("/", "_")


def from_mbase64(text: str) -> str:
    """Inverse of :func:`to_mbase64`."""
    if len(text) != 43 or not re.fullmatch(r"[A-Za-z0-9+_]{43}", text):
        raise InvalidNameError(f"invalid modified-base64 checksum {text!r}")
    raw = base64.b64decode(text.replace("_", "/") + "=", validate=True)
    result = checksum_from_bytes(raw)
    if to_mbase64(result) != text:  # non-zero trailing bits are not canonical
        raise InvalidNameError(f"non-canonical modified-base64 checksum {text!r}")
    return result


def delta_name(from_checksum: str | None, to_checksum: str) -> str:
    """The name of a static delta in summaries and indexes: ``FROM-TO``, or ``TO`` from scratch."""
    validate_checksum(to_checksum)
    if from_checksum is None:
        return to_checksum
    return f"{validate_checksum(from_checksum)}-{to_checksum}"


def parse_delta_name(name: str) -> tuple[str | None, str]:
    """Inverse of :func:`delta_name`: ``(from or None, to)``."""
    from_part, sep, to_part = name.partition("-")
    if not sep:
        return None, validate_checksum(name)
    return validate_checksum(from_part), validate_checksum(to_part)


def delta_path(from_checksum: str | None, to_checksum: str, member: str = "") -> str:
    """The directory of a static delta (``deltas/XX/rest[-TO]/``), or a file in it.

    ``member`` is ``"superblock"`` or a part number as a string.
    """
    to_b64 = to_mbase64(to_checksum)
    if from_checksum is None:
        base = f"deltas/{to_b64[:2]}/{to_b64[2:]}"
    else:
        from_b64 = to_mbase64(from_checksum)
        base = f"deltas/{from_b64[:2]}/{from_b64[2:]}-{to_b64}"
    return f"{base}/{member}" if member else f"{base}/"


def delta_index_path(to_checksum: str) -> str:
    """The path of the delta index for target commit ``to_checksum``."""
    b64 = to_mbase64(to_checksum)
    return f"delta-indexes/{b64[:2]}/{b64[2:]}.index"
