"""The lean HTTP/1.1 client against scripted loopback servers (real sockets, no mocks)."""

from __future__ import annotations

from typing import Any

import pytest

from ostree_repo.sync import _h1client as http1
from ostree_repo.sync.remote import Remote, RemoteOptions

from .servers import FaultServer, Request, ScriptServer, response

pytestmark = pytest.mark.anyio


@pytest.fixture(
    params=[
        pytest.param(("asyncio", {}), id="asyncio"),
        pytest.param(("asyncio", {"use_uvloop": True}), id="uvloop"),
    ]
)
def anyio_backend(request: pytest.FixtureRequest) -> tuple[str, dict[str, bool]]:
    """The default event loop and uvloop (whose transports are not asyncio's classes)."""
    if request.param[1]:
        pytest.importorskip("uvloop")
    backend: tuple[str, dict[str, bool]] = request.param
    return backend


@pytest.fixture(autouse=True, params=["native", "streams"])
def transport(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Both transports: asyncio's protocol API, and anyio streams (what other anyio
    backends use; the trio installed here is too old for anyio's sockets)."""
    kind: str = request.param
    if kind == "streams":
        original = http1.Client.__init__

        def init(self: http1.Client, *args: Any, **kwargs: Any) -> None:
            original(self, *args, **{**kwargs, "native": False})

        monkeypatch.setattr(http1.Client, "__init__", init)
    return kind


def body_of(path: str) -> bytes:
    return f"<{path}>".encode() * 3


def plain(request: Request) -> list[object]:
    return [response(body_of(request.path))]


async def get(client: http1.Client, path: str, limit: int = 1 << 20) -> tuple[int, bytes]:
    async with client.stream(path) as r:
        return r.status, await r.read(limit)


async def get_all(client: http1.Client, paths: list[str]) -> dict[str, tuple[int, bytes]]:
    import anyio

    results: dict[str, tuple[int, bytes]] = {}

    async def one(path: str) -> None:
        results[path] = await get(client, path)

    async with anyio.create_task_group() as tg:
        for path in paths:
            tg.start_soon(one, path)
    return results


async def test_pipelined_responses_split_at_every_byte() -> None:
    # after the first request (which shows that the server keeps connections open), the
    # server waits for 4 requests before it answers (so they must have been pipelined),
    # then sends each response one byte per write
    def script(request: Request) -> list[object]:
        first = [("gather", 4)] if request.index % 4 == 1 else []
        return [*first, ("bytewise", response(body_of(request.path)))]

    paths = [f"objects/{i:02x}/x.filez" for i in range(16)]
    with ScriptServer(script) as server:
        client = http1.Client(server.url, connections=1, pipeline=4, timeout=10)
        try:
            assert await get(client, "config") == (200, body_of("repo/config"))
            results = await get_all(client, paths)
        finally:
            await client.aclose()
    assert results == {p: (200, body_of("repo/" + p)) for p in paths}
    assert server.connections == 1 and client.resent == 0


async def test_chunked_bodies_with_extensions_and_trailers() -> None:
    chunked = (
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
        b"5;name=value\r\nhello\r\n1\r\n \r\nA\r\n0123456789\r\n0\r\nX-Trailer: t\r\n\r\n"
    )
    with ScriptServer(lambda r: [("bytewise", chunked)]) as server:
        client = http1.Client(server.url, connections=1, pipeline=4)
        try:
            for _ in range(3):  # the connection stays usable after each
                async with client.stream("a") as r:
                    assert r.length is None and r.body is None
                    assert b"".join([c async for c in r.chunks()]) == b"hello 0123456789"
            assert await get(client, "b") == (200, b"hello 0123456789")
        finally:
            await client.aclose()
    assert server.connections == 1


async def test_bad_chunk_size_is_a_protocol_error() -> None:
    bad = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n"
    with ScriptServer(lambda r: [bad]) as server:
        client = http1.Client(server.url)
        try:
            with pytest.raises(http1.HTTPError, match="chunk size"):
                await get(client, "a")
        finally:
            await client.aclose()


async def test_connection_close_mid_pipeline_resends_the_rest() -> None:
    # the first connection answers two of the pipelined requests, the second one with
    # "Connection: close", and goes away; the others are sent again elsewhere
    def script(request: Request) -> list[object]:
        if request.conn == 0 and request.index == 0:
            return [("gather", 6), response(body_of(request.path))]
        if request.conn == 0 and request.index == 1:
            return [response(body_of(request.path), headers="Connection: close\r\n"), "close"]
        return plain(request)

    paths = [f"p{i}" for i in range(6)]
    with ScriptServer(script) as server:
        client = http1.Client(server.url, connections=1, pipeline=6, timeout=10)
        client.keepalive = True  # pipeline from the first request
        try:
            results = await get_all(client, paths)
        finally:
            await client.aclose()
    assert results == {p: (200, body_of("repo/" + p)) for p in paths}
    assert client.resent == 4 and server.connections >= 2


async def test_http10_reply_without_length_reads_to_close() -> None:
    def script(request: Request) -> list[object]:
        return [b"HTTP/1.0 200 OK\r\nServer: old\r\n\r\n" + body_of(request.path), "close"]

    with ScriptServer(script) as server:
        client = http1.Client(server.url, connections=2, pipeline=4)
        try:
            results = await get_all(client, ["a", "b", "c"])
        finally:
            await client.aclose()
    assert results == {p: (200, body_of("repo/" + p)) for p in "abc"}
    assert client.keepalive is False
    assert server.connections == 3  # one request per connection, none pipelined


async def test_truncated_body_fails_and_the_next_request_reconnects() -> None:
    def script(request: Request) -> list[object]:
        if request.path.endswith("cut"):
            return [response(b"0123456789")[:-4], "close"]
        return plain(request)

    with ScriptServer(script) as server:
        client = http1.Client(server.url, connections=1)
        try:
            with pytest.raises(http1.HTTPError, match="truncated"):
                await get(client, "cut")
            assert await get(client, "ok") == (200, body_of("repo/ok"))
        finally:
            await client.aclose()


async def test_truncated_large_body_while_streaming() -> None:
    big = bytes(range(256)) * 8192  # 2 MiB: streamed, not read with the head
    with ScriptServer(lambda r: [response(big)[: 1 << 20], "close"]) as server:
        client = http1.Client(server.url, eager_limit=64 * 1024)
        try:
            async with client.stream("big") as r:
                assert r.length == len(big) and r.body is None
                with pytest.raises(http1.HTTPError, match="truncated"):
                    async for _ in r.chunks():
                        pass
        finally:
            await client.aclose()


async def test_oversized_head_is_refused() -> None:
    huge = b"HTTP/1.1 200 OK\r\n" + b"X-Pad: " + b"a" * (http1.MAX_HEAD + 10) + b"\r\n\r\n"
    with ScriptServer(lambda r: [huge]) as server:
        client = http1.Client(server.url)
        try:
            with pytest.raises(http1.HTTPError, match="head exceeds"):
                await get(client, "a")
        finally:
            await client.aclose()


@pytest.mark.parametrize(
    "head",
    [
        b"HTTP/2 200 OK\r\n\r\n",
        b"HTTP/1.1 2OO OK\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nBad Header: x\r\n\r\n",
        b"HTTP/1.1 200 OK\r\n folded: x\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nContent-Length: 3, 4\r\n\r\nabcd",
        b"HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n",
    ],
)
async def test_malformed_responses_are_protocol_errors(head: bytes) -> None:
    with ScriptServer(lambda r: [head, "close"]) as server:
        client = http1.Client(server.url)
        try:
            with pytest.raises(http1.HTTPError):
                await get(client, "a")
        finally:
            await client.aclose()


async def test_404_body_is_drained_and_the_connection_kept() -> None:
    page = b"<html>" + b"not here " * 2000 + b"</html>"

    def script(request: Request) -> list[object]:
        if request.path.endswith("missing"):
            chunked = f"{len(page):x}\r\n".encode() + page + b"\r\n0\r\n\r\n"
            return [b"HTTP/1.1 404 Not Found\r\nTransfer-Encoding: chunked\r\n\r\n" + chunked]
        return plain(request)

    with ScriptServer(script) as server:
        client = http1.Client(server.url, connections=1, eager_limit=1024)
        try:
            for _ in range(2):
                async with client.stream("missing") as r:
                    assert r.status == 404  # body not read by the caller
                assert await get(client, "there") == (200, body_of("repo/there"))
        finally:
            await client.aclose()
    assert server.connections == 1


async def test_redirect_falls_back() -> None:
    def script(request: Request) -> list[object]:
        return [response(b"moved", "302 Found", "Location: /elsewhere\r\n")]

    with ScriptServer(script) as server:
        client = http1.Client(server.url, connections=1)
        try:
            with pytest.raises(http1.FallbackError) as caught:
                await get(client, "summary")
            assert caught.value.status == 302
            with pytest.raises(http1.FallbackError):
                await get(client, "summary")
        finally:
            await client.aclose()
    assert server.connections == 1  # the redirect's body was read: connection kept


async def test_stall_times_out() -> None:
    def script(request: Request) -> list[object]:
        return ["stall"] if request.path.endswith("slow") else plain(request)

    with ScriptServer(script) as server:
        # The same timeout bounds the fast request after the stall: generous enough that a
        # loaded machine answers it in time (the stalled one never answers at all).
        client = http1.Client(server.url, timeout=2.0)
        try:
            with pytest.raises(http1.HTTPTimeoutError, match="timed out"):
                await get(client, "slow")
            assert await get(client, "fast") == (200, body_of("repo/fast"))
        finally:
            await client.aclose()


async def test_stalled_body_times_out() -> None:
    head_only = b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\npartial"
    with ScriptServer(lambda r: [head_only, "stall"]) as server:
        client = http1.Client(server.url, timeout=0.3)
        try:
            with pytest.raises(http1.HTTPTimeoutError):
                await get(client, "a")
        finally:
            await client.aclose()


async def test_headers_sent() -> None:
    with ScriptServer(plain) as server:
        client = http1.Client(
            server.url.replace("http://", "http://user:p%40ss@"),
            headers={"Authorization": "Bearer s3cr3t", "X-Custom": "yes"},
            user_agent="ostree-repo/test",
        )
        try:
            await get(client, "objects/ab/c d+e.filez")
        finally:
            await client.aclose()
    (request,) = server.requests
    assert request.method == "GET" and request.version == "HTTP/1.1"
    assert request.path == "repo/objects/ab/c%20d+e.filez"
    assert request.headers["host"] == f"127.0.0.1:{server.port}"
    assert request.headers["user-agent"] == "ostree-repo/test"
    assert request.headers["x-custom"] == "yes"
    assert request.headers["accept-encoding"] == "identity"
    # as httpx does, credentials in the URL win over an Authorization header
    assert request.headers["authorization"] == "Basic dXNlcjpwQHNz"


async def test_headers_that_cannot_be_sent_are_refused() -> None:
    with pytest.raises(ValueError):
        http1.Client("http://127.0.0.1:1/", headers={"X-Bad": "a\r\nInjected: 1"})
    with pytest.raises(ValueError):
        http1.Client("ftp://127.0.0.1/")


async def test_connect_failure_is_an_error() -> None:
    with ScriptServer(plain) as server:
        url = server.url
    client = http1.Client(url)  # nothing listens there any more
    try:
        with pytest.raises(http1.HTTPError, match="cannot connect"):
            await get(client, "a")
    finally:
        await client.aclose()


async def test_reset_under_a_reused_connection_is_resent() -> None:
    def script(request: Request) -> list[object]:
        if request.conn == 0 and request.index == 1:
            return ["reset"]
        return plain(request)

    with ScriptServer(script) as server:
        client = http1.Client(server.url, connections=1)
        try:
            assert await get(client, "a") == (200, body_of("repo/a"))
            assert await get(client, "b") == (200, body_of("repo/b"))  # sent again
        finally:
            await client.aclose()
    assert client.resent == 1 and server.connections == 2


# -- through Remote ---------------------------------------------------------------------


async def test_remote_uses_the_lean_client_for_http_and_httpx_for_redirects() -> None:
    def script(request: Request) -> list[object]:
        if request.path == "repo/summary":
            return [response(b"", "301 Moved", "Location: /repo/moved-summary\r\n")]
        return plain(request)

    with ScriptServer(script) as server:
        async with Remote(server.url, RemoteOptions(headers={"X-Token": "t0k"})) as remote:
            assert remote.lean
            assert await remote.get_bytes("config") == body_of("repo/config")
            # the redirect is followed by httpx
            assert await remote.get_bytes("summary") == body_of("repo/moved-summary")
    paths = [r.path for r in server.requests]
    assert paths == ["repo/config", "repo/summary", "repo/summary", "repo/moved-summary"]
    assert all(r.headers["x-token"] == "t0k" for r in server.requests)
    agents = {r.headers["user-agent"] for r in server.requests}
    assert len(agents) == 1 and agents.pop().startswith("ostree-repo/")


async def test_remote_falls_back_to_httpx_when_a_proxy_applies(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("HTTP_PROXY", "http://127.0.0.1:9")
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    assert not Remote("http://example.org/repo/").lean
    assert not Remote("http://example.org/", RemoteOptions(proxy="http://p:3128")).lean
    assert not Remote("http://example.org/", RemoteOptions(lean=False)).lean
    monkeypatch.setenv("NO_PROXY", "example.org")
    assert Remote("http://example.org/repo/").lean


async def test_fault_server_is_served_by_the_lean_client() -> None:
    from pathlib import Path

    async with FaultServer(Path("/nonexistent"), lambda p, s: "500").running() as server:
        remote = Remote(server.url, RemoteOptions(retries=2, backoff=0.001))
        assert remote.lean
        async with remote:
            from ostree_repo.sync import RemoteError

            with pytest.raises(RemoteError) as caught:
                await remote.get_bytes("config")
    assert caught.value.status == 500 and remote.stats.retries == 2
    assert server.requests["config"] == 3


# -- get_many: the batched fast path -------------------------------------------------


def batch_paths(n: int) -> list[str]:
    return [f"objects/{i:02x}/x.filez" for i in range(n)]


async def get_many(
    script: Any, n: int, limit: int = 1 << 20, **kwargs: Any
) -> tuple[list[tuple[int, bytes] | None], ScriptServer, tuple[int, bytes]]:
    """get_many of ``n`` paths (the server known to keep connections open), then one
    request through ``stream`` to show that the client is still sound."""
    with ScriptServer(script) as server:
        options: dict[str, Any] = {"connections": 1, "pipeline": 4, "timeout": 5, **kwargs}
        client = http1.Client(server.url, **options)
        client.keepalive = True
        try:
            results = await client.get_many(batch_paths(n), limit)
            after = await get(client, "after")
        finally:
            await client.aclose()
    return results, server, after


def ok(path: str) -> tuple[int, bytes]:
    return 200, body_of("repo/" + path)


async def test_get_many_pipelines_and_answers_in_order() -> None:
    # the server waits for 4 requests (the window) before it answers the first of each 4
    def script(request: Request) -> list[object]:
        first = [("gather", 4)] if request.index in (0, 4) else []
        return [*first, ("bytewise", response(body_of(request.path)))]

    results, server, after = await get_many(script, 10)
    assert results == [ok(p) for p in batch_paths(10)]
    assert after == (200, body_of("repo/after"))
    assert server.connections == 1


async def test_get_many_sends_no_more_once_its_budget_is_spent() -> None:
    def script(request: Request) -> list[object]:
        return [response(b"y" * 100)]

    with ScriptServer(script) as server:
        client = http1.Client(server.url, connections=1, pipeline=4, timeout=5)
        client.keepalive = True
        try:
            # 4 in flight at once; the first answer (100 bytes) sends a 5th, the second
            # spends the budget: 5 answered, 5 never sent, the connection still good
            results = await client.get_many(batch_paths(10), 1000, budget=200)
            after = await get(client, "after")
        finally:
            await client.aclose()
    assert results == [(200, b"y" * 100)] * 5 + [None] * 5
    assert len(server.requests) == 6 and after == (200, b"y" * 100)
    assert server.connections == 1


async def test_get_many_before_keepalive_is_known_does_nothing() -> None:
    with ScriptServer(plain) as server:
        client = http1.Client(server.url)
        try:
            assert await client.get_many(batch_paths(3), 1000) == [None, None, None]
            assert await client.get_many([], 1000) == []
        finally:
            await client.aclose()
    assert server.requests == []


async def test_get_many_stops_at_a_large_body() -> None:
    def script(request: Request) -> list[object]:
        if request.path.endswith("02/x.filez"):
            return [response(b"x" * 5000)]
        return plain(request)

    results, server, after = await get_many(script, 6, limit=1000)
    paths = batch_paths(6)
    assert results == [ok(paths[0]), ok(paths[1]), None, None, None, None]
    assert after == (200, body_of("repo/after"))  # on a new connection
    assert server.connections == 2


async def test_get_many_stops_at_a_chunked_body() -> None:
    chunked = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n"

    def script(request: Request) -> list[object]:
        return [chunked] if request.path.endswith("01/x.filez") else plain(request)

    results, _, after = await get_many(script, 4)
    assert results == [ok(batch_paths(4)[0]), None, None, None]
    assert after == (200, body_of("repo/after"))


async def test_get_many_stops_at_a_redirect() -> None:
    redirect = response(b"", "302 Found", "Location: /elsewhere\r\n")

    def script(request: Request) -> list[object]:
        return [redirect] if request.path.endswith("01/x.filez") else plain(request)

    results, _, after = await get_many(script, 3)
    assert results == [ok(batch_paths(3)[0]), None, None]
    assert after == (200, body_of("repo/after"))


async def test_get_many_honours_connection_close() -> None:
    def script(request: Request) -> list[object]:
        if request.conn == 0 and request.index == 1:
            return [response(body_of(request.path), headers="Connection: close\r\n"), "close"]
        return plain(request)

    results, server, after = await get_many(script, 6)
    paths = batch_paths(6)
    assert results == [ok(paths[0]), ok(paths[1]), None, None, None, None]
    assert after == (200, body_of("repo/after"))
    assert server.connections == 2


async def test_get_many_truncated_body_leaves_the_rest() -> None:
    def script(request: Request) -> list[object]:
        if request.conn == 0 and request.index == 2:
            return [response(b"0123456789")[:-4], "close"]
        return plain(request)

    results, _, after = await get_many(script, 5)
    paths = batch_paths(5)
    assert results == [ok(paths[0]), ok(paths[1]), None, None, None]
    assert after == (200, body_of("repo/after"))


async def test_get_many_reset_and_bad_head_leave_the_rest() -> None:
    def script(request: Request) -> list[object]:
        if request.conn == 0 and request.index == 1:
            return ["reset"]
        if request.conn == 1 and request.index == 0:
            return [b"HTTP/1.1 200 OK\r\nBad Header\r\n\r\n"]
        return plain(request)

    with ScriptServer(script) as server:
        client = http1.Client(server.url, connections=1, pipeline=4, timeout=5)
        client.keepalive = True
        try:
            paths = batch_paths(3)
            assert await client.get_many(paths, 1000) == [ok(paths[0]), None, None]
            assert await client.get_many(paths, 1000) == [None, None, None]
            assert await client.get_many(paths, 1000) == [ok(p) for p in paths]
        finally:
            await client.aclose()


async def test_get_many_times_out_on_a_stall() -> None:
    def script(request: Request) -> list[object]:
        return ["stall"] if request.index == 1 else plain(request)

    results, _, after = await get_many(script, 3, timeout=0.3)
    assert results[1:] == [None, None]
    assert after == (200, body_of("repo/after"))


async def test_get_many_returns_error_statuses_and_goes_on() -> None:
    def script(request: Request) -> list[object]:
        if request.path.endswith("01/x.filez"):
            return [response(b"gone", "404 Not Found")]
        if request.path.endswith("03/x.filez"):
            return [response(b"oops", "500 Internal Server Error")]
        return plain(request)

    results, server, _ = await get_many(script, 5)
    paths = batch_paths(5)
    assert results == [ok(paths[0]), (404, b"gone"), ok(paths[2]), (500, b"oops"), ok(paths[4])]
    assert server.connections == 1


async def test_get_many_alongside_stream_users() -> None:
    # batches and single requests share the client's slots and connections
    import anyio

    paths = [f"objects/{i:03x}/x.filez" for i in range(64)]
    singles = [f"single/{i}" for i in range(24)]
    with ScriptServer(plain) as server:
        client = http1.Client(server.url, connections=3, pipeline=3, timeout=10)
        try:
            assert await get(client, "config") == (200, body_of("repo/config"))
            batches: list[list[tuple[int, bytes] | None]] = []

            async def batch(part: list[str]) -> None:
                batches.append(await client.get_many(part, 1 << 20))

            async with anyio.create_task_group() as tg:
                for i in range(0, len(paths), 16):
                    tg.start_soon(batch, paths[i : i + 16])
                single_results = await get_all(client, singles)
        finally:
            await client.aclose()
    answered = sorted(r for b in batches for r in b if r is not None)
    assert answered == sorted(ok(p) for p in paths)
    assert single_results == {p: ok(p) for p in singles}
    assert server.connections <= 3
