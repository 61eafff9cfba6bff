"""Static-delta superblocks.

A superblock ``(a{sv}tayay(commit)aya(uayttay)a(yaytt))`` describes a delta from one commit
(or from nothing) to another: it embeds the target commit, lists the parts with their
objects, and names the large "fallback" objects the client fetches loose. The part
header sizes and fallback sizes are stored in the byte order named by the
``ostree.endianness`` metadata key (``'l'`` or ``'B'``); this class exposes them native.
"""

from __future__ import annotations

import hashlib
from typing import Any, NamedTuple

import attrs

from ostree_repo.errors import InvalidObjectError
from ostree_repo.gvariant import Variant, dumps
from ostree_repo.objects._fields import bswap32, bswap64, decode, hex_checksum
from ostree_repo.objects.metadata import COMMIT_SIGNATURE, Commit
from ostree_repo.objects.names import checksum_to_bytes
from ostree_repo.objects.objtype import ObjectType

__all__ = [
    "SUPERBLOCK_SIGNATURE",
    "DeltaFallback",
    "DeltaPart",
    "DeltaPartHeader",
    "DeltaSuperblock",
]

SUPERBLOCK_SIGNATURE = f"(a{{sv}}tayay{COMMIT_SIGNATURE}aya(uayttay)a(yaytt))"
ENDIANNESS = "ostree.endianness"
_TYPE_CODES = {
    1: ObjectType.FILE,
    2: ObjectType.DIRTREE,
    3: ObjectType.DIRMETA,
    4: ObjectType.COMMIT,
    5: ObjectType.TOMBSTONE_COMMIT,
    6: ObjectType.COMMITMETA,
}
_TYPE_NUMBERS = {v: k for k, v in _TYPE_CODES.items()}


def _objtype(code: int, what: str) -> ObjectType:
    try:
        return _TYPE_CODES[code]
    except KeyError:
        raise InvalidObjectError(f"{what}: unknown object type {code}") from None


class DeltaPartHeader(NamedTuple):
    """One part of a delta: its file's checksum and size, and the objects it produces."""

    version: int
    checksum: str
    size: int
    usize: int
    objects: tuple[tuple[ObjectType, str], ...]


class DeltaFallback(NamedTuple):
    """An object too big for a part; the client fetches it as a loose object."""

    objtype: ObjectType
    checksum: str
    size: int
    usize: int


def _objects_from_bytes(raw: bytes) -> tuple[tuple[ObjectType, str], ...]:
    if len(raw) % 33:
        raise InvalidObjectError("delta part: object list not a multiple of 33 bytes")
    return tuple(
        (_objtype(raw[i], "delta part"), raw[i + 1 : i + 33].hex()) for i in range(0, len(raw), 33)
    )


def _objects_to_bytes(objects: tuple[tuple[ObjectType, str], ...]) -> bytes:
    return b"".join(bytes([_TYPE_NUMBERS[t]]) + checksum_to_bytes(c) for t, c in objects)


@attrs.frozen
class DeltaSuperblock:
    """A decoded static-delta superblock. ``from_checksum`` is None for a from-scratch delta."""

    to_checksum: str
    commit: Commit
    from_checksum: str | None = None
    timestamp: int = 0
    metadata: dict[str, Variant] = attrs.field(factory=dict)
    parts: tuple[DeltaPartHeader, ...] = ()
    fallbacks: tuple[DeltaFallback, ...] = ()
    recursive: bytes = b""

    @property
    def swapped(self) -> bool:
        """True when part sizes are stored big-endian (``ostree.endianness`` is ``'B'``)."""
        value = self.metadata.get(ENDIANNESS)
        if value is None:
            return False
        if value.signature != "y" or value.value not in (ord("l"), ord("B")):
            raise InvalidObjectError(f"superblock: invalid {ENDIANNESS} {value!r}")
        return bool(value.value == ord("B"))

    def inline_part(self, index: int) -> bytes | None:
        """The bytes of part ``index`` if the superblock carries it inline, else None."""
        from ostree_repo.objects.names import delta_path

        value = self.metadata.get(delta_path(self.from_checksum, self.to_checksum, str(index)))
        if value is None:
            return None
        if value.signature != "(yay)":
            raise InvalidObjectError(f"superblock: inline part {index} is not (yay)")
        compression, payload = value.value
        return bytes([compression]) + bytes(payload)

    @classmethod
    def from_bytes(cls, data: bytes | bytearray | memoryview) -> DeltaSuperblock:
        """Decode a superblock (strict); checks that the embedded commit is the target."""
        metadata, timestamp, from_raw, to_raw, commit, recursive, parts, fallbacks = decode(
            SUPERBLOCK_SIGNATURE, data, "delta superblock"
        )
        to_checksum = hex_checksum(to_raw, "superblock target")
        shell = cls(to_checksum, Commit.from_value(commit), metadata=metadata)
        u32, u64 = (bswap32, bswap64) if shell.swapped else (int, int)
        block = attrs.evolve(
            shell,
            from_checksum=hex_checksum(from_raw, "superblock source") if from_raw else None,
            timestamp=bswap64(timestamp),
            recursive=recursive,
            parts=tuple(
                DeltaPartHeader(
                    u32(v), hex_checksum(c, "delta part"), u64(s), u64(us), _objects_from_bytes(o)
                )
                for v, c, s, us, o in parts
            ),
            fallbacks=tuple(
                DeltaFallback(
                    _objtype(t, "delta fallback"), hex_checksum(c, "delta fallback"), u64(s), u64(u)
                )
                for t, c, s, u in fallbacks
            ),
        )
        actual = hashlib.sha256(dumps(COMMIT_SIGNATURE, commit)).hexdigest()
        if actual != to_checksum:
            raise InvalidObjectError(
                f"superblock: embedded commit is {actual}, target is {to_checksum}"
            )
        return block

    def to_value(self) -> tuple[Any, ...]:
        """The GVariant tuple for this superblock."""
        u32, u64 = (bswap32, bswap64) if self.swapped else (int, int)
        return (
            self.metadata,
            bswap64(self.timestamp),
            checksum_to_bytes(self.from_checksum) if self.from_checksum else b"",
            checksum_to_bytes(self.to_checksum),
            self.commit.to_value(),
            self.recursive,
            [
                (
                    u32(p.version),
                    checksum_to_bytes(p.checksum),
                    u64(p.size),
                    u64(p.usize),
                    _objects_to_bytes(p.objects),
                )
                for p in self.parts
            ],
            [
                (_TYPE_NUMBERS[f.objtype], checksum_to_bytes(f.checksum), u64(f.size), u64(f.usize))
                for f in self.fallbacks
            ],
        )

    def to_bytes(self) -> bytes:
        """Serialise in normal form."""
        return dumps(SUPERBLOCK_SIGNATURE, self.to_value())


PART_PAYLOAD_SIGNATURE = "(a(uuu)aa(ayay)ayay)"
#: libostree (v2026.3+) caps the xz decoder's memory at 100 MiB; so do we.
XZ_MEMLIMIT = 100 * 1024 * 1024


@attrs.frozen
class DeltaPart:
    """A decoded static-delta part: mode and xattr tables, the data blob and the opcodes.

    ``compression`` is ``0`` (none) or ``ord('x')`` (xz). ``modes`` are native
    (uid, gid, mode) triples; the opcodes are kept as raw bytes.
    """

    compression: int
    modes: tuple[tuple[int, int, int], ...]
    xattrs: tuple[tuple[tuple[bytes, bytes], ...], ...]
    blob: bytes
    ops: bytes

    @classmethod
    def from_bytes(cls, data: bytes | bytearray | memoryview) -> DeltaPart:
        """Decode a part file (first byte: compression; then the payload)."""
        import lzma

        from ostree_repo.objects._fields import xattrs_from_value

        if not data:
            raise InvalidObjectError("delta part: empty file")
        compression, payload = data[0], bytes(data[1:])
        if compression == ord("x"):
            try:
                payload = lzma.LZMADecompressor(memlimit=XZ_MEMLIMIT).decompress(payload)
            except lzma.LZMAError as e:
                raise InvalidObjectError(f"delta part: corrupt xz stream ({e})") from None
        elif compression != 0:
            raise InvalidObjectError(f"delta part: unknown compression {compression:#x}")
        modes, xattrs, blob, ops = decode(PART_PAYLOAD_SIGNATURE, payload, "delta part")
        return cls(
            compression,
            tuple((bswap32(u), bswap32(g), bswap32(m)) for u, g, m in modes),
            tuple(xattrs_from_value(x, "delta part") for x in xattrs),
            blob,
            ops,
        )
