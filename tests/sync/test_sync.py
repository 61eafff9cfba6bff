"""Sync from real HTTP servers (``python3 -m http.server``) serving ostree-made repos."""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

import pytest

from oracle.ostree_cli import RepoInfo, copy_repo, fsck
from ostree_repo.export import export_version
from ostree_repo.objects import ObjectType
from ostree_repo.repository import RepositoryManager
from ostree_repo.repository.blobs import read_blob
from ostree_repo.repository.closure import split_key
from ostree_repo.sync import SyncError, UnsupportedRemoteError, sync_repository
from repository.walk import reachable_all

from .servers import http_server

pytestmark = pytest.mark.anyio


def history(rich: RepoInfo, head: str, depth: int = -1) -> list[str]:
    """``head`` and up to ``depth`` parents that the remote still has."""
    out: list[str] = []
    current: str | None = head
    while current is not None and current in rich.commits and (depth < 0 or len(out) <= depth):
        out.append(current)
        current = rich.commit_info[current].parent
    return out


def ref_commits(rich: RepoInfo, depth: int = -1) -> set[str]:
    return {c for head in rich.refs.values() for c in history(rich, head, depth)}


async def version_keys(manager: RepositoryManager, name: str) -> set[tuple[ObjectType, str]]:
    record = await manager.repository(name).version()
    return {split_key(k) for k in await manager.version_objects(record)}


async def test_full_mirror_equals_remote(
    fs_manager: RepositoryManager, rich_repo: RepoInfo, rich_url: str, tmp_path: Path
) -> None:
    result = await sync_repository(fs_manager, "mirror", rich_url, depth=-1)
    record = result.version
    assert record is not None and record.number == 1
    # refs and commits: every ref, and every commit its history still has on the remote
    assert record.refs == rich_repo.refs
    assert set(record.commits) == ref_commits(rich_repo)
    # T2's parent T1 was deleted on the remote: truncated, with its tombstone
    t1, t2 = rich_repo.labels["T1"], rich_repo.labels["T2"]
    assert result.truncated == (t2,)
    assert record.tombstones == (t1,)
    # objects: the union of closures equals an independent walk of the remote directory
    assert await version_keys(fs_manager, "mirror") == reachable_all(
        rich_repo.path, set(record.commits)
    )
    # detached metadata (signatures) carried byte for byte
    for commit in rich_repo.signed_commits:
        meta = rich_repo.path / "objects" / commit[:2] / f"{commit[2:]}.commitmeta"
        blob = record.commits[commit].commitmeta
        assert blob is not None and await read_blob(fs_manager.store, blob) == meta.read_bytes()
    # every delta of the remote, superblocks and parts byte-identical
    assert set(record.deltas) == set(rich_repo.deltas)
    for name, delta in rich_repo.deltas.items():
        info = record.deltas[name]
        assert await read_blob(fs_manager.store, info.superblock) == delta.superblock.read_bytes()
        for index, part in enumerate(info.parts):
            if part is not None:
                on_disk = (delta.path / str(index)).read_bytes()
                assert await read_blob(fs_manager.store, part) == on_disk
    # a full mirror: summary and summary.sig passed through byte for byte
    assert result.summary_passed_through and result.signed
    assert record.summary == hashlib.sha256((rich_repo.path / "summary").read_bytes()).hexdigest()
    exported = tmp_path / "export"
    await export_version(fs_manager, "mirror", exported)
    assert (exported / "summary").read_bytes() == (rich_repo.path / "summary").read_bytes()
    assert (exported / "summary.sig").read_bytes() == (rich_repo.path / "summary.sig").read_bytes()
    fsck(exported)
    assert (await fs_manager.fsck("mirror")).ok

    # a second sync fetches no object and makes no version
    again = await sync_repository(fs_manager, "mirror", rich_url, depth=-1)
    assert again.version is None
    assert again.objects_fetched == 0 and again.deltas == len(rich_repo.deltas)
    assert again.signed  # the latest version still carries the signature


async def test_over_every_store(
    manager: RepositoryManager, rich_repo: RepoInfo, rich_url: str
) -> None:
    result = await sync_repository(manager, "heads", rich_url, depth=1, concurrency=8)
    record = result.version
    assert record is not None
    assert set(record.commits) == ref_commits(rich_repo, depth=1)
    assert await version_keys(manager, "heads") == reachable_all(
        rich_repo.path, set(record.commits)
    )
    assert (await manager.fsck("heads")).ok


async def test_depth_zero_and_one(
    fs_manager: RepositoryManager, rich_repo: RepoInfo, rich_url: str
) -> None:
    zero = await sync_repository(fs_manager, "d", rich_url, include=["main"])
    assert zero.version is not None
    assert set(zero.version.commits) == {rich_repo.labels["C5"]}
    assert zero.version.deltas.keys() == {rich_repo.labels["C5"]}  # only the scratch delta
    assert not zero.summary_passed_through and not zero.signed
    assert any("summary.sig dropped" in n for n in zero.notes)
    assert zero.version.summary_sig is None

    one = await sync_repository(fs_manager, "d", rich_url, include=["main"], depth=1)
    assert one.version is not None
    c4, c5 = rich_repo.labels["C4"], rich_repo.labels["C5"]
    assert set(one.version.commits) == {c4, c5}
    assert f"{c4}-{c5}" in one.version.deltas
    # C5's objects were stored by the first sync: only C4's new ones are fetched
    assert one.objects_present > 0
    assert one.objects_fetched < zero.objects_fetched


async def test_include_exclude_globs(
    fs_manager: RepositoryManager, rich_repo: RepoInfo, rich_url: str
) -> None:
    result = await sync_repository(
        fs_manager, "g", rich_url, include=["exampleos/*", "tomb*"], exclude=["tomb*"]
    )
    assert result.version is not None
    assert result.version.refs == {
        "exampleos/x86_64/stable": rich_repo.refs["exampleos/x86_64/stable"]
    }
    with pytest.raises(SyncError, match="no ref"):
        await sync_repository(fs_manager, "g", rich_url, include=["nothing*"])


async def test_no_deltas(fs_manager: RepositoryManager, rich_url: str) -> None:
    result = await sync_repository(fs_manager, "nd", rich_url, depth=-1, deltas=False)
    assert result.version is not None and result.version.deltas == {}
    assert not result.signed


async def test_remote_without_summary(
    fs_manager: RepositoryManager, rich_repo: RepoInfo, tmp_path: Path
) -> None:
    remote = copy_repo(rich_repo.path, tmp_path / "nosummary")
    (remote / "summary").unlink()
    (remote / "summary.sig").unlink(missing_ok=True)
    with http_server(remote) as url:
        with pytest.raises(SyncError, match="no summary"):
            await sync_repository(fs_manager, "ns", url, include=["ma*"])
        result = await sync_repository(fs_manager, "ns", url, include=["main"], depth=-1)
    assert result.version is not None
    assert result.version.refs == {"main": rich_repo.refs["main"]}
    assert set(result.version.commits) == set(rich_repo.main)
    assert result.version.deltas == {}  # deltas are only learnt from a summary
    assert any("no summary" in n for n in result.notes)


async def test_collection_refs(fs_manager: RepositoryManager, collection_repo: RepoInfo) -> None:
    with http_server(collection_repo.path) as url:
        result = await sync_repository(fs_manager, "col", url, depth=-1)
    record = result.version
    assert record is not None
    assert record.refs == collection_repo.refs
    expected: dict[str, dict[str, str]] = {}
    for (cid, ref), commit in collection_repo.collection_refs.items():
        if cid != collection_repo.collection_id:
            expected.setdefault(cid, {})[ref] = commit
    assert record.collection_refs == expected
    assert record.config.collection_id == collection_repo.collection_id


async def test_incremental_after_remote_moves(
    fs_manager: RepositoryManager, rich_repo: RepoInfo, tmp_path: Path
) -> None:
    remote = copy_repo(rich_repo.path, tmp_path / "moving")
    c4 = rich_repo.labels["C4"]
    (remote / "refs" / "heads" / "main").write_text(c4 + "\n")
    (remote / "summary").unlink()
    (remote / "summary.sig").unlink(missing_ok=True)
    with http_server(remote) as url:
        first = await sync_repository(fs_manager, "inc", url, include=["main"], depth=-1)
        assert first.version is not None and rich_repo.labels["C5"] not in first.version.commits
        (remote / "refs" / "heads" / "main").write_text(rich_repo.refs["main"] + "\n")
        second = await sync_repository(fs_manager, "inc", url, include=["main"], depth=-1)
    assert second.version is not None and second.version.number == 2
    # only C5 is new: its commit and the objects its tree adds
    new = reachable_all(rich_repo.path, [rich_repo.labels["C5"]]) - reachable_all(
        rich_repo.path, history(rich_repo, c4)
    )
    assert second.objects_fetched == len(new)


async def test_refuses_other_schemes(fs_manager: RepositoryManager, tmp_path: Path) -> None:
    for url in ("file:///srv/repo", "ftp://example.org/repo", "/srv/repo"):
        with pytest.raises(UnsupportedRemoteError, match="only http"):
            await sync_repository(fs_manager, "x", url)


async def test_refuses_non_archive_remote(fs_manager: RepositoryManager, tmp_path: Path) -> None:
    remote = tmp_path / "bare"
    remote.mkdir()
    (remote / "config").write_text("[core]\nrepo_version=1\nmode=bare\n")
    with http_server(remote) as url, pytest.raises(UnsupportedRemoteError, match="bare"):
        await sync_repository(fs_manager, "x", url, include=["main"])
    shutil.rmtree(remote)
