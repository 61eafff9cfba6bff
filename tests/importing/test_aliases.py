"""Ref aliases (symlinks under ``refs/heads``) through both importers, checked against the
real ``ostree`` CLI: what libostree lists is what a version holds, and what libostree
cannot list is refused with no version made."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest

from oracle.ostree_cli import OstreeCommandError, copy_repo, ostree
from ostree_repo.importing import import_archive, import_directory
from ostree_repo.importing.errors import BrokenAliasError, UnsafeArchiveError
from ostree_repo.objects import Summary
from ostree_repo.repository import RepositoryManager, VersionRecord
from ostree_repo.repository.blobs import read_blob

from ._aliases import ALIASES, build_alias_repo, libostree_aliases, libostree_refs

pytestmark = pytest.mark.anyio


@pytest.fixture(scope="session")
def alias_repo(ostree_cli: None, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_alias_repo(tmp_path_factory.mktemp("alias_repo"))


@pytest.fixture
async def manager(tmp_path: Path) -> AsyncIterator[RepositoryManager]:
    async with RepositoryManager.open(str(tmp_path / "store"), workers=0) as opened:
        yield opened


def tarball(repo: Path, out: Path) -> Path:
    """The repository as ``repo/`` in a tarball written by the real ``tar`` (symlinks kept)."""
    assert repo.name == "repo"
    subprocess.run(["tar", "-C", str(repo.parent), "-cf", str(out), "repo"], check=True)
    return out


async def import_both(
    manager: RepositoryManager, repo: Path, tmp_path: Path
) -> tuple[VersionRecord | None, VersionRecord | None]:
    """``repo`` imported as a directory (into ``d``) and as a tarball (into ``t``)."""
    from_dir = await import_directory(manager, "d", repo)
    from_tar = await import_archive(manager, "t", tarball(repo, tmp_path / "repo.tar"))
    return from_dir, from_tar


async def test_aliases_import_as_libostree_lists_them(
    manager: RepositoryManager, alias_repo: Path, tmp_path: Path
) -> None:
    assert libostree_aliases(alias_repo) == ALIASES
    expected_refs = libostree_refs(alias_repo)
    for record in await import_both(manager, alias_repo, tmp_path):
        assert record is not None
        assert record.aliases == ALIASES
        assert set(record.refs) == {"main", "release/stable"}
        assert record.resolved_refs() == expected_refs
        assert record.resolve_ref("chain") == expected_refs["main"]
        # the generated summary lists every alias as a ref of its own, as libostree's does
        ours = Summary.from_bytes(await read_blob(manager.store, record.summary or ""))
        theirs = Summary.from_bytes((alias_repo / "summary").read_bytes())
        assert ours.refs == theirs.refs
    # and the record keeps them across a round trip
    assert VersionRecord.from_bytes(record.to_bytes()).aliases == ALIASES


def _with_link(name: str, target: str) -> Callable[[Path], None]:
    def make(repo: Path) -> None:
        path = repo / "refs" / "heads" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        os.symlink(target, path)

    return make


def _loop(repo: Path) -> None:
    _with_link("loop-a", "loop-b")(repo)
    _with_link("loop-b", "loop-a")(repo)


def _chain(length: int) -> Callable[[Path], None]:
    def make(repo: Path) -> None:
        previous = "main"
        for i in range(length):
            _with_link(f"link{i}", previous)(repo)
            previous = f"link{i}"

    return make


def _to_directory(repo: Path) -> None:
    (repo / "refs" / "heads" / "dir").mkdir()
    shutil.copy(repo / "refs" / "heads" / "main", repo / "refs" / "heads" / "dir" / "ref")
    _with_link("to-dir", "dir")(repo)


#: broken aliases libostree refuses (``ostree summary -u`` fails): (make, match)
REFUSED_BY_LIBOSTREE = {
    "dangling": (_with_link("dangling", "no-such-ref"), "which is nothing"),
    "loop": (_loop, "loops"),
    "41 links": (_chain(41), "loops"),
    "to a directory": (_to_directory, "which is a directory"),
    "to a non-ref file": (_with_link("cfg", "../../config"), "no ref file under refs/"),
}


@pytest.mark.parametrize("case", sorted(REFUSED_BY_LIBOSTREE))
async def test_broken_aliases_are_refused_as_libostree_refuses_them(
    manager: RepositoryManager, alias_repo: Path, tmp_path: Path, case: str
) -> None:
    make, match = REFUSED_BY_LIBOSTREE[case]
    repo = copy_repo(alias_repo, tmp_path / "repo")
    make(repo)
    with pytest.raises(OstreeCommandError):
        ostree("summary", "-u", repo=repo)
    with pytest.raises(BrokenAliasError, match=match):
        await import_directory(manager, "d", repo)
    with pytest.raises(BrokenAliasError, match=match):
        await import_archive(manager, "t", tarball(repo, tmp_path / "repo.tar"))
    assert await manager.repositories() == []  # nothing made, not even the repositories


async def test_forty_links_resolve(
    manager: RepositoryManager, alias_repo: Path, tmp_path: Path
) -> None:
    repo = copy_repo(alias_repo, tmp_path / "repo")
    _chain(40)(repo)
    expected = libostree_refs(repo)
    for record in await import_both(manager, repo, tmp_path):
        assert record is not None
        assert record.resolved_refs() == expected
        assert record.aliases["link39"] == "link38"


async def test_a_symlink_to_a_ref_outside_heads_is_a_plain_ref(
    manager: RepositoryManager, alias_repo: Path, tmp_path: Path
) -> None:
    """libostree reads ``refs/heads/NAME`` through the link: a ref at that file's commit,
    but no alias of a ref of ours."""
    repo = copy_repo(alias_repo, tmp_path / "repo")
    remote = repo / "refs" / "remotes" / "origin" / "branch"
    remote.parent.mkdir(parents=True)
    shutil.copy(repo / "refs" / "heads" / "release" / "stable", remote)
    _with_link("from-remote", "../remotes/origin/branch")(repo)
    ostree("summary", "-u", repo=repo)
    expected = libostree_refs(repo)
    for record in await import_both(manager, repo, tmp_path):
        assert record is not None
        assert record.refs["from-remote"] == expected["from-remote"]
        assert "from-remote" not in record.aliases
        assert record.resolved_refs() == expected


async def test_links_out_of_the_repository_are_refused(
    manager: RepositoryManager, alias_repo: Path, tmp_path: Path
) -> None:
    """libostree would follow these to whatever the host has there; we never do."""
    repo = copy_repo(alias_repo, tmp_path / "repo")
    main = repo / "refs" / "heads" / "main"
    _with_link("absolute", str(main))(repo)
    with pytest.raises(BrokenAliasError, match="absolute"):
        await import_directory(manager, "d", repo)
    os.unlink(repo / "refs" / "heads" / "absolute")
    _with_link("escaping", "../../../repo/refs/heads/main")(repo)  # out, and back in
    with pytest.raises(BrokenAliasError, match="outside the repository"):
        await import_directory(manager, "d", repo)
    with pytest.raises(BrokenAliasError, match="outside the repository"):
        await import_archive(manager, "t", tarball(repo, tmp_path / "repo.tar"))
    os.unlink(repo / "refs" / "heads" / "escaping")
    _with_link("escaping", "../../../../etc/passwd")(repo)  # out of the archive
    with pytest.raises(UnsafeArchiveError, match="outside the archive"):
        await import_archive(manager, "t", tarball(repo, tmp_path / "repo2.tar"))
    assert await manager.repositories() == []


async def test_an_alias_in_an_update_archive(
    manager: RepositoryManager, alias_repo: Path, tmp_path: Path
) -> None:
    """Re-importing with a new alias adds it; a plain ref replaces an alias of its name."""
    await import_directory(manager, "r", alias_repo)
    repo = copy_repo(alias_repo, tmp_path / "repo")
    ostree("refs", "--create=newest", "--alias", "release/stable", repo=repo)
    latest = repo / "refs" / "heads" / "latest"
    latest.unlink()
    shutil.copy(repo / "refs" / "heads" / "main", latest)  # a plain ref now
    record = await import_archive(manager, "r", tarball(repo, tmp_path / "repo.tar"))
    assert record is not None
    assert record.aliases == {
        **{n: t for n, t in ALIASES.items() if n != "latest"},
        "newest": "release/stable",
    }
    assert record.refs["latest"] == record.refs["main"]
    assert record.resolved_refs() == libostree_refs(repo)


async def test_symlinks_under_refs_mirrors_are_collection_refs(
    manager: RepositoryManager, tmp_path: Path
) -> None:
    """libostree lists them through the link, in the summary's collection map too."""
    repo = tmp_path / "repo"
    ostree("init", "--mode=archive", repo=repo)
    ostree("config", "set", "core.collection-id", "org.example.Main", repo=repo)
    tree = tmp_path / "tree"
    tree.mkdir()
    (tree / "a").write_text("a\n")
    commit = ostree("commit", "-b", "main", "--no-bindings", tree, repo=repo).strip()
    ostree("refs", "--collections", "--create=org.example.Other:foo", commit, repo=repo)
    sub = repo / "refs" / "mirrors" / "org.example.Other" / "sub"
    sub.mkdir()
    os.symlink("../foo", sub / "link")
    os.symlink("../../../heads/main", sub / "to-main")
    ostree("summary", "-u", repo=repo)
    theirs = Summary.from_bytes((repo / "summary").read_bytes())
    expected = {r.name: r.checksum for r in theirs.collection_map["org.example.Other"]}
    assert expected == {"foo": commit, "sub/link": commit, "sub/to-main": commit}
    for record in await import_both(manager, repo, tmp_path):
        assert record is not None
        assert record.collection_refs == {"org.example.Other": expected}
        ours = Summary.from_bytes(await read_blob(manager.store, record.summary or ""))
        assert ours.collection_map == theirs.collection_map
