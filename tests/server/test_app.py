"""The application in its settings: mounted under a prefix, read-only, integrity of what
it sends, token callables, and the version cache's rules (fake clock, no sleeps)."""

from __future__ import annotations

import contextlib
import os
import shutil
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest

from oracle.ostree_cli import fsck, ostree, read_refs
from ostree_repo.importing import import_directory
from ostree_repo.repository import RepositoryManager
from ostree_repo.repository.layout import blob_path
from ostree_repo.server import create_app
from ostree_repo.server._versions import VersionCache
from ostree_repo.store import FilesystemStore

from ._servers import LogCapture, ThreadedServer
from .conftest import Served


def snapshot(root: Path) -> dict[str, tuple[int, int, int]]:
    """(size, mtime_ns, inode) of every file and directory under ``root``."""
    found = {}
    for path in [root, *root.rglob("*")]:
        st = path.lstat()
        found[path.relative_to(root).as_posix()] = (st.st_size, st.st_mtime_ns, st.st_ino)
    return found


class ReadOnlyStore(FilesystemStore):
    """A filesystem store that fails every write (and counts the attempts)."""

    attempts = 0

    async def _put(self, *args: Any, **kwargs: Any) -> str | None:
        ReadOnlyStore.attempts += 1
        raise AssertionError("the server wrote to the store")

    async def _replace(self, *args: Any, **kwargs: Any) -> str:
        ReadOnlyStore.attempts += 1
        raise AssertionError("the server wrote to the store")

    async def _delete(self, *args: Any, **kwargs: Any) -> None:
        ReadOnlyStore.attempts += 1
        raise AssertionError("the server deleted from the store")


def test_never_writes_to_the_store(served: Served, tmp_path: Path) -> None:
    before = snapshot(served.store)
    store = ReadOnlyStore(served.store, create=False)
    app = create_app(store)
    with ThreadedServer(app, context=lambda: store) as running:
        repo = tmp_path / "client"
        ostree("init", "--mode=archive", repo=repo)
        ostree("remote", "add", "--no-gpg-verify", "origin", f"{running.url}/rich/", repo=repo)
        ostree("pull", "--mirror", "--depth=-1", "origin", repo=repo)
        with httpx.Client(base_url=running.url) as http:
            for path in ("/rich/summary", "/nothing/config", "/rich/versions/1/config"):
                http.get(path)
                http.head(path)
    fsck(repo)
    assert ReadOnlyStore.attempts == 0
    assert snapshot(served.store) == before


def _mounted_app(inner: Any) -> Any:
    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        # what Starlette's Mount("/ostree", app=inner) does: root_path grows, path stays whole
        if scope["type"] == "http" and scope["path"].startswith("/ostree/"):
            scope = dict(scope, root_path=scope.get("root_path", "") + "/ostree")
            await inner(scope, receive, send)
        elif scope["type"] == "lifespan":
            await inner(scope, receive, send)
        else:
            await send({"type": "http.response.start", "status": 418, "headers": []})
            await send({"type": "http.response.body", "body": b""})

    return app


def test_mounted_under_a_prefix(served: Served, tmp_path: Path) -> None:
    app = _mounted_app(create_app(str(served.store)))
    with ThreadedServer(app) as running:
        repo = tmp_path / "client"
        ostree("init", "--mode=archive", repo=repo)
        url = f"{running.url}/ostree/hist/versions/1/"
        ostree("remote", "add", "--no-gpg-verify", "origin", url, repo=repo)
        ostree("pull", "--mirror", "origin", repo=repo)
        assert read_refs(repo)[0] == {"main": served.rich.main[2]}
        with httpx.Client(base_url=running.url) as http:
            assert http.get("/ostree/rich/config").status_code == 200
            assert http.get("/rich/config").status_code == 418  # not the app's
            assert http.get("/ostree/ostree/rich/config").status_code == 404


def test_behind_a_proxy_that_strips_the_prefix(served: Served) -> None:
    # uvicorn --root-path: the path the app sees includes the prefix it was mounted at
    app = create_app(str(served.store))
    server = ThreadedServer(app)
    server.server.config.root_path = "/mirror"
    with server as running, httpx.Client(base_url=running.url) as http:
        assert http.get("/rich/config").status_code == 200


@pytest.fixture
def small_store(served: Served, tmp_path: Path) -> Path:
    """A private store holding the collection repo as ``coll``."""
    store = tmp_path / "store"

    async def build() -> None:
        async with RepositoryManager.open(str(store)) as m:
            await import_directory(m, "coll", served.collection.path)

    anyio.run(build)
    return store


def test_corrupt_blob_is_never_sent_whole(small_store: Path) -> None:
    async def summary_digest() -> str:
        async with RepositoryManager.open(str(small_store)) as m:
            digest = (await m.repository("coll").version()).summary
            assert digest is not None
            return digest

    digest = anyio.run(summary_digest)
    blob = small_store / blob_path(digest)
    data = bytearray(blob.read_bytes())
    data[-1] ^= 0xFF
    os.chmod(blob, 0o644)
    blob.write_bytes(bytes(data))  # same length, wrong bytes
    streamed = create_app(str(small_store), inline_read_max=0)  # every file streamed
    with (
        LogCapture("ostree_repo.server") as logs,
        ThreadedServer(create_app(str(small_store))) as running,
        ThreadedServer(streamed) as streaming,
        httpx.Client(base_url=running.url) as http,
        httpx.Client(base_url=streaming.url) as streamed_http,
    ):
        # small files are checked before the answer starts
        assert http.get("/coll/summary").status_code == 500
        # streamed ones before their last byte: the client sees a truncated response
        with pytest.raises(httpx.RemoteProtocolError):
            streamed_http.get("/coll/summary")
        for client in (http, streamed_http):
            assert client.get("/coll/config").status_code == 200  # the server goes on
            assert client.get("/coll/summary", headers={"Range": "bytes=0-3"}).status_code == 206
    assert any("checksum mismatch" in line for line in logs.lines)


def test_missing_object_is_a_server_error(small_store: Path) -> None:
    commit = next((small_store / "objects").rglob("*.dirtree"))
    url = "/coll/" + commit.relative_to(small_store).as_posix()
    commit.unlink()
    with (
        LogCapture("ostree_repo.server"),
        ThreadedServer(create_app(str(small_store))) as running,
        httpx.Client(base_url=running.url) as http,
    ):
        assert http.get(url).status_code == 500  # libostree retries 500s


def test_small_objects_read_at_once_are_what_the_general_path_sends(served: Served) -> None:
    """An unconditional GET of a small object takes the one-pread path; with a condition
    that holds (or as streamed), the same object takes the general one: same answer."""
    streamed = create_app(str(served.store), inline_read_max=0)
    objects = [p for p in (served.rich.path / "objects").rglob("*") if p.is_file()][:60]
    with (
        ThreadedServer(create_app(str(served.store))) as running,
        ThreadedServer(streamed) as streaming,
        httpx.Client(base_url=running.url) as http,
        httpx.Client(base_url=streaming.url) as streamed_http,
    ):
        for path in objects:
            url = "/rich/" + path.relative_to(served.rich.path).as_posix()
            fast = http.get(url)
            general = http.get(url, headers={"If-None-Match": '"other"'})
            other = streamed_http.get(url)
            assert fast.status_code == general.status_code == other.status_code == 200, url
            assert fast.content == general.content == other.content == path.read_bytes()
            headers = ("content-length", "content-type", "etag", "last-modified", "cache-control")
            for name in headers:
                assert fast.headers[name] == general.headers[name] == other.headers[name]
            assert fast.headers["accept-ranges"] == "bytes"


def test_an_object_of_another_size_than_its_closure_is_a_server_error(small_store: Path) -> None:
    dirmeta = next((small_store / "objects").rglob("*.dirmeta"))
    url = "/coll/" + dirmeta.relative_to(small_store).as_posix()
    data = dirmeta.read_bytes()
    os.chmod(dirmeta, 0o644)
    with (
        LogCapture("ostree_repo.server") as logs,
        ThreadedServer(create_app(str(small_store))) as running,
        httpx.Client(base_url=running.url) as http,
    ):
        assert http.head(url).headers["content-length"] == str(len(data))
        dirmeta.write_bytes(data + b"x")  # grown
        assert http.get(url).status_code == 500
        dirmeta.write_bytes(data[:-1])  # shrunk
        assert http.get(url).status_code == 500
        dirmeta.write_bytes(data)
        assert http.get(url).content == data
    assert any("closure records" in line for line in logs.lines)


@pytest.mark.anyio
async def test_token_callables(served: Served) -> None:
    asked: list[str] = []

    async def tokens(repository: str) -> list[str] | None:
        asked.append(repository)
        return ["one", "two"] if repository == "rich" else None

    app = create_app(str(served.store), tokens=tokens)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
        assert (await http.get("/rich/config")).status_code == 401
        assert (await http.get("/rich/config", auth=("u", "two"))).status_code == 200
        assert (await http.get("/rich/config", auth=("u", "three"))).status_code == 403
        assert (await http.get("/other/config")).status_code == 200
    await app.aclose()
    assert set(asked) == {"rich", "other"}
    wildcard = create_app(str(served.store), tokens={"*": "all", "other": "mine", "hist": []})
    transport = httpx.ASGITransport(app=wildcard)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
        assert (await http.get("/rich/config", auth=("u", "all"))).status_code == 200
        assert (await http.get("/other/config", auth=("u", "all"))).status_code == 403
        assert (await http.get("/other/config", auth=("u", "mine"))).status_code == 200
        assert (await http.get("/hist/config")).status_code == 401  # locked: no token opens it
        assert (await http.get("/hist/config", auth=("u", "all"))).status_code == 403
    await wildcard.aclose()


# -- the version cache -------------------------------------------------------------------


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@contextlib.asynccontextmanager
async def manager_copy(served: Served, tmp_path: Path) -> AsyncIterator[RepositoryManager]:
    """A writable copy of the session store."""
    copy = tmp_path / "store"
    await anyio.to_thread.run_sync(lambda: shutil.copytree(served.store, copy, symlinks=True))
    async with RepositoryManager.open(str(copy)) as m:
        yield m


@pytest.mark.anyio
async def test_latest_and_deleted_versions_are_rechecked(served: Served, tmp_path: Path) -> None:
    async with manager_copy(served, tmp_path) as m:
        clock = Clock()
        cache = VersionCache(m.store, latest_ttl=1.0, version_ttl=2.0, clock=clock)
        first = await cache.version("other", None)
        assert first is not None and first.record.number == 1
        assert await cache.version("other", 1) is first  # shared with the pinned lookup
        new = await m.copy("rich", "other", refs=["tombstone-demo"])
        assert new is not None
        assert await cache.version("other", None) is first  # within the time-to-live
        clock.now += 1.01
        latest = await cache.version("other", None)
        assert latest is not None and latest.record.number == new.number
        await m.repository("other").delete_version(1)
        assert await cache.version("other", 1) is first
        clock.now += 2.01
        assert await cache.version("other", 1) is None
        assert await cache.version("nobody", None) is None
        await m.create_repository("nobody")
        assert await cache.version("nobody", None) is None
        clock.now += 1.01
        empty = await cache.version("nobody", None)
        assert empty is not None and empty.record.number == 0


@pytest.mark.anyio
async def test_object_sets_are_shared_bounded_and_loaded_once(served: Served) -> None:
    async with RepositoryManager.open(str(served.store), create=False) as m:
        cache = VersionCache(m.store)
        rich1, rich2 = await cache.version("rich", 1), await cache.version("rich", 2)
        assert rich1 is not None and rich2 is not None
        results = []

        async def load() -> None:
            assert rich1 is not None
            results.append(await cache.objects(rich1))

        async with anyio.create_task_group() as tg:
            for _ in range(20):
                tg.start_soon(load)
        assert cache.loads == 1 and all(r is results[0] for r in results)
        # version 2 differs only in its summary: same commits, same object set
        assert await cache.objects(rich2) is results[0]
        assert cache.loads == 1
        expected = await m.version_objects(rich1.record)
        assert results[0] == expected
        small = VersionCache(m.store, max_objects=len(expected) + 10)
        other = await small.version("other", None)
        assert other is not None
        await small.objects(rich1)
        await small.objects(other)  # over the bound: rich's set is dropped
        await small.objects(other)
        assert small.loads == 2
        await small.objects(rich1)
        assert small.loads == 3
