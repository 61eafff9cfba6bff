"""Sync against a server that fails: retries, clear errors, nothing corrupt, resumable."""

from __future__ import annotations

import itertools

import pytest

from oracle.ostree_cli import RepoInfo
from ostree_repo.objects import ObjectType, parse_object_path
from ostree_repo.repository import RepositoryManager
from ostree_repo.sync import RemoteChecksumError, RemoteError, sync_repository

from .servers import FaultServer

pytestmark = pytest.mark.anyio

FAST = {"retries": 4, "backoff": 0.001}


async def stored(manager: RepositoryManager) -> set[tuple[str, ObjectType]]:
    return {key async for key in manager.store.list_objects()}


async def test_flaky_server_completes_with_retries(
    fs_manager: RepositoryManager, rich_repo: RepoInfo
) -> None:
    faults = itertools.cycle(["500", "reset", "truncate", "429", "ok", "ok"])

    def policy(path: str, seen: int) -> str:
        return next(faults) if seen == 0 else "ok"

    async with FaultServer(rich_repo.path, policy).running() as server:
        result = await sync_repository(fs_manager, "flaky", server.url, depth=-1, **FAST)
    assert result.version is not None and result.retries > 50
    assert result.signed and set(result.version.deltas) == set(rich_repo.deltas)
    assert (await fs_manager.fsck("flaky")).ok


@pytest.mark.parametrize(
    ("suffix", "error"), [(".dirtree", RemoteChecksumError), (".filez", RemoteError)]
)
async def test_corrupt_object_is_reported_and_not_stored(
    fs_manager: RepositoryManager, rich_repo: RepoInfo, suffix: str, error: type[Exception]
) -> None:
    # a metadata object then fails its checksum; a .filez usually no longer inflates
    victim = next(p for p in sorted(server_paths(rich_repo)) if p.endswith(suffix))

    def policy(path: str, seen: int) -> str:
        return "corrupt" if path == victim else "ok"

    async with FaultServer(rich_repo.path, policy).running() as server:
        with pytest.raises(error) as caught:
            await sync_repository(fs_manager, "bad", server.url, depth=-1, **FAST)
        assert server.requests[victim] == FAST["retries"] + 1
    message = str(caught.value)
    checksum, objtype = parse_object_path(victim)
    assert victim in message and checksum in message
    assert (checksum, objtype) not in await stored(fs_manager)
    assert await fs_manager.repository("bad").version_numbers() == [0]  # no version made


async def test_stalled_request_times_out_and_is_retried(
    fs_manager: RepositoryManager, rich_repo: RepoInfo
) -> None:
    victims = {p for p in server_paths(rich_repo) if p.endswith(".dirtree")}

    def policy(path: str, seen: int) -> str:
        return "stall" if path in victims and seen == 0 else "ok"

    async with FaultServer(rich_repo.path, policy).running() as server:
        result = await sync_repository(
            fs_manager, "stall", server.url, include=["main"], timeout=0.5, **FAST
        )
    assert result.version is not None and result.retries >= 1
    assert (await fs_manager.fsck("stall")).ok


async def test_faults_in_batches_of_content_objects(
    fs_manager: RepositoryManager, rich_repo: RepoInfo
) -> None:
    # content objects go in pipelined batches; each fault stops a batch, and what it
    # left undone is fetched one by one (a stall times out first)
    files = sorted(p for p in server_paths(rich_repo) if p.endswith(".filez"))
    actions = itertools.cycle(["ok"] * 7 + ["500", "429", "reset", "truncate", "corrupt", "stall"])
    victims = {path: next(actions) for path in files}

    def policy(path: str, seen: int) -> str:
        return victims.get(path, "ok") if seen == 0 else "ok"

    async with FaultServer(rich_repo.path, policy).running() as server:
        result = await sync_repository(fs_manager, "batches", server.url, timeout=0.5, **FAST)
        requests = dict(server.requests)
    assert result.version is not None
    assert (await fs_manager.fsck("batches")).ok
    fetched = {path: action for path, action in victims.items() if path in requests}
    faulty = [path for path, action in fetched.items() if action != "ok"]
    assert len(faulty) >= 5 and all(requests[path] >= 2 for path in faulty)
    # most content objects that never failed were fetched once, in a batch
    once = sum(requests[path] == 1 for path, action in fetched.items() if action == "ok")
    assert once >= len(fetched) // 4


async def test_missing_content_object_in_a_batch_is_reported(
    fs_manager: RepositoryManager, rich_repo: RepoInfo
) -> None:
    victim = sorted(p for p in server_paths(rich_repo) if p.endswith(".filez"))[3]

    def policy(path: str, seen: int) -> str:
        return "404" if path == victim else "ok"

    async with FaultServer(rich_repo.path, policy).running() as server:
        with pytest.raises(RemoteError) as caught:
            await sync_repository(fs_manager, "missing", server.url, **FAST)
        assert server.requests[victim] == 2  # in a batch, then on its own
    assert caught.value.status == 404 and victim in str(caught.value)
    assert "not found" in str(caught.value)


async def test_persistent_failure_then_resume(
    fs_manager: RepositoryManager, rich_repo: RepoInfo
) -> None:
    files = sorted(p for p in server_paths(rich_repo) if p.endswith(".filez"))
    broken = set(files[len(files) // 2 :: 7])

    def failing(path: str, seen: int) -> str:
        return "500" if path in broken else "ok"

    async with FaultServer(rich_repo.path, failing).running() as server:
        with pytest.raises(RemoteError) as caught:
            await sync_repository(fs_manager, "resume", server.url, depth=-1, **FAST)
    assert caught.value.status == 500
    assert "Authorization" not in str(caught.value)
    assert await fs_manager.repository("resume").version_numbers() == [0]
    before = await stored(fs_manager)
    # what the failed run fetched was kept (flushed from its staging), content included
    assert any(objtype is ObjectType.FILE for _, objtype in before)

    async with FaultServer(rich_repo.path, lambda p, s: "ok").running() as server:
        result = await sync_repository(fs_manager, "resume", server.url, depth=-1, **FAST)
        refetched = [
            p for p in server.requests
            if p.startswith("objects/") and p.endswith((".filez", ".dirtree", ".dirmeta"))
            and parse_object_path(p) in before
        ]  # fmt: skip
    assert result.version is not None
    assert refetched == []  # nothing stored by the failed run is downloaded again
    assert result.objects_present > 0
    assert (await fs_manager.fsck("resume")).ok


async def test_headers_are_sent_but_never_shown(
    fs_manager: RepositoryManager, rich_repo: RepoInfo
) -> None:
    async with FaultServer(rich_repo.path, lambda p, s: "404").running() as server:
        with pytest.raises(RemoteError) as caught:
            await sync_repository(
                fs_manager, "h", server.url, include=["main"],
                headers={"Authorization": "Bearer s3cr3t"}, **FAST,
            )  # fmt: skip
    assert "s3cr3t" not in str(caught.value) and caught.value.status == 404


def server_paths(rich: RepoInfo) -> list[str]:
    return [
        p.relative_to(rich.path).as_posix()
        for p in (rich.path / "objects").glob("*/*")
        if p.is_file()
    ]
