"""Fixtures for the server tests: a store of several repositories, and a live server.

Repositories of the session store (a filesystem store built once):

* ``rich``: version 1 is the import of the rich repo (our generated summary); version 2
  carries the *original*, GPG-signed summary and ``summary.sig`` (see
  :func:`publish_original_summary`), so it is the latest;
* ``hist``: version 1 has ``main`` at C3 (commits C1..C3), version 2 at C5 (C1..C5);
* ``other``: only ``exampleos/x86_64/stable`` (S1), to check that objects of other
  repositories are not served;
* ``gone``: version 1 (tombstone-demo) was deleted, version 2 holds S1;
* ``secret``: like ``other``, but the server requires a token for it;
* ``coll``: the collection repo (refs/mirrors).
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import anyio
import attrs
import pytest

from oracle.ostree_cli import RepoInfo
from ostree_repo.importing import import_directory
from ostree_repo.objects import Summary, parse_delta_name
from ostree_repo.repository import RepositoryManager, VersionRecord
from ostree_repo.repository.blobs import put_blob
from ostree_repo.server import create_app

from ._servers import LogCapture, ThreadedServer

TOKEN = "tok-" + secrets.token_hex(12)


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


async def publish_original_summary(
    manager: RepositoryManager, name: str, source: Path
) -> VersionRecord | None:
    """Publish a version of ``name`` whose summary and signature are ``source``'s own files.

    Our versions carry a summary generated for them, which a signature made over the
    source's summary cannot verify. Until sync/import keep the original summary
    themselves (when the refs and deltas are the source's), this helper does it: it
    refuses unless the refs and the delta map of the latest version equal the summary's.
    """
    summary = (source / "summary").read_bytes()
    signature = (source / "summary.sig").read_bytes()
    parsed = Summary.from_bytes(summary)

    async def change(base: VersionRecord) -> VersionRecord:
        refs = {ref.name: ref.checksum for ref in parsed.refs}
        assert refs == base.refs, "the summary's refs are not the version's"
        deltas = {n: d.superblock for n, d in base.deltas.items()}
        assert parsed.static_deltas == deltas, "the summary's deltas are not the version's"
        return attrs.evolve(
            base,
            summary=await put_blob(manager.store, summary),
            summary_sig=await put_blob(manager.store, signature),
        )

    return await manager.repository(name).publish(change, {"kind": "original-summary"})


async def _pinned_history(manager: RepositoryManager, rich: RepoInfo) -> None:
    """``hist``: v1 with main at C3 (C1..C3), v2 with main at C5 (C1..C5)."""
    source = await manager.repository("rich").version(1)
    keep = set(rich.main[:3])

    def inside(delta: str) -> bool:
        start, end = parse_delta_name(delta)
        return end in keep and (start is None or start in keep)

    async def early(base: VersionRecord) -> VersionRecord:
        return attrs.evolve(
            base,
            refs={"main": rich.main[2]},
            commits={c: source.commits[c] for c in keep},
            deltas={n: d for n, d in source.deltas.items() if inside(n)},
        )

    await manager.repository("hist").publish(early, {"kind": "test"})
    await manager.copy("rich", "hist", version=1, refs=["main"], depth=-1)


@dataclass(frozen=True)
class Served:
    """The session store and what the tests need to know about it."""

    store: Path
    rich: RepoInfo
    collection: RepoInfo
    versions: dict[str, list[int]]


async def _build(store: Path, rich: RepoInfo, collection: RepoInfo) -> dict[str, list[int]]:
    async with RepositoryManager.open(str(store)) as m:
        await import_directory(m, "rich", rich.path)
        if rich.summary_sig is not None:
            await publish_original_summary(m, "rich", rich.path)
        await m.create_repository("hist")
        await _pinned_history(m, rich)
        await m.create_repository("other")
        await m.copy("rich", "other", refs=["exampleos/x86_64/stable"])
        await m.create_repository("gone")
        gone1 = await m.copy("rich", "gone", refs=["tombstone-demo"])
        await m.copy("rich", "gone", refs=["exampleos/x86_64/stable"])
        assert gone1 is not None
        await m.repository("gone").delete_version(gone1.number)
        await m.create_repository("secret")
        await m.copy("rich", "secret", refs=["exampleos/x86_64/stable"])
        await import_directory(m, "coll", collection.path)
        return {name: await m.repository(name).version_numbers() for name in await m.repositories()}


@pytest.fixture(scope="session")
def served(
    rich_repo: RepoInfo, collection_repo: RepoInfo, tmp_path_factory: pytest.TempPathFactory
) -> Served:
    """The session store (read-only for tests: build your own to change one)."""
    store = tmp_path_factory.mktemp("served") / "store"
    versions = anyio.run(_build, store, rich_repo, collection_repo)
    return Served(store, rich_repo, collection_repo, versions)


@pytest.fixture(scope="session")
def access_log() -> Iterator[LogCapture]:
    """Every log line of the server (access log included) during the session."""
    with LogCapture("ostree_repo.server") as capture:
        yield capture


@pytest.fixture(scope="session")
def server(served: Served, access_log: LogCapture) -> Iterator[ThreadedServer]:
    """uvicorn serving the session store, with a token required for ``secret``."""
    app = create_app(str(served.store), tokens={"secret": TOKEN})
    with ThreadedServer(app) as running:
        yield running
