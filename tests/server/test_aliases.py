"""Ref aliases served, pulled by the real ``ostree``, exported and synced.

* served: ``refs/heads/ALIAS`` answers the target's commit, as a static server following
  libostree's symlink does, and the summary lists the alias;
* ``ostree pull --mirror`` from us gets every alias as a ref at its target's commit (what
  it gets from libostree's own repository, too);
* exported: the same relative symlinks, which ``ostree refs --alias`` lists;
* synced from a static server: from the summary, or from ``refs/heads/ALIAS`` named
  explicitly, an alias arrives as a plain ref (neither says it is an alias).
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import anyio
import httpx
import pytest

from importing._aliases import ALIASES, build_alias_repo, libostree_aliases, libostree_refs
from oracle.ostree_cli import OstreeCommandError, fsck, ostree, read_refs
from ostree_repo.export import export_tar, export_version
from ostree_repo.importing import import_directory
from ostree_repo.repository import RepositoryManager
from ostree_repo.server import create_app
from ostree_repo.sync import sync_repository
from sync.servers import http_server

from ._servers import ThreadedServer

pytestmark = pytest.mark.anyio


@pytest.fixture(scope="session")
def alias_repo(ostree_cli: None, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_alias_repo(tmp_path_factory.mktemp("alias_repo"))


@pytest.fixture(scope="session")
def alias_store(alias_repo: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    store = tmp_path_factory.mktemp("alias_store") / "store"

    async def build() -> None:
        async with RepositoryManager.open(str(store), workers=0) as manager:
            await import_directory(manager, "aliases", alias_repo)

    anyio.run(build)
    return store


@pytest.fixture(scope="session")
def alias_server(alias_store: Path) -> Iterator[ThreadedServer]:
    with ThreadedServer(create_app(str(alias_store))) as running:
        yield running


def test_an_alias_is_served_as_its_targets_commit(
    alias_server: ThreadedServer, alias_repo: Path
) -> None:
    commits = libostree_refs(alias_repo)
    with httpx.Client(base_url=f"{alias_server.url}/aliases/") as client:
        for name in ALIASES:
            response = client.get(f"refs/heads/{name}")
            assert response.status_code == 200
            assert response.text == commits[name] + "\n"
        assert client.get("refs/heads/x/y").status_code == 404


def test_ostree_pull_mirror_gets_every_alias_as_a_ref(
    alias_server: ThreadedServer, alias_repo: Path, tmp_path: Path
) -> None:
    """The commits are bound to their branch (``ostree commit -b``), so libostree refuses
    to pull one under an alias's name, from us as from the source itself; without the
    check, every alias arrives as a ref at its target's commit."""
    for url, name in ((f"{alias_server.url}/aliases/", "ours"), (f"file://{alias_repo}", "theirs")):
        repo = tmp_path / name
        ostree("init", "--mode=archive", repo=repo)
        ostree("remote", "add", "--no-gpg-verify", "origin", url, repo=repo)
        with pytest.raises(OstreeCommandError, match="Commit has no requested ref"):
            ostree("pull", "--mirror", "origin", "latest", repo=repo)
        ostree("pull", "--mirror", "--disable-verify-bindings", "origin", repo=repo)
        fsck(repo)
    assert read_refs(tmp_path / "ours") == read_refs(tmp_path / "theirs")
    assert read_refs(tmp_path / "ours")[0] == libostree_refs(alias_repo)


async def test_export_writes_the_same_symlinks(
    alias_store: Path, alias_repo: Path, tmp_path: Path
) -> None:
    async with RepositoryManager.open(str(alias_store), workers=0) as manager:
        await export_version(manager, "aliases", tmp_path / "dir")
        await export_tar(manager, "aliases", tmp_path / "repo.tar")
    (tmp_path / "untarred").mkdir()
    subprocess.run(["tar", "-C", str(tmp_path / "untarred"), "-xf", str(tmp_path / "repo.tar")],
                   check=True)  # fmt: skip
    for out in (tmp_path / "dir", tmp_path / "untarred" / "repo"):
        fsck(out)
        assert libostree_aliases(out) == ALIASES
        assert libostree_refs(out) == libostree_refs(alias_repo)
        for name in ALIASES:
            link = out / "refs" / "heads" / name
            assert link.readlink() == (alias_repo / "refs" / "heads" / name).readlink()


async def test_sync_from_a_static_server(alias_repo: Path, tmp_path: Path) -> None:
    commits = libostree_refs(alias_repo)
    async with RepositoryManager.open(str(tmp_path / "store"), workers=0) as manager:
        with http_server(alias_repo) as url:
            result = await sync_repository(manager, "all", url)
            assert result.version is not None
            assert result.version.refs == commits and result.summary_passed_through
            # no summary to go by: refs/heads/ALIAS, followed by the web server
            (alias_repo / "summary").rename(tmp_path / "summary")
            try:
                result = await sync_repository(manager, "named", url, include=["chain"])
            finally:
                (tmp_path / "summary").rename(alias_repo / "summary")
            assert result.version is not None
            assert result.version.refs == {"chain": commits["chain"]}
