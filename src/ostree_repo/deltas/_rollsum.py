"""Rolling-checksum matches of unchanged chunks, as libostree's rollsum compares files.

Both versions of a file are cut into content-defined chunks with bup's rolling checksum
(``bupsplit``: a 64-byte window, a boundary wherever the low 13 bits of its second sum are
all ones, so chunks average 8 KiB; at most 32 KiB each, and once no boundary is left the
rest is cut every 32 KiB). A chunk of the new version that has the same CRC-32, length
and bytes as a chunk of the old one is a *match*: the delta copies it from the old object
instead of carrying it. libostree uses the matches when at least half of the new
version's chunks match; so do we, with the very same boundaries.

The boundaries are found with numpy, 16-bit wrapping sums (only the low 13 bits matter,
and sums mod 2**16 keep them exact): the second sum over a full window is
``C + sum((j + 1) * byte[e - 1 - j] for j in range(64))``, computed for every window in
a block from two cumulative sums. Within 63 bytes of a chunk's start the window still
holds the zeros ``bupsplit`` starts with, so those few positions are stepped in Python.
"""

from __future__ import annotations

import bisect
import zlib
from typing import Any, NamedTuple

__all__ = ["Match", "RollsumMatches", "chunks", "matches"]

WINDOW = 64
BLOB_BITS = 13
BLOB_SIZE = 1 << BLOB_BITS
CHAR_OFFSET = 31
#: Longest chunk libostree makes (``ROLLSUM_BLOB_MAX``).
MAX_CHUNK = 8192 * 4
#: libostree uses rollsum matches when at least this share (in percent) of chunks match.
MIN_MATCH_PERCENT = 50
_S2_START = WINDOW * (WINDOW - 1) * CHAR_OFFSET
_BLOCK = 1 << 20


class Match(NamedTuple):
    """``length`` bytes at ``new_start`` in the new version equal those at ``old_start``."""

    new_start: int
    length: int
    old_start: int


class RollsumMatches(NamedTuple):
    """How the new version's chunks matched: counts as libostree keeps them, and the
    matches sorted by position in the new version."""

    total: int
    matched: int
    matches: tuple[Match, ...]

    @property
    def usable(self) -> bool:
        """True when libostree would encode the object with these matches."""
        return self.total > 0 and self.matched * 100 // self.total >= MIN_MATCH_PERCENT


def _full_window_boundaries(data: bytes | memoryview) -> list[int]:
    """Every ``e >= 64`` where a window of the last 64 bytes before ``e`` ends a chunk."""
    import numpy as np  # the `deltas` extra

    n = len(data)
    found: list[Any] = []
    mask = np.uint16(BLOB_SIZE - 1)
    start_value = np.uint16(_S2_START & 0xFFFF)
    # blocks overlap by one window, so each window is whole in the block it ends in
    for block_start in range(0, max(n - WINDOW, 0) + 1, _BLOCK):
        block_end = min(n, block_start + _BLOCK + WINDOW)
        x = np.frombuffer(data, dtype=np.uint8, count=block_end - block_start, offset=block_start)
        prefix = np.zeros(len(x) + 1, dtype=np.uint16)
        np.cumsum(x, dtype=np.uint16, out=prefix[1:])
        second = np.cumsum(prefix, dtype=np.uint16)
        s2 = second[WINDOW:] - second[:-WINDOW]
        s2 -= prefix[:-WINDOW] * np.uint16(WINDOW)
        s2 += start_value
        s2 &= mask
        hits = np.flatnonzero(s2 == mask)
        found.append(hits + (block_start + WINDOW))
    if not found:
        return []
    return [int(e) for e in np.unique(np.concatenate(found))]


def _short_boundary(data: bytes | memoryview, start: int) -> int:
    """The chunk length if a boundary falls within 63 bytes of ``start`` (the window still
    partly the zeros bupsplit starts with), else 0."""
    s1 = WINDOW * CHAR_OFFSET
    s2 = _S2_START
    end = min(WINDOW - 1, len(data) - start)
    for m in range(end):
        s1 += data[start + m]
        s2 += s1 - WINDOW * CHAR_OFFSET
        if s2 & (BLOB_SIZE - 1) == BLOB_SIZE - 1:
            return m + 1
    return 0


def chunks(data: bytes | memoryview) -> list[tuple[int, int]]:
    """``(start, length)`` of each chunk, as libostree's ``rollsum_chunks_crc32`` cuts."""
    n = len(data)
    boundaries = _full_window_boundaries(data) if n >= WINDOW else []
    out: list[tuple[int, int]] = []
    start = 0
    exhausted = False
    while start < n:
        remaining = n - start
        if exhausted:
            length = min(MAX_CHUNK, remaining)
        else:
            length = _short_boundary(data, start)
            if not length:
                i = bisect.bisect_left(boundaries, start + WINDOW)
                length = boundaries[i] - start if i < len(boundaries) else 0
            if not length:
                exhausted = True
                length = min(MAX_CHUNK, remaining)
            elif length > MAX_CHUNK:
                length = MAX_CHUNK
        out.append((start, length))
        start += length
    return out


def matches(old: bytes, new: bytes) -> RollsumMatches:
    """The chunks of ``new`` found in ``old`` (same CRC-32, length and bytes)."""
    old_chunks: dict[int, list[tuple[int, int]]] = {}
    for start, length in chunks(old):
        old_chunks.setdefault(zlib.crc32(old[start : start + length]), []).append((start, length))
    total = matched = 0
    found: list[Match] = []
    old_view, new_view = memoryview(old), memoryview(new)
    for start, length in chunks(new):
        total += 1
        for old_start, old_length in old_chunks.get(zlib.crc32(new[start : start + length]), ()):
            if old_length == length and (
                old_view[old_start : old_start + length] == new_view[start : start + length]
            ):
                found.append(Match(start, length, old_start))
                matched += 1
                break
    return RollsumMatches(total, matched, tuple(found))
