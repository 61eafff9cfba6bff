"""Collecting version records: numbers are never reused, under concurrent writers (8
processes), against a writer that listed the log before its numbers were collected, and
after kill -9 at every step of retention."""

from __future__ import annotations

import multiprocessing
import uuid
from concurrent.futures import ProcessPoolExecutor
from typing import Any

import anyio
import attrs
import pytest

from oracle.ostree_cli import RepoInfo
from ostree_repo.importing import import_directory
from ostree_repo.repository import (
    PublishHook,
    Repository,
    RepositoryManager,
    VersionNotFoundError,
    VersionRecord,
)
from ostree_repo.repository.layout import deleted_path, parse_version_path, version_path
from ostree_repo.repository.retention import RetentionHook, apply_retention

from ._writers import add_refs, configure_until_killed

pytestmark = pytest.mark.anyio
WRITERS = 8


async def _files(manager: RepositoryManager, prefix: str) -> set[int]:
    found = set()
    async for path in manager.store.list_named(prefix):
        n = parse_version_path(path)
        assert n is not None
        found.add(n)
    return found


def _add_ref(ref: str) -> Any:
    async def change(base: VersionRecord) -> VersionRecord:
        return attrs.evolve(base, refs={**base.refs, ref: base.refs["main"]})

    return change


class Pause(PublishHook):
    """Holds the first attempt it prepares until ``resume`` is set."""

    def __init__(self) -> None:
        self.waiting = anyio.Event()
        self.resume = anyio.Event()
        self.prepared: list[int] = []

    async def prepare(
        self, repo: Repository, base: VersionRecord, draft: VersionRecord
    ) -> VersionRecord:
        self.prepared.append(base.number)
        if len(self.prepared) == 1:
            self.waiting.set()
            await self.resume.wait()
        return draft


async def test_a_writer_that_listed_before_its_number_was_collected_takes_the_next(
    manager: RepositoryManager, rich_repo: RepoInfo
) -> None:
    await import_directory(manager, "src", rich_repo.path)
    await manager.create_repository("r", settings={"retention": {"versions": 1}})  # version 1
    await manager.copy("src", "r", refs=["main"])  # version 2 (1 goes)
    pause = Pause()
    slow = Repository(manager.store, "r", [RetentionHook(), pause])
    result: list[VersionRecord | None] = []

    async def slow_writer() -> None:
        result.append(await slow.publish(_add_ref("slow"), {"kind": "test"}))

    async with anyio.create_task_group() as tg:
        tg.start_soon(slow_writer)
        await pause.waiting.wait()  # it read the log: version 2 is the latest, 3 is next
        for i in range(3):  # meanwhile 3, 4 and 5 are made; 2, 3 and 4 deleted, collected
            await manager.repository("r").publish(_add_ref(f"fast{i}"), {"kind": "test"})
        repo = manager.repository("r")
        assert await repo.version_numbers() == [0, 5]
        assert await repo.collected_through() == 4
        assert await _files(manager, "versions/r") == {5}
        pause.resume.set()
    record = result[0]
    assert record is not None
    # its create of version 3 succeeded (the record was gone), saw the mark, was undone
    assert record.number == 6 and record.base == 5
    assert pause.prepared == [2, 5]
    assert set(record.refs) == {"main", "fast0", "fast1", "fast2", "slow"}
    assert await repo.version_numbers() == [0, 6]
    assert await _files(manager, "versions/r") == {6}
    with pytest.raises(VersionNotFoundError, match="was deleted"):
        await repo.version(3)


async def test_a_writer_that_listed_before_a_hole_was_collected_takes_the_next(
    manager: RepositoryManager, rich_repo: RepoInfo
) -> None:
    await import_directory(manager, "src", rich_repo.path)
    await manager.create_repository("r")
    await manager.copy("src", "r", refs=["main"])  # version 1
    pause = Pause()
    slow = Repository(manager.store, "r", [pause])
    result: list[VersionRecord | None] = []

    async def slow_writer() -> None:
        result.append(await slow.publish(_add_ref("slow"), {"kind": "test"}))

    repo = manager.repository("r")
    async with anyio.create_task_group() as tg:
        tg.start_soon(slow_writer)
        await pause.waiting.wait()
        await repo.publish(_add_ref("fast"), {"kind": "test"})  # version 2
        await repo.delete_version(2)
        assert await repo.collect_records() == 1  # 1 survives: 2 is a hole, marker kept
        assert await repo.collected_through() == 0
        assert await _files(manager, "versions/r") == {1}
        assert await _files(manager, "deleted/r") == {2}
        pause.resume.set()
    record = result[0]
    assert record is not None and record.number == 3 and record.base == 1
    assert set(record.refs) == {"main", "slow"}
    assert await repo.version_numbers() == [0, 1, 3]
    data, _ = await manager.store.read_named(deleted_path("r", 2))
    assert data == b"collected"


async def test_eight_writers_with_retention_never_reuse_a_number(
    manager: RepositoryManager, store_spec: tuple[str, dict[str, Any]], rich_repo: RepoInfo
) -> None:
    url, options = store_spec
    await import_directory(manager, "src", rich_repo.path)
    await manager.create_repository("target", settings={"retention": {"versions": 2}})
    commit = rich_repo.refs["main"]
    per_writer = 4
    with ProcessPoolExecutor(WRITERS, mp_context=multiprocessing.get_context("spawn")) as pool:
        futures = [
            pool.submit(
                add_refs, url, options, "target", tag=f"w{i}", commit=commit, count=per_writer
            )
            for i in range(WRITERS)
        ]
        numbers = sorted(n for f in futures for n in f.result(timeout=300))
    assert len(numbers) == len(set(numbers)) == WRITERS * per_writer  # never reused
    repo = manager.repository("target")
    latest = await repo.version()
    assert latest.number == numbers[-1]
    expected_refs = {f"w{i}-{j}" for i in range(WRITERS) for j in range(per_writer)}
    assert set(latest.refs) == expected_refs  # nothing lost
    assert await repo.version_numbers() == [0, *numbers[-2:]]
    # every record left is a survivor or a deleted version's; none under the mark
    records = await _files(manager, "versions/target")
    markers = await _files(manager, "deleted/target")
    through = await repo.collected_through()
    assert records - markers == set(numbers[-2:])
    assert min(records) > through and (not markers or min(markers) > through)
    await repo.collect_records()
    assert await _files(manager, "versions/target") == set(numbers[-2:])
    assert await repo.collected_through() == numbers[-2] - 1
    assert (await manager.fsck("target")).ok


async def test_kill_9_at_every_step_of_retention_leaves_a_consistent_log(
    manager: RepositoryManager, store_spec: tuple[str, dict[str, Any]], rich_repo: RepoInfo
) -> None:
    url, options = store_spec
    await import_directory(manager, "src", rich_repo.path)
    ctx = multiprocessing.get_context("spawn")
    step = 1
    while True:
        name = f"r{step}-{uuid.uuid4().hex[:6]}"
        await manager.create_repository(name)
        for ref in ("a", "b", "c", "d"):  # versions 1-4, no policy yet
            await manager.copy("src", name, refs=["main"])
            await manager.repository(name).publish(_add_ref(ref), {"kind": "test"})
        await manager.repository(name).delete_version(2)  # a hole to collect
        parent, child = ctx.Pipe()
        settings = {"retention": {"versions": 1}}
        proc = ctx.Process(
            target=configure_until_killed,
            args=(url, options, name),
            kwargs={"settings": settings, "stop_at": step, "conn": child},
            daemon=True,
        )
        proc.start()
        stored = await anyio.to_thread.run_sync(parent.recv)
        assert stored[0] == "stored"
        outcome = await anyio.to_thread.run_sync(parent.recv)
        proc.kill()
        proc.join()
        repo = manager.repository(name)
        # consistent: every listed version reads whole, the new one is the latest
        versions = await repo.versions()
        assert versions[-1].number == stored[1]
        assert versions[-1].settings == settings
        assert all(v.number == 0 or v.refs for v in versions)
        assert (await manager.fsck(name)).ok
        # the next run finishes the job: exactly the latest survives, its log collected
        await apply_retention(repo)
        assert await repo.version_numbers() == [0, stored[1]]
        assert await _files(manager, f"versions/{name}") == {stored[1]}
        assert await _files(manager, f"deleted/{name}") == set()
        assert await repo.collected_through() == stored[1] - 1
        with pytest.raises(VersionNotFoundError):
            await repo.version(stored[1] - 1)
        if outcome == "done":
            break
        assert outcome == "paused"
        step += 1
    assert step > 5  # it was killed at each of the deletes, the mark and the collection


async def test_a_record_left_under_the_mark_is_not_a_version(manager: RepositoryManager) -> None:
    # what a killed writer leaves when its create landed on a collected number
    await manager.create_repository("r")
    repo = manager.repository("r")
    for ref in ("a", "b"):
        await repo.publish(lambda base, ref=ref: _set_collection_id(base, ref), {"kind": "test"})
    stale, _ = await manager.store.read_named(version_path("r", 1))
    await repo.delete_version(1)
    await repo.collect_records()
    assert await repo.collected_through() == 1
    await manager.store.create_named(version_path("r", 1), stale)
    assert await repo.version_numbers() == [0, 2]
    with pytest.raises(VersionNotFoundError, match="was deleted"):
        await repo.version(1)
    await repo.collect_records()
    assert await _files(manager, "versions/r") == {2}


async def _set_collection_id(base: VersionRecord, ref: str) -> VersionRecord:
    return attrs.evolve(base, config=attrs.evolve(base.config, collection_id=f"org.{ref}"))
