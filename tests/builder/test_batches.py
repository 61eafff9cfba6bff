"""The builder's batched writer: .filez bytes, dedup, re-commits, reading trees back."""

from __future__ import annotations

import os

import pytest

from ostree_repo.builder import (
    File,
    Symlink,
    commit_tree,
    flatten,
    tree_from_commit,
    tree_from_mapping,
)
from ostree_repo.builder import build as build_module
from ostree_repo.objects import FileHeader, ObjectType, encode_filez
from ostree_repo.repository import RepositoryManager

pytestmark = pytest.mark.anyio


def test_filez_bytes_equal_encode_filez() -> None:
    for node in (
        File(b"x" * 5000, mode=0o755, uid=7, xattrs=((b"user.a", b"1"),)),
        File(b""),
        Symlink("../target", gid=3),
    ):
        fields = build_module._fields(node)
        data = b"" if isinstance(node, Symlink) else (node.data or b"")
        expected = b"".join(encode_filez(FileHeader(*fields), len(data), [data]))
        assert build_module._Hashed(fields, data).filez() == expected


async def test_tree_round_trips_and_unchanged_files_are_not_rewritten(
    manager: RepositoryManager, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(build_module, "BATCH_OBJECTS", 3)  # several batches in flight
    entries = {f"d{i % 4}/f{i}": File(os.urandom(100 + i), mode=0o600 + i % 2) for i in range(20)}
    entries["same/a"] = entries["same/b"] = File(b"duplicate")
    entries["link"] = Symlink("d0/f0")
    first, _ = await commit_tree(manager, "r", tree_from_mapping(entries), ref="main")
    assert flatten(await tree_from_commit(manager.store, first)) == flatten(
        tree_from_mapping(entries)
    )
    written: list[int] = []
    original = build_module._compress_batch

    def spy(items):  # type: ignore[no-untyped-def]
        objects = original(items)
        written.extend(1 for _, t, _ in objects if t is ObjectType.FILE)
        return objects

    monkeypatch.setattr(build_module, "_compress_batch", spy)
    changed = {**entries, "d1/f1": File(b"new contents")}
    second, record = await commit_tree(manager, "r", tree_from_mapping(changed), ref="main")
    assert written == [1]  # only the changed file was compressed and written
    assert record is not None and record.commits[second].parent == first
    report = await manager.fsck("r")
    assert report.ok and report.objects > 20
