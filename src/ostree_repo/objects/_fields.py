"""Shared field helpers for the object codecs: byte swapping, checksums, xattrs, decoding."""

from __future__ import annotations

import stat
from typing import Any

from ostree_repo.errors import GVariantError, InvalidObjectError
from ostree_repo.gvariant import loads

Xattrs = tuple[tuple[bytes, bytes], ...]

MODE_BITS = 0o7777


def bswap32(value: int) -> int:
    """Swap the bytes of a 32-bit unsigned integer (OSTree stores some fields big-endian)."""
    return int.from_bytes(value.to_bytes(4, "little"), "big")


def bswap64(value: int) -> int:
    """Swap the bytes of a 64-bit unsigned integer."""
    return int.from_bytes(value.to_bytes(8, "little"), "big")


def decode(signature: str, data: bytes | bytearray | memoryview, what: str) -> Any:
    """Decode ``data`` strictly, turning codec errors into :class:`InvalidObjectError`."""
    try:
        return loads(signature, data)
    except GVariantError as e:
        raise InvalidObjectError(f"malformed {what}: {e}") from e


def hex_checksum(raw: bytes, what: str) -> str:
    """A 32-byte binary checksum from inside an object, as hex."""
    if len(raw) != 32:
        raise InvalidObjectError(f"{what}: checksum of {len(raw)} bytes instead of 32")
    return raw.hex()


def xattrs_from_value(value: list[tuple[bytes, bytes]], what: str) -> Xattrs:
    """``a(ayay)`` as stored (names NUL-terminated) -> ((name, value), ...) without the NULs."""
    result = []
    for name, data in value:
        if len(name) < 2 or name[-1] != 0 or 0 in name[:-1]:
            raise InvalidObjectError(f"{what}: malformed xattr name {name!r}")
        result.append((name[:-1], data))
    return tuple(result)


def xattrs_to_value(xattrs: Xattrs) -> list[tuple[bytes, bytes]]:
    """Inverse of :func:`xattrs_from_value`."""
    out = []
    for name, data in xattrs:
        if not name or 0 in name:
            raise InvalidObjectError(f"invalid xattr name {name!r}")
        out.append((bytes(name) + b"\0", bytes(data)))
    return out


def check_mode(mode: int, allowed: tuple[int, ...], what: str) -> None:
    """Refuse a mode whose file type is not in ``allowed`` or that has stray bits."""
    if stat.S_IFMT(mode) not in allowed or mode & ~(stat.S_IFMT(mode) | MODE_BITS):
        raise InvalidObjectError(f"{what}: invalid mode {mode:#o}")
