"""fsck over real stores: what it checks, damage vs I/O errors, repair from real sources."""

from __future__ import annotations

import errno
import json
import os
import signal
from pathlib import Path
from typing import Any

import anyio
import pytest

from oracle.ostree_cli import RepoInfo
from ostree_repo import _checkers as checkers
from ostree_repo._checkers import CheckerPool
from ostree_repo.cli import main as cli
from ostree_repo.importing import import_directory
from ostree_repo.objects import ObjectType, object_path
from ostree_repo.repair import open_repair_sources
from ostree_repo.repository import RepositoryManager, VersionRecord
from ostree_repo.repository import fsck as fsck_module
from ostree_repo.repository.closure import Closure, save_closure, split_key
from ostree_repo.repository.fsck import StoreSource, blob_paths
from ostree_repo.repository.layout import blob_path, closure_path
from ostree_repo.store import MemoryStore
from ostree_repo.store._base import PutMode
from sync.servers import http_server

from .walk import reachable_all

pytestmark = pytest.mark.anyio

Key = bytes


async def _imported(manager: RepositoryManager, rich_repo: RepoInfo) -> VersionRecord:
    record = await import_directory(manager, "r", rich_repo.path)
    assert record is not None
    return record


async def _victims(manager: RepositoryManager, record: VersionRecord) -> dict[str, Key]:
    """One object of each kind the version needs (the big file is streamed by checks)."""
    objects = await manager.version_objects(record)
    by_type: dict[ObjectType, list[Key]] = {}
    for key in sorted(objects):
        by_type.setdefault(split_key(key)[0], []).append(key)
    files = sorted(by_type[ObjectType.FILE], key=lambda k: objects[k])
    return {
        "file": files[len(files) // 2],
        "big": files[-1],
        "dirtree": by_type[ObjectType.DIRTREE][0],
        "dirmeta": by_type[ObjectType.DIRMETA][0],
    }


def _label(key: Key) -> str:
    objtype, checksum = split_key(key)
    return f"{checksum}.{objtype.value}"


def _file(root: Path, key: Key) -> Path:
    objtype, checksum = split_key(key)
    return root / object_path(checksum, objtype)


def _flip(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))


def _loop(path: Path) -> None:
    """Make ``path`` unreadable for real: a symlink to itself (ELOOP, not ENOENT)."""
    path.unlink()
    os.symlink(path.name, path)


@pytest.fixture(params=["threads", "processes"])
def checker(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> int | None:
    """fsck's two ways to check a filesystem store: worker threads, checker processes."""
    if request.param == "threads":
        return 0
    monkeypatch.setattr(fsck_module, "PROCESSES_FROM", 0)
    return 2


# -- what is checked ----------------------------------------------------------------------------


async def test_an_intact_version_is_sound_and_every_object_is_counted(
    manager: RepositoryManager, rich_repo: RepoInfo
) -> None:
    record = await _imported(manager, rich_repo)
    report = await manager.fsck("r")
    assert report.ok and report.complete and not report.damaged
    assert report.objects == len(reachable_all(rich_repo.path, rich_repo.commits))
    assert report.blobs == len(blob_paths(record)) > 3  # commitmeta, deltas, summary
    assert (report.missing, report.corrupt, report.unreadable, report.repaired) == ((),) * 4
    assert report.to_json()["ok"] is True


async def _prepared(
    manager: RepositoryManager, rich_repo: RepoInfo, tmp_path: Path
) -> tuple[VersionRecord, Path, dict[str, Key]]:
    """The rich repo imported into the filesystem store at ``tmp_path/store``: its
    version, the store's directory, and one object of each kind to damage."""
    record = await _imported(manager, rich_repo)
    return record, tmp_path / "store", await _victims(manager, record)


async def test_damage_of_every_kind_is_found(
    fs_manager: RepositoryManager, rich_repo: RepoInfo, tmp_path: Path, checker: int | None
) -> None:
    record, root, victims = await _prepared(fs_manager, rich_repo, tmp_path)
    _file(root, victims["file"]).unlink()
    _flip(_file(root, victims["big"]))  # > 4 MiB: checked as a stream
    _flip(_file(root, victims["dirtree"]))
    _file(root, victims["dirmeta"]).write_bytes(b"")
    signed = next(i.commitmeta for i in record.commits.values() if i.commitmeta)
    assert signed is not None
    _flip(root / blob_path(signed))
    report = await fs_manager.fsck("r", processes=checker)
    assert report.missing == (_label(victims["file"]),)
    assert set(report.corrupt) == {
        _label(victims["big"]),
        _label(victims["dirtree"]),
        _label(victims["dirmeta"]),
        f"blob {signed}",
    }
    assert report.unreadable == () and report.complete and report.damaged and not report.ok
    assert "checksum mismatch" in report.errors[_label(victims["dirtree"])]


async def test_checker_processes_that_die_leave_the_verdicts_unchanged(
    fs_manager: RepositoryManager,
    rich_repo: RepoInfo,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A killed checker process (out of memory, say) is not damage: its batch is checked
    in a worker thread instead."""
    record, root, victims = await _prepared(fs_manager, rich_repo, tmp_path)
    _flip(_file(root, victims["file"]))
    monkeypatch.setattr(fsck_module, "PROCESSES_FROM", 0)
    start = CheckerPool.start

    def start_then_kill(pool: CheckerPool) -> bool:
        started = start(pool)
        for child in pool._children:
            os.kill(child.process.pid, signal.SIGKILL)
        return started

    in_threads: list[int] = []

    def check_files(items: list[Any]) -> list[tuple[int, str]]:
        in_threads.append(len(items))
        return checkers.check_files(items)

    monkeypatch.setattr(CheckerPool, "start", start_then_kill)
    monkeypatch.setattr(fsck_module, "check_files", check_files)
    report = await fs_manager.fsck("r", processes=2)
    assert sum(in_threads) == report.objects - sum(  # every content object, in threads
        1
        for k in await fs_manager.version_objects(record)
        if split_key(k)[0] is not ObjectType.FILE
    )
    assert report.corrupt == (_label(victims["file"]),)
    assert report.complete and report.missing == report.unreadable == ()


# -- I/O errors are not damage -----------------------------------------------------------------


async def test_an_unreadable_file_is_reported_as_not_checked_never_as_damage(
    fs_manager: RepositoryManager, rich_repo: RepoInfo, tmp_path: Path, checker: int | None
) -> None:
    _, root, victims = await _prepared(fs_manager, rich_repo, tmp_path)
    for kind in ("file", "big", "dirtree"):
        _loop(_file(root, victims[kind]))
    report = await fs_manager.fsck("r", processes=checker)
    assert set(report.unreadable) == {_label(victims[k]) for k in ("file", "big", "dirtree")}
    assert report.missing == report.corrupt == ()
    assert not report.damaged and not report.complete and not report.ok
    assert os.strerror(errno.ELOOP) in report.errors[_label(victims["file"])]


class FailingReads(MemoryStore):
    """A store whose reads of some objects fail with OSError (EIO), as a broken disk's
    would; the rest works."""

    def __init__(self, failing: set[str]) -> None:
        super().__init__()
        self.failing = failing

    def _fail(self, path: str) -> None:
        if path in self.failing or ("*" in self.failing and path.startswith("objects/")):
            raise OSError(errno.EIO, os.strerror(errno.EIO), path)

    async def _read(self, path: str, *, want_token: bool) -> tuple[bytes, str]:
        self._fail(path)
        return await super()._read(path, want_token=want_token)

    async def _open(self, path: str) -> Any:
        self._fail(path)
        return await super()._open(path)


async def test_a_store_whose_reads_fail_is_not_checked_and_fsck_stops(
    rich_repo: RepoInfo,
) -> None:
    store = FailingReads(set())
    async with store:
        manager = RepositoryManager(store)
        record = await _imported(manager, rich_repo)
        victims = await _victims(manager, record)
        store.failing = {object_path(*reversed(split_key(victims["file"])))}
        report = await manager.fsck("r")
        assert report.unreadable == (_label(victims["file"]),) and not report.damaged
        assert "Input/output error" in report.errors[_label(victims["file"])]
        store.failing = {"*"}  # every object read fails: fsck gives up, says what is left
        report = await manager.fsck("r")
    assert len(report.unreadable) == fsck_module.MAX_UNREADABLE
    assert report.unchecked > 0 and report.missing == report.corrupt == ()
    assert report.unchecked + fsck_module.MAX_UNREADABLE <= report.objects


async def test_a_lost_s3_connection_is_not_damage(
    rich_repo: RepoInfo, tmp_path: Path, seaweedfs: Any
) -> None:
    """A SeaweedFS of its own, stopped once the version and its closures are read."""
    server = type(seaweedfs)(tmp_path / "weed")
    server.start()
    try:
        url = f"s3://{server.bucket}/lost"
        async with RepositoryManager.open(url, env=server.env, max_retries=0) as manager:
            record = await _imported(manager, rich_repo)
            for commit in record.commits:
                await manager.closure(commit)  # (cached: only objects are read below)
            server.stop()
            report = await fsck_module.fsck_version(manager.store, record, manager.closure)
    finally:
        server.stop()
    assert report.unreadable and not report.damaged and not report.complete
    assert report.missing == report.corrupt == ()


# -- closures -------------------------------------------------------------------------------------


async def test_a_lost_closure_is_found_its_commit_walked_and_repaired(
    manager: RepositoryManager, rich_repo: RepoInfo
) -> None:
    record = await _imported(manager, rich_repo)
    head = record.refs["main"]
    complete = await manager.closure(head)
    await manager.store.delete_named(closure_path(head))
    fresh = RepositoryManager(manager.store)  # (no cached closures)
    report = await fresh.fsck("r")
    assert report.missing == (f"closure {head}",) and report.corrupt == ()
    assert report.objects == len(reachable_all(rich_repo.path, rich_repo.commits))
    repaired = await fresh.fsck("r", repair_from=[])
    assert repaired.repaired == (f"closure {head}",) and not repaired.damaged
    assert (await RepositoryManager(manager.store).closure(head)).sizes == complete.sizes
    assert (await RepositoryManager(manager.store).fsck("r")).ok


async def test_an_incomplete_closure_is_corrupt_and_what_it_lacks_is_still_checked(
    fs_manager: RepositoryManager, rich_repo: RepoInfo, tmp_path: Path
) -> None:
    record = await _imported(fs_manager, rich_repo)
    head = record.refs["main"]
    closure = await fs_manager.closure(head)
    objects = await fs_manager.version_objects(record)
    others: set[Key] = set()
    for commit in record.commits:
        if commit != head:
            others.update((await fs_manager.closure(commit)).sizes)
    only_head = [k for k in closure.sizes if split_key(k)[0] is ObjectType.FILE and k not in others]
    dropped = only_head[0]
    await save_closure(
        fs_manager.store, Closure(head, {k: s for k, s in closure.sizes.items() if k != dropped})
    )
    _flip(_file(tmp_path / "store", dropped))
    report = await RepositoryManager(fs_manager.store).fsck("r")
    assert set(report.corrupt) == {f"closure {head}", _label(dropped)}
    assert f"lacks {_label(dropped)}" in report.errors[f"closure {head}"]
    assert report.objects == len(objects)


# -- repair ---------------------------------------------------------------------------------------


async def _damage(manager: RepositoryManager, record: VersionRecord) -> dict[str, Key]:
    """Delete one object, corrupt three (through the backend: works on S3 too) and a
    blob."""
    victims = await _victims(manager, record)
    store = manager.store
    for kind, key in victims.items():
        objtype, checksum = split_key(key)
        path = object_path(checksum, objtype)
        if kind == "file":
            await store.delete_object(checksum, objtype)
        else:
            data = bytearray(await store.read_object(checksum, objtype))
            data[len(data) // 2] ^= 0xFF
            await store._put(path, bytes(data), None, PutMode.OVERWRITE, want_token=False)
    return victims


async def test_repair_from_a_remote_over_http(
    manager: RepositoryManager, rich_repo: RepoInfo
) -> None:
    record = await _imported(manager, rich_repo)
    victims = await _damage(manager, record)
    signed = next(i.commitmeta for i in record.commits.values() if i.commitmeta)
    assert signed is not None
    await manager.store.delete_named(blob_path(signed))
    with http_server(rich_repo.path) as url:
        async with open_repair_sources([url]) as sources:
            report = await manager.fsck("r", repair_from=sources)
    damaged = {_label(k) for k in victims.values()} | {f"blob {signed}"}
    assert set(report.missing) | set(report.corrupt) == damaged
    assert set(report.repaired) == damaged and not report.damaged and report.ok
    assert (await RepositoryManager(manager.store).fsck("r")).ok


async def test_repair_from_another_store_and_from_an_ostree_repository(
    fs_manager: RepositoryManager, rich_repo: RepoInfo, tmp_path: Path
) -> None:
    record = await _imported(fs_manager, rich_repo)
    victims = await _damage(fs_manager, record)
    empty = tmp_path / "empty"
    async with RepositoryManager.open(str(empty)) as other:
        await other.create_repository("x")
    # the first source has nothing; the second is the ostree repository itself
    async with open_repair_sources([str(empty), str(rich_repo.path)]) as sources:
        report = await fs_manager.fsck("r", repair_from=sources)
    assert set(report.repaired) == {_label(k) for k in victims.values()}
    assert report.ok
    for key in victims.values():
        objtype, checksum = split_key(key)
        ours = _file(tmp_path / "store", key).read_bytes()
        assert ours == rich_repo.object_path(checksum, objtype.extension).read_bytes()


async def test_what_no_source_has_stays_damaged_and_is_left_untouched(
    fs_manager: RepositoryManager, rich_repo: RepoInfo, tmp_path: Path
) -> None:
    _, root, victims = await _prepared(fs_manager, rich_repo, tmp_path)
    bad = _file(root, victims["dirtree"])
    _flip(bad)
    damaged_bytes = bad.read_bytes()
    # a source with a corrupt copy of its own: refused, and ours is not touched
    source_root = tmp_path / "source"
    async with RepositoryManager.open(str(source_root)) as other:
        await import_directory(other, "r", rich_repo.path)
    _flip(_file(source_root, victims["dirtree"]))
    async with open_repair_sources([str(source_root)]) as sources:
        report = await fs_manager.fsck("r", repair_from=sources)
    label = _label(victims["dirtree"])
    assert report.corrupt == (label,) and report.repaired == () and report.damaged
    assert "not repaired" in report.errors[label] and "checksum mismatch" in report.errors[label]
    assert bad.read_bytes() == damaged_bytes


async def test_a_large_object_streams_into_place(
    fs_manager: RepositoryManager,
    rich_repo: RepoInfo,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(fsck_module, "REPAIR_WHOLE_MAX", 0)  # every object "too large"
    _, root, victims = await _prepared(fs_manager, rich_repo, tmp_path)
    _flip(_file(root, victims["big"]))
    _file(root, victims["file"]).unlink()
    async with RepositoryManager.open(str(rich_repo.path), create=False, workers=0) as source:
        report = await fs_manager.fsck("r", repair_from=[StoreSource(source.store)])
    assert set(report.repaired) == {_label(victims["big"]), _label(victims["file"])}
    assert report.ok


# -- the command line ---------------------------------------------------------------------------


def _cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, Any, str]:
    status = cli(list(argv))
    out, err = capsys.readouterr()
    return status, json.loads(out) if "--json" in argv else out, err


def _setup_cli(rich_repo: RepoInfo, store: Path) -> tuple[dict[str, Key], int]:
    async def run() -> tuple[dict[str, Key], int]:
        async with RepositoryManager.open(str(store)) as manager:
            record = await _imported(manager, rich_repo)
            objects = await manager.version_objects(record)
            return await _victims(manager, record), len(objects)

    return anyio.run(run)


def test_cli_exit_statuses_and_repair(
    rich_repo: RepoInfo, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    store = str(tmp_path / "store")
    victims, count = _setup_cli(rich_repo, tmp_path / "store")
    status, doc, _ = _cli(capsys, "--store", store, "fsck", "r", "--json")
    assert (status, doc["ok"], doc["objects"]) == (0, True, count)
    _flip(_file(tmp_path / "store", victims["file"]))
    status, doc, err = _cli(capsys, "--store", store, "fsck", "r", "--json")
    assert (status, doc["corrupt"], doc["ok"]) == (4, [_label(victims["file"])], False)
    assert err.startswith("ostree-repo: error: r version 1: 1 damaged")
    _loop(_file(tmp_path / "store", victims["dirtree"]))
    status, doc, err = _cli(capsys, "--store", store, "fsck", "r", "--json")
    assert status == 12 and doc["unreadable"] == [_label(victims["dirtree"])]
    assert "could not be checked" in err
    os.unlink(_file(tmp_path / "store", victims["dirtree"]))  # now missing: repairable
    status, text, err = _cli(capsys, "--store", store, "fsck", "r", "--repair", str(rich_repo.path))
    assert status == 0 and err == ""
    assert f"repaired: {_label(victims['file'])}" in text
    assert f"repaired: {_label(victims['dirtree'])}" in text
    status, text, _ = _cli(capsys, "--store", store, "fsck", "r")
    assert status == 0 and text.endswith("OK\n")


def test_cli_says_could_not_check_when_the_version_cannot_be_read(
    rich_repo: RepoInfo, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    store = tmp_path / "store"
    _setup_cli(rich_repo, store)
    _loop(store / "versions" / "r" / "0000000001.json")
    status, _, err = _cli(capsys, "--store", str(store), "fsck", "r")
    assert status == 8 and err.startswith("ostree-repo: error: could not check:")
