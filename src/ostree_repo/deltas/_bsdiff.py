"""Binary diffs in the form libostree's ``B`` (bspatch) opcode applies them.

libostree links Matthew Endsley's bsdiff, whose patch is the *raw stream*: no
``BSDIFF40``/``ENDSLEY/BSDIFF43`` header and no bzip2 (the whole delta part is xz'd).
It repeats, until the output is complete: three control numbers ``(x, y, z)`` of 8 bytes
each, sign-magnitude little-endian (bit 63 is the sign); ``x`` "diff" bytes, each added
(mod 256) to the old data at the old cursor; ``y`` "extra" bytes copied as they are; then
the old cursor moves by ``z``.

:func:`diff` computes the patch with ``bsdiff4`` (Colin Percival's algorithm, as
Endsley's: a suffix sort of the old data, then greedy approximate matches), which
returns the three streams bsdiff 4 would bzip2 separately; we interleave them into the
raw stream. :func:`patch` applies one in Python (the client's side, for checks).
"""

from __future__ import annotations

import struct

from ostree_repo.errors import InvalidObjectError

__all__ = ["diff", "memory_estimate", "patch"]

_CONTROL = struct.Struct("<24s")
_SIGN = 1 << 63


def memory_estimate(old_size: int, new_size: int) -> int:
    """Bytes :func:`diff` needs at most: the suffix array and its rank array (8 bytes per
    old byte each), the diff and extra buffers (one byte per new byte each) and both
    inputs."""
    return 17 * (old_size + 1) + 3 * new_size


def diff(old: bytes, new: bytes) -> bytes:
    """The raw bsdiff stream that turns ``old`` into ``new``."""
    from bsdiff4 import core  # the `deltas` extra; imported where generation runs

    control, diffs, extra = core.diff(old, new)
    pieces: list[bytes | memoryview] = []
    diff_view, extra_view = memoryview(diffs), memoryview(extra)
    dpos = epos = 0
    for offset in range(0, len(control), 24):
        triple = control[offset : offset + 24]
        x = _decode(triple[0:8])
        y = _decode(triple[8:16])
        pieces.append(triple)
        pieces.append(diff_view[dpos : dpos + x])
        pieces.append(extra_view[epos : epos + y])
        dpos += x
        epos += y
    return b"".join(pieces)


def _decode(raw: bytes | memoryview) -> int:
    value = int.from_bytes(raw, "little")
    return -(value & ~_SIGN) if value & _SIGN else value


def patch(old: bytes | memoryview, stream: bytes | memoryview, size: int) -> bytes:
    """Apply a raw bsdiff stream to ``old``, producing ``size`` bytes, with the checks
    Endsley's ``bspatch`` makes; InvalidObjectError when the stream does not fit."""
    out = bytearray(size)
    old_size = len(old)
    old_pos = new_pos = pos = 0
    while new_pos < size:
        if pos + 24 > len(stream):
            raise InvalidObjectError("bsdiff patch: truncated control block")
        x = _decode(stream[pos : pos + 8])
        y = _decode(stream[pos + 8 : pos + 16])
        z = _decode(stream[pos + 16 : pos + 24])
        pos += 24
        if x < 0 or y < 0 or x > 0x7FFFFFFF or y > 0x7FFFFFFF or new_pos + x > size:
            raise InvalidObjectError("bsdiff patch: corrupt control block")
        if pos + x > len(stream):
            raise InvalidObjectError("bsdiff patch: truncated diff block")
        lo = max(old_pos, 0)
        hi = min(old_pos + x, old_size)
        out[new_pos : new_pos + x] = stream[pos : pos + x]
        if lo < hi:
            start = new_pos + (lo - old_pos)
            added = _add_bytes(out[start : start + hi - lo], old[lo:hi])
            out[start : start + hi - lo] = added
        pos += x
        new_pos += x
        old_pos += x
        if new_pos + y > size or pos + y > len(stream):
            raise InvalidObjectError("bsdiff patch: corrupt extra block")
        out[new_pos : new_pos + y] = stream[pos : pos + y]
        pos += y
        new_pos += y
        old_pos += z
    return bytes(out)


def _add_bytes(a: bytes | bytearray | memoryview, b: bytes | bytearray | memoryview) -> bytes:
    """Bytewise ``(a + b) mod 256``, as one big-integer addition with the carries masked
    out (each byte widened to 16 bits so no carry crosses into its neighbour)."""
    n = len(a)
    if not n:
        return b""
    wide_a = bytearray(2 * n)
    wide_b = bytearray(2 * n)
    wide_a[0::2] = a
    wide_b[0::2] = b
    total = int.from_bytes(wide_a, "little") + int.from_bytes(wide_b, "little")
    return total.to_bytes(2 * n + 1, "little")[0 : 2 * n : 2]
