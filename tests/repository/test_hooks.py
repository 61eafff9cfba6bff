"""Repository settings and publish hooks: order, retries, what configure does and refuses."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Any

import attrs
import pytest

from ostree_repo.builder import commit_tree, tree_from_mapping
from ostree_repo.errors import NotFoundError
from ostree_repo.repository import (
    PublishHook,
    Repository,
    RepositoryManager,
    SettingsError,
    VersionRecord,
)

pytestmark = pytest.mark.anyio


class Recorder(PublishHook):
    """Owns section ``colour``; records every call and stamps the draft's settings."""

    section = "colour"

    def __init__(self) -> None:
        self.calls: list[tuple[str, int, int]] = []
        self.on_prepare: Any = None

    def validate(self, value: Any) -> Any:
        if value not in ("red", "green"):
            raise SettingsError(f"colour must be red or green, not {value!r}")
        return value

    async def prepare(
        self, repo: Repository, base: VersionRecord, draft: VersionRecord
    ) -> VersionRecord:
        self.calls.append(("prepare", base.number, len(draft.commits)))
        if self.on_prepare is not None:
            action, self.on_prepare = self.on_prepare, None
            await action()
        return draft

    async def seal(
        self, repo: Repository, base: VersionRecord, record: VersionRecord
    ) -> VersionRecord:
        assert record.summary is not None  # sealed after the summary is made
        self.calls.append(("seal", base.number, record.number))
        return attrs.evolve(record, action={**record.action, "sealed": True})

    async def published(self, repo: Repository, record: VersionRecord) -> None:
        self.calls.append(("published", record.base or 0, record.number))


@pytest.fixture
def hook() -> Recorder:
    return Recorder()


@pytest.fixture
async def manager(hook: Recorder) -> AsyncIterator[RepositoryManager]:
    async with RepositoryManager.open(f"memory://{uuid.uuid4().hex}", hooks=[hook]) as m:
        yield m


async def _commit(manager: RepositoryManager, name: str, content: bytes) -> VersionRecord:
    tree = tree_from_mapping({"etc/file": content})
    _, record = await commit_tree(manager, name, tree, ref="main", subject="test")
    assert record is not None
    return record


async def test_hooks_run_in_order_on_every_version(
    manager: RepositoryManager, hook: Recorder
) -> None:
    await manager.create_repository("r")
    record = await _commit(manager, "r", b"1")
    assert hook.calls == [("prepare", 0, 1), ("seal", 0, 1), ("published", 0, 1)]
    assert record.action["sealed"] is True
    stored = await manager.repository("r").version(1)
    assert stored.action["sealed"] is True


async def test_a_change_that_changes_nothing_runs_no_hook(
    manager: RepositoryManager, hook: Recorder
) -> None:
    await manager.create_repository("r")
    await _commit(manager, "r", b"1")
    hook.calls.clear()
    assert await manager.configure("r", {}) is None
    assert hook.calls == []


async def test_a_lost_race_runs_the_hooks_again_on_the_new_latest(
    manager: RepositoryManager, hook: Recorder
) -> None:
    await manager.create_repository("r")
    await _commit(manager, "r", b"1")
    hook.calls.clear()
    # while the first attempt prepares, another writer (no hooks) takes version 2
    other = Repository(manager.store, "r")

    async def take_number() -> None:
        async def change(base: VersionRecord) -> VersionRecord:
            return attrs.evolve(base, refs={**base.refs, "other": base.refs["main"]})

        assert await other.publish(change) is not None

    hook.on_prepare = take_number
    record = await _commit(manager, "r", b"2")
    assert record.number == 3
    assert hook.calls == [
        ("prepare", 1, 2),
        ("seal", 1, 2),  # lost: version 2 was taken meanwhile
        ("prepare", 2, 2),
        ("seal", 2, 3),
        ("published", 2, 3),
    ]
    assert set(record.refs) == {"main", "other"}


async def test_configure_makes_a_version_that_later_versions_carry(
    manager: RepositoryManager,
) -> None:
    await manager.create_repository("r")
    configured = await manager.configure("r", {"colour": "red"})
    assert configured is not None and configured.number == 1
    assert configured.settings == {"colour": "red"}
    assert configured.action == {"kind": "configure", "sections": ["colour"], "sealed": True}
    assert await manager.configure("r", {"colour": "red"}) is None  # nothing changed
    record = await _commit(manager, "r", b"1")
    assert record.settings == {"colour": "red"}
    reread = await manager.repository("r").version(record.number)
    assert reread.settings == {"colour": "red"}
    removed = await manager.configure("r", {"colour": None})
    assert removed is not None and removed.settings == {}
    assert removed.refs == record.refs


async def test_configure_refuses_unknown_sections_and_bad_values(
    manager: RepositoryManager,
) -> None:
    await manager.create_repository("r")
    with pytest.raises(SettingsError, match=r"unknown repository setting 'size' \(known: colour\)"):
        await manager.configure("r", {"size": 3})
    with pytest.raises(SettingsError, match="colour must be red or green"):
        await manager.configure("r", {"colour": "blue"})
    assert await manager.repository("r").version_numbers() == [0]


async def test_create_with_settings_checks_them_before_creating(
    manager: RepositoryManager,
) -> None:
    with pytest.raises(SettingsError):
        await manager.create_repository("bad", settings={"colour": "blue"})
    assert await manager.repositories() == []
    repo = await manager.create_repository("good", settings={"colour": "green"})
    assert (await repo.version()).settings == {"colour": "green"}
    with pytest.raises(NotFoundError):
        await manager.configure("missing", {"colour": "red"})


async def test_settings_round_trip_and_old_records_read_empty() -> None:
    record = VersionRecord("r", 1, 1.0, settings={"b": {"x": 1}, "a": [1, 2]})
    assert VersionRecord.from_bytes(record.to_bytes()) == record
    old = record.to_bytes().replace(b',"settings":{"a":[1,2],"b":{"x":1}}', b"")
    assert b"settings" not in old
    assert VersionRecord.from_bytes(old).settings == {}


def test_the_blocking_facade_configures(hook: Recorder) -> None:
    from ostree_repo.blocking import Manager

    with Manager(f"memory://{uuid.uuid4().hex}", hooks=[hook]) as manager:
        manager.create_repository("r", settings={"colour": "red"})
        record = manager.configure("r", {"colour": "green"})
        assert record is not None and record.settings == {"colour": "green"}
        assert manager.version("r").settings == {"colour": "green"}


async def test_imports_run_the_managers_hooks(
    manager: RepositoryManager, hook: Recorder, tmp_path: Any
) -> None:
    from ostree_repo.builder.archive import write_commit_archive
    from ostree_repo.importing.archive import import_archive

    await manager.create_repository("src")
    await _commit(manager, "src", b"one")
    await write_commit_archive(manager, "src", tmp_path / "a.tar", ref="main")
    hook.calls.clear()
    await manager.create_repository("dst")
    record = await import_archive(manager, "dst", tmp_path / "a.tar")
    assert record is not None
    assert record.action.get("sealed") is True
    assert [c[0] for c in hook.calls] == ["prepare", "seal", "published"]
