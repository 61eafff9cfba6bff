"""Which transports a Remote uses for a URL and options, and that the retry logic goes
through whichever it has."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from ostree_repo.sync import RemoteOptions, remote
from ostree_repo.sync.remote import Remote

from .servers import Request, ScriptServer, response

pytestmark = pytest.mark.anyio


def names(url: str, **options: object) -> list[str]:
    return [t.name for t in Remote(url, RemoteOptions(**options)).transports]  # type: ignore[arg-type]


@pytest.fixture
def no_proxy_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture(params=[False, True], ids=["without-h2", "with-h2"])
def h2(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> bool:
    """Whether the h2 package counts as installed."""
    installed: bool = request.param
    monkeypatch.setattr(remote, "_h2_available", lambda: installed)
    return installed


@pytest.mark.usefixtures("no_proxy_env")
def test_the_built_in_client_first_whether_or_not_h2_is_installed(h2: bool) -> None:
    fallback = "httpx-http2" if h2 else "httpx-http1"
    assert names("http://example.org/repo") == ["http1", "httpx-http1"]
    assert names("https://example.org/repo") == ["http1", fallback]
    assert names("https://example.org/repo", http2=False) == ["http1", "httpx-http1"]


@pytest.mark.usefixtures("no_proxy_env")
def test_http2_when_asked_for_and_available(h2: bool) -> None:
    if h2:
        assert names("https://example.org/", http2=True) == ["httpx-http2"]
    else:
        assert names("https://example.org/", http2=True) == ["http1", "httpx-http1"]
    assert names("http://example.org/", http2=True) == ["http1", "httpx-http1"]  # (no h2c)


@pytest.mark.usefixtures("no_proxy_env")
def test_httpx_alone_through_a_proxy_or_when_asked(h2: bool) -> None:
    h2_name = "httpx-http2" if h2 else "httpx-http1"
    assert names("https://example.org/", proxy="http://p:3128") == [h2_name]
    assert names("https://example.org/", proxy="http://p:3128", http2=False) == ["httpx-http1"]
    assert names("http://example.org/", proxy="http://p:3128") == ["httpx-http1"]
    assert names("http://example.org/", lean=False) == ["httpx-http1"]
    # a header the built-in client cannot send verbatim leaves it to httpx
    assert names("http://example.org/", headers={"X-Bad": "a\nb"})[0] == "httpx-http1"


def test_a_sync_over_http_does_not_import_httpx(rich_url: str, tmp_path: Path) -> None:
    code = r"""
import json, sys
import anyio
from ostree_repo.repository import RepositoryManager
from ostree_repo.sync import sync_repository

async def main():
    async with RepositoryManager.open(sys.argv[1]) as manager:
        result = await sync_repository(manager, "r", sys.argv[2], depth=-1)
    print(json.dumps([result.objects_fetched, "httpx" in sys.modules]))

anyio.run(main)
"""
    out = subprocess.run(
        [sys.executable, "-c", code, str(tmp_path / "store"), rich_url],
        check=True, capture_output=True, text=True,
    ).stdout  # fmt: skip
    fetched, httpx_imported = json.loads(out)
    assert fetched > 0 and not httpx_imported


async def test_a_declined_response_goes_to_the_next_transport() -> None:
    # the built-in client leaves a gzip-encoded body to httpx, which decodes it
    import gzip

    packed = gzip.compress(b"the config")

    def script(request: Request) -> list[object]:
        return [response(packed, headers="Content-Encoding: gzip\r\n")]

    with ScriptServer(script) as server:
        async with Remote(server.url) as remote:
            assert remote.transport == "http1"
            assert await remote.get_bytes("config") == b"the config"
            assert remote.stats.requests == 2 and remote.stats.retries == 0
    codings = [r.headers["accept-encoding"] for r in server.requests]
    assert codings[0] == "identity" and "gzip" in codings[1]  # (the second from httpx)
