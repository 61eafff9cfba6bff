"""Retention policies: exact survivors (versions, commits, deltas, objects after reclaim)."""

from __future__ import annotations

import subprocess
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from oracle.ostree_cli import RepoInfo
from ostree_repo.builder import commit_tree, tree_from_mapping
from ostree_repo.export import export_version
from ostree_repo.importing import import_directory
from ostree_repo.repository import RepositoryManager, SettingsError, VersionNotFoundError
from ostree_repo.repository.closure import split_key
from ostree_repo.repository.retention import (
    RetentionHook,
    RetentionPolicy,
    parse_duration,
    prune_history,
)

from .walk import reachable_all, stored_objects

pytestmark = pytest.mark.anyio


async def _commit(manager: RepositoryManager, name: str, content: bytes, ref: str = "main") -> str:
    tree = tree_from_mapping({"etc/file": content, "etc/shared": b"same in every commit"})
    commit, record = await commit_tree(manager, name, tree, ref=ref, subject=content.decode())
    assert record is not None
    return commit


async def _log_files(manager: RepositoryManager, name: str) -> dict[str, list[str]]:
    """The version log's files: record and marker names, and the collection mark."""
    return {
        "versions": sorted(
            [p.rsplit("/", 1)[1] async for p in manager.store.list_named(f"versions/{name}")]
        ),
        "deleted": sorted(
            [p.rsplit("/", 1)[1] async for p in manager.store.list_named(f"deleted/{name}")]
        ),
    }


def _numbers(*ns: int) -> list[str]:
    return [f"{n:010d}.json" for n in ns]


# -- the policy itself ------------------------------------------------------------------------


def test_policy_parses_and_refuses() -> None:
    assert RetentionPolicy.from_json({"versions": 3}).to_json() == {"versions": 3}
    full = {"versions": 1, "younger_than": 60, "depth": 0}
    assert RetentionPolicy.from_json(full).to_json() == full
    for bad, message in [
        ({}, "needs versions, younger_than or depth"),
        ({"versions": 0}, "versions must be a whole number >= 1"),
        ({"versions": True}, "versions must be a whole number"),
        ({"depth": -1}, "depth must be a whole number >= 0"),
        ({"younger_than": 0}, "younger_than must be seconds > 0"),
        ({"younger_than": float("inf")}, "younger_than must be seconds > 0"),
        ({"keep": 1}, "unknown retention setting"),
        ([1], "must be an object"),
    ]:
        with pytest.raises(SettingsError, match=message):
            RetentionPolicy.from_json(bad)
    assert parse_duration("90") == 90 and parse_duration("2h") == 7200
    assert parse_duration("30d") == 30 * 86400 and parse_duration("1w") == 604800
    for bad_text in ["", "h", "-1h", "0", "nan", "1y"]:
        with pytest.raises(SettingsError, match="not a duration"):
            parse_duration(bad_text)


def test_kept_is_the_last_n_or_the_young_and_always_the_latest() -> None:
    versions = [(1, 10.0), (2, 20.0), (3, 30.0), (4, 40.0)]
    assert RetentionPolicy(versions=2).kept(versions, now=100) == {3, 4}
    assert RetentionPolicy(younger_than=75).kept(versions, now=100) == {3, 4}
    assert RetentionPolicy(younger_than=1).kept(versions, now=100) == {4}  # the latest stays
    assert RetentionPolicy(versions=1, younger_than=85).kept(versions, now=100) == {2, 3, 4}
    assert RetentionPolicy(depth=0).kept(versions, now=100) == {1, 2, 3, 4}


async def test_bad_settings_make_no_version_nor_repository(manager: RepositoryManager) -> None:
    with pytest.raises(SettingsError):
        await manager.create_repository("r", settings={"retention": {"versions": 0}})
    assert await manager.repositories() == []
    await manager.create_repository("r")
    with pytest.raises(SettingsError):
        await manager.configure("r", {"retention": {"depth": "all"}})
    assert await manager.repository("r").version_numbers() == [0]


# -- keep the last N versions ------------------------------------------------------------------


async def test_keep_last_versions_exact_survivors_records_and_objects(
    manager: RepositoryManager,
) -> None:
    policy = {"retention": {"versions": 2, "depth": 0}}
    await manager.create_repository("r", settings=policy)  # version 1
    repo = manager.repository("r")
    commits = []
    for i in range(2, 6):
        commits.append(await _commit(manager, "r", f"v{i}".encode()))
        assert await repo.version_numbers() == [0, *range(max(1, i - 1), i + 1)]
    # versions 1-3 went, and their records with them: the mark says their numbers are used
    assert await repo.collected_through() == 3
    assert await _log_files(manager, "r") == {"versions": _numbers(4, 5), "deleted": []}
    with pytest.raises(VersionNotFoundError, match="was deleted"):
        await repo.version(2)
    latest = await repo.version()
    assert latest.number == 5 and latest.base == 4
    assert set(latest.commits) == {commits[3]}
    assert set((await repo.version(4)).commits) == {commits[2]}
    live = {commits[2], commits[3]}
    # objects after reclaim: exactly the closures of the surviving versions' commits
    await manager.reclaim(grace_seconds=0)
    expected = set()
    for commit in live:
        expected |= {split_key(k) for k in (await manager.closure(commit)).sizes}
    assert await stored_objects(manager) == {(t, c) for t, c in expected}
    assert (await manager.fsck("r")).ok
    # numbers are never reused: the next version is 6
    await _commit(manager, "r", b"v6")
    assert await repo.version_numbers() == [0, 5, 6]
    assert await _log_files(manager, "r") == {"versions": _numbers(5, 6), "deleted": []}


async def test_deleting_the_latest_then_collecting_never_reuses_its_number(
    manager: RepositoryManager,
) -> None:
    await manager.create_repository("r")
    for i in range(1, 4):
        await _commit(manager, "r", f"v{i}".encode())
    repo = manager.repository("r")
    await repo.delete_version(3)
    await repo.delete_version(1)
    assert await repo.collect_records() == 2
    # 1 is below the lowest survivor (2): under the mark; 3 keeps a marker only
    assert await repo.collected_through() == 1
    assert await _log_files(manager, "r") == {
        "versions": _numbers(2),
        "deleted": ["0000000003"],
    }
    assert await repo.version_numbers() == [0, 2]
    for gone in (1, 3):
        with pytest.raises(VersionNotFoundError, match="was deleted"):
            await repo.version(gone)
    await _commit(manager, "r", b"v4")
    assert await repo.version_numbers() == [0, 2, 4]
    assert (await repo.version()).base == 2
    # every version deleted: the mark takes the highest number
    await repo.delete_version(2)
    await repo.delete_version(4)
    await repo.collect_records()
    assert await repo.collected_through() == 4
    assert await _log_files(manager, "r") == {"versions": [], "deleted": []}
    assert await repo.version_numbers() == [0]
    await _commit(manager, "r", b"v5")
    assert await repo.version_numbers() == [0, 5]


# -- keep versions younger than a duration -----------------------------------------------------


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
async def clocked(
    store_spec: tuple[str, dict[str, Any]], clock: Clock
) -> AsyncIterator[RepositoryManager]:
    url, options = store_spec
    async with RepositoryManager.open(url, hooks=[RetentionHook(clock)], **options) as opened:
        yield opened


async def test_keep_younger_than_exact_survivors(clocked: RepositoryManager, clock: Clock) -> None:
    await clocked.create_repository("r")
    repo = clocked.repository("r")
    made = {}
    for i in range(1, 6):
        await _commit(clocked, "r", f"v{i}".encode())
        made[i] = (await repo.version()).created
    # one hour after version 3 was made, keep what is younger than an hour (4, 5, and 6:
    # the version that sets the policy)
    clock.now = made[3] + 3600
    configured = await clocked.configure("r", {"retention": {"younger_than": 3600}})
    assert configured is not None and configured.number == 6
    assert await repo.version_numbers() == [0, 4, 5, 6]
    # much later, only the latest is young enough, unless the last two are kept by count
    clock.now = configured.created + 10 * 3600
    await clocked.configure("r", {"retention": {"younger_than": 3600, "versions": 2}})
    assert await repo.version_numbers() == [0, 6, 7]
    clock.now += 10 * 3600
    await clocked.configure("r", {"retention": {"younger_than": 3600}})
    assert await repo.version_numbers() == [0, 8]
    assert await repo.collected_through() == 7


async def test_removing_the_policy_deletes_nothing_more(manager: RepositoryManager) -> None:
    await manager.create_repository("r", settings={"retention": {"versions": 1}})
    await _commit(manager, "r", b"v2")
    await manager.configure("r", {"retention": None})
    await _commit(manager, "r", b"v4")
    assert await manager.repository("r").version_numbers() == [0, 2, 3, 4]


# -- keep D parents per ref --------------------------------------------------------------------


async def test_depth_drops_history_beyond_and_its_deltas_keeps_signatures(
    manager: RepositoryManager, rich_repo: RepoInfo, tmp_path: Path
) -> None:
    labels = rich_repo.labels
    await import_directory(manager, "rich", rich_repo.path)
    full = await manager.repository("rich").version()
    record = await manager.configure("rich", {"retention": {"depth": 1, "versions": 1}})
    assert record is not None and record.number == 2
    kept = {labels[x] for x in ("C5", "C4", "S1", "C3", "T2")}
    assert set(record.commits) == kept  # the orphan O1, C1 and C2 went
    assert set(record.deltas) == {
        f"{labels['C3']}-{labels['C4']}",
        f"{labels['C4']}-{labels['C5']}",
        labels["C5"],  # from scratch
    }
    assert record.refs == full.refs
    for commit in kept:  # detached metadata (signatures) stays with its commit
        assert record.commits[commit] == full.commits[commit]
    assert record.commits[labels["C3"]].parent == labels["C2"]  # a truncated history
    assert await manager.repository("rich").version_numbers() == [0, 2]
    # a later version keeps the policy: a new commit on main pushes C4 out
    child = await _commit(manager, "rich", b"C6")
    latest = await manager.repository("rich").version()
    assert set(latest.commits) == (kept - {labels["C4"]}) | {child}
    assert set(latest.deltas) == {labels["C5"]}
    # objects after reclaim: exactly what the remaining commits reach
    await manager.reclaim(grace_seconds=0)
    stored = await stored_objects(manager)
    expected = reachable_all(rich_repo.path, kept - {labels["C4"]})
    assert expected <= stored
    assert {(t, c) for t, c in stored - expected} <= {
        split_key(k) for k in (await manager.closure(child)).sizes
    }
    assert (await manager.fsck("rich")).ok
    out = tmp_path / "export"
    await export_version(manager, "rich", out)
    subprocess.run(["ostree", "fsck", f"--repo={out}"], check=True, capture_output=True)


async def test_depth_applies_to_what_an_import_brings(
    manager: RepositoryManager, rich_repo: RepoInfo
) -> None:
    await manager.create_repository("rich", settings={"retention": {"depth": 0}})
    record = await import_directory(manager, "rich", rich_repo.path)
    assert record is not None
    assert set(record.commits) == set(rich_repo.refs.values())
    assert set(record.deltas) == {rich_repo.labels["C5"]}  # only from scratch to a head


def test_prune_history_is_idempotent_and_keeps_an_untouched_summary(
    rich_repo: RepoInfo,
) -> None:
    from ostree_repo.repository.records import CommitInfo, VersionRecord

    a, b, c = "a" * 64, "b" * 64, "c" * 64
    info = {
        x: CommitInfo(parent=p, timestamp=0, subject="", size=0, root_tree=a, root_meta=a)
        for x, p in ((a, None), (b, a), (c, b))
    }
    record = VersionRecord(
        "r", 1, 0.0, refs={"main": c}, commits=info, summary="s" * 64, summary_sig="t" * 64
    )
    once = prune_history(record, 1)
    assert set(once.commits) == {b, c}
    assert (once.summary, once.summary_sig) == ("s" * 64, "t" * 64)  # no delta changed
    assert prune_history(once, 1) == once
    assert prune_history(record, 5) is record


async def test_retention_runs_again_on_a_lost_race() -> None:
    url = f"memory://{uuid.uuid4().hex}"
    async with RepositoryManager.open(url) as manager:
        await manager.create_repository("r", settings={"retention": {"versions": 1, "depth": 0}})
        await _commit(manager, "r", b"v2")
        # a writer without hooks takes a number while ours prepares: ours runs again
        from ostree_repo.repository import PublishHook, Repository, VersionRecord

        other = Repository(manager.store, "r")
        taken: list[int] = []

        class Interloper(PublishHook):
            async def prepare(
                self, repo: Repository, base: VersionRecord, draft: VersionRecord
            ) -> VersionRecord:
                if not taken:
                    record = await other.publish(lambda b: _with_ref(b, "other"), {"kind": "test"})
                    assert record is not None
                    taken.append(record.number)
                return draft

        manager.hooks = (*manager.hooks, Interloper())
        head = await _commit(manager, "r", b"v3")
        repo = manager.repository("r")
        latest = await repo.version()
        assert taken == [3] and latest.number == 4
        assert set(latest.refs) == {"main", "other"}
        assert set(latest.commits) == {head, latest.refs["other"]}
        assert await repo.version_numbers() == [0, 4]


async def _with_ref(base: Any, ref: str) -> Any:
    import attrs

    return attrs.evolve(base, refs={**base.refs, ref: base.refs["main"]})
