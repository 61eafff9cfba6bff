"""A strict, streaming tar reader over plain or compressed input, with limits.

The input is read strictly forward (it may be a pipe or an HTTP body), decompressed on the
fly when its first bytes say gzip, xz, bzip2 or zstd, and parsed as ustar, GNU or pax tar.
Python's :mod:`tarfile` is not used because in stream mode it reads extended headers of
any declared size into memory, accepts an archive cut between two members as complete,
and hides a truncated zstd stream; here every one of those is an error.

:class:`TarStream` yields :class:`Member` objects; read a member's data with
:meth:`TarStream.read` or :meth:`TarStream.chunks` before asking for the next member (data
not read is skipped).
"""

from __future__ import annotations

import bz2
import lzma
import struct
import zlib
from collections.abc import Callable, Iterator
from hashlib import blake2b
from typing import IO, NamedTuple, Protocol, cast
from zlib import adler32

import attrs
import zstandard

from ostree_repo.importing.errors import (
    ArchiveLimitError,
    CorruptArchiveError,
    DuplicateMemberError,
    NotAnArchiveError,
    TruncatedArchiveError,
    UnsafeArchiveError,
    UnsupportedMemberError,
)

__all__ = ["ArchiveLimits", "Input", "Member", "TarStream", "detect_format"]

BLOCK = 512
_ZERO_BLOCK = bytes(BLOCK)
#: How much compressed input is read at once.
READ_SIZE = 256 << 10
#: The largest piece of member data handed out at once.
CHUNK = 1 << 20


@attrs.frozen
class ArchiveLimits:
    """Sanity limits for an archive import; exceeding one raises ArchiveLimitError.

    The defaults are far above what any real OSTree archive needs and keep a hostile
    archive from exhausting memory or running without end.
    """

    max_members: int = 4_000_000
    """Members of any kind (a Fedora IoT commit has about 30,000 objects)."""
    max_path_length: int = 8192
    """Bytes in a member's name: PATH_MAX (4096) below the repository directory, and as
    much for the directories above it (libostree's longest ref name, 4084 bytes, makes
    ``refs/heads/NAME`` 4095 bytes long)."""
    max_path_depth: int = 64
    """Components in a member's name (an OSTree repository needs 5 below its directory)."""
    max_member_size: int = 64 << 30
    """Bytes of one member (64 GiB; the tar header may declare up to 8 EiB)."""
    max_metadata_size: int = 128 << 20
    """Bytes of a commit, dirtree, dirmeta, detached metadata or delta superblock
    (libostree's own limit)."""
    max_small_file_size: int = 64 << 10
    """Bytes of ``config`` and ref files."""
    max_header_size: int = 1 << 20
    """Bytes of a pax extended header or GNU long name."""
    max_expanded_size: int = 1 << 40
    """Bytes of the whole uncompressed tar stream (1 TiB)."""
    max_compression_ratio: int = 1000
    """Uncompressed : compressed bytes, checked once 64 MiB have been expanded. OSTree
    content is compressed already; only bombs expand more than tenfold."""
    xz_memory: int = 256 << 20
    """Memory the xz decoder may use (``xz -9`` needs 65 MiB)."""
    zstd_max_window: int = 1 << 27
    """Largest zstd window accepted (128 MiB, zstd's own default limit; ``--long=31``
    archives need more)."""


# -- input and decompression ------------------------------------------------------------------


class _Readable(Protocol):
    def read(self, size: int = -1, /) -> bytes | None: ...


class Input:
    """The raw input, read strictly forward; counts the bytes read."""

    def __init__(self, source: _Readable) -> None:
        self._source = source
        self.bytes_read = 0

    def read(self, size: int) -> bytes:
        """Up to ``size`` bytes; ``b""`` only at the end of the input."""
        data = self._source.read(size)
        if data is None:
            raise NotAnArchiveError("the input is a non-blocking stream with no data ready")
        self.bytes_read += len(data)
        return bytes(data) if not isinstance(data, bytes) else data


class _Prefixed:
    """A reader that yields ``prefix`` before the rest of ``input``."""

    def __init__(self, prefix: bytes, source: Input) -> None:
        self._prefix = prefix
        self._source = source

    def read(self, size: int) -> bytes:
        if self._prefix:
            out, self._prefix = self._prefix[:size], self._prefix[size:]
            return out
        return self._source.read(size)


_MAGIC: tuple[tuple[str, bytes], ...] = (
    ("gz", b"\x1f\x8b"),
    ("xz", b"\xfd7zXZ\x00"),
    ("bz2", b"BZh"),
    ("zst", b"\x28\xb5\x2f\xfd"),
)


def detect_format(head: bytes) -> str:
    """``"tar"``, ``"tar.gz"``, ``"tar.xz"``, ``"tar.bz2"`` or ``"tar.zst"`` from the first
    bytes of the input (at least 6 unless the input is shorter)."""
    for name, magic in _MAGIC:
        if head.startswith(magic):
            return f"tar.{name}"
    return "tar"


class _Decompressor(Protocol):
    """The common shape of zlib (adapted), lzma and bz2 decompressor objects."""

    @property
    def eof(self) -> bool: ...

    @property
    def unused_data(self) -> bytes: ...

    @property
    def needs_input(self) -> bool: ...

    def decompress(self, data: bytes, max_length: int = -1) -> bytes: ...


class _Gzip:
    """zlib's gzip decompressor with the ``needs_input`` protocol of lzma and bz2."""

    def __init__(self) -> None:
        self._d = zlib.decompressobj(16 + zlib.MAX_WBITS)
        self._tail = b""
        self._drained = True

    @property
    def eof(self) -> bool:
        return self._d.eof

    @property
    def unused_data(self) -> bytes:
        return self._d.unused_data

    @property
    def needs_input(self) -> bool:
        return not self._tail and self._drained

    def decompress(self, data: bytes, max_length: int = -1) -> bytes:
        buf = self._tail + data if self._tail else data
        out = self._d.decompress(buf, max(max_length, 0))
        self._tail = self._d.unconsumed_tail
        self._drained = max_length <= 0 or len(out) < max_length
        return out


_DECOMPRESSORS: dict[str, tuple[bytes, Callable[[ArchiveLimits], _Decompressor]]] = {
    "gzip": (b"\x1f\x8b", lambda limits: _Gzip()),
    "xz": (
        b"\xfd7zXZ\x00",
        lambda limits: lzma.LZMADecompressor(lzma.FORMAT_XZ, memlimit=limits.xz_memory),
    ),
    "bzip2": (b"BZh", lambda limits: bz2.BZ2Decompressor()),
}


class _Streams:
    """gzip, xz or bzip2 decompression of concatenated streams (``pigz``, ``pbzip2`` and
    ``xz -T`` write several), bounded output per call, truncation detected."""

    def __init__(self, source: _Prefixed, kind: str, limits: ArchiveLimits) -> None:
        self._source = source
        self._kind = kind
        self._magic, self._factory = _DECOMPRESSORS[kind]
        self._limits = limits
        self._d: _Decompressor | None = self._factory(limits)
        self._pending = b""

    def _input(self) -> bytes:
        if self._pending:
            data, self._pending = self._pending, b""
            return data
        return self._source.read(READ_SIZE)

    def read(self, size: int) -> bytes:
        while self._d is not None:
            d = self._d
            if d.eof:
                self._next_stream(d.unused_data)
                continue
            data = b""
            if d.needs_input:
                data = self._input()
                if not data:
                    raise TruncatedArchiveError(f"the {self._kind} stream ends early")
            try:
                out = d.decompress(data, size)
            except (zlib.error, lzma.LZMAError, OSError, EOFError, ValueError) as e:
                if isinstance(e, lzma.LZMAError) and "limit" in str(e).lower():
                    raise ArchiveLimitError(
                        f"the xz stream needs more than {self._limits.xz_memory} bytes of memory"
                    ) from None
                raise CorruptArchiveError(f"corrupt {self._kind} stream: {e}") from None
            if out:
                return out
        return b""

    def _next_stream(self, rest: bytes) -> None:
        """After one stream: start the next if one follows (zero padding allowed between
        them); anything else after the last stream is ignored, as gzip and xz do."""
        rest += self._pending
        self._pending = b""
        while True:
            rest = rest.lstrip(b"\0")
            if len(rest) >= len(self._magic):
                break
            more = self._source.read(READ_SIZE)
            if not more:
                break
            rest += more
        if rest.startswith(self._magic):
            self._d = self._factory(self._limits)
            self._pending = rest
        else:
            self._d = None


class _ZstdFrames:
    """Follows zstd frame boundaries in the compressed bytes.

    python-zstandard's stream reader ends silently when its input is cut; walking the
    frame and block headers tells a complete stream from a truncated one, cheaply (one
    header per block of up to 128 KiB)."""

    def __init__(self) -> None:
        self._state = "magic"
        self._need = 4
        self._header = bytearray()
        self._skip = 0
        self._checksum = False

    @property
    def complete(self) -> bool:
        """True at a frame boundary."""
        return self._state == "magic" and not self._header and not self._skip

    def feed(self, data: bytes) -> None:
        pos, end = 0, len(data)
        while pos < end:
            if self._skip:
                step = min(self._skip, end - pos)
                self._skip -= step
                pos += step
                continue
            step = min(self._need - len(self._header), end - pos)
            self._header += data[pos : pos + step]
            pos += step
            if len(self._header) == self._need:
                header, self._header = bytes(self._header), bytearray()
                self._advance(header)

    def _advance(self, header: bytes) -> None:
        state = self._state
        if state == "magic":
            (magic,) = struct.unpack("<I", header)
            if magic == 0xFD2FB528:
                self._state, self._need = "descriptor", 1
            elif magic & 0xFFFFFFF0 == 0x184D2A50:
                self._state, self._need = "skippable", 4
            else:
                raise CorruptArchiveError("corrupt zstd stream: not a zstd frame")
        elif state == "skippable":
            (self._skip,) = struct.unpack("<I", header)
            self._state, self._need = "magic", 4
        elif state == "descriptor":
            d = header[0]
            if d & 0x08:
                raise CorruptArchiveError("corrupt zstd stream: reserved frame header bit set")
            single = (d >> 5) & 1
            self._checksum = bool((d >> 2) & 1)
            self._skip = (
                (0 if single else 1) + (0, 1, 2, 4)[d & 3] + ((1 if single else 0), 2, 4, 8)[d >> 6]
            )
            self._state, self._need = "block", 3
        else:  # block header
            value = int.from_bytes(header, "little")
            last, kind, size = value & 1, (value >> 1) & 3, value >> 3
            if kind == 3:
                raise CorruptArchiveError("corrupt zstd stream: reserved block type")
            self._skip = 1 if kind == 1 else size
            if last:
                self._skip += 4 if self._checksum else 0
                self._state, self._need = "magic", 4


class _ZstdTap:
    """The raw input as zstandard's stream reader sees it, watched by _ZstdFrames."""

    def __init__(self, source: _Prefixed, frames: _ZstdFrames) -> None:
        self._source = source
        self._frames = frames

    def read(self, size: int = -1) -> bytes:
        data = self._source.read(size if size > 0 else READ_SIZE)
        self._frames.feed(data)
        return data


class _Zstd:
    def __init__(self, source: _Prefixed, limits: ArchiveLimits) -> None:
        self._frames = _ZstdFrames()
        decompressor = zstandard.ZstdDecompressor(max_window_size=limits.zstd_max_window)
        tap = cast("IO[bytes]", _ZstdTap(source, self._frames))
        self._reader = decompressor.stream_reader(tap, read_size=READ_SIZE, read_across_frames=True)
        self._limits = limits

    def read(self, size: int) -> bytes:
        try:
            out = self._reader.read(size)
        except zstandard.ZstdError as e:
            if "window" in str(e).lower():
                raise ArchiveLimitError(
                    f"the zstd stream needs a window above {self._limits.zstd_max_window} bytes"
                ) from None
            raise CorruptArchiveError(f"corrupt zstd stream: {e}") from None
        if not out and size > 0 and not self._frames.complete:
            raise TruncatedArchiveError("the zstd stream ends early")
        return out


class _Plain:
    def __init__(self, source: _Prefixed) -> None:
        self.read = source.read


class _Decoder(Protocol):
    def read(self, size: int) -> bytes: ...


# -- tar ----------------------------------------------------------------------------------------


class Member(NamedTuple):
    """One tar member. ``parts`` is its normalised path (no ``.``, no empty components).

    A named tuple rather than an attrs class: an archive has one per object, and a tuple is
    built at half the cost of a frozen attrs instance."""

    name: str
    """The path as normalised: components joined by ``/``, no leading ``./``."""
    parts: tuple[str, ...]
    kind: str
    """``file``, ``dir``, ``symlink`` or ``hardlink``."""
    size: int
    linkname: str = ""


_KINDS = {b"5": "dir", b"2": "symlink", b"1": "hardlink"}
#: What each common type flag is (a ``\0`` type with a name ending in ``/`` is a directory).
_COMMON_KINDS = {b"0": "file", b"\0": "file", b"7": "file", **_KINDS}
_SPECIAL = {b"3": "character device", b"4": "block device", b"6": "fifo"}
#: pax extended headers, GNU long names and Solaris extended headers: they describe the next
#: member.
_EXTENDED = frozenset((b"x", b"g", b"X", b"L", b"K"))
_POSIX_MAGIC = b"ustar\x0000"
_SIGNED_HEADER = struct.Struct("148b8x356b")


def _number(field: bytes, what: str) -> int:
    """A tar number field: octal text, or GNU base-256 (positive only)."""
    if field[0] == 0x80:
        return int.from_bytes(field[1:], "big")
    if field[0] == 0xFF:
        raise CorruptArchiveError(f"tar header: negative {what}")
    text = field.split(b"\0", 1)[0].strip()
    try:
        return int(text or b"0", 8)
    except ValueError:
        raise CorruptArchiveError(f"tar header: invalid {what} {text!r}") from None


def _text(field: bytes) -> str:
    return field.split(b"\0", 1)[0].decode("utf-8", "surrogateescape")


def _check_header(block: bytes) -> None:
    field = block[148:156]
    # The unsigned sum of the block with its checksum field read as spaces. ``sum(block)``
    # walks 512 Python ints; Adler-32's low half started at 0 is the byte sum modulo 65521,
    # computed in C, and exact when the sum is below 65521: for an ASCII block (as headers
    # usually are; 512 * 127 < 65521), or for 256 bytes of any kind (256 * 255 < 65521).
    if block.isascii():
        unsigned = adler32(block, 0) & 0xFFFF
    else:
        unsigned = (adler32(block[:256], 0) & 0xFFFF) + (adler32(block[256:], 0) & 0xFFFF)
    unsigned += 8 * 32 - sum(field)
    if field == b"%06o\0 " % unsigned:  # as GNU tar, bsdtar and tarfile write it
        return
    stored = _number(field, "checksum")
    if stored != unsigned and stored != sum(_SIGNED_HEADER.unpack(block)) + 8 * 32:
        raise CorruptArchiveError("tar header checksum mismatch: not a tar archive or corrupt")


def _pax_records(data: bytes) -> dict[str, str]:
    """``LEN KEY=VALUE\\n`` records of a pax extended header."""
    records: dict[str, str] = {}
    pos = 0
    while pos < len(data):
        if data[pos] == 0:  # some writers pad with NULs
            break
        space = data.find(b" ", pos)
        try:
            length = int(data[pos:space])
        except ValueError:
            raise CorruptArchiveError("corrupt pax header") from None
        record = data[pos : pos + length]
        if space < 0 or length <= 0 or len(record) != length or not record.endswith(b"\n"):
            raise CorruptArchiveError("corrupt pax header")
        key, eq, value = record[space - pos + 1 : -1].partition(b"=")
        if not eq:
            raise CorruptArchiveError("corrupt pax header")
        records[key.decode("utf-8", "surrogateescape")] = value.decode("utf-8", "surrogateescape")
        pos += length
    return records


def _rare_kind(name: str, kind: bytes) -> str:
    """What a member of a type flag outside :data:`_COMMON_KINDS` is, or the error it is."""
    if kind in _SPECIAL:
        raise UnsafeArchiveError(f"{name}: a {_SPECIAL[kind]}")
    if kind == b"V":  # GNU volume label: no data, nothing to import
        return "label"
    if kind == b"S":
        raise UnsupportedMemberError(f"{name}: sparse files are not supported")
    raise UnsupportedMemberError(f"{name}: unsupported tar member type {kind!r}")


class TarStream:
    """Members of a tar stream, read strictly forward with :class:`ArchiveLimits`.

    ``source`` is anything with ``read(size)``. The format (plain or compressed) is
    detected from the first bytes. Every member name is checked: absolute paths and ``..``
    components are refused (UnsafeArchiveError), and so are device nodes and fifos, and a
    second member with the name of an earlier one (DuplicateMemberError; directories may
    repeat). Links are reported to the caller, which knows where they may point.
    """

    def __init__(self, source: _Readable, limits: ArchiveLimits | None = None) -> None:
        self.limits = limits or ArchiveLimits()
        self.input = Input(source)
        head = b""
        while len(head) < BLOCK:
            more = self.input.read(BLOCK - len(head))
            if not more:
                break
            head += more
        if not head:
            raise NotAnArchiveError("the input is empty")
        self.format = detect_format(head)
        prefixed = _Prefixed(head, self.input)
        self._decoder: _Decoder
        if self.format == "tar":
            self._decoder = _Plain(prefixed)
        elif self.format == "tar.zst":
            self._decoder = _Zstd(prefixed, self.limits)
        else:
            kind = {"tar.gz": "gzip", "tar.xz": "xz", "tar.bz2": "bzip2"}[self.format]
            self._decoder = _Streams(prefixed, kind, self.limits)
        self._buf = b""
        self._pos = 0
        self.expanded = 0
        """Bytes of the uncompressed tar stream read so far."""
        self.members = 0
        self._seen: set[bytes] = set()
        self._pending_skip = 0
        self._remaining = 0
        self._ended = False

    # -- low-level reading --------------------------------------------------------------------

    def _fill(self, size: int) -> bytes:
        """Up to ``size`` bytes (fewer only at the end of the stream)."""
        pos = self._pos
        end = pos + size
        if end <= len(self._buf):  # the common case: a slice of the buffer
            self._pos = end
            return self._buf[pos:end]
        return self._refill(size)

    def _refill(self, size: int) -> bytes:
        """:meth:`_fill` when the buffer holds less than ``size`` bytes."""
        available = len(self._buf) - self._pos
        pieces = [self._buf[self._pos :]] if available else []
        have = available
        self._buf, self._pos = b"", 0
        while have < size:
            data = self._decode(max(size - have, READ_SIZE))
            if not data:
                break
            need = size - have
            if len(data) > need:
                pieces.append(data[:need])
                self._buf = data
                self._pos = need
                have = size
            else:
                pieces.append(data)
                have += len(data)
        return b"".join(pieces)

    def _decode(self, size: int) -> bytes:
        data = self._decoder.read(size)
        if data:
            self.expanded += len(data)
            limits = self.limits
            if self.expanded > limits.max_expanded_size:
                raise ArchiveLimitError(
                    f"the archive expands to more than {limits.max_expanded_size} bytes"
                )
            if (
                self.format != "tar"
                and self.expanded > 64 << 20
                and self.expanded > limits.max_compression_ratio * max(self.input.bytes_read, 1)
            ):
                raise ArchiveLimitError(
                    f"the archive expands more than {limits.max_compression_ratio} times "
                    "(a compression bomb?)"
                )
        return data

    def _exact(self, size: int, what: str) -> bytes:
        data = self._fill(size)
        if len(data) != size:
            raise TruncatedArchiveError(f"the archive ends inside {what}")
        return data

    def _skip(self, size: int, what: str) -> None:
        end = self._pos + size
        if end <= len(self._buf):  # the common case: within the buffer
            self._pos = end
            return
        while size:
            step = min(size, CHUNK)
            self._exact(step, what)
            size -= step

    # -- members ------------------------------------------------------------------------------

    def __iter__(self) -> Iterator[Member]:
        while (member := self.next()) is not None:
            yield member

    def next(self) -> Member | None:
        """The next member (its data not yet read), or None at the end of the archive."""
        if self._ended:
            return None
        if self._pending_skip:
            skip, self._pending_skip = self._pending_skip, 0
            self._skip(skip, "a member's data")
        name = linkname = None
        size_override = None
        while True:
            block = self._fill(BLOCK)
            if len(block) != BLOCK or block == _ZERO_BLOCK:
                self._no_header(block)
                return None
            try:
                _check_header(block)
            except CorruptArchiveError:
                if self.members == 0:
                    raise NotAnArchiveError(f"not a tar archive ({self._what()})") from None
                raise
            self.members += 1
            if self.members > self.limits.max_members:
                raise ArchiveLimitError(f"more than {self.limits.max_members} members")
            kind = block[156:157]
            size = _number(block[124:136], "size")
            if kind not in _EXTENDED:
                break
            if size > self.limits.max_header_size:
                raise ArchiveLimitError(
                    f"an extended tar header of {size} bytes (limit {self.limits.max_header_size})"
                )
            data = self._exact(size, "an extended header")
            self._skip(-size % BLOCK, "an extended header")
            if kind == b"L":
                name = _text(data)
            elif kind == b"K":
                linkname = _text(data)
            else:
                records = _pax_records(data)
                if any(k.startswith("GNU.sparse") for k in records):
                    raise UnsupportedMemberError("sparse files are not supported")
                if kind != b"g":
                    name = records.get("path", name)
                    linkname = records.get("linkpath", linkname)
                    if "size" in records:
                        try:
                            size_override = int(records["size"])
                        except ValueError:
                            raise CorruptArchiveError("corrupt pax size") from None
        if size_override is not None:
            size = size_override
        if name is None:
            name = _text(block[0:100])
            if block[257:265] == _POSIX_MAGIC and block[345] != 0:
                name = _text(block[345:500]) + "/" + name
        if linkname is None:
            linkname = _text(block[157:257]) if block[157] else ""
        return self._member(name, kind, size, linkname)

    def _no_header(self, block: bytes) -> None:
        """Where a header should be, ``block`` is short or zeros: the end of the archive
        (:meth:`_end`), or an error."""
        first = self.members == 0
        if not block and not first:
            raise TruncatedArchiveError(
                "the archive ends without its end-of-archive blocks (cut between members?)"
            )
        if len(block) != BLOCK:
            if first:
                raise NotAnArchiveError(f"not a tar archive ({self._what()})")
            raise TruncatedArchiveError("the archive ends inside a tar header")
        self._end()

    def _what(self) -> str:
        if self.format == "tar":
            return "nor gzip, xz, bzip2 or zstd compressed"
        return f"{self.format.removeprefix('tar.')} compressed data, but no tar inside"

    def _member(self, raw_name: str, kind: bytes, size: int, linkname: str) -> Member:
        limits = self.limits
        # an ASCII name is as many bytes as characters; no name is fewer bytes than characters
        if len(raw_name) > limits.max_path_length or (
            not raw_name.isascii()
            and len(raw_name.encode("utf-8", "surrogateescape")) > limits.max_path_length
        ):
            raise ArchiveLimitError(f"a member name longer than {limits.max_path_length} bytes")
        if size > limits.max_member_size:
            raise ArchiveLimitError(
                f"{raw_name}: {size} bytes, above the limit of {limits.max_member_size}"
            )
        parts = normalize(raw_name)
        if len(parts) > limits.max_path_depth:
            raise ArchiveLimitError(
                f"{raw_name}: nested {len(parts)} deep (limit {limits.max_path_depth})"
            )
        name = "/".join(parts)
        what = _COMMON_KINDS.get(kind)
        if what is None:
            what = _rare_kind(raw_name, kind)
        elif kind == b"\0" and raw_name.endswith("/"):
            what = "dir"
        # as tarfile and GNU tar do: only regular files have data after their header
        size_on_tape = size if what == "file" else 0
        if what != "dir":
            # a digest, not the name, bounds the memory a member costs
            key = blake2b(name.encode("utf-8", "surrogateescape"), digest_size=16).digest()
            if key in self._seen:
                raise DuplicateMemberError(f"{raw_name} appears twice in the archive")
            self._seen.add(key)
        self._pending_skip = size_on_tape + (-size_on_tape % BLOCK)
        self._remaining = size_on_tape
        return Member(name, parts, what, size_on_tape, linkname)

    def _end(self) -> None:
        """After the first zero block: the second must follow; then drain the input (a
        compressed stream is checked to its end, an HTTP body consumed)."""
        second = self._fill(BLOCK)
        if len(second) != BLOCK:
            raise TruncatedArchiveError("the archive ends inside its end-of-archive blocks")
        if second != _ZERO_BLOCK:
            raise CorruptArchiveError("a lone zero block inside the archive")
        self._ended = True
        drained = 0
        while self._fill(CHUNK):
            drained += 1
            if drained > 64:  # 64 MiB of trailing padding: stop reading, it is not ours
                break

    # -- member data --------------------------------------------------------------------------

    def chunks(self, member: Member, size: int = CHUNK) -> Iterator[bytes]:
        """The data of ``member`` (the one :meth:`next` returned last) in pieces."""
        remaining = self._remaining
        if remaining != member.size:
            raise RuntimeError("member data can be read only once, before the next member")
        while remaining:
            step = min(remaining, size)
            piece = self._fill(step)
            if len(piece) != step:
                raise TruncatedArchiveError(f"the archive ends inside the data of {member.name}")
            remaining -= step
            self._remaining = remaining
            self._pending_skip -= step
            yield piece

    def read(self, member: Member) -> bytes:
        """All the data of ``member`` (meant for small members)."""
        size = member.size
        if self._remaining != size:
            raise RuntimeError("member data can be read only once, before the next member")
        data = self._fill(size)
        if len(data) != size:  # (the message is built only then: this is per member)
            raise TruncatedArchiveError(f"the archive ends inside the data of {member.name}")
        self._remaining = 0
        self._pending_skip -= size
        return data


def normalize(name: str) -> tuple[str, ...]:
    """A member name's components, without ``.`` and empty ones. Absolute names and
    ``..`` components are refused (UnsafeArchiveError)."""
    if name.startswith("/"):
        raise UnsafeArchiveError(f"{name}: an absolute path")
    parts = name.split("/")
    if parts[0] == ".":  # the common ``./`` prefix (``tar -C dir .``)
        del parts[0]
    if "" in parts or "." in parts:
        parts = [p for p in parts if p not in ("", ".")]
    if ".." in parts:
        raise UnsafeArchiveError(f"{name}: a '..' component")
    return tuple(parts)


def resolve_link(member: Member) -> tuple[str, ...]:
    """Where a link member points, as normalised archive components. UnsafeArchiveError if
    it is absolute or leaves the archive's top."""
    target = member.linkname
    if target.startswith("/"):
        raise UnsafeArchiveError(f"{member.name}: a link to the absolute path {target}")
    if member.kind == "hardlink":
        parts: list[str] = []
    else:
        parts = list(member.parts[:-1])
    for part in target.split("/"):
        if part in ("", "."):
            continue
        if part == "..":
            if not parts:
                raise UnsafeArchiveError(f"{member.name}: a link to {target}, outside the archive")
            parts.pop()
        else:
            parts.append(part)
    return tuple(parts)
