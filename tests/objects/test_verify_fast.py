"""The whole-buffer fast path of ``verify_bytes`` against the streaming verifier.

``verify_bytes`` checks ``.filez`` objects with :func:`filez_checksum` and dirtrees with
:func:`check_dirtree` instead of a :func:`new_verifier` object. Whatever the bytes, both
must give the same verdict: accepted, or refused with the same exception class. Walks
and closures read dirtrees with :func:`dirtree_references`, which must agree with
``DirTree.from_bytes`` the same way (and give the same references).
"""

from __future__ import annotations

import hashlib
import stat
import struct
import zlib
from collections.abc import Sequence

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ostree_repo.errors import (
    ChecksumMismatchError,
    InvalidNameError,
    InvalidObjectError,
    OstreeRepoError,
)
from ostree_repo.gvariant import dumps
from ostree_repo.objects import DirMeta, DirTree, FileHeader, ObjectType, new_verifier
from ostree_repo.objects._fields import bswap32, bswap64
from ostree_repo.objects.content import (
    FILEZ_HEADER_SIGNATURE,
    INFLATE_STEP,
    MAX_HEADER_SIZE,
    FilezReader,
    encode_filez,
    filez_checksum,
)
from ostree_repo.objects.tree import (
    DIRTREE_SIGNATURE,
    TreeDir,
    TreeFile,
    check_dirtree,
    dirtree_references,
)
from ostree_repo.objects.verify import verify_bytes

from ._mutate import mutate

SETTINGS = settings(max_examples=300, deadline=None, suppress_health_check=list(HealthCheck))
BAD_NAME = "0" * 63 + "G"

Verdict = type[OstreeRepoError] | None


def fast_verdict(objtype: ObjectType, checksum: str, data: bytes) -> Verdict:
    """What ``verify_bytes`` says: None when accepted, else the exception class."""
    try:
        verify_bytes(objtype, checksum, data)
    except OstreeRepoError as e:
        return type(e)
    return None


def stream_verdict(
    objtype: ObjectType, checksum: str, data: bytes, chunks: Sequence[int] = ()
) -> Verdict:
    """What the streaming verifier says when fed ``data`` in chunks of the given sizes
    (cycled; one chunk when empty)."""
    try:
        verifier = new_verifier(objtype, checksum)
        sizes = list(chunks) or [max(len(data), 1)]
        pos, k = 0, 0
        while pos < len(data):
            n = sizes[k % len(sizes)]
            verifier.update(data[pos : pos + n])
            pos += n
            k += 1
        verifier.finish()
    except OstreeRepoError as e:
        return type(e)
    return None


def stream_checksum(data: bytes) -> str | None:
    """The content checksum a FilezReader computes, or None if it refuses the bytes."""
    reader = FilezReader(keep=False)
    try:
        reader.feed(data)
        reader.finish()
    except OstreeRepoError:
        return None
    return reader.checksum()


def raw_filez(
    size: int, body: bytes = b"", *, mode: int = stat.S_IFREG | 0o644, target: str = ""
) -> bytes:
    """A ``.filez`` built by hand, so that its header may lie about the body."""
    header = dumps(
        FILEZ_HEADER_SIGNATURE,
        (bswap64(size), bswap32(0), bswap32(0), bswap32(mode), 0, target, []),
    )
    return struct.pack(">II", len(header), 0) + header + body


def deflate(data: bytes) -> bytes:
    """Raw DEFLATE at libostree's level."""
    c = zlib.compressobj(6, zlib.DEFLATED, -15)
    return c.compress(data) + c.flush()


def make_filez(header: FileHeader, content: bytes) -> bytes:
    """A valid ``.filez``."""
    return b"".join(encode_filez(header, len(content), [content]))


def assert_same(objtype: ObjectType, checksum: str, data: bytes, chunks: Sequence[int]) -> Verdict:
    """Check the fast and streaming verdicts agree (also on bytearray/memoryview input)."""
    fast = fast_verdict(objtype, checksum, data)
    assert fast == stream_verdict(objtype, checksum, data, chunks)
    assert fast == stream_verdict(objtype, checksum, data)
    assert fast_verdict(objtype, checksum, bytearray(data)) == fast  # type: ignore[arg-type]
    assert fast_verdict(objtype, checksum, memoryview(data)) == fast  # type: ignore[arg-type]
    return fast


headers = st.one_of(
    st.builds(
        FileHeader,
        uid=st.integers(0, 2**32 - 1),
        gid=st.integers(0, 2**32 - 1),
        mode=st.sampled_from([stat.S_IFREG | 0o644, stat.S_IFREG | 0o755, stat.S_IFREG]),
        xattrs=st.lists(
            st.tuples(st.binary(min_size=1, max_size=8).filter(lambda b: 0 not in b), st.binary()),
            max_size=2,
        ).map(tuple),
    ),
    st.just(FileHeader()),
)
contents = st.one_of(
    st.binary(max_size=3000),
    st.integers(0, 5000).map(lambda n: b"a" * n),
)
chunkings = st.lists(st.integers(1, 64), max_size=5)


# --- content objects ---------------------------------------------------------------------


@given(headers, contents, chunkings)
@SETTINGS
def test_valid_filez_agree(header: FileHeader, content: bytes, chunks: list[int]) -> None:
    data = make_filez(header, content)
    checksum = stream_checksum(data)
    assert checksum is not None
    assert filez_checksum(data) == checksum
    assert assert_same(ObjectType.FILE, checksum, data, chunks) is None
    wrong = hashlib.sha256(checksum.encode()).hexdigest()
    assert assert_same(ObjectType.FILE, wrong, data, chunks) is ChecksumMismatchError
    assert assert_same(ObjectType.FILE, BAD_NAME, data, chunks) is InvalidNameError


@given(headers, contents, chunkings, st.data())
@SETTINGS
def test_mutated_filez_agree(
    header: FileHeader, content: bytes, chunks: list[int], draw: st.DataObject
) -> None:
    data = mutate(make_filez(header, content), draw, rounds=3)
    checksum = stream_checksum(data)
    # Named after what the streaming reader computes, the structure alone decides.
    name = checksum or hashlib.sha256(data).hexdigest()
    assert assert_same(ObjectType.FILE, name, data, chunks) == (
        None if checksum else InvalidObjectError
    )
    assert assert_same(ObjectType.FILE, BAD_NAME, data, chunks) is InvalidNameError


@given(st.binary(max_size=300), chunkings)
@SETTINGS
def test_random_filez_agree(data: bytes, chunks: list[int]) -> None:
    name = stream_checksum(data) or "1" * 64
    assert_same(ObjectType.FILE, name, data, chunks)


SYMLINK = stat.S_IFLNK | 0o777
VALID = raw_filez(5, deflate(b"hello"))
EDGE_CASES = {
    "truncated length": VALID[:5],
    "empty": b"",
    "truncated header": VALID[:20],
    "header length 0": struct.pack(">II", 0, 0) + VALID[8:],
    "header too long": struct.pack(">II", MAX_HEADER_SIZE + 1, 0) + VALID[8:],
    "non-zero padding": VALID[:4] + b"\0\0\0\1" + VALID[8:],
    "malformed header": VALID[:8] + b"\xff" * (len(VALID) - 8),
    "symlink with a size": raw_filez(3, mode=SYMLINK, target="t"),
    "symlink with bytes": raw_filez(0, b"x", mode=SYMLINK, target="t"),
    "corrupt deflate": raw_filez(5, b"\xff\xff\xff\xff"),
    "data after deflate": VALID + b"\0",
    "truncated deflate": VALID[:-2],
    "no deflate stream": raw_filez(5),
    "no deflate stream, size 0": raw_filez(0),
    "more bytes": raw_filez(4, deflate(b"hello")),
    "fewer bytes": raw_filez(6, deflate(b"hello")),
    "size 0 with bytes": raw_filez(0, deflate(b"x")),
    "huge inflation": raw_filez(10, deflate(b"\0" * (64 << 20))),
    "just over a step": raw_filez(INFLATE_STEP, deflate(b"\0" * (INFLATE_STEP + 1))),
}
VALID_CASES = {
    "valid": VALID,
    "size 0": raw_filez(0, deflate(b"")),
    "symlink": raw_filez(0, mode=SYMLINK, target="target"),
    "several steps": raw_filez(3 * INFLATE_STEP + 7, deflate(bytes(3 * INFLATE_STEP + 7))),
    "one step exactly": raw_filez(INFLATE_STEP, deflate(b"z" * INFLATE_STEP)),
}


@pytest.mark.parametrize("case", sorted(EDGE_CASES))
@pytest.mark.parametrize("chunks", [(), (1,), (7, 3), (INFLATE_STEP,)])
def test_filez_edge_cases_refused(case: str, chunks: tuple[int, ...]) -> None:
    data = EDGE_CASES[case]
    assert stream_checksum(data) is None
    name = hashlib.sha256(data).hexdigest()
    assert assert_same(ObjectType.FILE, name, data, chunks) is InvalidObjectError
    assert assert_same(ObjectType.FILE, BAD_NAME, data, chunks) is InvalidNameError
    with pytest.raises(InvalidObjectError) as e:
        filez_checksum(data)
    assert type(e.value) is InvalidObjectError


@pytest.mark.parametrize("case", sorted(VALID_CASES))
def test_filez_edge_cases_accepted(case: str) -> None:
    data = VALID_CASES[case]
    checksum = stream_checksum(data)
    assert checksum is not None
    assert filez_checksum(data) == checksum
    assert assert_same(ObjectType.FILE, checksum, data, (100_000,)) is None
    assert assert_same(ObjectType.FILE, "f" * 64, data, ()) is ChecksumMismatchError


def test_non_string_name_refused() -> None:
    assert fast_verdict(ObjectType.FILE, None, VALID) is InvalidNameError  # type: ignore[arg-type]
    assert fast_verdict(ObjectType.FILE, "A" * 64, VALID) is InvalidNameError


# --- dirtrees ----------------------------------------------------------------------------

names = st.one_of(
    st.text(min_size=0, max_size=12).filter(lambda n: "\0" not in n),
    st.sampled_from([".", "..", "a/b", "", "é", "x" * 230, "\U0001f600"]),
)
raw_checksums = st.one_of(st.binary(min_size=32, max_size=32), st.binary(max_size=40))


@st.composite
def raw_dirtrees(draw: st.DrawFn) -> bytes:
    """Dirtree-typed GVariants, valid or not as dirtrees (names, checksum sizes, order)."""
    files = draw(st.lists(st.tuples(names, raw_checksums), max_size=12))
    dirs = draw(st.lists(st.tuples(names, raw_checksums, raw_checksums), max_size=6))
    return dumps(DIRTREE_SIGNATURE, (files, dirs))


@st.composite
def valid_dirtrees(draw: st.DrawFn) -> bytes:
    """Valid dirtrees, small and large (wide framing offsets)."""
    good = names.filter(lambda n: n not in (".", "..") and "/" not in n)
    hexes = st.binary(min_size=32, max_size=32).map(bytes.hex)
    files = draw(st.lists(st.builds(TreeFile, good, hexes), max_size=300))
    dirs = draw(st.lists(st.builds(TreeDir, good, hexes, hexes), max_size=30))
    return DirTree.build(files, dirs).to_bytes()


def dirtree_verdict(data: bytes) -> type[Exception] | None:
    try:
        DirTree.from_bytes(data)
    except OstreeRepoError as e:
        return type(e)
    return None


def tree_outcome(data: bytes) -> object:
    """What DirTree.from_bytes makes of ``data``, as references, or its error type."""
    try:
        tree = DirTree.from_bytes(data)
    except OstreeRepoError as e:
        return type(e)
    return [f.checksum for f in tree.files], [(d.tree, d.meta) for d in tree.dirs]


def refs_outcome(data: bytes) -> object:
    try:
        return dirtree_references(data)
    except OstreeRepoError as e:
        return type(e)


def check_verdict(data: bytes) -> type[Exception] | None:
    try:
        check_dirtree(data)
    except OstreeRepoError as e:
        return type(e)
    return None


@given(st.one_of(raw_dirtrees(), valid_dirtrees()), chunkings)
@SETTINGS
def test_dirtrees_agree(data: bytes, chunks: list[int]) -> None:
    assert check_verdict(data) == dirtree_verdict(data)
    assert refs_outcome(data) == tree_outcome(data)
    name = hashlib.sha256(data).hexdigest()
    assert assert_same(ObjectType.DIRTREE, name, data, chunks) == dirtree_verdict(data)
    assert assert_same(ObjectType.DIRTREE, "f" * 64, data, chunks) is ChecksumMismatchError
    assert assert_same(ObjectType.DIRTREE, BAD_NAME, data, chunks) is InvalidNameError


@given(st.one_of(raw_dirtrees(), valid_dirtrees()), chunkings, st.data())
@SETTINGS
def test_mutated_dirtrees_agree(data: bytes, chunks: list[int], draw: st.DataObject) -> None:
    mutated = mutate(data, draw, rounds=3)
    assert check_verdict(mutated) == dirtree_verdict(mutated)
    assert refs_outcome(mutated) == tree_outcome(mutated)
    name = hashlib.sha256(mutated).hexdigest()
    assert assert_same(ObjectType.DIRTREE, name, mutated, chunks) == dirtree_verdict(mutated)


@given(st.binary(max_size=400))
@SETTINGS
def test_random_dirtrees_agree(data: bytes) -> None:
    assert check_verdict(data) == dirtree_verdict(data)
    assert refs_outcome(data) == tree_outcome(data)


def test_dirtree_nul_and_slash_in_names() -> None:
    csum = bytes(32)
    for bad in ["a\1b", "a/b", ".", ".."]:
        values: list[tuple[list[tuple[str, bytes]], list[tuple[str, bytes, bytes]]]] = [
            ([(bad, csum)], []),
            ([], [(bad, csum, csum)]),
        ]
        for value in values:
            # the encoder refuses a NUL in a string: put it in afterwards
            data = dumps(DIRTREE_SIGNATURE, value).replace(b"a\1b", b"a\0b")
            assert check_verdict(data) is InvalidObjectError
            assert dirtree_verdict(data) is InvalidObjectError
    data = dumps(DIRTREE_SIGNATURE, ([(".a", csum), ("", csum)], [("...", csum, csum)]))
    assert check_verdict(data) is None
    assert dirtree_verdict(data) is None


# --- other metadata ----------------------------------------------------------------------


@given(st.data(), chunkings)
@SETTINGS
def test_mutated_dirmeta_agree(draw: st.DataObject, chunks: list[int]) -> None:
    data = mutate(DirMeta(uid=1, xattrs=((b"user.x", b"v"),)).to_bytes(), draw, rounds=3)
    name = hashlib.sha256(data).hexdigest()
    assert_same(ObjectType.DIRMETA, name, data, chunks)
    assert assert_same(ObjectType.DIRMETA, BAD_NAME, data, chunks) is InvalidNameError


@pytest.mark.parametrize(
    "objtype", [ObjectType.COMMIT, ObjectType.COMMITMETA, ObjectType.TOMBSTONE_COMMIT]
)
@given(data=st.binary(max_size=200))
@SETTINGS
def test_other_metadata_agree(objtype: ObjectType, data: bytes) -> None:
    assert_same(objtype, hashlib.sha256(data).hexdigest(), data, (3,))
    assert_same(objtype, BAD_NAME, data, ())
