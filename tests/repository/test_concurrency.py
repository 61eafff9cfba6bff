"""Concurrent writers never lose a version; kill -9 never leaves a partial one."""

from __future__ import annotations

import multiprocessing
import random
import time
from concurrent.futures import ProcessPoolExecutor
from typing import Any

import anyio
import pytest

from oracle.ostree_cli import RepoInfo
from ostree_repo.importing import import_directory
from ostree_repo.repository import RepositoryManager
from ostree_repo.repository.blobs import read_blob
from ostree_repo.repository.layout import version_path
from ostree_repo.repository.records import VersionRecord

from ._writers import add_ref_once, publish_forever

pytestmark = pytest.mark.anyio
WRITERS = 8


async def test_eight_concurrent_writers_each_get_a_version(
    manager: RepositoryManager, store_spec: tuple[str, dict[str, Any]], rich_repo: RepoInfo
) -> None:
    url, options = store_spec
    await import_directory(manager, "src", rich_repo.path)
    await manager.create_repository("target")
    commit = rich_repo.refs["main"]
    with ProcessPoolExecutor(WRITERS, mp_context=multiprocessing.get_context("spawn")) as pool:
        futures = [
            pool.submit(add_ref_once, url, options, "target", f"w{i}", commit)
            for i in range(WRITERS)
        ]
        numbers = sorted(f.result(timeout=300) for f in futures)
    assert numbers == list(range(1, WRITERS + 1))
    repo = manager.repository("target")
    latest = await repo.version()
    assert latest.number == WRITERS
    assert set(latest.refs) == {f"w{i}" for i in range(WRITERS)}  # nothing lost
    for number in numbers[1:]:
        assert (await repo.version(number)).base == number - 1


async def test_kill_9_never_leaves_a_partial_version(
    manager: RepositoryManager, store_spec: tuple[str, dict[str, Any]], rich_repo: RepoInfo
) -> None:
    url, options = store_spec
    await import_directory(manager, "src", rich_repo.path)
    await manager.create_repository("target")
    commit = rich_repo.refs["main"]
    ctx = multiprocessing.get_context("spawn")
    rng = random.Random(7)
    for round_ in range(4):
        procs = [
            ctx.Process(
                target=publish_forever, args=(url, options, "target", f"p{round_}{i}", commit)
            )
            for i in range(3)
        ]
        for p in procs:
            p.start()
        before = len(await manager.repository("target").version_numbers())
        deadline = time.monotonic() + 60
        # let them make progress, then kill at a random moment
        while len(await manager.repository("target").version_numbers()) < before + rng.randint(
            2, 8
        ):
            assert time.monotonic() < deadline, "writers made no progress"
            await anyio.sleep(0.05)
        for p in procs:
            p.kill()
            p.join()
    repo = manager.repository("target")
    numbers = await repo.version_numbers()
    assert len(numbers) > 8
    for number in numbers[1:]:
        data, _ = await manager.store.read_named(version_path("target", number))
        record = VersionRecord.from_bytes(data)  # whole, parseable
        assert record.number == number
        assert record.summary is not None
        await read_blob(manager.store, record.summary)  # written before the record
    assert (await manager.fsck("target")).ok
