"""The filesystem store's writer processes: same verdicts, same files, no leftovers."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from ostree_repo.errors import ChecksumMismatchError, InvalidObjectError, StoreError
from ostree_repo.objects.objtype import ObjectType
from ostree_repo.objects.verify import verify_bytes
from ostree_repo.store import FilesystemStore
from ostree_repo.store import _fswriters as fswriters

from .objfactory import commitmeta, dirmeta, dirmetas, file_object
from .test_filesystem import ostree, our_temp_files

pytestmark = pytest.mark.anyio

D = ObjectType.DIRMETA


def pool_of(store: FilesystemStore) -> fswriters.WriterPool:
    assert store._pool is not None, "the writer processes did not start"
    return store._pool


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


async def test_batches_go_to_the_writers_after_the_threshold(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    metas = dirmetas(30, start=100)
    files = [file_object(5000 + i, seed=i) for i in range(4)]
    batch = [(o.checksum, o.objtype, o.data) for o in metas]
    batch += [(f.checksum, f.objtype, f.filez()) for f in files]
    async with FilesystemStore(repo, workers=2, workers_after=10) as store:
        async with store.staging() as staging:
            assert staging.blocking
            assert await staging.write_objects(batch[:10]) == [True] * 10
            assert store._pool is None and staging.blocking  # not yet
            # past the threshold: the writers start in the background, and meanwhile
            # batches are still written here
            assert await staging.write_objects(batch[10:20]) == [True] * 10
            starting = store._pool_starting
            if starting is not None:
                starting.join()
            assert await staging.write_objects(batch[20:]) == [True] * (len(batch) - 20)
            assert not staging.blocking  # batches should now be handed over concurrently
            assert await store.has_objects([(c, t) for c, t, _ in batch[10:]]) == [False] * 24
        keys = [(c, t) for c, t, _ in batch]
        assert await store.has_objects(keys) == [True] * len(keys)
        async with store.staging() as staging:  # present already: not new
            assert staging.write_objects_blocking(batch[:3]) == [False] * 3
            assert await staging.write_objects(batch) == [False] * len(batch)
        pids = [child.process.pid for child in pool_of(store)._children]
        assert len(pids) == 2
    assert not any(alive(pid) for pid in pids)  # stopped (and reaped) with the store
    assert our_temp_files(repo) == []
    ostree("fsck", f"--repo={repo}")


async def test_writers_refuse_bad_objects_with_the_same_errors(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    good = [dirmeta(200 + i) for i in range(5)]
    files = [file_object(3000, seed=7), file_object(10, seed=8)]
    truncated = files[0].filez()[:-5]
    cases: list[tuple[type[Exception], tuple[str, ObjectType, bytes]]] = [
        (ChecksumMismatchError, (dirmeta(1).checksum, D, dirmeta(2).data)),
        (InvalidObjectError, (files[0].checksum, ObjectType.FILE, truncated)),
        (ChecksumMismatchError, (files[0].checksum, ObjectType.FILE, files[1].filez())),
    ]
    async with FilesystemStore(repo, workers=2, workers_after=0) as store:
        for error, bad in cases:
            with pytest.raises(error) as raised:
                async with store.staging() as staging:
                    await staging.write_objects([(o.checksum, D, o.data) for o in good[:2]])
                    await staging.write_objects([(o.checksum, D, o.data) for o in good[2:]] + [bad])
            assert type(raised.value) is error
            with pytest.raises(error) as in_process:
                verify_bytes(bad[1], bad[0], bad[2])
            assert str(raised.value) == str(in_process.value)
            assert await store.has_objects([(o.checksum, D) for o in good]) == [False] * 5
        meta = commitmeta("cd" * 32, b"sig")  # not content-addressed: replaced, not skipped
        async with store.staging() as staging:
            assert await staging.write_objects([(meta.checksum, meta.objtype, meta.data)]) == [True]
            assert await staging.write_objects([(meta.checksum, meta.objtype, meta.data)]) == [True]
        assert await store.read_object(meta.checksum, meta.objtype) == meta.data
    assert our_temp_files(repo) == []


async def test_a_dead_writer_fails_the_staging_and_the_next_one_starts_afresh(
    tmp_path: Path,
) -> None:
    repo = tmp_path / "repo"
    metas = dirmetas(20, start=300)
    async with FilesystemStore(repo, workers=1, workers_after=0) as store:
        with pytest.raises(StoreError, match="writer process"):
            async with store.staging() as staging:
                await staging.write_objects([(o.checksum, D, o.data) for o in metas[:5]])
                child = pool_of(store)._children[0].process
                child.kill()
                child.wait()
                await staging.write_objects([(o.checksum, D, o.data) for o in metas[5:10]])
        async with store.staging() as staging:
            assert (
                await staging.write_objects([(o.checksum, D, o.data) for o in metas]) == [True] * 20
            )
        assert pool_of(store)._children[0].process.pid != child.pid
        assert await store.has_objects([(o.checksum, D) for o in metas]) == [True] * 20


async def test_without_writer_processes_batches_are_written_here(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(fswriters.sys, "executable", str(tmp_path / "no-such-python"))
    metas = dirmetas(6, start=400)
    async with FilesystemStore(tmp_path / "repo", workers=2, workers_after=0) as store:
        async with store.staging() as staging:
            assert (
                await staging.write_objects([(o.checksum, D, o.data) for o in metas]) == [True] * 6
            )
            assert staging.blocking
        assert store._pool is None
        assert await store.has_objects([(o.checksum, D) for o in metas]) == [True] * 6


async def test_single_cpu_machines_and_workers_zero_start_no_process(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(os, "cpu_count", lambda: 1)
    assert FilesystemStore(tmp_path / "a")._workers == 0
    monkeypatch.setattr(os, "cpu_count", lambda: 16)
    assert FilesystemStore(tmp_path / "a")._workers == 4
    assert FilesystemStore(tmp_path / "a", workers=0)._workers == 0


def test_a_killed_parent_leaves_no_writer_and_no_object(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    script = textwrap.dedent(
        f"""
        import anyio, json, sys
        sys.path.insert(0, {str(Path(__file__).parents[1])!r})
        from ostree_repo.store import FilesystemStore
        from store.objfactory import dirmetas

        async def main():
            async with FilesystemStore({str(repo)!r}, workers=2, workers_after=0) as store:
                async with store.staging() as staging:
                    metas = dirmetas(50, start=500)
                    await staging.write_objects([(o.checksum, o.objtype, o.data) for o in metas])
                    await staging.write_objects([(o.checksum, o.objtype, o.data) for o in metas])
                    pids = [c.process.pid for c in store._pool._children]
                    print(json.dumps(pids), flush=True)
                    await anyio.sleep(3600)

        anyio.run(main)
        """
    )
    parent = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    assert parent.stdout is not None
    pids = json.loads(parent.stdout.readline())
    assert len(pids) == 2 and all(alive(pid) for pid in pids)
    os.kill(parent.pid, signal.SIGKILL)
    parent.wait()
    parent.stdout.close()
    for pid in pids:  # orphans now: they see their input end and exit
        _wait_gone(pid)
    assert list((repo / "objects").glob("*/*")) == []
    assert our_temp_files(repo) == []  # the writers removed what they had not flushed


def _wait_gone(pid: int) -> None:
    """Block until ``pid`` (not our child) has exited: pidfd where there is one."""
    try:
        fd = os.pidfd_open(pid)
    except ProcessLookupError:
        return
    try:
        import select

        select.select([fd], [], [], 60)  # readable once the process has exited
    finally:
        os.close(fd)
    assert not alive(pid) or _zombie(pid), f"writer {pid} outlived its parent"


def _zombie(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(") ", 1)[1].startswith("Z")
    except FileNotFoundError:
        return True


async def test_concurrent_stagings_flush_and_discard_only_their_own(tmp_path: Path) -> None:
    import anyio

    repo = tmp_path / "repo"
    kept, dropped = dirmetas(40, start=600), dirmetas(40, start=700)
    async with FilesystemStore(repo, workers=2, workers_after=0) as store:
        second_wrote = anyio.Event()
        first_may_fail = anyio.Event()

        async def failing() -> None:
            with pytest.raises(RuntimeError, match="job failed"):
                async with store.staging() as staging:
                    for i in range(0, 40, 8):
                        await staging.write_objects(
                            [(o.checksum, D, o.data) for o in dropped[i : i + 8]]
                        )
                    second_wrote.set()
                    await first_may_fail.wait()
                    raise RuntimeError("job failed")

        async def succeeding() -> None:
            async with store.staging() as staging:
                for i in range(0, 40, 8):
                    await staging.write_objects([(o.checksum, D, o.data) for o in kept[i : i + 8]])
                await second_wrote.wait()
            # flushed while the other staging still holds its files in the same writers
            assert await store.has_objects([(o.checksum, D) for o in kept]) == [True] * 40
            assert await store.has_objects([(o.checksum, D) for o in dropped]) == [False] * 40
            first_may_fail.set()

        async with anyio.create_task_group() as tg:
            tg.start_soon(failing)
            tg.start_soon(succeeding)
        assert await store.has_objects([(o.checksum, D) for o in dropped]) == [False] * 40
    assert our_temp_files(repo) == []
    ostree("fsck", f"--repo={repo}")


async def test_after_a_fork_the_child_starts_its_own_writers(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    metas = dirmetas(4, start=800)
    async with FilesystemStore(tmp_path / "repo", workers=1, workers_after=0) as store:
        async with store.staging() as staging:
            await staging.write_objects([(o.checksum, D, o.data) for o in metas[:2]])
        inherited = pool_of(store)
        real_pid = os.getpid()
        monkeypatch.setattr(os, "getpid", lambda: real_pid + 1)  # as seen in a forked child
        async with store.staging() as staging:
            await staging.write_objects([(o.checksum, D, o.data) for o in metas[2:]])
        assert pool_of(store) is not inherited
        assert inherited._children[0].process.poll() is None  # the parent's, left alone
        monkeypatch.undo()
        inherited.close()
        assert await store.has_objects([(o.checksum, D) for o in metas]) == [True] * 4
