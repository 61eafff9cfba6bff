"""HTTP behaviour against the live server, with httpx: what is served, 404 rules, caching
headers, conditional and range requests, HEAD, access control."""

from __future__ import annotations

import base64
import email.utils
import hashlib
import socket
from pathlib import Path

import httpx
import pytest

from oracle.ostree_cli import delta_index_path, list_objects, object_path
from ostree_repo.objects import DeltaIndex, Tombstone

from ._servers import LogCapture, ThreadedServer
from .conftest import TOKEN, Served

IMMUTABLE = "public, max-age=31536000, immutable"


@pytest.fixture(scope="module")
def http(server: ThreadedServer) -> httpx.Client:
    with httpx.Client(base_url=server.url, timeout=30) as client:
        yield client


def rel(repo: Path, path: Path) -> str:
    return path.relative_to(repo).as_posix()


def big_file(repo: Path) -> Path:
    """The .filez of data/big.bin (5 MB, only in C5)."""
    return next(p for _, ext, p in list_objects(repo) if ext == "filez" and p.stat().st_size > 4e6)


def obj(repo: Path, checksum: str, ext: str) -> str:
    return rel(repo, object_path(repo, checksum, ext))


def raw_get(port: int, target: str) -> int:
    """The status of ``GET target`` sent verbatim (httpx would normalise ``..``)."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(f"GET {target} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode())
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    return int(data.split(b" ", 2)[1])


# -- what is served ----------------------------------------------------------------------


def test_files_are_the_source_repositorys_bytes(http: httpx.Client, served: Served) -> None:
    rich = served.rich.path
    # every delta file and delta index, every detached metadata, a sample of objects
    files = sorted(p for p in (rich / "deltas").rglob("*") if p.is_file())
    objects = list_objects(rich)
    files += [p for _, ext, p in objects if ext in ("commitmeta", "commit", "dirtree")]
    files += [p for _, ext, p in objects if ext == "filez"][::50]
    files += [rich / "summary", rich / "summary.sig", rich / "refs/heads/main"]
    assert len(files) > 60
    for path in files:
        reply = http.get(f"/rich/{rel(rich, path)}")
        assert reply.status_code == 200, path
        assert reply.content == path.read_bytes(), path
        assert reply.headers["content-length"] == str(path.stat().st_size)
    # delta indexes: the same deltas (libostree writes them in hash-table order, we sort)
    indexes = sorted((rich / "delta-indexes").rglob("*.index"))
    assert indexes
    for path in indexes:
        reply = http.get(f"/rich/{rel(rich, path)}")
        assert reply.status_code == 200, path
        ours, theirs = (
            DeltaIndex.from_bytes(reply.content),
            DeltaIndex.from_bytes(path.read_bytes()),
        )
        assert ours.deltas == theirs.deltas


def test_generated_files(http: httpx.Client, served: Served) -> None:
    rich = served.rich
    tomb = rich.tombstoned[0]
    reply = http.get(f"/rich/{obj(rich.path, tomb, 'tombstone-commit')}")
    assert reply.status_code == 200
    assert Tombstone.from_bytes(reply.content).commit == tomb
    config = http.get("/rich/config")
    assert config.status_code == 200
    assert "mode=archive-z2" in config.text and "indexed-deltas=true" in config.text
    assert config.headers["content-type"].startswith("text/plain")
    coll = served.collection
    assert f"collection-id={coll.collection_id}" in http.get("/coll/config").text
    for (cid, ref), commit in coll.collection_refs.items():
        assert http.get(f"/coll/refs/mirrors/{cid}/{ref}").text == f"{commit}\n"
        assert http.get(f"/coll/refs/heads/{ref}").status_code == 404  # not a main ref


def test_inline_delta_parts_have_no_file(http: httpx.Client, served: Served) -> None:
    rich = served.rich
    inline = next(d for d in rich.deltas.values() if d.inline)
    base = f"/rich/{rel(rich.path, inline.path)}"
    assert http.get(f"{base}/superblock").status_code == 200
    assert http.get(f"{base}/0").status_code == 404


def test_summary_sig_only_when_the_version_has_one(http: httpx.Client, served: Served) -> None:
    assert http.get("/hist/summary").status_code == 200
    assert http.get("/hist/summary.sig").status_code == 404
    if served.rich.summary_sig is not None:
        assert http.get("/rich/summary.sig").status_code == 200
        assert http.get("/rich/versions/1/summary.sig").status_code == 404


# -- 404 rules ---------------------------------------------------------------------------


def test_only_what_the_version_holds(http: httpx.Client, served: Served) -> None:
    rich = served.rich
    big = next(
        p for _, ext, p in list_objects(rich.path) if ext == "filez" and p.stat().st_size > 4e6
    )
    main_only = f"/{rel(rich.path, big)}"  # data/big.bin, only in C5
    assert http.get(f"/rich{main_only}").status_code == 200
    assert http.get(f"/other{main_only}").status_code == 404  # in the store, not in "other"
    assert http.get(f"/hist/versions/1{main_only}").status_code == 404
    assert http.get(f"/hist/versions/2{main_only}").status_code == 200
    c5 = rich.main[-1]
    assert (
        http.get(f"/other/{rel(rich.path, object_path(rich.path, c5, 'commit'))}").status_code
        == 404
    )
    assert (
        http.get(f"/other/{rel(rich.path, object_path(rich.path, c5, 'commitmeta'))}").status_code
        == 404
    )
    scratch = rich.deltas[c5]
    assert http.get(f"/other/{rel(rich.path, scratch.superblock)}").status_code == 404
    assert http.get(f"/other/{rel(rich.path, delta_index_path(rich.path, c5))}").status_code == 404
    assert http.get("/other/refs/heads/main").status_code == 404
    assert http.get("/other/refs/heads/exampleos/x86_64/stable").status_code == 200


def test_deleted_and_missing_versions(http: httpx.Client, served: Served) -> None:
    assert served.versions["gone"] == [0, 2]
    assert http.get("/gone/versions/1/config").status_code == 404
    assert http.get("/gone/versions/1/refs/heads/tombstone-demo").status_code == 404
    assert http.get("/gone/versions/2/refs/heads/exampleos/x86_64/stable").status_code == 200
    assert http.get("/gone/refs/heads/exampleos/x86_64/stable").status_code == 200
    assert http.get("/gone/versions/3/config").status_code == 404
    assert http.get("/gone/versions/0/config").status_code == 200  # the empty version
    assert http.get("/no-such-repo/config").status_code == 404


@pytest.mark.parametrize(
    "path",
    [
        "/",
        "/rich",
        "/rich/",
        "/rich/objects/",
        "/rich/objects/4a",
        "/rich/refs/heads/",
        "/rich/refs/heads",
        "/rich/deltas/",
        "/rich/versions/",
        "/rich/versions/2/",
        "/rich/versions/02/config",
        "/rich/versions/-1/config",
        "/rich/versions/x/config",
        "/rich/config/",
        "/rich//config",
        "/rich/repo/config",
        "/rich/tmp/whatever",
        "/rich/blobs/ab/cd",
        "/rich/objects/AB/" + "C" * 62 + ".commit",
        "/rich/objects/ab/" + "c" * 61 + ".commit",
        "/rich/objects/ab/" + "c" * 62 + ".file",
        "/rich/objects/ab/" + "c" * 62,
        "/rich/objects/ab/" + "c" * 62 + ".commit",
        "/rich/deltas/AA/" + "B" * 41 + "/superblock",
        "/rich/deltas/AA/" + "B" * 41 + "/01",
        "/rich/delta-indexes/AA/" + "B" * 41 + ".idx",
        "/rich/refs/heads/no-such-ref",
        "/rich/refs/mirrors/org.example.Os/main",
        "/Bad Name/config",
        "/.hidden/config",
        "/rich/summary.sig.bak",
    ],
)
def test_unknown_paths_are_404(http: httpx.Client, path: str) -> None:
    reply = http.get(path)
    assert reply.status_code == 404
    assert "etag" not in reply.headers


@pytest.mark.parametrize(
    "target",
    [
        "/rich/../rich/config",
        "/rich/refs/heads/../../config",
        "/rich/%2e%2e/rich/config",
        "/rich/refs/heads/%2E%2E/%2e%2e/config",
        "/rich/./config",
        "/rich/objects/%00/x",
        "/rich/refs/heads/a%5Cb",
    ],
)
def test_traversal_is_refused(server: ThreadedServer, target: str) -> None:
    assert raw_get(server.port, target) == 400


def test_only_get_and_head(http: httpx.Client) -> None:
    for method in ("POST", "PUT", "DELETE", "PATCH", "OPTIONS"):
        reply = http.request(method, "/rich/config")
        assert reply.status_code == 405, method
        assert reply.headers["allow"] == "GET, HEAD"


# -- caching, conditions, ranges, HEAD ---------------------------------------------------


def test_cache_headers(http: httpx.Client, served: Served) -> None:
    rich = served.rich
    c5 = rich.main[-1]
    commit = obj(rich.path, c5, "commit")
    for prefix in ("/rich", "/rich/versions/1"):
        reply = http.get(f"{prefix}/{commit}")
        assert reply.headers["cache-control"] == IMMUTABLE
        assert reply.headers["etag"] == f'"{c5}"'
    for name in (
        "summary",
        "config",
        "refs/heads/main",
        rel(rich.path, rich.deltas[c5].superblock),
    ):
        latest = http.get(f"/rich/{name}")
        pinned = http.get(f"/rich/versions/2/{name}")
        assert latest.headers["cache-control"] == "public, no-cache", name
        assert pinned.headers["cache-control"] == IMMUTABLE, name
        assert latest.headers["etag"] == pinned.headers["etag"], name
        assert latest.headers["last-modified"] == pinned.headers["last-modified"], name
    summary = http.get("/rich/summary")
    assert summary.headers["etag"] == '"' + hashlib.sha256(summary.content).hexdigest() + '"'
    v1 = http.get("/rich/versions/1/summary")
    assert v1.headers["etag"] != summary.headers["etag"]
    assert email.utils.parsedate_to_datetime(v1.headers["last-modified"]) <= (
        email.utils.parsedate_to_datetime(summary.headers["last-modified"])
    )


def test_conditional_requests(http: httpx.Client) -> None:
    first = http.get("/rich/summary")
    etag, modified = first.headers["etag"], first.headers["last-modified"]
    again = http.get("/rich/summary", headers={"If-None-Match": etag})
    assert again.status_code == 304 and again.content == b""
    assert again.headers["etag"] == etag
    assert http.get("/rich/summary", headers={"If-None-Match": f'"x", W/{etag}'}).status_code == 304
    assert http.get("/rich/summary", headers={"If-None-Match": '"other"'}).status_code == 200
    assert http.get("/rich/summary", headers={"If-None-Match": "*"}).status_code == 304
    # libostree writes the date with %Z: "... UTC"
    utc = modified.replace("GMT", "UTC")
    assert http.get("/rich/summary.sig", headers={"If-Modified-Since": utc}).status_code == 304
    assert http.get("/rich/summary", headers={"If-Modified-Since": modified}).status_code == 304
    older = "Mon, 01 Jan 2001 00:00:00 UTC"
    assert http.get("/rich/summary", headers={"If-Modified-Since": older}).status_code == 200
    assert http.get("/rich/summary", headers={"If-Modified-Since": "garbage"}).status_code == 200
    # If-None-Match wins over If-Modified-Since
    both = {"If-None-Match": '"other"', "If-Modified-Since": utc}
    assert http.get("/rich/summary", headers=both).status_code == 200
    assert http.get("/rich/summary", headers={"If-Match": '"other"'}).status_code == 412
    assert http.get("/rich/summary", headers={"If-Match": etag}).status_code == 200
    assert http.head("/rich/summary", headers={"If-None-Match": etag}).status_code == 304
    early = {"If-Unmodified-Since": older}
    assert http.get("/rich/summary", headers=early).status_code == 412


def test_ranges(http: httpx.Client, served: Served) -> None:
    rich = served.rich
    for path in (
        rich.path / "summary",  # a blob
        rich.deltas[rich.main[-1]].parts[0],  # a large blob
        next(
            p for _, ext, p in list_objects(rich.path) if ext == "filez" and p.stat().st_size > 4e6
        ),
        next(p for _, ext, p in list_objects(rich.path) if ext == "dirtree"),
    ):
        data = path.read_bytes()
        size = len(data)
        url = f"/rich/{rel(rich.path, path)}"
        middle = http.get(url, headers={"Range": "bytes=10-99"})
        assert middle.status_code == 206
        assert middle.content == data[10:100]
        assert middle.headers["content-range"] == f"bytes 10-99/{size}"
        assert middle.headers["content-length"] == "90"
        tail = http.get(url, headers={"Range": "bytes=-7"})
        assert tail.status_code == 206 and tail.content == data[-7:]
        rest = http.get(url, headers={"Range": f"bytes={size - 5}-"})
        assert rest.status_code == 206 and rest.content == data[-5:]
        past = http.get(url, headers={"Range": f"bytes=5-{size * 2}"})
        assert past.status_code == 206 and past.content == data[5:]
        beyond = http.get(url, headers={"Range": f"bytes={size}-"})
        assert beyond.status_code == 416
        assert beyond.headers["content-range"] == f"bytes */{size}"
        several = http.get(url, headers={"Range": "bytes=0-1,5-6"})
        assert several.status_code == 200 and several.content == data  # allowed: whole
        etag = middle.headers["etag"]
        fresh = http.get(url, headers={"Range": "bytes=0-3", "If-Range": etag})
        assert fresh.status_code == 206 and fresh.content == data[:4]
        stale = http.get(url, headers={"Range": "bytes=0-3", "If-Range": '"stale"'})
        assert stale.status_code == 200 and stale.content == data


def test_head_is_get_without_a_body(http: httpx.Client, served: Served) -> None:
    rich = served.rich
    paths = ["summary", "config", "refs/heads/main"]
    paths += [rel(rich.path, p) for _, ext, p in list_objects(rich.path)[:40]]
    for path in paths:
        get, head = http.get(f"/rich/{path}"), http.head(f"/rich/{path}")
        assert head.status_code == get.status_code == 200, path
        assert head.content == b""
        for name in ("content-length", "etag", "last-modified", "cache-control", "content-type"):
            assert head.headers[name] == get.headers[name], (path, name)
    assert http.head("/rich/nothing").status_code == 404


# -- access control ----------------------------------------------------------------------


def test_tokens(http: httpx.Client, access_log: LogCapture) -> None:
    url = "/secret/refs/heads/exampleos/x86_64/stable"
    mark = len(access_log.lines)
    missing = http.get(url)
    assert missing.status_code == 401
    challenges = missing.headers.get_list("www-authenticate")
    assert any(c.startswith("Bearer ") for c in challenges)
    assert any(c.startswith("Basic ") for c in challenges)
    assert http.get(url, headers={"Authorization": "Bearer wrong"}).status_code == 403
    assert http.get(url, headers={"Authorization": "Basic !!!"}).status_code == 401
    good = http.get(url, headers={"Authorization": f"Bearer {TOKEN}"})
    assert good.status_code == 200
    assert good.headers["cache-control"].startswith("private,")
    assert http.get(url, auth=("anyone", TOKEN)).status_code == 200
    assert http.get(url, auth=("anyone", "wrong")).status_code == 403
    # unknown files of a protected repository are not revealed before authentication
    assert http.get("/secret/refs/heads/nothing").status_code == 401
    assert http.get("/secret/refs/heads/nothing", auth=("u", TOKEN)).status_code == 404
    # other repositories stay public
    assert http.get("/other/config").status_code == 200
    logged = "\n".join(access_log.since(mark))
    assert url in logged
    basic = base64.b64encode(f"anyone:{TOKEN}".encode()).decode()
    assert TOKEN not in logged and basic not in logged
