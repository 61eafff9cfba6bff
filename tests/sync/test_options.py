"""Typed options: ``RemoteOptions``, the same fields as keywords of ``sync_repository``,
and the blocking facade's ``sync`` with the same signature."""

from __future__ import annotations

import inspect
import typing
from pathlib import Path

import attrs
import pytest

from ostree_repo.blocking import Manager
from ostree_repo.repository import RepositoryManager
from ostree_repo.sync import (
    InvalidOptionsError,
    RemoteKeywords,
    RemoteOptions,
    SyncError,
    sync_repository,
)

pytestmark = pytest.mark.anyio


def test_the_keywords_are_the_options_fields() -> None:
    fields = {f.name: f.type for f in attrs.fields(RemoteOptions)}
    keywords = typing.get_type_hints(RemoteKeywords)
    assert set(keywords) == set(fields)
    assert RemoteOptions(headers=None).headers == {}  # (None is accepted as before)


@pytest.mark.parametrize(
    "bad",
    [{"concurrency": 0}, {"connections": 0}, {"timeout": 0}, {"retries": -1}, {"backoff": -1}],
)
def test_options_that_cannot_work_are_refused(bad: dict[str, int]) -> None:
    with pytest.raises(InvalidOptionsError):
        RemoteOptions(**bad)  # type: ignore[arg-type]
    assert issubclass(InvalidOptionsError, SyncError)


async def test_options_and_keywords_together(fs_manager: RepositoryManager, rich_url: str) -> None:
    options = RemoteOptions(concurrency=2, connections=1, retries=1)
    result = await sync_repository(
        fs_manager, "a", rich_url, depth=-1, options=options, connections=2, max_backoff=1.0
    )
    assert result.version is not None and result.retries == 0
    with pytest.raises(InvalidOptionsError):
        await sync_repository(fs_manager, "b", rich_url, options=options, concurrency=0)
    assert "b" not in await fs_manager.repositories()  # refused before anything was made


def test_blocking_sync_takes_the_same_arguments(rich_url: str, tmp_path: Path) -> None:
    with Manager(str(tmp_path / "store")) as manager:
        result = manager.sync("r", rich_url, depth=-1, connections=2, lean=True)
        assert result.version is not None and result.objects_fetched > 0
        again = manager.sync("r", rich_url, depth=-1, options=RemoteOptions(concurrency=4))
        assert again.version is None
        parameters = list(inspect.signature(manager.sync).parameters)
    assert parameters[:3] == ["name", "url", "include"] and "options" in parameters
    assert Manager.sync.__doc__ == sync_repository.__doc__
