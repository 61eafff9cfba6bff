"""Content (file) objects: headers, the canonical content checksum, and archive ``.filez``.

A content object is a regular file or a symlink with its owner, mode and xattrs. Its name
is the SHA-256 of the *canonical content stream*::

    BE32(len(header)) ‖ 00 00 00 00 ‖ header (uuuusa(ayay)) ‖ file bytes

Archive repositories store it as ``.filez``: the same prefix around the header with the
size in front (``(tuuuusa(ayay))``), then the file bytes as raw DEFLATE at level 6 (no
stream at all for a symlink). Everything here works on streams of chunks, so a 2 GB file
never sits in memory.
"""

from __future__ import annotations

import hashlib
import stat
import struct
import zlib
from collections.abc import Iterable, Iterator
from typing import Any

import attrs

from ostree_repo.errors import ChecksumMismatchError, InvalidObjectError
from ostree_repo.gvariant import dumps
from ostree_repo.objects._fields import (
    Xattrs,
    bswap32,
    bswap64,
    check_mode,
    decode,
    xattrs_from_value,
    xattrs_to_value,
)

__all__ = [
    "FILEZ_HEADER_SIGNATURE",
    "FILE_HEADER_SIGNATURE",
    "ContentHasher",
    "FileHeader",
    "FilezReader",
    "content_checksum",
    "encode_filez",
    "read_filez",
]

FILE_HEADER_SIGNATURE = "(uuuusa(ayay))"
FILEZ_HEADER_SIGNATURE = "(tuuuusa(ayay))"

#: libostree compresses ``.filez`` payloads with zlib level 6, raw DEFLATE.
COMPRESSION_LEVEL = 6
#: Largest header we accept (libostree's metadata limit is far above any real header).
MAX_HEADER_SIZE = 10 * 1024 * 1024
#: How much inflated output one step may produce; bounds memory whatever the input.
INFLATE_STEP = 1 << 20


@attrs.frozen
class FileHeader:
    """Everything about a content object except its bytes.

    ``mode`` includes the file type (``S_IFREG`` or ``S_IFLNK``); ``xattrs`` pairs are
    (name without NUL, value). A symlink has its target in ``symlink_target`` and no bytes.
    """

    uid: int = 0
    gid: int = 0
    mode: int = stat.S_IFREG | 0o644
    symlink_target: str = ""
    xattrs: Xattrs = ()

    def __attrs_post_init__(self) -> None:
        check_mode(self.mode, (stat.S_IFREG, stat.S_IFLNK), "file header")
        if self.is_symlink != bool(self.symlink_target):
            raise InvalidObjectError(
                "file header: a symlink needs a target and a regular file must not have one"
            )

    @property
    def is_symlink(self) -> bool:
        """True for a symlink, False for a regular file."""
        return stat.S_ISLNK(self.mode)

    def _fields(self) -> tuple[int, int, int, int, str, list[tuple[bytes, bytes]]]:
        return (
            bswap32(self.uid),
            bswap32(self.gid),
            bswap32(self.mode),
            0,
            self.symlink_target,
            xattrs_to_value(self.xattrs),
        )

    def to_bytes(self) -> bytes:
        """The canonical header ``(uuuusa(ayay))`` that the content checksum covers."""
        return dumps(FILE_HEADER_SIGNATURE, self._fields())

    def content_prefix(self) -> bytes:
        """The 8-byte length prefix and header that start the canonical content stream."""
        header = self.to_bytes()
        return struct.pack(">II", len(header), 0) + header

    def filez_prefix(self, size: int) -> bytes:
        """The start of a ``.filez`` object: length prefix and ``(tuuuusa(ayay))`` header."""
        if self.is_symlink and size:
            raise InvalidObjectError("a symlink has no content bytes")
        header = dumps(FILEZ_HEADER_SIGNATURE, (bswap64(size), *self._fields()))
        return struct.pack(">II", len(header), 0) + header

    @classmethod
    def _from_fields(cls, fields: tuple[Any, ...]) -> FileHeader:
        uid, gid, mode, rdev, target, xattrs = fields
        if rdev != 0:
            raise InvalidObjectError(f"file header: rdev {rdev} is not 0")
        return cls(
            bswap32(uid), bswap32(gid), bswap32(mode), target, xattrs_from_value(xattrs, "file")
        )

    @classmethod
    def from_bytes(cls, data: bytes | bytearray | memoryview) -> FileHeader:
        """Decode a canonical ``(uuuusa(ayay))`` header."""
        return cls._from_fields(decode(FILE_HEADER_SIGNATURE, data, "file header"))

    @classmethod
    def from_filez_header(cls, data: bytes | bytearray | memoryview) -> tuple[FileHeader, int]:
        """Decode a ``.filez`` ``(tuuuusa(ayay))`` header into (header, file size)."""
        size, *fields = decode(FILEZ_HEADER_SIGNATURE, data, "filez header")
        header = cls._from_fields(tuple(fields))
        size = bswap64(size)
        if header.is_symlink and size:
            raise InvalidObjectError("filez: symlink with a non-zero size")
        return header, size


class ContentHasher:
    """Computes a content object's checksum from its header and its bytes, fed in chunks."""

    def __init__(self, header: FileHeader) -> None:
        self._sha = hashlib.sha256(header.content_prefix())

    def update(self, chunk: bytes | bytearray | memoryview) -> None:
        """Feed the next piece of the file's bytes."""
        self._sha.update(chunk)

    def hexdigest(self) -> str:
        """The checksum so far (the object's name once every byte was fed)."""
        return self._sha.hexdigest()


def content_checksum(header: FileHeader, data: bytes | Iterable[bytes] = b"") -> str:
    """The checksum of a content object with ``header`` and bytes ``data`` (or chunks)."""
    hasher = ContentHasher(header)
    if isinstance(data, bytes | bytearray | memoryview):
        hasher.update(data)
    else:
        for chunk in data:
            hasher.update(chunk)
    return hasher.hexdigest()


def encode_filez(header: FileHeader, size: int, chunks: Iterable[bytes]) -> Iterator[bytes]:
    """Yield the ``.filez`` bytes for a file of ``size`` bytes given as ``chunks``.

    The output equals libostree's byte for byte. Raises :class:`InvalidObjectError` if the
    chunks do not add up to ``size``.
    """
    yield header.filez_prefix(size)
    if header.is_symlink:
        if any(chunks):
            raise InvalidObjectError("a symlink has no content bytes")
        return
    compressor = zlib.compressobj(COMPRESSION_LEVEL, zlib.DEFLATED, -15, 8, zlib.Z_DEFAULT_STRATEGY)
    seen = 0
    for chunk in chunks:
        seen += len(chunk)
        out = compressor.compress(chunk)
        if out:
            yield out
    if seen != size:
        raise InvalidObjectError(f"file has {seen} bytes, header says {size}")
    yield compressor.flush()


#: Decoded ``.filez`` headers by their bytes after the size field (see FilezReader).
_HEADER_CACHE: dict[bytes, tuple[FileHeader, bytes]] = {}
_HEADER_CACHE_MAX = 1024


def _filez_header(data: bytes) -> tuple[FileHeader, int, bytes]:
    """Decode a ``.filez`` header into (header, file size, canonical content prefix).

    The size is the first, fixed-size field: whether the rest is a valid normal-form
    header, what it decodes to and the canonical prefix do not depend on it. So headers
    are cached by their bytes after the size (in a repository most files share a handful
    of owner/mode/xattr combinations), which saves decoding and re-encoding each one.
    """
    key = data[8:]
    cached = _HEADER_CACHE.get(key)
    if cached is None:
        header, _ = FileHeader.from_filez_header(data)
        cached = (header, header.content_prefix())
        if len(_HEADER_CACHE) >= _HEADER_CACHE_MAX:
            _HEADER_CACHE.clear()
        _HEADER_CACHE[key] = cached
    header, prefix = cached
    if len(data) < 8:  # pragma: no cover - the decode above refused it
        raise InvalidObjectError("filez: truncated header")
    size = int.from_bytes(data[:8], "big")  # the byte-swapped ``t``
    if header.is_symlink and size:
        raise InvalidObjectError("filez: symlink with a non-zero size")
    return header, size, prefix


class FilezReader:
    """Incremental ``.filez`` parser: feed compressed chunks, get the file's bytes back.

    After the first :meth:`feed` calls have delivered the whole header, :attr:`header` and
    :attr:`size` are set. Call :meth:`finish` at the end of input: it checks that the
    DEFLATE stream ended exactly, with exactly ``size`` bytes and nothing after it.
    The content checksum is available from :meth:`checksum` after :meth:`finish`.

    With ``keep=False`` the file's bytes are only hashed, never returned (:meth:`feed`
    returns an empty list), so memory stays bounded even when one compressed chunk
    inflates to a great many bytes.
    """

    def __init__(self, *, keep: bool = True) -> None:
        self._pending = bytearray()
        self._header_len = -1
        self.header: FileHeader | None = None
        self.size = 0
        self._produced = 0
        self._inflater = zlib.decompressobj(-15)
        self._sha: Any = None
        self._keep = keep

    def feed(self, chunk: bytes | bytearray | memoryview) -> list[bytes]:
        """Take the next compressed chunk; return the file bytes it completes (maybe none)."""
        if self.header is None:
            if not self._pending and isinstance(chunk, bytes):
                rest = self._parse_header(chunk)  # the usual case: no copy
                if rest is None:
                    self._pending += chunk
                    return []
            else:
                self._pending += chunk
                rest = self._parse_header(bytes(self._pending))
                if rest is None:
                    return []
                self._pending = bytearray()
            chunk = rest
            if not chunk:
                return []
        assert self.header is not None
        if self.header.is_symlink:
            if chunk:
                raise InvalidObjectError("filez: bytes after a symlink header")
            return []
        return self._inflate(chunk if isinstance(chunk, bytes) else bytes(chunk))

    def _parse_header(self, data: bytes) -> bytes | None:
        """Parse the header at the start of ``data`` if it is all there; return the rest."""
        if self._header_len < 0:
            if len(data) < 8:
                return None
            self._header_len, pad = struct.unpack_from(">II", data)
            if not 0 < self._header_len <= MAX_HEADER_SIZE:
                raise InvalidObjectError(f"filez: header length {self._header_len}")
            if pad:
                raise InvalidObjectError("filez: non-zero padding after the header length")
        end = 8 + self._header_len
        if len(data) < end:
            return None
        self.header, self.size, prefix = _filez_header(data[8:end])
        self._sha = hashlib.sha256(prefix)
        return data[end:]

    def _inflate(self, data: bytes) -> list[bytes]:
        out = []
        inflater = self._inflater
        keep = self._keep
        while data:
            if inflater.eof:
                raise InvalidObjectError("filez: data after the end of the DEFLATE stream")
            try:
                piece = inflater.decompress(data, INFLATE_STEP)
            except zlib.error as e:
                raise InvalidObjectError(f"filez: corrupt DEFLATE stream ({e})") from None
            data = inflater.unconsumed_tail
            if piece:
                self._take(piece)
                if keep:
                    out.append(piece)
        if inflater.unused_data:
            raise InvalidObjectError("filez: data after the end of the DEFLATE stream")
        return out

    def _take(self, piece: bytes) -> None:
        self._produced += len(piece)
        if self._produced > self.size:
            raise InvalidObjectError(f"filez: more than the {self.size} bytes its header says")
        self._sha.update(piece)

    def finish(self) -> None:
        """Check that the object was complete and consistent."""
        if self.header is None:
            raise InvalidObjectError("filez: truncated header")
        if self.header.is_symlink:
            return
        if not self._inflater.eof:
            try:
                tail = self._inflater.flush()
            except zlib.error as e:  # pragma: no cover - flush rarely raises
                raise InvalidObjectError(f"filez: corrupt DEFLATE stream ({e})") from None
            if tail:
                self._take(tail)
            if not self._inflater.eof:
                raise InvalidObjectError("filez: truncated DEFLATE stream")
        if self._produced != self.size:
            raise InvalidObjectError(f"filez: {self._produced} bytes, header says {self.size}")

    def checksum(self) -> str:
        """The content checksum of the object read so far."""
        if self._sha is None:
            raise InvalidObjectError("filez: truncated header")
        return str(self._sha.hexdigest())


_LENGTH_PAD = struct.Struct(">II")


def filez_checksum(data: bytes | bytearray | memoryview) -> str:
    """The content checksum of a whole ``.filez`` object held in memory.

    Accepts and refuses exactly what :class:`FilezReader` does when fed the same bytes
    (in any chunks) and finished, raising :class:`InvalidObjectError` likewise, but
    without a reader object or chunk bookkeeping. Memory stays bounded: no inflation
    step produces more than ``min(size + 1, INFLATE_STEP)`` bytes, so a small header
    with a huge DEFLATE stream fails after one step.
    """
    if type(data) is not bytes:
        data = bytes(data)
    if len(data) < 8:
        raise InvalidObjectError("filez: truncated header")
    header_len, pad = _LENGTH_PAD.unpack_from(data)
    if not 0 < header_len <= MAX_HEADER_SIZE:
        raise InvalidObjectError(f"filez: header length {header_len}")
    if pad:
        raise InvalidObjectError("filez: non-zero padding after the header length")
    end = 8 + header_len
    if len(data) < end:
        raise InvalidObjectError("filez: truncated header")
    header, size, prefix = _filez_header(data[8:end])
    sha = hashlib.sha256(prefix)
    if header.is_symlink:
        if len(data) > end:
            raise InvalidObjectError("filez: bytes after a symlink header")
        return sha.hexdigest()
    inflater = zlib.decompressobj(-15)
    step = size + 1 if size < INFLATE_STEP else INFLATE_STEP  # never 0: 0 means unbounded
    rest: bytes | memoryview = memoryview(data)[end:]
    produced = 0
    try:
        while rest:
            if inflater.eof:
                raise InvalidObjectError("filez: data after the end of the DEFLATE stream")
            piece = inflater.decompress(rest, step)
            rest = inflater.unconsumed_tail
            produced += len(piece)
            if produced > size:
                raise InvalidObjectError(f"filez: more than the {size} bytes its header says")
            sha.update(piece)
        if inflater.unused_data:
            raise InvalidObjectError("filez: data after the end of the DEFLATE stream")
        if not inflater.eof:
            tail = inflater.flush()
            produced += len(tail)
            if produced > size:
                raise InvalidObjectError(f"filez: more than the {size} bytes its header says")
            sha.update(tail)
            if not inflater.eof:
                raise InvalidObjectError("filez: truncated DEFLATE stream")
    except zlib.error as e:
        raise InvalidObjectError(f"filez: corrupt DEFLATE stream ({e})") from None
    if produced != size:
        raise InvalidObjectError(f"filez: {produced} bytes, header says {size}")
    return sha.hexdigest()


def read_filez(
    data: bytes | bytearray | memoryview, expected: str | None = None
) -> tuple[FileHeader, bytes]:
    """Decode a whole ``.filez`` object into (header, file bytes), checking its checksum."""
    reader = FilezReader()
    pieces = reader.feed(data)
    reader.finish()
    if expected is not None and reader.checksum() != expected:
        raise ChecksumMismatchError(expected, reader.checksum(), "content object")
    assert reader.header is not None
    return reader.header, b"".join(pieces)
