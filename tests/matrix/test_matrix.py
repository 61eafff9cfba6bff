"""Every feature of :mod:`.features` through every route, compared with the source.

Routes: import from the directory and from a tarball (refs, aliases, collection refs,
commits, objects, detached metadata, deltas and tombstones equal the source's); sync from
a static server (``python3 -m http.server`` over the source: what ``ostree pull --mirror``
would take); copy of the whole version; our server pulled by the real ``ostree pull
--mirror`` (the same as pulling the source itself, then ``ostree fsck``); export
(``ostree fsck``, and the same repository again, aliases as the same symlinks).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from oracle.ostree_cli import OstreeCommandError, fsck, ostree
from ostree_repo.export import export_version
from ostree_repo.objects import Summary, parse_delta_name
from ostree_repo.repository import RepositoryManager, VersionRecord
from ostree_repo.sync import sync_repository

from . import snapshot
from .conftest import Built
from .features import BY_NAME, FEATURES

pytestmark = pytest.mark.anyio
NAMES = [f.name for f in FEATURES]


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
async def manager(built: Built) -> AsyncIterator[RepositoryManager]:
    async with RepositoryManager.open(str(built.store), workers=0) as opened:
        yield opened


@pytest.mark.parametrize("route", ["dir", "tar"])
@pytest.mark.parametrize("name", NAMES)
async def test_import(manager: RepositoryManager, built: Built, name: str, route: str) -> None:
    source = snapshot.of_directory(built.repo(name))
    assert await snapshot.of_version(manager, built.version(name, route)) == source


@pytest.mark.parametrize("name", NAMES)
async def test_copy(manager: RepositoryManager, built: Built, name: str) -> None:
    imported = built.version(name, "dir")
    await manager.create_repository(f"{name}-copy", exist_ok=True)
    record = await manager.copy(name, f"{name}-copy", whole=True)
    assert record is not None
    assert await snapshot.of_version(manager, record) == await snapshot.of_version(
        manager, imported
    )
    assert record.config == imported.config


def _expected_sync(imported: VersionRecord, summary: Summary | None) -> tuple[set[str], set[str]]:
    """The commits a whole-history mirror sync takes (every head's history), and the
    deltas between them that the remote's summary lists."""
    heads = set(imported.resolved_refs().values())
    heads.update(c for refs in imported.collection_refs.values() for c in refs.values())
    commits: set[str] = set()
    for head in heads:
        current: str | None = head
        while current is not None and current in imported.commits and current not in commits:
            commits.add(current)
            current = imported.commits[current].parent
    listed = summary.static_deltas if summary is not None else {}
    deltas = set()
    for delta in listed:
        start, end = parse_delta_name(delta)
        if end in commits and (start is None or start in commits):
            deltas.add(delta)
    return commits, deltas


@pytest.mark.parametrize("name", NAMES)
async def test_sync_from_a_static_server(
    manager: RepositoryManager, built: Built, static_url: str, name: str
) -> None:
    repo = built.repo(name)
    imported = built.version(name, "dir")
    summary_file = repo / "summary"
    summary = Summary.from_bytes(summary_file.read_bytes()) if summary_file.exists() else None
    include = [] if summary is not None else list(imported.resolved_refs())
    result = await sync_repository(
        manager, f"{name}-sync", f"{static_url}{name}/repo/", include=include, depth=-1
    )
    record = result.version
    assert record is not None
    commits, deltas = _expected_sync(imported, summary)
    got = await snapshot.of_version(manager, record)
    expected = await snapshot.of_version(manager, imported)
    # neither the summary nor refs/heads/NAME tells an alias apart: it arrives as a ref
    assert got.refs == expected.refs and got.aliases == {}
    assert got.mirrors == expected.mirrors
    assert got.commits == commits
    reached = set()
    for commit in commits:
        reached |= {
            (snapshot.key_checksum(k), snapshot.key_ext(k))
            for k in (await manager.closure(commit)).sizes
        }
    assert got.objects == reached
    assert got.commitmeta == {c: m for c, m in expected.commitmeta.items() if c in commits}
    assert set(got.deltas) == deltas
    if summary is not None and imported.resolved_refs() == {
        r.name: r.checksum for r in summary.refs
    }:
        assert result.summary_passed_through


def _metadata(summary: Summary) -> dict[str, object]:
    """A summary's metadata but its last-modified time."""
    return {k: v for k, v in summary.metadata.items() if k != "ostree.summary.last-modified"}


def _pull(url: str, into: Path, name: str) -> Path | str:
    """A mirror of ``url`` in ``into``, or libostree's error message."""
    feature = BY_NAME[name]
    ostree("init", "--mode=archive", repo=into)
    ostree("remote", "add", "--no-gpg-verify", "origin", url, repo=into)
    try:
        ostree("pull", "--mirror", "--depth=-1", *feature.pull, "origin", *feature.pull_refs,
               repo=into)  # fmt: skip
    except OstreeCommandError as e:
        return e.stderr.replace(str(into), "REPO")
    return into


@pytest.mark.parametrize("name", NAMES)
def test_serve_to_ostree_pull_mirror(
    built: Built, our_url: str, static_url: str, tmp_path: Path, name: str
) -> None:
    """What ``ostree pull --mirror`` gets from us is what it gets from the source (or it
    fails the same way: libostree cannot write a 4084-byte ref under refs/remotes/)."""
    built.version(name, "dir")
    ours = _pull(f"{our_url}/{name}/", tmp_path / "ours", name)
    theirs = _pull(f"{static_url}{name}/repo/", tmp_path / "theirs", name)
    if isinstance(ours, str) or isinstance(theirs, str):
        assert ours == theirs
        return
    fsck(ours)
    assert snapshot.of_directory(ours) == snapshot.of_directory(theirs)


@pytest.mark.parametrize("name", NAMES)
async def test_export(manager: RepositoryManager, built: Built, tmp_path: Path, name: str) -> None:
    repo = built.repo(name)
    built.version(name, "dir")
    out = tmp_path / "export"
    await export_version(manager, name, out)
    fsck(out)
    assert snapshot.of_directory(out) == snapshot.of_directory(repo)
    if (repo / "summary").exists():
        ours, theirs = (Summary.from_bytes((r / "summary").read_bytes()) for r in (out, repo))
        assert ours.refs == theirs.refs and ours.collection_map == theirs.collection_map
        assert _metadata(ours) == _metadata(theirs)
    if (repo / "delta-indexes").exists():
        assert snapshot.delta_indexes(out) == snapshot.delta_indexes(repo)
    ours = ostree("config", "get", "core.mode", repo=out).strip()
    assert ours in ("archive", "archive-z2")
    for key in ("core.collection-id",):
        theirs = ostree("config", "get", key, repo=repo, check=False).strip()
        assert ostree("config", "get", key, repo=out, check=False).strip() == theirs
