"""Reclaim against a writer that starts relying on old, unreferenced objects after the scan.

Each test pauses reclaim at one step (its ``checkpoint``) and runs the writer there, so
every interleaving is reached deterministically: the writer's version is complete, or it
fails without publishing; never a version that names a deleted object.
"""

from __future__ import annotations

from typing import Any

import anyio
import attrs
import pytest

from oracle.ostree_cli import RepoInfo
from ostree_repo.importing import import_directory
from ostree_repo.objects import ObjectType, object_path
from ostree_repo.repository import (
    ReclaimConflictError,
    Repository,
    RepositoryManager,
    VersionRecord,
)
from ostree_repo.repository._fence import Doomed, Fence
from ostree_repo.repository.closure import object_key
from ostree_repo.repository.layout import closure_path

from .walk import reachable_all, stored_objects

pytestmark = pytest.mark.anyio


class Pause:
    """A reclaim checkpoint that holds reclaim at the ``nth`` time it reaches ``step``."""

    def __init__(self, step: str, nth: int = 1) -> None:
        self.step, self.nth, self.seen = step, nth, 0
        self.paused = anyio.Event()
        self.resume = anyio.Event()

    async def __call__(self, step: str) -> None:
        if step == self.step:
            self.seen += 1
            if self.seen == self.nth:
                self.paused.set()
                await self.resume.wait()


async def _lists(manager: RepositoryManager) -> dict[str, Doomed]:
    found = {}
    async for path in manager.store.list_named("reclaims"):
        data, _ = await manager.store.read_named(path)
        found[path] = Doomed.from_bytes(data)
    return found


async def _orphaned(manager: RepositoryManager, rich_repo: RepoInfo) -> VersionRecord:
    """Import rich, then delete it: all of it is old and unreferenced (for grace 0)."""
    record = await import_directory(manager, "old", rich_repo.path)
    assert record is not None
    await manager.delete_repository("old")
    return record


async def test_an_import_reusing_old_objects_after_the_scan_keeps_them(
    manager: RepositoryManager, rich_repo: RepoInfo
) -> None:
    await _orphaned(manager, rich_repo)
    everything = reachable_all(rich_repo.path, rich_repo.commits)
    pause = Pause("scanned")
    reports: list[Any] = []

    async def reclaim() -> None:
        reports.append(await manager.reclaim(grace_seconds=0, checkpoint=pause))

    async with anyio.create_task_group() as tg:
        tg.start_soon(reclaim)
        await pause.paused.wait()  # reclaim decided: every object of rich is dead
        # the import finds every object and closure stored, writes none of them
        record = await import_directory(manager, "new", rich_repo.path)
        assert record is not None
        pause.resume.set()
    assert (await manager.fsck("new")).ok
    assert await stored_objects(manager) == everything
    for commit in rich_repo.commits:
        assert (await manager.store.read_named(closure_path(commit))).data
    # the race was real: reclaim had listed them to go, then read the announcement
    lists = await _lists(manager)
    proposed = [d for p, d in lists.items() if not p.endswith(".done")]
    spared = [d for p, d in lists.items() if p.endswith(".done")]
    head = object_key(ObjectType.COMMIT, rich_repo.refs["main"])
    assert any(head in d.objects for d in proposed)
    assert any(head in d.objects for d in spared)
    assert any(closure_path(rich_repo.refs["main"]) in d.files for d in spared)
    assert reports[0].objects == 0  # nothing else was dead


async def test_a_writer_waits_for_the_verdict_on_a_batch_it_needs(
    manager: RepositoryManager, rich_repo: RepoInfo
) -> None:
    old = await _orphaned(manager, rich_repo)
    await manager.create_repository("new")
    pause = Pause("listed")  # the first batch (closures, blobs) is listed, not yet checked
    writer, waiting = _writer(manager, "new")
    results: list[VersionRecord | None] = []

    async def reclaim() -> None:
        await manager.reclaim(grace_seconds=0, checkpoint=pause)

    async def publish() -> None:
        results.append(await writer.publish(_take(old), {"kind": "test"}))

    async with anyio.create_task_group() as tg:
        tg.start_soon(reclaim)
        await pause.paused.wait()
        tg.start_soon(publish)
        await waiting.wait()  # it saw its closures listed to go, and waits for the verdict
        assert not results
        pause.resume.set()
    record = results[0]
    assert record is not None and set(record.commits) == set(old.commits)
    assert (await manager.fsck("new")).ok
    assert await stored_objects(manager) == reachable_all(rich_repo.path, rich_repo.commits)


async def test_a_writer_that_announces_after_the_check_fails_and_publishes_nothing(
    manager: RepositoryManager, rich_repo: RepoInfo
) -> None:
    old = await _orphaned(manager, rich_repo)
    await manager.create_repository("new")
    pause = Pause("spared")  # the first batch (closures, blobs) is checked, not deleted
    writer, waiting = _writer(manager, "new")
    results: list[BaseException] = []

    async def reclaim() -> None:
        await manager.reclaim(grace_seconds=0, checkpoint=pause)

    async def publish() -> None:
        try:
            await writer.publish(_take(old), {"kind": "test"})
        except ReclaimConflictError as e:
            results.append(e)

    async with anyio.create_task_group() as tg:
        tg.start_soon(reclaim)
        await pause.paused.wait()
        tg.start_soon(publish)
        await waiting.wait()  # it saw its closures listed to go, and waits for the verdict
        pause.resume.set()
    assert len(results) == 1
    assert "nothing was published" in str(results[0])
    assert await manager.repository("new").version_numbers() == [0]
    assert await stored_objects(manager) == set()  # all of it went, as decided
    # publishing again stores it anew
    again = await import_directory(manager, "new", rich_repo.path)
    assert again is not None and (await manager.fsck("new")).ok


def _writer(manager: RepositoryManager, name: str) -> tuple[Repository, anyio.Event]:
    """A writer of ``name`` whose fence sets the event when it waits for a verdict."""
    waiting = anyio.Event()

    async def sleep(seconds: float) -> None:
        waiting.set()
        await anyio.sleep(seconds)

    writer = Repository(manager.store, name, manager.hooks)
    writer.fence = Fence(manager.store, sleep=sleep)
    return writer, waiting


def _take(old: VersionRecord) -> Any:
    """A change that brings back the refs and commits of an old, deleted version."""

    async def change(base: VersionRecord) -> VersionRecord:
        return attrs.evolve(
            base, refs=dict(old.refs), commits=dict(old.commits), deltas=dict(old.deltas)
        )

    return change


async def test_dry_run_lists_what_would_go_with_bytes(
    manager: RepositoryManager, rich_repo: RepoInfo
) -> None:
    await _orphaned(manager, rich_repo)
    dry = await manager.reclaim(grace_seconds=0, dry_run=True, listing=True)
    assert dry.records == 0
    sizes = {
        object_path(i.checksum, i.objtype): i.size async for i in manager.store.list_objects_info()
    }
    objects = {p: b for p, b in dry.items if p.startswith("objects/")}
    assert objects == sizes
    assert sum(objects.values()) == dry.object_bytes
    assert sum(b for p, b in dry.items if not p.startswith("objects/")) == dry.file_bytes
    assert len(dry.items) == dry.objects + dry.files
    done = await manager.reclaim(grace_seconds=0)
    assert (done.objects, done.object_bytes, done.files) == (
        dry.objects,
        dry.object_bytes,
        dry.files,
    )
    assert done.records == 1 and done.items == ()


async def test_every_object_of_a_type_no_closure_lists_goes(manager: RepositoryManager) -> None:
    from ostree_repo.gvariant import Variant, dumps

    meta = dumps("a{sv}", {"k": Variant("s", "v")})
    strays = [f"{i:02x}" * 32 for i in range(3)]
    for checksum in strays:
        await manager.store.write_object(checksum, ObjectType.COMMITMETA, meta)
    report = await manager.reclaim(grace_seconds=0)
    assert report.objects == 3 and report.object_bytes == 3 * len(meta)
    assert [c async for c, _ in manager.store.list_objects()] == []
