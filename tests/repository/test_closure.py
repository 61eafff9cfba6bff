"""compute_closure: the objects a commit reaches, with sizes; a shared dirtree cache."""

from __future__ import annotations

import uuid

import pytest

from ostree_repo.builder import commit_tree, tree_from_mapping
from ostree_repo.objects import ObjectType
from ostree_repo.repository import RepositoryManager
from ostree_repo.repository.closure import MissingObjectError, compute_closure, split_key
from ostree_repo.store import ObjectStore

pytestmark = pytest.mark.anyio


class CountingStore:
    """Counts the dirtrees read through it (everything else is passed on)."""

    def __init__(self, store: ObjectStore) -> None:
        self.store = store
        self.dirtree_reads: list[str] = []

    async def read_object(self, checksum: str, objtype: ObjectType) -> bytes:
        if objtype is ObjectType.DIRTREE:
            self.dirtree_reads.append(checksum)
        return await self.store.read_object(checksum, objtype)

    def __getattr__(self, name: str) -> object:
        return getattr(self.store, name)


async def test_a_shared_cache_reads_each_dirtree_once() -> None:
    async with RepositoryManager.open(f"memory://{uuid.uuid4().hex}") as manager:
        files = {f"d{i}/sub/f{j}": f"{i}-{j}".encode() for i in range(4) for j in range(3)}
        first, _ = await commit_tree(manager, "r", tree_from_mapping(files), ref="main")
        files["d0/sub/f0"] = b"changed"
        second, _ = await commit_tree(manager, "r", tree_from_mapping(files), ref="main")
        counting = CountingStore(manager.store)
        cache: dict[str, tuple[int, tuple[list[str], list[tuple[str, str]]]]] = {}
        one = await compute_closure(counting, first, trees=cache)  # type: ignore[arg-type]
        reads_first = len(counting.dirtree_reads)
        two = await compute_closure(counting, second, trees=cache)  # type: ignore[arg-type]
        fresh = await compute_closure(manager.store, second)
    # the root, d0..d3 and their sub/ directories: 9 dirtrees, each read once
    assert reads_first == len(set(counting.dirtree_reads[:reads_first])) == 9
    # the second commit changed d0/sub: only its new root, d0 and d0/sub are read
    assert len(counting.dirtree_reads) - reads_first == 3
    assert two.sizes == fresh.sizes and one.sizes != two.sizes
    kinds = {split_key(k)[0] for k in two.sizes}
    assert kinds == {ObjectType.COMMIT, ObjectType.DIRTREE, ObjectType.DIRMETA, ObjectType.FILE}


async def test_a_missing_object_is_named_with_its_commit() -> None:
    async with RepositoryManager.open(f"memory://{uuid.uuid4().hex}") as manager:
        commit, _ = await commit_tree(manager, "r", tree_from_mapping({"a/b": b"x"}), ref="main")
        closure = await compute_closure(manager.store, commit)
        victim = next(k for k in closure.sizes if split_key(k)[0] is ObjectType.DIRTREE)
        objtype, checksum = split_key(victim)
        await manager.store.delete_object(checksum, objtype)
        with pytest.raises(MissingObjectError) as raised:
            await compute_closure(manager.store, commit)
    assert raised.value.commit == commit and raised.value.checksum == checksum
    assert f"commit {commit} needs dirtree object {checksum}" in str(raised.value)
