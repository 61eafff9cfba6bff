"""The static-delta opcode stream: opcode bytes and their LEB128 arguments.

A part's operations are one ASCII byte each, followed by unsigned LEB128 varints (7 bits
per byte, least significant group first, high bit set on every byte but the last; at
most 10 bytes, as libostree's ``_ostree_read_varuint64`` accepts).
"""

from __future__ import annotations

from ostree_repo.errors import InvalidObjectError

__all__ = [
    "BSPATCH",
    "CLOSE",
    "OPEN",
    "OPEN_SPLICE_AND_CLOSE",
    "SET_READ_SOURCE",
    "UNSET_READ_SOURCE",
    "WRITE",
    "read_varint",
    "varint",
]

OPEN_SPLICE_AND_CLOSE = ord("S")
OPEN = ord("o")
WRITE = ord("w")
SET_READ_SOURCE = ord("r")
UNSET_READ_SOURCE = ord("R")
CLOSE = ord("c")
BSPATCH = ord("B")

#: How many arguments each opcode takes.
ARITY = {
    OPEN_SPLICE_AND_CLOSE: None,  # 2 for metadata, 4 for content
    OPEN: 3,
    WRITE: 2,
    SET_READ_SOURCE: 1,
    UNSET_READ_SOURCE: 0,
    CLOSE: 0,
    BSPATCH: 2,
}

_SMALL = [bytes([i]) for i in range(128)]


def varint(value: int) -> bytes:
    """``value`` (0 <= value < 2**64) as an unsigned LEB128 varint."""
    if value < 128:
        if value < 0:
            raise ValueError(f"varint of a negative number {value}")
        return _SMALL[value]
    if value >= 1 << 64:
        raise ValueError(f"varint of {value} does not fit 64 bits")
    out = bytearray()
    while value >= 128:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def read_varint(data: bytes | memoryview, pos: int) -> tuple[int, int]:
    """The varint at ``data[pos]`` and the position after it; InvalidObjectError on a
    truncated or over-long varint."""
    value = 0
    shift = 0
    for i in range(10):
        if pos + i >= len(data):
            raise InvalidObjectError("delta part: truncated varint in the operations")
        byte = data[pos + i]
        value |= (byte & 0x7F) << shift
        if not byte & 0x80:
            if value >= 1 << 64:
                raise InvalidObjectError("delta part: varint does not fit 64 bits")
            return value, pos + i + 1
        shift += 7
    raise InvalidObjectError("delta part: varint longer than 10 bytes")
