"""The delta policy: which deltas each version gets, made once, dropped when no longer
wanted, honoured by commit, import, copy and sync, and what real clients pull."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
import attrs
import pytest

from oracle.ostree_cli import RepoInfo, fsck, ostree, rev_parse
from ostree_repo.builder import commit_tree, tree_from_mapping
from ostree_repo.deltas import CommitNotFoundError, UnrelatedCommitsError
from ostree_repo.importing import import_directory
from ostree_repo.objects import Summary, delta_name
from ostree_repo.repository import (
    DeltaPolicy,
    DeltaPolicyHook,
    RepositoryManager,
    SettingsError,
    VersionRecord,
    _delta_store,
    delete_deltas,
    generate_deltas,
)
from ostree_repo.repository.blobs import read_blob
from ostree_repo.server import create_app
from server._servers import LogCapture, ThreadedServer


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@asynccontextmanager
async def manager_at(
    path: Path, hook: DeltaPolicyHook | None = None
) -> AsyncIterator[RepositoryManager]:
    async with RepositoryManager.open(str(path), hooks=None if hook is None else [hook]) as m:
        yield m


def tree(version: int) -> Any:
    """A small tree whose files change a little from version to version."""
    body = b"".join(b"line %d of a text file\n" % i for i in range(2000))
    return tree_from_mapping(
        {
            "usr/share/doc/README": body + b"edited in %d\n" % version,
            "usr/lib/libx.so.1": bytes(range(256)) * 64 + bytes([version]) * 100,
            "etc/os-release": b"VERSION=%d\n" % version,
            f"var/new-{version}": b"added in %d\n" % version,
        }
    )


async def commits(m: RepositoryManager, name: str, count: int) -> list[str]:
    made = []
    for i in range(count):
        checksum, _ = await commit_tree(m, name, tree(i), ref="main", timestamp=1_700_000_000 + i)
        made.append(checksum)
    return made


def generated(record: VersionRecord) -> dict[str, str]:
    return {n: d.generated for n, d in record.deltas.items() if d.generated}


# -- the policy -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("none", DeltaPolicy()),
        ("parent", DeltaPolicy(depth=1)),
        ("parent,scratch", DeltaPolicy(depth=1, scratch=True)),
        ("depth=3, versions=2", DeltaPolicy(depth=3, versions=2)),
        (
            "scratch,compression=none,inline",
            DeltaPolicy(scratch=True, compression="none", inline=True),
        ),
    ],
)
def test_policy_text(text: str, expected: DeltaPolicy) -> None:
    policy = DeltaPolicy.parse(text)
    assert policy == expected
    assert DeltaPolicy.parse(policy.to_json()) == policy
    assert DeltaPolicy.parse(policy.describe()) == policy


@pytest.mark.parametrize(
    "bad", ["sometimes", "depth=-1", "depth=x", "compression=zstd", {"depth": True}, {"nope": 1}, 3]
)
def test_policy_refused(bad: Any) -> None:
    with pytest.raises(SettingsError, match="delta policy"):
        DeltaPolicy.parse(bad)


@pytest.mark.anyio
async def test_bad_policy_makes_no_version(tmp_path: Path) -> None:
    async with manager_at(tmp_path) as m:
        with pytest.raises(SettingsError):
            await m.create_repository("r", settings={"deltas": "depth=often"})
        assert "r" not in await m.repositories()
        await m.create_repository("r")
        with pytest.raises(SettingsError):
            await m.configure("r", {"deltas": "often"})
        assert await m.repository("r").version_numbers() == [0]


# -- what versions get ----------------------------------------------------------------------


@pytest.mark.anyio
async def test_parent_to_head_on_commit(tmp_path: Path) -> None:
    async with manager_at(tmp_path) as m:
        await m.create_repository("r", settings={"deltas": "parent"})
        _, c1, c2 = await commits(m, "r", 3)
        latest = await m.repository("r").version()
        # only the latest head's parent: the policy drops c0 -> c1 once c2 is the head
        assert generated(latest) == {delta_name(c1, c2): "policy"}
        summary = Summary.from_bytes(await read_blob(m.store, latest.summary or ""))
        assert set(summary.static_deltas) == {delta_name(c1, c2)}


@pytest.mark.anyio
async def test_depth_versions_scratch(tmp_path: Path) -> None:
    async with manager_at(tmp_path) as m:
        await m.create_repository("r", settings={"deltas": "depth=2,scratch"})
        c = await commits(m, "r", 4)
        latest = await m.repository("r").version()
        assert set(generated(latest)) == {delta_name(c[2], c[3]), delta_name(c[1], c[3]), c[3]}
        # the heads of the last 2 versions: the commit made c[3] the head, so the
        # version before had c[2], and the one before that c[1]
        await m.configure("r", {"deltas": "versions=3"})
        latest = await m.repository("r").version()
        assert set(generated(latest)) == {delta_name(c[2], c[3]), delta_name(c[1], c[3])}
        await m.configure("r", {"deltas": "none"})
        assert generated(await m.repository("r").version()) == {}


@pytest.mark.anyio
async def test_versions_follow_a_ref_reset(tmp_path: Path) -> None:
    """``versions=K`` wants a delta from each previous head, even one that is not an
    ancestor (a ref moved back to an older commit, or reset to an unrelated one)."""
    async with manager_at(tmp_path) as m:
        await m.create_repository("r", settings={"deltas": "versions=2"})
        c = await commits(m, "r", 2)
        other, _ = await commit_tree(m, "r", tree(9), ref="main", parent=None, timestamp=5)
        latest = await m.repository("r").version()
        # c[1] was the head in the version before; c[0] in the one before that, but c[0]
        # is no longer in the version (the reset commit has no parent, it was dropped?)
        wanted = {delta_name(c[1], other)}
        if c[0] in latest.commits:
            wanted.add(delta_name(c[0], other))
        assert set(generated(latest)) == wanted


@pytest.mark.anyio
async def test_made_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A delta is generated once: again in this process (a lost race re-runs the hook),
    by another process (the index), and after a reclaim took its blobs, made anew."""
    calls: list[tuple[str | None, str]] = []
    real = _delta_store.generate_delta

    async def counting(store: Any, start: Any, end: Any, **kw: Any) -> Any:
        calls.append((start, end))
        return await real(store, start, end, **kw)

    monkeypatch.setattr(_delta_store, "generate_delta", counting)
    async with manager_at(tmp_path) as m:
        await m.create_repository("r", settings={"deltas": "parent"})
        c0, c1 = await commits(m, "r", 2)
        assert calls == [(c0, c1)]
        repo = m.repository("r")
        latest = await repo.version()
        hook = next(h for h in m.hooks if isinstance(h, DeltaPolicyHook))
        # the hook applied again to the same draft (a lost race): nothing made
        bare = attrs.evolve(latest, deltas={})
        again = await hook.prepare(repo, latest, bare)
        assert again.deltas == latest.deltas and calls == [(c0, c1)]
        # another process: a new hook finds the index entry
        fresh = DeltaPolicyHook()
        again = await fresh.prepare(repo, latest, bare)
        assert again.deltas == latest.deltas and calls == [(c0, c1)]
        # the policy drops it, reclaim takes its blobs, the policy wants it back
        await m.configure("r", {"deltas": "none"})
        for record in await repo.versions():
            if record.deltas:
                await repo.delete_version(record.number)
        report = await m.reclaim(grace_seconds=0)
        assert report.files >= 3  # superblock, part, summaries
        await m.configure("r", {"deltas": "parent"})
        assert calls == [(c0, c1), (c0, c1)]
        assert set(generated(await repo.version())) == {delta_name(c0, c1)}
        assert (await m.fsck("r")).ok


@pytest.mark.anyio
async def test_manual_deltas(tmp_path: Path) -> None:
    async with manager_at(tmp_path) as m:
        await m.create_repository("r")
        c = await commits(m, "r", 3)
        version = await generate_deltas(m, "r", [(c[0], c[2]), (None, c[2])])
        assert version is not None
        assert generated(version) == {delta_name(c[0], c[2]): "manual", c[2]: "manual"}
        assert await generate_deltas(m, "r", [(None, c[2])]) is None  # has it
        # a policy change keeps manual deltas
        await m.configure("r", {"deltas": "parent"})
        assert set(generated(await m.repository("r").version())) == {
            delta_name(c[0], c[2]),
            c[2],
            delta_name(c[1], c[2]),
        }
        with pytest.raises(CommitNotFoundError, match="is not in version"):
            await generate_deltas(m, "r", [("ab" * 32, c[2])])
        unrelated, _ = await commit_tree(m, "r", tree(7), ref="other", parent=None, timestamp=9)
        with pytest.raises(UnrelatedCommitsError, match="unrelated"):
            await generate_deltas(m, "r", [(unrelated, c[2])])
        assert await generate_deltas(m, "r", [(unrelated, c[2])], allow_unrelated=True)
        version = await delete_deltas(m, "r", [delta_name(c[0], c[2])])
        assert version is not None and delta_name(c[0], c[2]) not in version.deltas


# -- honoured by import, copy and sync; pulled by real clients ------------------------------


def _superblock_path(start: str | None, end: str) -> str:
    from ostree_repo.objects import delta_path

    return delta_path(start, end, "superblock")


def test_import_then_pull(rich_repo: RepoInfo, tmp_path: Path) -> None:
    """An import keeps the rich repo's own deltas as they are and adds the policy's; the
    real client pulls ours through our server: from C3 to C5 (with the 5 MB fallback
    fetched loose) and S1 from scratch."""
    store = tmp_path / "store"
    labels = rich_repo.labels

    async def build() -> VersionRecord:
        async with manager_at(store) as m:
            await m.create_repository("r", settings={"deltas": "depth=2,scratch"})
            version = await import_directory(m, "r", rich_repo.path)
            assert version is not None
            return version

    version = anyio.run(build)
    for name, info in rich_repo.deltas.items():
        if name in version.deltas:
            ours = version.deltas[name]
            assert not ours.generated
            assert ours.superblock == info.superblock_sha256
    made = generated(version)
    assert delta_name(labels["C3"], labels["C5"]) in made
    assert labels["S1"] in made and delta_name(labels["C2"], labels["S1"]) in made
    assert delta_name(labels["C4"], labels["C5"]) not in made  # the upstream one stays

    with LogCapture("ostree_repo.server") as log, ThreadedServer(create_app(str(store))) as server:
        client = tmp_path / "client"
        ostree("init", "--mode=bare-user", repo=client)
        ostree("remote", "add", "--no-gpg-verify", "origin", f"{server.url}/r/", repo=client)
        ostree("pull-local", str(rich_repo.path), labels["C3"], repo=client)
        ostree("refs", "--create=origin:main", labels["C3"], repo=client)
        mark = len(log.lines)
        ostree("pull", "--require-static-deltas", "origin", "main", repo=client)
        fsck(client)
        assert rev_parse(client, "origin:main") == labels["C5"]
        requests = log.since(mark)
        superblock = _superblock_path(labels["C3"], labels["C5"])
        assert any(f"GET /r/{superblock}" in line for line in requests), requests
        assert any(".filez" in line for line in requests)  # the fallback, loose
        mark = len(log.lines)
        fresh = tmp_path / "fresh"
        ostree("init", "--mode=bare-user", repo=fresh)
        ostree("remote", "add", "--no-gpg-verify", "origin", f"{server.url}/r/", repo=fresh)
        ostree("pull", "--require-static-deltas", "origin", "exampleos/x86_64/stable", repo=fresh)
        fsck(fresh)
        assert any(
            f"GET /r/{_superblock_path(None, labels['S1'])}" in line for line in log.since(mark)
        )


def test_copy_and_sync(tmp_path: Path) -> None:
    store = tmp_path / "store"

    async def build() -> list[str]:
        async with manager_at(store) as m:
            await m.create_repository("plain")
            made = await commits(m, "plain", 2)
            await m.create_repository("copied", settings={"deltas": "parent"})
            version = await m.copy("plain", "copied", refs=["main"], depth=1)
            assert version is not None and set(generated(version)) == {delta_name(*made)}
            return made

    made = anyio.run(build)

    async def sync(url: str) -> VersionRecord:
        from ostree_repo.sync import sync_repository

        async with manager_at(store) as m:
            await m.create_repository("mirror", settings={"deltas": "parent,scratch"})
            result = await sync_repository(m, "mirror", url, depth=1)
            assert result.version is not None
            return result.version

    with ThreadedServer(create_app(str(store))) as server:
        version = anyio.run(sync, f"{server.url}/plain/")
    assert set(generated(version)) == {delta_name(*made), made[1]}
