"""The work a delta is cut into, run in worker processes (or in-process): diffs of
modified files, and parts.

A *diff* takes a new file and the old file it was paired with (both ``.filez``) and
decides as libostree does: rollsum matches if at least half of the new file's chunks
are found in the old one, else a bsdiff patch if allowed, else nothing (the file is
then carried whole).

A *part* is written by a :class:`~._payload.PartWriter` from a :class:`PartStart` (its
compression and tables) and its entries, in order:

* ``("m", data)``: a metadata object;
* ``("f", checksum, filez, indices)``: a content object carried whole;
* ``("b", checksum, size, indices, source, patch)``: a file made by a bsdiff patch;
* ``("r", checksum, filez, indices, source, matches)``: a file made from rollsum matches.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any, NamedTuple, TypeAlias

from ostree_repo.deltas import _bsdiff as bsdiff
from ostree_repo.deltas import _rollsum as rollsum
from ostree_repo.deltas._payload import PartWriter, XzSettings, inflate_filez
from ostree_repo.deltas._rollsum import Match

__all__ = ["DiffRequest", "DiffResult", "Entry", "PartStart", "run_diffs", "write_entries"]


class DiffRequest(NamedTuple):
    """A new file and the old one it was paired with."""

    checksum: str
    filez: bytes
    source: str
    source_filez: bytes
    bsdiff: bool


#: ``("rollsum", matches)``, ``("bsdiff", patch)``, or None (carry the file whole).
DiffResult: TypeAlias = "tuple[str, Any] | None"


class PartStart(NamedTuple):
    """How a part is written: compression, its tables and its payload's size."""

    compression: str
    xz: XzSettings
    modes: bytes
    xattrs: bytes
    payload_size: int


Entry: TypeAlias = tuple[Any, ...]


def diff_one(request: DiffRequest, use_rollsum: bool = True) -> DiffResult:
    """How to encode one modified file (see the module docstring)."""
    _, new = inflate_filez(request.filez, request.checksum)
    _, old = inflate_filez(request.source_filez, request.source)
    if use_rollsum:
        found = rollsum.matches(old, new)
        if found.usable:
            return ("rollsum", found.matches)
    if request.bsdiff:
        return ("bsdiff", bsdiff.diff(old, new))
    return None


def run_diffs(requests: Iterable[DiffRequest], use_rollsum: bool = True) -> list[DiffResult]:
    """:func:`diff_one` for each request, in order."""
    return [diff_one(r, use_rollsum) for r in requests]


def write_entries(writer: PartWriter, entries: Sequence[Entry]) -> None:
    """Add ``entries`` to a part being written."""
    for entry in entries:
        kind = entry[0]
        if kind == "m":
            writer.add_metadata(entry[1])
        elif kind == "f":
            header, content = inflate_filez(entry[2], entry[1])
            writer.add_file(entry[3], header, content)
        elif kind == "b":
            writer.add_bsdiff(entry[3], entry[2], entry[4], entry[5])
        elif kind == "r":
            _, content = inflate_filez(entry[2], entry[1])
            matches: Sequence[Match] = entry[5]
            writer.add_rollsum(entry[3], content, entry[4], matches)
        else:  # pragma: no cover - the parent only sends these
            raise ValueError(f"unknown part entry {kind!r}")


def start_part(start: PartStart) -> PartWriter:
    """A writer for a part described by ``start``."""
    return PartWriter(start.compression, start.modes, start.xattrs, start.payload_size, start.xz)
