"""Framing offsets: how wide they are and how to read and write them (always little-endian)."""

from __future__ import annotations

import struct

__all__ = ["offset_width", "pack_offsets", "read_offsets", "writer_width"]

_FORMAT = {1: "B", 2: "H", 4: "I", 8: "Q"}


def offset_width(size: int) -> int:
    """The framing-offset width a reader derives from a container's total size."""
    if size == 0:
        return 0
    if size <= 0xFF:
        return 1
    if size <= 0xFFFF:
        return 2
    if size <= 0xFFFFFFFF:
        return 4
    return 8


def writer_width(body: int, count: int) -> int:
    """The smallest width that fits ``count`` offsets after ``body`` bytes (normal form)."""
    if body + count <= 0xFF:
        return 1
    if body + 2 * count <= 0xFFFF:
        return 2
    if body + 4 * count <= 0xFFFFFFFF:
        return 4
    return 8


def read_offsets(buf: bytes, pos: int, count: int, width: int) -> tuple[int, ...]:
    """Read ``count`` little-endian offsets of ``width`` bytes starting at ``buf[pos]``."""
    if width == 1:
        return tuple(buf[pos : pos + count])
    return struct.unpack_from(f"<{count}{_FORMAT[width]}", buf, pos)


def pack_offsets(ends: list[int], width: int) -> bytes:
    """Serialise offsets little-endian, ``width`` bytes each."""
    if width == 1:
        return bytes(ends)
    return struct.pack(f"<{len(ends)}{_FORMAT[width]}", *ends)
