"""Reclaim: deletes exactly what no surviving version needs, and nothing a writer relies on."""

from __future__ import annotations

import os
import time
from pathlib import Path

import anyio
import pytest

from oracle.ostree_cli import RepoInfo
from ostree_repo.importing import import_directory
from ostree_repo.objects import ObjectType
from ostree_repo.repository import RepositoryManager
from ostree_repo.repository.closure import object_key, save_closure

from .walk import reachable_all

pytestmark = pytest.mark.anyio

_META = {ObjectType.FILE, ObjectType.DIRTREE, ObjectType.DIRMETA, ObjectType.COMMIT}


async def _stored(manager: RepositoryManager) -> set[tuple[ObjectType, str]]:
    return {(t, c) async for c, t in manager.store.list_objects() if t in _META}


async def test_reclaim_leaves_exactly_what_surviving_versions_reach(
    manager: RepositoryManager, rich_repo: RepoInfo
) -> None:
    await import_directory(manager, "src", rich_repo.path)
    await manager.create_repository("dst")
    await manager.copy("src", "dst", refs=["main"], depth=1)
    kept_commits = set(rich_repo.main[-2:])
    before = await _stored(manager)
    await manager.delete_repository("src")

    dry = await manager.reclaim(grace_seconds=0, dry_run=True)
    assert await _stored(manager) == before  # a dry run deletes nothing
    expected = reachable_all(rich_repo.path, kept_commits)
    assert dry.objects == len(before - expected) > 0
    assert dry.object_bytes > 0

    done = await manager.reclaim(grace_seconds=0)
    assert (done.objects, done.object_bytes) == (dry.objects, dry.object_bytes)
    assert await _stored(manager) == expected
    assert (await manager.fsck("dst")).ok
    # blobs left are exactly the ones dst's versions use
    again = await manager.reclaim(grace_seconds=0)
    assert (again.objects, again.files) == (0, 0)


async def test_grace_period_keeps_recent_writes(
    manager: RepositoryManager, rich_repo: RepoInfo
) -> None:
    await import_directory(manager, "src", rich_repo.path)
    await manager.delete_repository("src")
    report = await manager.reclaim(grace_seconds=3600)
    assert (report.objects, report.files) == (0, 0)


async def test_fresh_closure_protects_old_reused_objects(
    fs_manager: RepositoryManager, rich_repo: RepoInfo, tmp_path: Path
) -> None:
    await import_directory(fs_manager, "src", rich_repo.path)
    await fs_manager.delete_repository("src")
    # everything is old and unreferenced now ...
    old = time.time() - 10 * 3600
    for path in (tmp_path / "store").rglob("*"):
        if path.is_file():
            os.utime(path, (old, old))
    # ... except that a writer just saved the closure of one commit it is about to publish
    head = rich_repo.refs["main"]
    closure = await fs_manager.closure(head)
    await save_closure(fs_manager.store, closure)
    await fs_manager.reclaim(grace_seconds=3600)
    stored = await _stored(fs_manager)
    needed = reachable_all(rich_repo.path, {head})
    assert needed <= stored
    assert stored == needed  # and everything else went
    assert object_key(ObjectType.COMMIT, head) in closure.sizes


async def test_reclaim_beside_a_running_import(
    manager: RepositoryManager, rich_repo: RepoInfo
) -> None:
    await manager.create_repository("old")
    results: list[object] = []

    async def importer() -> None:
        results.append(await import_directory(manager, "live", rich_repo.path))

    async with anyio.create_task_group() as tg:
        tg.start_soon(importer)
        for _ in range(5):
            await manager.reclaim(grace_seconds=60)
            await anyio.sleep(0)
    assert results and results[0] is not None
    assert (await manager.fsck("live")).ok
