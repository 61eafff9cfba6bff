"""The streaming tar reader beside Python's tarfile, and its decompression edge cases."""

from __future__ import annotations

import bz2
import gzip
import io
import lzma
import re
import tarfile

import pytest
import zstandard
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ostree_repo.importing._tarstream import ArchiveLimits, TarStream
from ostree_repo.importing.errors import (
    ArchiveLimitError,
    CorruptArchiveError,
    DuplicateMemberError,
    TruncatedArchiveError,
    UnsafeArchiveError,
    UnsupportedMemberError,
)

NAMES = st.text(
    alphabet=st.characters(min_codepoint=0x21, max_codepoint=0x2FF, blacklist_characters="/."),
    min_size=1,
    max_size=40,
)
PATHS = st.lists(NAMES, min_size=1, max_size=6).map("/".join)


def _tar(entries: list[tuple[str, bytes]], fmt: int) -> bytes:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=fmt) as tar:
        for name, data in entries:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return out.getvalue()


def _read(data: bytes, limits: ArchiveLimits | None = None) -> list[tuple[str, bytes]]:
    stream = TarStream(io.BytesIO(data), limits)
    out = []
    for member in stream:
        if member.kind == "file":
            out.append((member.name, b"".join(stream.chunks(member, 1000))))
    return out


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    entries=st.dictionaries(PATHS, st.binary(max_size=3000), min_size=1, max_size=8),
    fmt=st.sampled_from([tarfile.USTAR_FORMAT, tarfile.GNU_FORMAT, tarfile.PAX_FORMAT]),
)
def test_members_and_data_match_tarfile(entries: dict[str, bytes], fmt: int) -> None:
    items = sorted(entries.items())
    if fmt == tarfile.USTAR_FORMAT and any(len(n.encode()) > 100 for n, _ in items):
        fmt = tarfile.GNU_FORMAT  # ustar cannot hold long names without a prefix split
    data = _tar(items, fmt)
    assert _read(data) == items


def test_long_names_in_every_format() -> None:
    name = "/".join(["d" * 60] * 5) + "/file"
    for fmt in (tarfile.GNU_FORMAT, tarfile.PAX_FORMAT):
        assert _read(_tar([(name, b"x")], fmt)) == [(name, b"x")]
    ustar = "p" * 120 + "/" + "n" * 90  # split into the prefix and name fields
    assert _read(_tar([(ustar, b"y")], tarfile.USTAR_FORMAT)) == [(ustar, b"y")]


def test_concatenated_streams_and_frames() -> None:
    data = _tar([("a", b"1" * 5000), ("b", b"2" * 7000)], tarfile.GNU_FORMAT)
    half = len(data) // 2
    # pigz/pbzip2/xz -T write several streams; zstd may write several frames and skippable
    # frames; gzip and xz allow zero padding between streams
    cases = {
        "gzip": gzip.compress(data[:half]) + gzip.compress(data[half:]),
        "gzip-padded": gzip.compress(data[:half]) + bytes(8) + gzip.compress(data[half:]),
        "bzip2": bz2.compress(data[:half]) + bz2.compress(data[half:]),
        "xz": lzma.compress(data[:half]) + bytes(4) + lzma.compress(data[half:]),
        "zstd": zstandard.ZstdCompressor().compress(data[:half])
        + b"\x50\x2a\x4d\x18\x03\x00\x00\x00abc"  # a skippable frame
        + zstandard.ZstdCompressor(write_checksum=True).compress(data[half:]),
    }
    for name, compressed in cases.items():
        assert _read(compressed) == [("a", b"1" * 5000), ("b", b"2" * 7000)], name
        with pytest.raises(TruncatedArchiveError):
            _read(compressed[:-1])


def test_garbage_after_the_archive_is_ignored_but_not_inside() -> None:
    data = _tar([("a", b"1")], tarfile.GNU_FORMAT)
    assert _read(gzip.compress(data) + b"trailing junk") == [("a", b"1")]
    assert _read(data + b"trailing junk") == [("a", b"1")]
    other = _tar([("b", b"2")], tarfile.GNU_FORMAT)
    with pytest.raises(CorruptArchiveError, match="lone zero block"):
        _read(data[:1024] + bytes(512) + other)


def test_bad_header_checksum_after_the_first_member() -> None:
    data = bytearray(_tar([("a", b"1"), ("b", b"2")], tarfile.GNU_FORMAT))
    data[1024 + 10] ^= 0xFF  # inside the second header
    with pytest.raises(CorruptArchiveError, match="checksum"):
        _read(bytes(data))


def _members(data: bytes, limits: ArchiveLimits | None = None) -> list[tuple[object, ...]]:
    stream = TarStream(io.BytesIO(data), limits)
    out: list[tuple[object, ...]] = []
    for m in stream:
        out.append((m.name, m.parts, m.kind, m.size, m.linkname))
        if m.kind == "file":
            out.append((stream.read(m),))
    return out


def _typed(entries: list[tuple[str, bytes, str]], fmt: int = tarfile.GNU_FORMAT) -> bytes:
    """A tar of (name, type flag, link name) members, each holding ``name`` as data if a file."""
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=fmt, errors="surrogateescape") as tar:
        for name, kind, link in entries:
            info = tarfile.TarInfo(name)
            info.type, info.linkname = kind, link
            file = info.isfile() and not name.endswith("/")
            data = name.encode("utf-8", "surrogateescape") if file else b""
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return out.getvalue()


def _rechecksum(block: bytearray, field: bytes | None = None) -> None:
    """Sets the checksum of a 512-byte header, as ``field`` formats it (``%06o\\0 ``)."""
    block[148:156] = b" " * 8
    value = ((field or b"%06o\0 ") % sum(block[:512])).ljust(8, b"\0")
    assert len(value) == 8
    block[148:156] = value


def test_names_are_normalised() -> None:
    data = _typed(
        [
            ("./a", tarfile.REGTYPE, ""),
            ("b//c/./d", tarfile.REGTYPE, ""),
            ("./e/", tarfile.DIRTYPE, ""),
            ("./e/", tarfile.DIRTYPE, ""),  # directories may repeat
            ("f/", tarfile.AREGTYPE, ""),  # an old-style directory
            (".", tarfile.DIRTYPE, ""),
            ("./.hidden/x.filez", tarfile.REGTYPE, ""),
            ("./l", tarfile.SYMTYPE, "../x"),
        ]
    )
    assert _members(data) == [
        ("a", ("a",), "file", 3, ""),
        (b"./a",),
        ("b/c/d", ("b", "c", "d"), "file", 8, ""),
        (b"b//c/./d",),
        ("e", ("e",), "dir", 0, ""),
        ("e", ("e",), "dir", 0, ""),
        ("f", ("f",), "dir", 0, ""),
        ("", (), "dir", 0, ""),
        (".hidden/x.filez", (".hidden", "x.filez"), "file", 17, ""),
        (b"./.hidden/x.filez",),
        ("l", ("l",), "symlink", 0, "../x"),
    ]


@pytest.mark.parametrize(
    ("names", "error", "message"),
    [
        (["/etc/passwd"], UnsafeArchiveError, "an absolute path"),
        (["./a/../../b"], UnsafeArchiveError, "a '..' component"),
        (["a/.."], UnsafeArchiveError, "a '..' component"),
        (["./a", "a"], DuplicateMemberError, "a appears twice"),
        (["a/b", "a//./b"], DuplicateMemberError, "a//./b appears twice"),
        (["x" * 60 + "/y"], ArchiveLimitError, "a member name longer than 50 bytes"),
        (["é" * 26], ArchiveLimitError, "a member name longer than 50 bytes"),
        (["a/b/c/d"], ArchiveLimitError, "nested 4 deep"),
    ],
)
def test_unsafe_duplicate_and_oversized_names(
    names: list[str], error: type[Exception], message: str
) -> None:
    data = _typed([(n, tarfile.REGTYPE, "") for n in names])
    limits = ArchiveLimits(max_path_length=50, max_path_depth=3)
    with pytest.raises(error, match=re.escape(message)):
        _members(data, limits)
    assert len(_members(_typed([("é" * 25, tarfile.REGTYPE, "")]), limits)) == 2  # 50 bytes


@pytest.mark.parametrize(
    ("kind", "error", "message"),
    [
        (tarfile.CHRTYPE, UnsafeArchiveError, "a: a character device"),
        (tarfile.FIFOTYPE, UnsafeArchiveError, "a: a fifo"),
        (tarfile.GNUTYPE_SPARSE, UnsupportedMemberError, "sparse files are not supported"),
        (b"Z", UnsupportedMemberError, "unsupported tar member type b'Z'"),
    ],
)
def test_refused_member_types(kind: bytes, error: type[Exception], message: str) -> None:
    with pytest.raises(error, match=re.escape(message)):
        _members(_typed([("a", kind, "")]))


def test_high_byte_headers_and_checksum_variants() -> None:
    # a header summing above 65535: non-ASCII bytes in the prefix, name and link fields
    prefix, name = "\udcff" * 150, "\udcfe" * 99
    data = _typed([(prefix + "/" + name, tarfile.SYMTYPE, "\udcfd" * 100)], tarfile.USTAR_FORMAT)
    assert sum(data[:512]) > 65535
    assert _members(data) == [(prefix + "/" + name, (prefix, name), "symlink", 0, "\udcfd" * 100)]
    # other spellings of a valid checksum, and a signed one (old Sun tar)
    for field in (b"%07o\0", b"%7o ", b"%o\0"):
        block = bytearray(data[:512])
        _rechecksum(block, field)
        assert len(_members(bytes(block) + data[512:])) == 1, field
    block = bytearray(data[:512])
    block[148:156] = b" " * 8
    signed = sum(b - 256 if b > 127 else b for b in block)
    block[148:156] = b"%06o\0 " % signed
    assert len(_members(bytes(block) + data[512:])) == 1
    for field, message in ((b"12x45\0 ", "invalid checksum"), (b"000000\0 ", "mismatch")):
        block = bytearray(_tar([("a", b"1"), ("b", b"2")], tarfile.GNU_FORMAT))
        block[1024 + 148 : 1024 + 156] = field
        with pytest.raises(CorruptArchiveError, match=message):
            _members(bytes(block))


def test_size_fields() -> None:
    data = bytearray(_tar([("a", b"hello")], tarfile.GNU_FORMAT))
    for size in (b"\x80" + (5).to_bytes(11, "big"), b" " * 9 + b"5 \0", b"5\0garbage  \0"):
        assert len(size) == 12
        data[124:136] = size
        _rechecksum(data)
        assert _members(bytes(data)) == [("a", ("a",), "file", 5, ""), (b"hello",)], size
    for size, message in ((b"\xff" * 12, "negative size"), (b"9" * 11 + b"\0", "invalid size")):
        data[124:136] = size
        _rechecksum(data)
        with pytest.raises(CorruptArchiveError, match=message):
            _members(bytes(data))
    # pax sizes and GNU long names
    long = "dir/" * 40 + "f"
    pax = _tar([(long, b"x" * 700)], tarfile.PAX_FORMAT)
    assert _members(pax) == [(long, tuple(long.split("/")), "file", 700, ""), (b"x" * 700,)]
    assert _read(_tar([(long, b"y")], tarfile.GNU_FORMAT)) == [(long, b"y")]


def test_truncated_member_data() -> None:
    data = _tar([("a", b"z" * 3000)], tarfile.GNU_FORMAT)
    for cut, reader in ((512 + 100, "read"), (512 + 2000, "chunks")):
        stream = TarStream(io.BytesIO(data[:cut]))
        member = next(iter(stream))
        with pytest.raises(TruncatedArchiveError, match="inside the data of a"):
            if reader == "read":
                stream.read(member)
            else:
                list(stream.chunks(member, 1000))
