"""The pure parts: URL routes, HTTP dates, ETags, conditions and ranges, token parsing."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest

from ostree_repo.cli import main
from ostree_repo.objects import ObjectType, delta_index_path, delta_path, object_path
from ostree_repo.server._http import (
    ByteRange,
    Conditions,
    RangeNotSatisfiableError,
    etag_matches,
    evaluate,
    format_http_date,
    parse_etags,
    parse_http_date,
    parse_range,
)
from ostree_repo.server._routes import BadPathError, Route, parse_path
from ostree_repo.server.auth import parse_token_args, presented_token, token_ok

A = "a" * 64
B = "0b" + "c" * 62


def test_routes() -> None:
    assert parse_path("/r/config") == Route("r", None, "config")
    assert parse_path("/r/versions/7/summary.sig") == Route("r", 7, "summary.sig")
    assert parse_path("/versions/versions/0/config") == Route("versions", 0, "config")
    assert parse_path("/r/refs/heads/a/b/c") == Route("r", None, "ref", ref="a/b/c")
    assert parse_path("/r/refs/mirrors/org.x.Y/main") == Route(
        "r", None, "ref", ref="main", collection="org.x.Y"
    )
    for objtype in ObjectType:
        route = parse_path(f"/r/{object_path(B, objtype)}")
        assert route == Route("r", None, "object", checksum=B, objtype=objtype)
    assert parse_path(f"/r/{delta_path(None, A, 'superblock')}") == Route(
        "r", None, "delta", delta=A, member="superblock"
    )
    assert parse_path(f"/r/versions/3/{delta_path(B, A, '12')}") == Route(
        "r", 3, "delta", delta=f"{B}-{A}", member="12"
    )
    assert parse_path(f"/r/{delta_index_path(A)}") == Route("r", None, "delta-index", checksum=A)


@pytest.mark.parametrize(
    "path",
    [
        "/r",
        "/r/",
        "/r/versions/1",
        "/r/versions/01/config",
        "/r/versions/1/versions/2/config",
        "/r/refs/heads/main/",
        "/r/refs/heads/-bad",
        "/r/refs/mirrors/nodots/main",
        "/r/objects/" + B[:2] + "/" + B[2:] + ".filez.bak",
        f"/r/{delta_path(None, A, '01')}",
        f"/r/{delta_path(None, A, 'meta')}",
        f"/r/{delta_path(None, A, '')}x",
        f"/r/{delta_index_path(A)}.x",
        "/r/delta-indexes/" + delta_index_path(A).split("/", 1)[1].replace("/", ""),
        "/-r/config",
        "/r.json/config",
    ],
)
def test_routes_not_found(path: str) -> None:
    assert parse_path(path) is None


@pytest.mark.parametrize("path", ["r/config", "/r/../x", "/r/./config", "/r/a\\b", "/r/\0"])
def test_routes_malformed(path: str) -> None:
    with pytest.raises(BadPathError):
        parse_path(path)


def test_dates() -> None:
    text = format_http_date(1_700_000_000.9)
    assert text == "Tue, 14 Nov 2023 22:13:20 GMT"
    assert parse_http_date(text) == 1_700_000_000
    assert parse_http_date("Tue, 14 Nov 2023 22:13:20 UTC") == 1_700_000_000  # libostree
    assert parse_http_date("Tuesday, 14-Nov-23 22:13:20 GMT") == 1_700_000_000  # RFC 850
    assert parse_http_date("Tue Nov 14 22:13:20 2023") == 1_700_000_000  # asctime
    for bad in ("", "yesterday", "Tue, 99 Nov 2023 22:13:20 GMT"):
        assert parse_http_date(bad) is None


def test_etags() -> None:
    assert parse_etags('"a", W/"b" ,"c"') == ['"a"', 'W/"b"', '"c"']
    assert parse_etags("*") is None
    assert parse_etags('junk, "a"') == ['"a"']
    assert etag_matches('"b"', ['W/"b"'], strong=False)
    assert not etag_matches('"b"', ['W/"b"'], strong=True)
    assert etag_matches('"x"', None, strong=True)


@pytest.mark.parametrize(
    ("header", "size", "expected"),
    [
        ("bytes=0-0", 10, ByteRange(0, 0, 10)),
        ("bytes=2-", 10, ByteRange(2, 9, 10)),
        ("bytes=-3", 10, ByteRange(7, 9, 10)),
        ("bytes=-30", 10, ByteRange(0, 9, 10)),
        ("bytes=5-100", 10, ByteRange(5, 9, 10)),
        ("BYTES = 1-2", 10, ByteRange(1, 2, 10)),
        ("bytes=3-2", 10, None),  # invalid: ignored
        ("bytes=0-1,3-4", 10, None),  # several: the whole representation
        ("items=0-1", 10, None),
        ("bytes=a-b", 10, None),
        ("bytes=-", 10, None),
    ],
)
def test_ranges(header: str, size: int, expected: ByteRange | None) -> None:
    assert parse_range(header, size) == expected


@pytest.mark.parametrize(("header", "size"), [("bytes=10-", 10), ("bytes=-0", 10), ("bytes=0-", 0)])
def test_unsatisfiable_ranges(header: str, size: int) -> None:
    with pytest.raises(RangeNotSatisfiableError):
        parse_range(header, size)


def test_evaluate() -> None:
    etag, when = '"e"', 1_700_000_000
    date = format_http_date(when)

    def status(method: str = "GET", **headers: str) -> int:
        return evaluate(Conditions(**headers), etag, when, 100, method)[0]

    assert status() == 200
    assert status(if_none_match='"e"') == 304
    assert status("HEAD", if_none_match='"e"') == 304
    assert status(if_none_match='"f"', if_modified_since=date) == 200  # INM wins
    assert status(if_modified_since=date) == 304
    assert status(if_modified_since=format_http_date(when - 1)) == 200
    assert status(if_match='"f"') == 412
    assert status(if_match='W/"e"') == 412  # strong comparison
    assert status(if_unmodified_since=format_http_date(when - 1)) == 412
    assert status(range="bytes=0-9") == 206
    assert status("HEAD", range="bytes=0-9") == 200
    assert status(range="bytes=0-9", if_range='"e"') == 206
    assert status(range="bytes=0-9", if_range='W/"e"') == 200
    assert status(range="bytes=0-9", if_range=date) == 206
    assert status(range="bytes=0-9", if_range=format_http_date(when - 5)) == 200
    assert status(range="bytes=100-") == 416


def test_tokens() -> None:
    assert presented_token("Bearer abc") == "abc"
    assert presented_token("bearer   abc ") == "abc"
    basic = base64.b64encode(b"user:pa:ss").decode()
    assert presented_token(f"Basic {basic}") == "pa:ss"
    assert presented_token("Basic " + base64.b64encode(b"nopassword").decode()) is None
    assert presented_token("Basic ###") is None
    assert presented_token("Digest x") is None
    assert presented_token(None) is None
    assert token_ok("b", frozenset({"a", "b"}))
    assert not token_ok("c", frozenset({"a", "b"}))
    assert parse_token_args(["r=a", "r=b", "*=c"]) == {"r": ["a", "b"], "*": ["c"]}
    with pytest.raises(ValueError, match="REPO=TOKEN") as caught:
        parse_token_args(["secret-value"])
    assert "secret-value" not in str(caught.value)


def test_serve_refuses_malformed_tokens_without_echoing_them(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    store = ["--store", str(tmp_path / "store")]
    assert main([*store, "serve", "--token", "no-equals-secret"]) == 1
    err = capsys.readouterr().err
    assert "REPO=TOKEN" in err and "no-equals-secret" not in err
    tokens = tmp_path / "tokens"
    tokens.write_text("# comment\n\nrepo=good\nbad-line-secret\n")
    assert main([*store, "serve", "--token-file", str(tokens)]) == 1
    err = capsys.readouterr().err
    assert "REPO=TOKEN" in err and "bad-line-secret" not in err and "good" not in err
