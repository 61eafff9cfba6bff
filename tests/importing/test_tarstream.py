"""The streaming tar reader beside Python's tarfile, and its decompression edge cases."""

from __future__ import annotations

import bz2
import gzip
import io
import lzma
import tarfile

import pytest
import zstandard
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ostree_repo.importing._tarstream import ArchiveLimits, TarStream
from ostree_repo.importing.errors import CorruptArchiveError, TruncatedArchiveError

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
