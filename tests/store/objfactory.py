"""Valid OSTree objects for store tests, built by hand (no dependency on the codec)."""

from __future__ import annotations

import hashlib
import random
import struct
import zlib
from collections.abc import Iterator
from dataclasses import dataclass

from ostree_repo.objects.objtype import ObjectType


@dataclass(frozen=True)
class Obj:
    """A small object held in memory."""

    checksum: str
    objtype: ObjectType
    data: bytes


def dirmeta(uid: int, gid: int = 0, mode: int = 0o040755) -> Obj:
    """A 12-byte ``.dirmeta`` ``(uuua(ayay))`` with no xattrs; vary uid/gid for distinct ones."""
    data = struct.pack(">III", uid, gid, mode)
    return Obj(hashlib.sha256(data).hexdigest(), ObjectType.DIRMETA, data)


def _offset_width(size: int) -> int:
    return 1 if size < 0x100 else 2 if size < 0x10000 else 4


def _framed(body: bytes, ends: list[int]) -> bytes:
    """``body`` followed by its framing offsets, in the narrowest width that fits."""
    for width in (1, 2, 4):
        if _offset_width(len(body) + width * len(ends)) == width:
            return body + b"".join(end.to_bytes(width, "little") for end in ends)
    raise ValueError("too big")


def padded_dirmeta(uid: int, size: int) -> Obj:
    """A dirmeta of about ``size`` bytes: one ``user.pad`` xattr carries the bulk."""
    name = b"user.pad\0"
    value = random.Random(uid).randbytes(max(size - 30, 1))
    entry = _framed(name + value, [len(name)])
    data = struct.pack(">III", uid, 0, 0o040755) + _framed(entry, [len(entry)])
    return Obj(hashlib.sha256(data).hexdigest(), ObjectType.DIRMETA, data)


def dirmetas(count: int, start: int = 0) -> list[Obj]:
    """``count`` distinct dirmeta objects."""
    return [dirmeta(1000 + i, i % 7) for i in range(start, start + count)]


def commitmeta(commit: str, value: bytes) -> Obj:
    """A ``.commitmeta`` ``a{sv}`` holding ``{"k": <ay value>}``, named after ``commit``."""
    assert len(value) < 200
    entry = b"k\0" + b"\0" * 6 + value + b"\0ay"
    entry += bytes([2])  # framing offset: end of the key
    data = entry + bytes([len(entry)])  # array framing: end of the only element
    return Obj(commit, ObjectType.COMMITMETA, data)


_FILE_HEADER = struct.Struct(">QIIII")  # size, uid, gid, mode, rdev


@dataclass(frozen=True)
class FileObj:
    """A regular-file content object whose ``.filez`` is generated chunk by chunk."""

    checksum: str
    size: int  # payload size
    seed: int

    @property
    def objtype(self) -> ObjectType:
        return ObjectType.FILE

    def payload(self, chunk: int = 1 << 20) -> Iterator[bytes]:
        rng = random.Random(self.seed)
        left = self.size
        while left:
            n = min(chunk, left)
            left -= n
            yield rng.randbytes(n)

    def chunks(self, chunk: int = 1 << 20) -> Iterator[bytes]:
        """The ``.filez`` bytes: header, then raw deflate (stored blocks, so it stays big)."""
        header = _FILE_HEADER.pack(self.size, 0, 0, 0o100644, 0) + b"\0" + bytes([25])
        yield struct.pack(">I", len(header)) + b"\0\0\0\0" + header
        deflate = zlib.compressobj(0, zlib.DEFLATED, -15)
        for piece in self.payload(chunk):
            out = deflate.compress(piece)
            if out:
                yield out
        yield deflate.flush()

    def filez(self) -> bytes:
        """The whole ``.filez`` in memory (small objects only)."""
        return b"".join(self.chunks())

    @property
    def stored_size(self) -> int:
        return sum(len(c) for c in self.chunks())


def file_object(size: int, seed: int) -> FileObj:
    """A FILE object with ``size`` pseudo-random payload bytes (deterministic per seed)."""
    canonical = struct.pack(">IIII", 0, 0, 0o100644, 0) + b"\0" + bytes([17])
    digest = hashlib.sha256(struct.pack(">I", len(canonical)) + b"\0\0\0\0" + canonical)
    for piece in FileObj("", size, seed).payload():
        digest.update(piece)
    return FileObj(digest.hexdigest(), size, seed)
