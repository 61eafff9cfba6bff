"""The pieces a delta is made of: varints, raw bsdiff streams, rollsum chunking and the
part payload, each checked against a reference (libostree's code transcribed, GVariant
normal form) and fuzzed."""

from __future__ import annotations

import random

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ostree_repo.deltas import _bsdiff as bsdiff
from ostree_repo.deltas import _rollsum as rollsum
from ostree_repo.deltas._opcodes import read_varint, varint
from ostree_repo.deltas._payload import PartTables, PartWriter
from ostree_repo.errors import InvalidObjectError
from ostree_repo.gvariant import dumps
from ostree_repo.objects.content import FileHeader
from ostree_repo.objects.delta import PART_PAYLOAD_SIGNATURE, DeltaPart

# -- varints --------------------------------------------------------------------------------


@given(st.integers(min_value=0, max_value=2**64 - 1))
def test_varint_round_trip(value: int) -> None:
    data = varint(value)
    assert read_varint(data + b"tail", 0) == (value, len(data))
    assert len(data) == max(1, -(-value.bit_length() // 7))


def test_varint_bad_input() -> None:
    with pytest.raises(InvalidObjectError, match="truncated"):
        read_varint(b"\x80\x80", 0)
    with pytest.raises(InvalidObjectError, match="longer than 10"):
        read_varint(b"\xff" * 11, 0)
    with pytest.raises(InvalidObjectError, match="64 bits"):
        read_varint(b"\xff" * 9 + b"\x7f", 0)
    with pytest.raises(ValueError):
        varint(-1)
    with pytest.raises(ValueError):
        varint(2**64)


# -- bsdiff ---------------------------------------------------------------------------------


def _edited(rng: random.Random, old: bytes) -> bytes:
    new = bytearray(old)
    for _ in range(rng.randrange(4)):
        at = rng.randrange(len(new) + 1)
        kind = rng.randrange(3)
        if kind == 0:
            new[at:at] = rng.randbytes(rng.randrange(1, 64))
        elif kind == 1:
            del new[at : at + rng.randrange(1, 64)]
        else:
            new[at : at + 8] = rng.randbytes(8)
    return bytes(new)


@settings(max_examples=60, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=3000), st.integers(0, 2**32))
def test_bsdiff_round_trip(old: bytes, seed: int) -> None:
    new = _edited(random.Random(seed), old)
    patch = bsdiff.diff(old, new)
    assert bsdiff.patch(old, patch, len(new)) == new


def test_bsdiff_small_for_small_change() -> None:
    rng = random.Random(1)
    old = rng.randbytes(200_000)
    new = bytearray(old)
    new[100_000:100_032] = rng.randbytes(32)
    patch = bsdiff.diff(old, bytes(new))
    assert bsdiff.patch(old, patch, len(new)) == new
    assert patch.count(0) > len(patch) * 0.99  # diff bytes are zeros where nothing changed


@settings(max_examples=300)
@given(st.binary(max_size=200), st.binary(max_size=400), st.integers(0, 500))
def test_bspatch_fuzz(old: bytes, stream: bytes, size: int) -> None:
    """A bad stream is refused with our error, never anything else."""
    try:
        out = bsdiff.patch(old, stream, size)
    except InvalidObjectError:
        return
    assert len(out) == size


def test_bspatch_refuses_bad_control() -> None:
    negative = (5 | 1 << 63).to_bytes(8, "little")
    with pytest.raises(InvalidObjectError, match="control"):
        bsdiff.patch(b"abc", negative + bytes(16), 3)
    with pytest.raises(InvalidObjectError, match="truncated"):
        bsdiff.patch(b"abc", (3).to_bytes(8, "little") + bytes(16) + b"\0", 3)


# -- rollsum --------------------------------------------------------------------------------


def _find_ofs(buf: bytes, start: int) -> int:
    """libostree's ``bupsplit_find_ofs``, transcribed (32-bit wrapping sums)."""
    window = [0] * 64
    s1, s2, wofs = 64 * 31, 64 * 63 * 31, 0
    for count in range(start, len(buf)):
        ch, drop = buf[count], window[wofs]
        s1 = (s1 + ch - drop) & 0xFFFFFFFF
        s2 = (s2 + s1 - 64 * (drop + 31)) & 0xFFFFFFFF
        window[wofs] = ch
        wofs = (wofs + 1) % 64
        if s2 & 8191 == 8191:
            return count + 1 - start
    return 0


def _reference_chunks(buf: bytes) -> list[tuple[int, int]]:
    """libostree's ``rollsum_chunks_crc32`` boundaries, transcribed."""
    out, start, ended = [], 0, False
    while start < len(buf):
        remaining = len(buf) - start
        if ended:
            offset = min(32768, remaining)
        else:
            offset = _find_ofs(buf, start)
            if offset == 0:
                ended, offset = True, min(32768, remaining)
            elif offset > 32768:
                offset = 32768
        out.append((start, offset))
        start += offset
    return out


@settings(max_examples=40, deadline=None)
@given(st.integers(0, 2**32), st.sampled_from([0, 1, 63, 64, 65, 9000, 70_000, 150_000]))
def test_rollsum_chunks_as_bupsplit(seed: int, size: int) -> None:
    rng = random.Random(seed)
    kind = rng.randrange(3)
    if kind == 0:
        data = rng.randbytes(size)
    elif kind == 1:
        data = (b"the quick brown fox " * (size // 20 + 1))[:size]
    else:
        data = bytes(size)
    assert rollsum.chunks(data) == _reference_chunks(data)


def test_rollsum_chunks_across_blocks() -> None:
    """Windows that straddle the 1 MiB blocks the boundaries are computed in."""
    data = random.Random(5).randbytes((2 << 20) + 777)
    chunks = rollsum.chunks(data)
    assert chunks == _reference_chunks(data)
    assert sum(n for _, n in chunks) == len(data)


def test_rollsum_matches() -> None:
    rng = random.Random(3)
    old = rng.randbytes(300_000)
    new = old[:150_000] + rng.randbytes(100) + old[150_000:]
    found = rollsum.matches(old, new)
    assert found.usable
    assert found.matched >= found.total - 2
    for match in found.matches:
        part = new[match.new_start : match.new_start + match.length]
        assert part == old[match.old_start : match.old_start + match.length]
    assert not rollsum.matches(old, rng.randbytes(300_000)).usable


# -- part payloads --------------------------------------------------------------------------

_HEADERS = st.builds(
    FileHeader,
    uid=st.integers(0, 2**32 - 1),
    gid=st.integers(0, 2**32 - 1),
    mode=st.sampled_from([0o100644, 0o100755, 0o104755]),
    xattrs=st.lists(
        st.tuples(
            st.binary(min_size=1, max_size=8).filter(lambda b: 0 not in b), st.binary(max_size=8)
        ),
        max_size=2,
    ).map(tuple),
)


@settings(max_examples=60)
@given(
    st.lists(st.binary(max_size=300), max_size=4),
    st.lists(st.tuples(_HEADERS, st.binary(max_size=300)), max_size=4),
    st.sampled_from(["none", "xz"]),
)
def test_part_payload_is_normal_form(
    metadata: list[bytes], files: list[tuple[FileHeader, bytes]], compression: str
) -> None:
    """What :class:`PartWriter` streams is the payload GVariant in normal form, with
    the tables, blob and operations as libostree's executor reads them."""
    tables = PartTables()
    indices = [tables.add(h) for h, _ in files]
    modes, xattrs = tables.encode()
    writer = PartWriter(compression, modes, xattrs, 1000)
    for data in metadata:
        writer.add_metadata(data)
    for (header, data), index in zip(files, indices, strict=True):
        writer.add_file(index, header, data)
    part_file = writer.finish()
    part = DeltaPart.from_bytes(part_file)
    assert part.blob == b"".join(metadata) + b"".join(d for _, d in files)
    value = (
        [(_swap(u), _swap(g), _swap(m)) for u, g, m in part.modes],
        [[(n + b"\0", v) for n, v in x] for x in part.xattrs],
        part.blob,
        part.ops,
    )
    payload = dumps(PART_PAYLOAD_SIGNATURE, value)
    if compression == "none":
        assert part_file == b"\0" + payload
    assert {(h.uid, h.gid, h.mode) for h, _ in files} == set(part.modes)


def _swap(value: int) -> int:
    return int.from_bytes(value.to_bytes(4, "little"), "big")
