"""The behaviour every store backend must share (memory, filesystem, S3 async and sync)."""

from __future__ import annotations

import dataclasses
import hashlib
import time
import tracemalloc
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import anyio
import pytest

from ostree_repo.errors import (
    ChecksumMismatchError,
    ConflictError,
    InvalidNameError,
    InvalidObjectError,
    NotFoundError,
    StoreError,
)
from ostree_repo.objects.objtype import ObjectType
from ostree_repo.objects.verify import new_verifier
from ostree_repo.store import ObjectStore, Versioned

from .conftest import BACKENDS, StoreSpec, make_spec
from .objfactory import commitmeta, dirmeta, dirmetas, file_object

pytestmark = pytest.mark.anyio

D = ObjectType.DIRMETA
SMALL_PARTS = {"part_size": 5 << 20, "part_concurrency": 2}


async def agen(chunks: Iterator[bytes]) -> AsyncIterator[bytes]:
    for chunk in chunks:
        yield chunk


async def collect(
    store: ObjectStore, objtype: ObjectType | None = None
) -> set[tuple[str, ObjectType]]:
    return {key async for key in store.list_objects(objtype)}


async def named(store: ObjectStore, prefix: str = "") -> list[str]:
    return sorted([path async for path in store.list_named(prefix)])


# -- objects ---------------------------------------------------------------------------


async def test_object_round_trip(store: ObjectStore) -> None:
    obj = dirmeta(1)
    assert not await store.has_object(obj.checksum, D)
    assert await store.write_object(obj.checksum, D, obj.data) is True
    assert await store.has_object(obj.checksum, D)
    assert await store.read_object(obj.checksum, D) == obj.data
    assert await store.object_size(obj.checksum, D) == len(obj.data)
    async with store.open_object(obj.checksum, D) as stream:
        assert stream.size == len(obj.data)
        assert await stream.read() == obj.data
    # same checksum, other type: a different object
    assert not await store.has_object(obj.checksum, ObjectType.DIRTREE)


async def test_rewriting_an_object_is_a_no_op(store: ObjectStore) -> None:
    obj = dirmeta(2)
    big = file_object(3 << 20, seed=2)
    assert await store.write_object(obj.checksum, D, obj.data)
    assert await store.write_object(big.checksum, big.objtype, agen(big.chunks()))
    assert await store.write_object(obj.checksum, D, obj.data) is False
    assert await store.write_object(obj.checksum, D, [obj.data]) is False
    assert await store.write_object(big.checksum, big.objtype, agen(big.chunks())) is False
    assert await store.read_object(obj.checksum, D) == obj.data


@pytest.mark.parametrize("form", ["bytearray", "memoryview", "list", "sync-gen", "async-gen"])
async def test_write_accepts_every_input_form(store: ObjectStore, form: str) -> None:
    obj = file_object(300_000, seed=3)
    data = obj.filez()
    pieces = [data[i : i + 7000] for i in range(0, len(data), 7000)]  # small, uneven chunks
    source: object = {
        "bytearray": bytearray(data),
        "memoryview": memoryview(data),
        "list": pieces,
        "sync-gen": iter(pieces),
        "async-gen": agen(iter(pieces)),
    }[form]
    assert await store.write_object(obj.checksum, obj.objtype, source)  # type: ignore[arg-type]
    assert await store.read_object(obj.checksum, obj.objtype) == data


async def test_refused_write_stores_nothing(store: ObjectStore) -> None:
    obj = dirmeta(4)
    other = dirmeta(5)
    with pytest.raises(ChecksumMismatchError):
        await store.write_object(other.checksum, D, obj.data)
    with pytest.raises(ChecksumMismatchError):
        await store.write_object(other.checksum, D, agen(iter([obj.data])))
    big = file_object(12 << 20, seed=4)  # several S3 parts: the multipart path
    wrong = file_object(1000, seed=5).checksum
    with pytest.raises(ChecksumMismatchError):
        await store.write_object(wrong, ObjectType.FILE, agen(big.chunks()))
    truncated = list(big.chunks())[:-3]
    with pytest.raises(InvalidObjectError):
        await store.write_object(big.checksum, ObjectType.FILE, agen(iter(truncated)))
    assert await collect(store) == set()
    assert not await store.has_object(big.checksum, ObjectType.FILE)
    assert not await store.has_object(other.checksum, D)


async def test_source_errors_propagate_and_store_nothing(store: ObjectStore) -> None:
    big = file_object(10 << 20, seed=6)

    async def failing() -> AsyncIterator[bytes]:
        for i, chunk in enumerate(big.chunks()):
            if i == 9:
                raise OSError("source broke")
            yield chunk

    with pytest.raises(OSError, match="source broke"):
        await store.write_object(big.checksum, ObjectType.FILE, failing())
    with pytest.raises(OSError, match="source broke"):
        await store.write_named("deltas/x/0", failing())
    assert await collect(store) == set()
    assert await named(store, "deltas") == []


async def test_batch_write_and_existence(store: ObjectStore) -> None:
    metas = dirmetas(30, start=100)
    files = [file_object(200 + i, seed=100 + i) for i in range(5)]
    cmeta = commitmeta("ef" * 32, b"sig")
    await store.write_object(metas[0].checksum, D, metas[0].data)  # one present already
    batch = [(o.checksum, o.objtype, o.data) for o in metas]
    batch += [(f.checksum, f.objtype, bytearray(f.filez())) for f in files]
    batch.append((cmeta.checksum, cmeta.objtype, memoryview(cmeta.data)))
    keys = [(c, t) for c, t, _ in batch]
    assert await store.has_objects(keys) == [True] + [False] * (len(keys) - 1)
    assert await store.write_objects(batch) == [False] + [True] * (len(batch) - 1)
    assert await store.has_objects(keys) == [True] * len(keys)
    for checksum, objtype, data in batch:
        assert await store.read_object(checksum, objtype) == bytes(data)
    assert await collect(store) == set(keys)
    # again: nothing new, except the commitmeta, which is replaced like write_object does
    assert await store.write_objects(batch[:-1]) == [False] * (len(batch) - 1)
    assert await store.write_objects([]) == []
    assert await store.has_objects([]) == []


async def test_batch_write_refuses_bad_objects(store: ObjectStore) -> None:
    good = dirmetas(4, start=300)
    bad = dirmeta(400)
    wrong = good[0].checksum[::-1]
    truncated = file_object(5000, seed=300)
    cases = [
        ((wrong, D, bad.data), ChecksumMismatchError),
        ((truncated.checksum, ObjectType.FILE, truncated.filez()[:-10]), InvalidObjectError),
    ]
    for bad_item, error in cases:
        batch = [(o.checksum, D, o.data) for o in good[:2]]
        batch += [bad_item] + [(o.checksum, D, o.data) for o in good[2:]]
        with pytest.raises(error):
            await store.write_objects(batch)
        assert not await store.has_object(bad_item[0], bad_item[1])
        # whatever else was stored is sound
        for checksum, objtype in await collect(store):
            data = await store.read_object(checksum, objtype)
            verifier = new_verifier(objtype, checksum)
            verifier.update(data)
            verifier.finish()
    with pytest.raises(InvalidNameError):
        await store.write_objects([("zz" * 32, D, bad.data)])
    with pytest.raises(InvalidNameError):
        await store.has_objects([("zz" * 32, D)])


async def test_staging_writes_everything_by_the_end(store: ObjectStore) -> None:
    metas = dirmetas(10, start=700)
    big = file_object(3 << 20, seed=700)
    await store.write_object(metas[0].checksum, D, metas[0].data)
    async with store.staging() as staging:
        async with anyio.create_task_group() as tg:  # shared by several tasks
            for obj in metas[:5]:
                tg.start_soon(staging.write_object, obj.checksum, D, obj.data)
        assert (
            await staging.write_objects([(o.checksum, D, o.data) for o in metas[5:]]) == [True] * 5
        )
        assert await staging.write_object(big.checksum, big.objtype, agen(big.chunks()))
        assert await staging.write_objects([]) == []
    keys = [(o.checksum, D) for o in metas] + [(big.checksum, big.objtype)]
    assert await store.has_objects(keys) == [True] * len(keys)
    assert await store.read_object(big.checksum, big.objtype) == big.filez()
    async with store.staging() as staging:  # present already: not new
        assert await staging.write_object(big.checksum, big.objtype, agen(big.chunks())) is False
        assert await staging.write_objects([(metas[0].checksum, D, metas[0].data)]) == [False]


async def test_staging_refuses_bad_objects(store: ObjectStore) -> None:
    good, bad = dirmeta(800), dirmeta(801)
    big = file_object(2 << 20, seed=800)
    async with store.staging() as staging:
        with pytest.raises(ChecksumMismatchError):
            await staging.write_objects([(good.checksum, D, bad.data)])
        with pytest.raises(ChecksumMismatchError):
            await staging.write_object(good.checksum, big.objtype, agen(big.chunks()))
    assert await collect(store) == set()


async def test_list_objects_all_and_by_type(store: ObjectStore) -> None:
    metas = dirmetas(40)
    files = [file_object(100 + i, seed=i) for i in range(3)]
    cmeta = commitmeta("ab" * 32, b"signature")
    for obj in metas:
        await store.write_object(obj.checksum, obj.objtype, obj.data)
    for f in files:
        await store.write_object(f.checksum, f.objtype, f.filez())
    await store.write_object(cmeta.checksum, cmeta.objtype, cmeta.data)
    await store.write_named("refs/heads/main", b"x")
    expected_meta = {(o.checksum, D) for o in metas}
    expected_files = {(f.checksum, ObjectType.FILE) for f in files}
    assert await collect(store, D) == expected_meta
    assert await collect(store, ObjectType.FILE) == expected_files
    assert await collect(store, ObjectType.COMMIT) == set()
    assert await collect(store) == expected_meta | expected_files | {
        (cmeta.checksum, ObjectType.COMMITMETA)
    }


async def test_listings_with_sizes_and_times(store: ObjectStore) -> None:
    before = time.time()
    small, big = dirmeta(9), file_object(2 << 20, seed=9)
    await store.write_object(small.checksum, D, small.data)
    await store.write_object(big.checksum, big.objtype, big.chunks())
    await store.write_named("closures/ab/cd", b"12345")
    await store.write_named("blobs/x", b"1")
    after = time.time()
    objects = {(i.checksum, i.objtype): i for i in [i async for i in store.list_objects_info()]}
    assert set(objects) == {(small.checksum, D), (big.checksum, big.objtype)}
    assert objects[small.checksum, D].size == len(small.data)
    assert objects[big.checksum, big.objtype].size == big.stored_size
    assert [i async for i in store.list_objects_info(ObjectType.FILE)] == [
        objects[big.checksum, big.objtype]
    ]
    files = [i async for i in store.list_named_info("closures")]
    assert [(f.path, f.size) for f in files] == [("closures/ab/cd", 5)]
    # S3 Last-Modified has a resolution of one second
    for when in [i.mtime for i in objects.values()] + [files[0].mtime]:
        assert int(before) - 1 <= when <= after + 1


async def test_delete_object(store: ObjectStore) -> None:
    keep, drop = dirmeta(6), dirmeta(7)
    for obj in (keep, drop):
        await store.write_object(obj.checksum, D, obj.data)
    await store.delete_object(drop.checksum, D)
    await store.delete_object(drop.checksum, D)  # absent: fine
    assert not await store.has_object(drop.checksum, D)
    assert await collect(store) == {(keep.checksum, D)}
    with pytest.raises(NotFoundError):
        await store.read_object(drop.checksum, D)
    with pytest.raises(NotFoundError):
        await store.object_size(drop.checksum, D)
    with pytest.raises(NotFoundError):
        async with store.open_object(drop.checksum, D):
            pass


async def test_commitmeta_is_replaced_not_kept(store: ObjectStore) -> None:
    commit = "cd" * 32
    first, second = commitmeta(commit, b"one"), commitmeta(commit, b"two signatures")
    assert await store.write_object(commit, ObjectType.COMMITMETA, first.data)
    assert await store.write_object(commit, ObjectType.COMMITMETA, second.data)
    assert await store.read_object(commit, ObjectType.COMMITMETA) == second.data


async def test_local_files_are_the_stored_bytes(store: ObjectStore, spec: StoreSpec) -> None:
    """A filesystem store names the files a server may send itself; others name none."""
    obj = dirmeta(11)
    await store.write_object(obj.checksum, D, obj.data)
    await store.write_named("deltas/ab/cd", b"named")
    local = store.local_object_path(obj.checksum, D)
    local_named = store.local_named_path("deltas/ab/cd")
    if spec.kind.startswith("fs"):
        assert local is not None and local_named is not None
        assert Path(local).read_bytes() == obj.data
        assert Path(local_named).read_bytes() == b"named"
        missing = store.local_object_path(dirmeta(12).checksum, D)
        assert missing is not None and not Path(missing).exists()  # no I/O: may be absent
    else:
        assert local is None and local_named is None
    with pytest.raises(InvalidNameError):
        store.local_object_path("zz" * 32, D)
    with pytest.raises(InvalidNameError):
        store.local_named_path("objects/ab/cd")


async def test_bad_keys_are_refused(store: ObjectStore) -> None:
    for checksum in ("", "AB" * 32, "ab" * 31, "ab" * 33, "zz" * 32, "../" + "a" * 61):
        with pytest.raises(InvalidNameError):
            await store.has_object(checksum, D)
    with pytest.raises(InvalidNameError):
        await store.has_object("ab" * 32, "dirmeta")  # type: ignore[arg-type]


@pytest.mark.parametrize("kind", [k for k in BACKENDS if k != "memory"])  # memory: by design
async def test_large_object_streams_in_bounded_memory(
    kind: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    spec = make_spec(kind, request, tmp_path)
    big = file_object(64 << 20, seed=64)
    if spec.kind.startswith("s3"):  # an upload buffers about (part_concurrency + 1) parts
        spec = dataclasses.replace(spec, options={**spec.options, **SMALL_PARTS})
    async with spec.open() as store:
        tracemalloc.start()
        try:
            assert await store.write_object(big.checksum, big.objtype, agen(big.chunks()))
            write_peak = tracemalloc.get_traced_memory()[1]
            tracemalloc.reset_peak()
            verifier = new_verifier(big.objtype, big.checksum)
            total = 0
            async with store.open_object(big.checksum, big.objtype) as stream:
                size = stream.size
                async for chunk in stream:
                    verifier.update(chunk)
                    total += len(chunk)
            verifier.finish()
            read_peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
        assert total == size == await store.object_size(big.checksum, big.objtype) > 64 << 20
    # 64 MiB went through; Python-side buffers stay at a few chunks (S3: one part)
    assert write_peak < 20 << 20, write_peak
    assert read_peak < 12 << 20, read_peak


# -- named files -------------------------------------------------------------------------


async def test_named_files_crud(store: ObjectStore) -> None:
    token = await store.write_named("refs/heads/main", b"one\n")
    assert await store.read_named("refs/heads/main") == Versioned(b"one\n", token)
    token2 = await store.write_named("refs/heads/main", b"two\n")
    assert token2 != token
    data, token3 = await store.read_named("refs/heads/main")
    assert (data, token3) == (b"two\n", token2)
    async with store.open_named("refs/heads/main") as stream:
        assert stream.size == 4
        assert await stream.read() == b"two\n"
    await store.delete_named("refs/heads/main")
    await store.delete_named("refs/heads/main")
    with pytest.raises(NotFoundError):
        await store.read_named("refs/heads/main")
    with pytest.raises(NotFoundError):
        async with store.open_named("refs/heads/main"):
            pass
    with pytest.raises(NotFoundError):
        await store.read_named("refs/heads")  # a directory (on some backends) is no file


async def test_list_named_by_directory_prefix(store: ObjectStore) -> None:
    paths = [
        "refs/heads/main",
        "refs/heads/feature/x",
        "refs/headsx/y",
        "refs/remotes/origin/main",
        "summary",
        "deltas/ab/cdef/0",
        "versions/00000001",
    ]
    for path in paths:
        await store.write_named(path, path.encode())
    obj = dirmeta(8)
    await store.write_object(obj.checksum, D, obj.data)
    assert await named(store, "refs/heads") == ["refs/heads/feature/x", "refs/heads/main"]
    assert await named(store, "refs/heads/") == ["refs/heads/feature/x", "refs/heads/main"]
    assert await named(store, "refs") == sorted(p for p in paths if p.startswith("refs/"))
    assert await named(store, "nothing/here") == []
    everything = await named(store)
    assert set(paths) <= set(everything)
    assert set(everything) - set(paths) <= {"config"}  # the filesystem store's repo config
    assert not any(p.startswith(("objects/", "tmp/")) for p in everything)


@pytest.mark.parametrize(
    "path",
    [
        "",
        "/abs",
        "a//b",
        "a/",
        "../x",
        "a/../b",
        "./a",
        "a/.",
        "a\\b",
        "a\0b",
        "objects/x",
        "tmp/x",
        "objects",
        "tmp",
    ],
)
async def test_bad_named_paths_are_refused(store: ObjectStore, path: str) -> None:
    with pytest.raises(InvalidNameError):
        await store.write_named(path, b"x")
    with pytest.raises(InvalidNameError):
        await store.read_named(path)
    with pytest.raises(InvalidNameError):
        await store.create_named(path, b"x")
    with pytest.raises(InvalidNameError):
        await store.delete_named(path)
    if path not in ("", "a/"):
        with pytest.raises(InvalidNameError):
            await named(store, path)


async def test_create_if_absent(store: ObjectStore) -> None:
    token = await store.create_named("versions/1", b"first")
    with pytest.raises(ConflictError):
        await store.create_named("versions/1", b"second")
    with pytest.raises(ConflictError):
        await store.create_named("versions/1", b"first")  # even with the same bytes
    assert await store.read_named("versions/1") == Versioned(b"first", token)
    await store.write_named("versions/2", b"x")
    with pytest.raises(ConflictError):
        await store.create_named("versions/2", b"y")
    await store.delete_named("versions/2")
    await store.create_named("versions/2", b"z")
    assert (await store.read_named("versions/2")).data == b"z"


async def test_replace_if_unchanged(store: ObjectStore) -> None:
    token = await store.create_named("refs/heads/main", b"a")
    token_b = await store.replace_named("refs/heads/main", b"b", token)
    assert await store.read_named("refs/heads/main") == Versioned(b"b", token_b)
    with pytest.raises(ConflictError):
        await store.replace_named("refs/heads/main", b"c", token)  # stale
    assert (await store.read_named("refs/heads/main")).data == b"b"
    token_w = await store.write_named("refs/heads/main", b"w")
    with pytest.raises(ConflictError):
        await store.replace_named("refs/heads/main", b"c", token_b)
    token_d = await store.replace_named("refs/heads/main", b"d", token_w)
    await store.delete_named("refs/heads/main")
    with pytest.raises(ConflictError):
        await store.replace_named("refs/heads/main", b"e", token_d)
    with pytest.raises(NotFoundError):
        await store.read_named("refs/heads/main")
    with pytest.raises(ConflictError):
        await store.replace_named("never/written", b"e", token_d)


async def test_concurrent_creators_in_one_process(store: ObjectStore) -> None:
    winners: list[int] = []

    async def create(i: int) -> None:
        try:
            await store.create_named("versions/race", b"writer %d" % i)
        except ConflictError:
            return
        winners.append(i)

    async with anyio.create_task_group() as tg:
        for i in range(32):
            tg.start_soon(create, i)
    assert len(winners) == 1
    assert (await store.read_named("versions/race")).data == b"writer %d" % winners[0]


async def test_concurrent_compare_and_swap_loses_no_update(store: ObjectStore) -> None:
    await store.create_named("counter", b"0")

    async def increment(times: int) -> None:
        for _ in range(times):
            while True:
                data, token = await store.read_named("counter")
                try:
                    await store.replace_named("counter", b"%d" % (int(data) + 1), token)
                    break
                except ConflictError:
                    continue

    async with anyio.create_task_group() as tg:
        for _ in range(8):
            tg.start_soon(increment, 5)
    assert (await store.read_named("counter")).data == b"40"


async def test_named_streaming_both_ways(store: ObjectStore) -> None:
    digest = hashlib.sha256()

    async def part() -> AsyncIterator[bytes]:
        for i in range(20):
            chunk = bytes([i]) * (1 << 20) + b"tail%d" % i
            digest.update(chunk)
            yield chunk

    token = await store.write_named("deltas/ab/cd/0", part())
    check = hashlib.sha256()
    async with store.open_named("deltas/ab/cd/0") as stream:
        size = stream.size
        async for chunk in stream:
            assert len(chunk) <= 16 << 20
            check.update(chunk)
    assert check.digest() == digest.digest()
    assert size == 20 * (1 << 20) + sum(len(b"tail%d" % i) for i in range(20))
    assert (await store.read_named("deltas/ab/cd/0")).token == token


async def test_store_must_be_open(spec: StoreSpec) -> None:
    store = spec.open()
    with pytest.raises(StoreError, match="async with"):
        await store.has_object("ab" * 32, D)
    async with store:
        await store.write_named("a", b"1")
    with pytest.raises(StoreError):
        await store.read_named("a")
    with pytest.raises(StoreError):
        async with store:
            pass
