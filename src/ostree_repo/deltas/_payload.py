"""Writing one static-delta part: its mode and xattr tables, data blob and operations.

A part file is one byte of compression type (``'x'`` for xz, ``0`` for none) and then the
payload ``(a(uuu)aa(ayay)ayay)``: the (uid, gid, mode) triples its content objects use
(byte-swapped), their xattr lists, the *blob* that operations read bytes from, and the
operations. :class:`PartWriter` streams the payload into the compressor as objects are
added, so memory holds one object at a time, never the part: the tables (which come
first) are given up front, the blob grows as objects are added, and the operations and
the tuple's framing offsets close it.

What each object turns into (as libostree's compiler writes it):

* metadata: ``S len off`` (its bytes in the blob);
* a new regular file: ``S mode xattrs size off``; a symlink the same with its target as
  the bytes;
* a file encoded with rollsum matches: the old object's checksum in the blob, then
  ``o mode xattrs size``, and for each stretch ``w len off`` from the blob or, after
  ``r off`` (the checksum's offset) from the old object, closed with ``R``; then ``c``;
* a file encoded with a bsdiff patch: ``r off`` (old checksum in the blob), ``o mode
  xattrs size``, ``B off len`` (the patch in the blob), ``c``, ``R``.
"""

from __future__ import annotations

import hashlib
import lzma
import struct
from collections.abc import Sequence
from typing import NamedTuple

from ostree_repo.deltas import _opcodes as op
from ostree_repo.deltas._opcodes import varint
from ostree_repo.deltas._rollsum import Match
from ostree_repo.errors import ChecksumMismatchError, InvalidObjectError
from ostree_repo.gvariant import dumps
from ostree_repo.gvariant._framing import pack_offsets, writer_width
from ostree_repo.objects._fields import Xattrs, xattrs_to_value
from ostree_repo.objects.content import FileHeader, FilezReader
from ostree_repo.objects.names import checksum_to_bytes

__all__ = ["COMPRESSIONS", "PartTables", "PartWriter", "XzSettings", "inflate_filez"]

#: Part compression types by name: the byte a part file starts with.
COMPRESSIONS = {"xz": ord("x"), "none": 0}
_MODE = struct.Struct(">III")


class XzSettings(NamedTuple):
    """How parts are xz-compressed: liblzma preset, match finder and dictionary size.

    libostree uses ``lzma_easy_encoder(8, LZMA_CHECK_CRC64)``: preset 8 (a 32 MiB
    dictionary, the ``bt4`` match finder). The dictionary only helps up to the size of
    the input, so each part's dictionary is the smaller of ``dict_size`` and the part.
    """

    preset: int = 8
    dict_size: int = 32 << 20
    match_finder: int = lzma.MF_BT4

    def filters(self, payload_size: int) -> list[dict[str, int]]:
        """The liblzma filter chain for a payload of ``payload_size`` bytes."""
        size = max(lzma_min_dict(), min(self.dict_size, payload_size))
        return [
            {
                "id": lzma.FILTER_LZMA2,
                "preset": self.preset,
                "dict_size": size,
                "mf": self.match_finder,
            }
        ]

    def memory(self, payload_size: int) -> int:
        """About how many bytes liblzma's encoder holds for such a payload."""
        size = max(lzma_min_dict(), min(self.dict_size, payload_size))
        per_byte = 9.5 if self.match_finder == lzma.MF_BT4 else 5.5
        return int(size * per_byte) + (4 << 20)


def lzma_min_dict() -> int:
    """The smallest dictionary liblzma accepts."""
    return 4096


class PartTables:
    """The mode and xattr tables of a part, built before its objects are written."""

    def __init__(self) -> None:
        self._modes: dict[tuple[int, int, int], int] = {}
        self._xattrs: dict[Xattrs, int] = {}

    def add(self, header: FileHeader) -> tuple[int, int]:
        """The (mode index, xattr index) of a content object with ``header``."""
        key = (header.uid, header.gid, header.mode)
        mode = self._modes.setdefault(key, len(self._modes))
        xattrs = self._xattrs.setdefault(header.xattrs, len(self._xattrs))
        return mode, xattrs

    def encode(self) -> tuple[bytes, bytes]:
        """(``a(uuu)`` bytes, ``aa(ayay)`` bytes) as the payload holds them."""
        # byte-swapped u32s stored little-endian are the values packed big-endian
        modes = b"".join(_MODE.pack(u, g, m) for u, g, m in self._modes)
        xattrs = dumps("aa(ayay)", [xattrs_to_value(x) for x in self._xattrs])
        return modes, xattrs


def inflate_filez(filez: bytes | memoryview, checksum: str) -> tuple[FileHeader, bytes]:
    """A content object's header and bytes from its ``.filez``, checked against its name."""
    reader = FilezReader()
    pieces = reader.feed(filez)
    reader.finish()
    if reader.checksum() != checksum:
        raise ChecksumMismatchError(checksum, reader.checksum(), "content object")
    assert reader.header is not None
    return reader.header, b"".join(pieces)


class PartWriter:
    """Streams one part: tables first, then each object, then :meth:`finish`."""

    def __init__(
        self,
        compression: str,
        modes: bytes,
        xattrs: bytes,
        payload_size: int = 0,
        xz: XzSettings | None = None,
    ) -> None:
        if compression not in COMPRESSIONS:
            raise InvalidObjectError(f"unknown delta compression {compression!r}")
        self._type = COMPRESSIONS[compression]
        self._compressor = (
            lzma.LZMACompressor(
                format=lzma.FORMAT_XZ,
                check=lzma.CHECK_CRC64,
                filters=(xz or XzSettings()).filters(payload_size or 1 << 20),
            )
            if compression == "xz"
            else None
        )
        self._out: list[bytes] = [bytes([self._type])]
        self._modes_end = len(modes)
        self._xattrs_end = len(modes) + len(xattrs)
        self._blob = 0
        self._ops = bytearray()
        self._emit(modes)
        self._emit(xattrs)

    def _emit(self, data: bytes | memoryview) -> None:
        if not data:
            return
        if self._compressor is None:
            self._out.append(bytes(data))
        else:
            out = self._compressor.compress(data)
            if out:
                self._out.append(out)

    def _put(self, data: bytes | memoryview) -> int:
        """Append ``data`` to the blob; its offset there."""
        offset = self._blob
        self._emit(data)
        self._blob += len(data)
        return offset

    def _ops_add(self, code: int, *args: int) -> None:
        self._ops.append(code)
        for value in args:
            self._ops += varint(value)

    def add_metadata(self, data: bytes | memoryview) -> None:
        """A metadata object, spliced whole."""
        offset = self._put(data)
        self._ops_add(op.OPEN_SPLICE_AND_CLOSE, len(data), offset)

    def add_file(self, indices: tuple[int, int], header: FileHeader, content: bytes) -> None:
        """A new content object (regular file or symlink), spliced whole."""
        data = header.symlink_target.encode() if header.is_symlink else content
        offset = self._put(data)
        self._ops_add(op.OPEN_SPLICE_AND_CLOSE, indices[0], indices[1], len(data), offset)

    def add_bsdiff(self, indices: tuple[int, int], size: int, source: str, patch: bytes) -> None:
        """A regular file of ``size`` bytes made by patching old object ``source``."""
        self._ops_add(op.SET_READ_SOURCE, self._put(checksum_to_bytes(source)))
        self._ops_add(op.OPEN, indices[0], indices[1], size)
        self._ops_add(op.BSPATCH, self._put(patch), len(patch))
        self._ops_add(op.CLOSE)
        self._ops_add(op.UNSET_READ_SOURCE)

    def add_rollsum(
        self, indices: tuple[int, int], content: bytes, source: str, matches: Sequence[Match]
    ) -> None:
        """A regular file written from ``matches`` of old object ``source`` and the bytes
        between them."""
        if not matches:
            raise InvalidObjectError("rollsum encoding needs at least one match")
        source_offset = self._put(checksum_to_bytes(source))
        self._ops_add(op.OPEN, indices[0], indices[1], len(content))
        view = memoryview(content)
        written = 0
        from_blob = True
        for match in matches:
            if match.new_start > written:
                if not from_blob:
                    self._ops_add(op.UNSET_READ_SOURCE)
                    from_blob = True
                piece = view[written : match.new_start]
                self._ops_add(op.WRITE, len(piece), self._put(piece))
                written = match.new_start
            if from_blob:
                self._ops_add(op.SET_READ_SOURCE, source_offset)
                from_blob = False
            self._ops_add(op.WRITE, match.length, match.old_start)
            written += match.length
        if not from_blob:
            self._ops_add(op.UNSET_READ_SOURCE)
        if written < len(content):
            piece = view[written:]
            self._ops_add(op.WRITE, len(piece), self._put(piece))
        self._ops_add(op.CLOSE)

    def finish(self) -> bytes:
        """The whole part file."""
        ops = bytes(self._ops)
        blob_end = self._xattrs_end + self._blob
        body = blob_end + len(ops)
        width = writer_width(body, 3)
        self._emit(ops)
        self._emit(pack_offsets([blob_end, self._xattrs_end, self._modes_end], width))
        if self._compressor is not None:
            self._out.append(self._compressor.flush())
        data = b"".join(self._out)
        self._out = []
        return data


def part_checksum(data: bytes) -> str:
    """The checksum a part header gives for a part file (SHA-256 of the whole file)."""
    return hashlib.sha256(data).hexdigest()
