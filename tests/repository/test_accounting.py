"""Storage accounting (``du``): exact bytes against the files of a repo ostree made."""

from __future__ import annotations

import pytest

from oracle.ostree_cli import RepoInfo
from ostree_repo.importing import import_directory
from ostree_repo.objects import ObjectType
from ostree_repo.repository import RepositoryManager
from ostree_repo.repository.accounting import Usage, record_blobs, usage

from .walk import Key, reachable, reachable_all

pytestmark = pytest.mark.anyio

_EXT = {
    ObjectType.COMMIT: "commit",
    ObjectType.DIRTREE: "dirtree",
    ObjectType.DIRMETA: "dirmeta",
    ObjectType.FILE: "filez",
}


def _bytes(repo: RepoInfo, keys: set[Key]) -> int:
    """What the objects take in the repo ostree made (the same bytes as in our store)."""
    return sum(repo.object_path(c, _EXT[t]).stat().st_size for t, c in keys)


async def _blob_sizes(manager: RepositoryManager) -> dict[str, int]:
    return {
        i.path.split("/")[1] + i.path.split("/")[2]: i.size
        async for i in manager.store.list_named_info("blobs")
    }


def _use(  # noqa: PLR0917
    repo: RepoInfo,
    sizes: dict[str, int],
    keys: set[Key],
    blobs: set[str],
    only_keys: set[Key],
    only_blobs: set[str],
) -> Usage:
    return Usage(
        _bytes(repo, keys) + sum(sizes[b] for b in blobs),
        len(keys) + len(blobs),
        _bytes(repo, only_keys) + sum(sizes[b] for b in only_blobs),
        len(only_keys) + len(only_blobs),
    )


async def test_version_ref_and_commit_usage_exactly(
    manager: RepositoryManager, rich_repo: RepoInfo
) -> None:
    labels = rich_repo.labels
    rich = await import_directory(manager, "rich", rich_repo.path)
    assert rich is not None
    await manager.create_repository("prod")
    prod = await manager.copy("rich", "prod", refs=["main"])  # C5 alone
    assert prod is not None and set(prod.commits) == {labels["C5"]}
    sizes = await _blob_sizes(manager)
    everything = reachable_all(rich_repo.path, rich_repo.commits)
    c5 = reachable(rich_repo.path, labels["C5"])

    # the version: everything it reaches; only its own is what prod does not hold
    report = await usage(manager, "rich")
    rich_blobs, prod_blobs = record_blobs(rich), record_blobs(prod)
    assert report.total == _use(
        rich_repo, sizes, everything, rich_blobs, everything - c5, rich_blobs - prod_blobs
    )
    assert report.live_bytes == report.total.bytes + sizes[prod.summary or ""]

    def blobs_of(commits: set[str]) -> set[str]:
        found = {rich.commits[c].commitmeta for c in commits} - {None}
        for name, delta in rich.deltas.items():
            if name.split("-")[-1] in commits:
                found |= {delta.superblock, *(p for p in delta.parts if p)}
        return found

    def expected(holders: dict[object, set[str]]) -> dict[object, Usage]:
        out = {}
        for item, commits in holders.items():
            other_commits = set().union(*(c for o, c in holders.items() if o != item))
            keys = reachable_all(rich_repo.path, commits)
            blobs = blobs_of(commits)
            elsewhere = reachable_all(rich_repo.path, other_commits) | c5
            elsewhere_blobs = blobs_of(other_commits) | prod_blobs
            out[item] = _use(
                rich_repo, sizes, keys, blobs, keys - elsewhere, blobs - elsewhere_blobs
            )
        return out

    # per commit: its closure, its signatures, the deltas to it
    by_commit = await usage(manager, "rich", by="commit")
    assert by_commit.total == report.total
    assert list(by_commit.items) == sorted(
        rich.commits, key=lambda c: (rich.commits[c].timestamp, c)
    )
    assert dict(by_commit.items) == expected({c: {c} for c in rich.commits})
    assert by_commit.items[labels["C1"]].unique_bytes > 0

    # per ref: its history in the version; commits no ref reaches are one more item
    by_ref = await usage(manager, "rich", by="ref")
    history = {
        "main": set(rich_repo.main),
        "exampleos/x86_64/stable": {labels[x] for x in ("S1", "C3", "C2", "C1")},
        "tombstone-demo": {labels["T2"]},
        None: {labels["O1"]},
    }
    assert set(history) == {*rich.refs, None}
    assert dict(by_ref.items) == expected(history)
    main_only = by_ref.items["main"]
    assert 0 < main_only.unique_bytes < main_only.bytes

    # prod: C5 and its blobs are rich's too, so nothing is only its own but its summary
    prod_report = await usage(manager, "prod", by="ref")
    assert prod_report.total.unique_objects == 1
    assert prod_report.total.unique_bytes == sizes[prod.summary or ""]
    assert prod_report.items["main"].unique_bytes == 0
    # once rich goes, all of it is prod's own
    await manager.repository("rich").delete_version(1)
    alone = await usage(manager, "prod", by="ref")
    assert alone.total == _use(rich_repo, sizes, c5, prod_blobs, c5, prod_blobs)
    assert alone.live_bytes == alone.total.bytes
    assert alone.items["main"].unique_bytes == alone.total.bytes - sizes[prod.summary or ""]
