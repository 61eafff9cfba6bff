"""Bad requests and damaged stores: each gets a clear error of our hierarchy, in-process
and through worker processes alike."""

from __future__ import annotations

from pathlib import Path

import anyio
import pytest

from ostree_repo.builder.build import write_tree
from ostree_repo.builder.tree import tree_from_mapping
from ostree_repo.deltas import (
    CommitNotFoundError,
    DeltaError,
    DeltaOptions,
    DeltaWorkers,
    generate_delta,
)
from ostree_repo.errors import ChecksumMismatchError, NotFoundError, OstreeRepoError
from ostree_repo.objects import Commit, ObjectType
from ostree_repo.objects.content import FileHeader, encode_filez
from ostree_repo.store import ObjectStore, open_store

from ._apply import apply_delta

OLD = {"a.txt": b"alpha " * 2000, "dir/b.bin": bytes(range(256)) * 40, "link": "a.txt"}
NEW = {"a.txt": b"alpha " * 1000 + b"beta " * 1000, "dir/b.bin": bytes(range(256)) * 41}


async def commit(
    store: ObjectStore, entries: dict[str, bytes | str], parent: str | None = None
) -> str:
    root_tree, root_meta = await write_tree(store, tree_from_mapping(entries))
    c = Commit(root_tree=root_tree, root_meta=root_meta, parent=parent, timestamp=1)
    await store.write_object(c.checksum(), ObjectType.COMMIT, c.to_bytes())
    return c.checksum()


async def _none(index: int, data: bytes) -> None:
    return None


def run(body, url: str = "memory://"):  # type: ignore[no-untyped-def]
    async def main() -> None:
        async with open_store(url) as store:
            await body(store)

    anyio.run(main)


@pytest.mark.parametrize("processes", [0, 1])
def test_missing_commits(processes: int) -> None:
    async def body(store: ObjectStore) -> None:
        old = await commit(store, OLD)
        absent = "ab" * 32
        async with DeltaWorkers(processes, in_process_below=0) as workers:
            with pytest.raises(CommitNotFoundError, match=f"commit {absent} is not in the store"):
                await generate_delta(store, old, absent, write_part=_none, workers=workers)
            with pytest.raises(CommitNotFoundError, match=f"commit {absent} is not in the store"):
                await generate_delta(store, absent, old, write_part=_none, workers=workers)
            with pytest.raises(DeltaError, match="to itself"):
                await generate_delta(store, old, old, write_part=_none, workers=workers)

    run(body)


def test_missing_object_is_named() -> None:
    async def body(store: ObjectStore) -> None:
        old = await commit(store, OLD)
        new = await commit(store, NEW, old)
        header = FileHeader()
        gone = NEW["a.txt"]
        from ostree_repo.objects.content import content_checksum

        checksum = content_checksum(header, gone)
        await store.delete_object(checksum, ObjectType.FILE)
        with pytest.raises(NotFoundError, match=checksum):
            await generate_delta(store, old, new, write_part=_none, workers=DeltaWorkers(0))

    run(body)


@pytest.mark.parametrize("processes", [0, 1])
def test_corrupt_object_is_refused(tmp_path: Path, processes: int) -> None:
    """A stored object that does not match its name fails the generation (the client
    would refuse the delta): in a worker, with the very exception class."""

    async def body(store: ObjectStore) -> None:
        old = await commit(store, OLD)
        new = await commit(store, NEW, old)
        from ostree_repo.objects.content import content_checksum

        checksum = content_checksum(FileHeader(), NEW["dir/b.bin"])
        # other bytes under that name, behind the store's back
        bad = b"".join(encode_filez(FileHeader(), 3, [b"bad"]))
        (tmp_path / "objects" / checksum[:2] / f"{checksum[2:]}.filez").write_bytes(bad)
        async with DeltaWorkers(processes, in_process_below=0) as workers:
            with pytest.raises(ChecksumMismatchError, match=checksum):
                await generate_delta(store, old, new, write_part=_none, workers=workers)

    run(body, str(tmp_path))


def test_unknown_compression() -> None:
    with pytest.raises(DeltaError, match="unknown delta compression 'zstd'"):
        DeltaOptions(compression="zstd")
    assert issubclass(DeltaError, OstreeRepoError)


@pytest.mark.parametrize("processes", [0, 2])
def test_small_trees_round_trip(processes: int) -> None:
    """Modified, added, deleted files and a symlink, from A and from scratch: the Python
    applier rebuilds every object the delta lists, checksums checked."""

    async def body(store: ObjectStore) -> None:
        old = await commit(store, OLD)
        new = await commit(store, {**NEW, "new/empty": b"", "new/link": "../a.txt"}, old)
        parts: dict[int, bytes] = {}

        async def keep(index: int, data: bytes) -> int:
            parts[index] = data
            return index

        sources = {}
        async for checksum, _ in store.list_objects(ObjectType.FILE):
            from ostree_repo.objects.content import read_filez

            sources[checksum] = read_filez(await store.read_object(checksum, ObjectType.FILE))[1]
        async with DeltaWorkers(processes, in_process_below=0) as workers:
            for start in (old, None):
                parts.clear()
                delta = await generate_delta(store, start, new, write_part=keep, workers=workers)
                made = apply_delta(
                    delta.superblock, [parts[i] for i in sorted(parts)], sources.__getitem__
                )
                listed = {o for h in delta.headers for o in h.objects}
                assert set(made) == listed
                if start is not None:
                    assert delta.stats.bsdiff + delta.stats.rollsum == 2

    run(body)
