"""Repositories and versions over real stores, against repos made by the real ostree CLI."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from oracle.ostree_cli import RepoInfo
from ostree_repo.errors import ConflictError, InvalidNameError, NotFoundError, OstreeRepoError
from ostree_repo.export import export_version
from ostree_repo.importing import import_directory
from ostree_repo.objects import Summary
from ostree_repo.repository import RepositoryManager, VersionNotFoundError, diff
from ostree_repo.repository.closure import split_key

from .walk import reachable, reachable_all

pytestmark = pytest.mark.anyio


async def _objects(manager: RepositoryManager, name: str, version: int | None = None) -> set:
    record = await manager.repository(name).version(version)
    return {split_key(k) for k in await manager.version_objects(record)}


async def test_import_holds_every_ref_commit_and_delta(
    manager: RepositoryManager, rich_repo: RepoInfo
) -> None:
    record = await import_directory(manager, "rich", rich_repo.path)
    assert record is not None and record.number == 1
    assert record.refs == rich_repo.refs
    assert set(record.commits) == set(rich_repo.commits)
    assert set(record.deltas) == set(rich_repo.deltas)
    assert set(record.tombstones) == set(rich_repo.tombstoned)
    for checksum, info in record.commits.items():
        made = rich_repo.commit_info[checksum]
        assert (info.parent, info.subject, info.timestamp) == (
            made.parent,
            made.subject,
            made.timestamp,
        )
    signed = {c for c, i in record.commits.items() if i.commitmeta}
    assert signed == {
        c for c in rich_repo.commits if (rich_repo.object_path(c, "commitmeta")).exists()
    }
    assert await _objects(manager, "rich") == reachable_all(rich_repo.path, rich_repo.commits)
    assert (await manager.fsck("rich")).ok
    # the same content again makes no new version
    assert await import_directory(manager, "rich", rich_repo.path) is None
    assert await manager.repository("rich").version_numbers() == [0, 1]


async def test_export_passes_ostree_fsck_and_summary_view(
    fs_manager: RepositoryManager, rich_repo: RepoInfo, tmp_path: Path
) -> None:
    await import_directory(fs_manager, "rich", rich_repo.path)
    out = tmp_path / "export"
    record = await export_version(fs_manager, "rich", out)
    subprocess.run(["ostree", "fsck", f"--repo={out}"], check=True, capture_output=True)
    view = subprocess.run(
        ["ostree", "summary", "--view", f"--repo={out}"], check=True, capture_output=True, text=True
    ).stdout
    for ref, commit in record.refs.items():
        assert f"* {ref}" in view and commit in view
    summary = Summary.from_bytes((out / "summary").read_bytes())
    assert [r.name for r in summary.refs] == sorted(record.refs, key=str.encode)
    assert summary.static_deltas == {n: d.superblock for n, d in record.deltas.items()}
    refs = subprocess.run(
        ["ostree", "refs", f"--repo={out}"], check=True, capture_output=True, text=True
    ).stdout.split()
    assert sorted(refs) == sorted(rich_repo.refs)


async def test_copy_refs_with_depth(manager: RepositoryManager, rich_repo: RepoInfo) -> None:
    await import_directory(manager, "src", rich_repo.path)
    await manager.create_repository("dst")
    main = rich_repo.main  # oldest first
    v1 = await manager.copy("src", "dst", refs=["main"], depth=0)
    assert v1 is not None and set(v1.commits) == {main[-1]} and v1.refs == {"main": main[-1]}
    assert await _objects(manager, "dst") == reachable(rich_repo.path, main[-1])
    # only the from-scratch delta to the head has both ends present
    assert set(v1.deltas) == {
        n for n, d in rich_repo.deltas.items() if d.from_commit is None and d.to_commit == main[-1]
    }
    v2 = await manager.copy("src", "dst", refs=["main"], depth=1)
    assert v2 is not None and set(v2.commits) == set(main[-2:])
    v3 = await manager.copy("src", "dst", refs=["main"], depth=-1)
    assert v3 is not None and set(v3.commits) == set(main)
    expected = {
        n
        for n, d in rich_repo.deltas.items()
        if d.to_commit in main and (d.from_commit is None or d.from_commit in main)
    }
    assert set(v3.deltas) == expected
    assert await _objects(manager, "dst") == reachable_all(rich_repo.path, main)
    assert await manager.copy("src", "dst", refs=["main"], depth=-1) is None
    changes = diff(v1, v3)
    assert set(changes["commits_added"]) == set(main[:-1]) and not changes["refs_moved"]


async def test_copy_single_commit_and_whole_version(
    manager: RepositoryManager, rich_repo: RepoInfo
) -> None:
    await import_directory(manager, "src", rich_repo.path)
    await manager.create_repository("dst")
    orphan = rich_repo.orphans[0]
    v = await manager.copy("src", "dst", commits=[orphan])
    assert v is not None and set(v.commits) == {orphan} and v.refs == {}
    whole = await manager.copy("src", "dst", whole=True)
    source = await manager.repository("src").version()
    assert whole is not None
    assert (whole.refs, set(whole.commits), set(whole.deltas)) == (
        source.refs,
        set(source.commits),
        set(source.deltas),
    )


async def test_remove_keeps_exactly_what_remaining_commits_reach(
    manager: RepositoryManager, rich_repo: RepoInfo
) -> None:
    await import_directory(manager, "r", rich_repo.path)
    stable = rich_repo.refs["exampleos/x86_64/stable"]
    with pytest.raises(OstreeRepoError, match="remove the ref"):
        await manager.remove("r", commits=[stable])
    v = await manager.remove("r", refs=["exampleos/x86_64/stable"], commits=[stable])
    assert v is not None and stable not in v.commits
    remaining = set(rich_repo.commits) - {stable}
    objects = await _objects(manager, "r")
    assert objects == reachable_all(rich_repo.path, remaining)
    # objects shared with remaining commits stay; those only the removed commit had go
    only_removed = reachable(rich_repo.path, stable) - reachable_all(rich_repo.path, remaining)
    assert only_removed and not (only_removed & objects)
    assert all(stable not in name for name in v.deltas)
    with pytest.raises(NotFoundError):
        await manager.remove("r", refs=["no-such-ref"])


async def test_delete_version_and_numbers_are_never_reused(
    manager: RepositoryManager, rich_repo: RepoInfo
) -> None:
    await import_directory(manager, "r", rich_repo.path)
    repo = manager.repository("r")
    v2 = await manager.remove("r", refs=["main"])
    assert v2 is not None and v2.number == 2
    await repo.delete_version(2)
    assert await repo.version_numbers() == [0, 1]
    with pytest.raises(VersionNotFoundError):
        await repo.version(2)
    with pytest.raises(VersionNotFoundError):
        await repo.delete_version(2)
    assert (await repo.version()).number == 1
    v3 = await manager.remove("r", refs=["exampleos/x86_64/stable"])
    assert v3 is not None and v3.number == 3 and v3.base == 1
    assert "main" in v3.refs  # built on version 1, the latest surviving one
    with pytest.raises(OstreeRepoError):
        await repo.delete_version(0)


async def test_repository_names_and_lifecycle(manager: RepositoryManager) -> None:
    for bad in ["", "-x", "a/b", "a b", "..", "x" * 200, "é"]:
        with pytest.raises(InvalidNameError):
            manager.repository(bad)
    await manager.create_repository("a.b_c-1")
    with pytest.raises(ConflictError):
        await manager.create_repository("a.b_c-1")
    assert await manager.repositories() == ["a.b_c-1"]
    await manager.delete_repository("a.b_c-1")
    assert await manager.repositories() == []
    with pytest.raises(NotFoundError):
        await manager.repository("a.b_c-1").publish(lambda base: None)  # type: ignore[arg-type,return-value]


async def test_fsck_reports_missing_and_corrupt(
    fs_manager: RepositoryManager, rich_repo: RepoInfo, tmp_path: Path
) -> None:
    record = await import_directory(fs_manager, "r", rich_repo.path)
    assert record is not None
    files = sorted((tmp_path / "store" / "objects").rglob("*.filez"))
    files[0].unlink()
    data = bytearray(files[1].read_bytes())
    data[-3] ^= 0xFF
    files[1].write_bytes(bytes(data))
    report = await fs_manager.fsck("r")
    assert not report.ok
    assert len(report.missing) == 1 and len(report.corrupt) == 1


async def test_a_lost_create_reply_is_recognised_as_our_own_version(
    manager: RepositoryManager, rich_repo: RepoInfo, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The store wrote the record but its reply was lost and the retry saw a conflict."""
    await import_directory(manager, "r", rich_repo.path)
    real_create = manager.store.create_named

    async def create_then_lose_reply(path: str, data: bytes) -> str:
        await real_create(path, data)
        raise ConflictError(f"{path} already exists")

    monkeypatch.setattr(manager.store, "create_named", create_then_lose_reply)
    record = await manager.remove("r", refs=["main"])
    monkeypatch.undo()
    assert record is not None and record.number == 2
    assert await manager.repository("r").version_numbers() == [0, 1, 2]  # no duplicate made
    assert "main" not in (await manager.repository("r").version()).refs


async def test_ref_whose_tree_has_only_directories(
    fs_manager: RepositoryManager, tmp_path: Path
) -> None:
    repo, tree = tmp_path / "dirs-repo", tmp_path / "tree"
    for sub in ("a/b/c", "a/d", "e"):
        (tree / sub).mkdir(parents=True)
    subprocess.run(["ostree", "init", f"--repo={repo}", "--mode=archive"], check=True)
    subprocess.run(
        ["ostree", "commit", f"--repo={repo}", "-b", "dirs", f"--tree=dir={tree}", "-s", "dirs"],
        check=True,
        capture_output=True,
    )
    record = await import_directory(fs_manager, "d", repo)
    assert record is not None and list(record.refs) == ["dirs"]
    head = record.refs["dirs"]
    objects = await _objects(fs_manager, "d")
    assert objects == reachable(repo, head)
    assert not any(t.value == "file" for t, _ in objects)
    copied = (
        await fs_manager.copy("d", "copy", refs=["dirs"])
        if await fs_manager.create_repository("copy")
        else None
    )
    assert copied is not None and copied.refs == {"dirs": head}
    out = tmp_path / "export"
    await export_version(fs_manager, "copy", out)
    subprocess.run(["ostree", "fsck", f"--repo={out}"], check=True, capture_output=True)
    listing = subprocess.run(
        ["ostree", "ls", "-R", f"--repo={out}", "dirs"], check=True, capture_output=True, text=True
    ).stdout
    assert "/a/b/c" in listing and "/e" in listing
