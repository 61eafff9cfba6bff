"""The ``ostree-repo sync`` verb."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from oracle.ostree_cli import RepoInfo
from ostree_repo.cli import main


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    status = main(list(argv))
    out, err = capsys.readouterr()
    return status, out, err


def test_sync_verb_json_and_text(
    capsys: pytest.CaptureFixture[str], rich_repo: RepoInfo, rich_url: str, tmp_path: Path
) -> None:
    store = str(tmp_path / "store")
    status, out, err = run(
        capsys, "--store", store, "sync", "--json", "cli", rich_url,
        "--include-ref", "main", "--include-ref", "exampleos/*", "--exclude-ref", "exampleos/*",
        "--depth", "1", "--header", "X-Token: abc",
    )  # fmt: skip
    assert status == 0, err
    assert err == ""  # no progress when stderr is not a terminal
    doc = json.loads(out)
    assert doc["repository"] == "cli" and doc["version"] == 1
    assert doc["objects_fetched"] > 0 and doc["bytes_fetched"] > 0 and doc["refs"] == 1
    status, out, err = run(
        capsys, "--store", store, "sync", "cli", rich_url, "--include-ref", "main", "--depth", "1"
    )
    assert status == 0 and "nothing changed" in out


def test_sync_verb_errors(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    status, _, err = run(capsys, "--store", str(tmp_path / "s"), "sync", "x", "file:///tmp/r")
    assert status == 1 and "only http" in err
    with pytest.raises(SystemExit):
        main(["--store", str(tmp_path / "s"), "sync", "x", "http://h/", "--header", "nocolon"])


@pytest.mark.parametrize(
    "flags",
    [
        ["--connections", "2", "--concurrency", "4", "--backoff", "0.01", "--no-proxy-env"],
        ["--httpx", "--no-http2", "--timeout", "20", "--retries", "1"],
        ["--http2"],  # (plain http: there is no HTTP/2 to use, the built-in client serves)
    ],
    ids=["builtin", "httpx", "http2"],
)
def test_sync_verb_client_options(
    capsys: pytest.CaptureFixture[str], rich_url: str, tmp_path: Path, flags: list[str]
) -> None:
    store = str(tmp_path / "store")
    status, out, err = run(
        capsys, "--store", store, "sync", "--json", "cli", rich_url, "--depth", "-1", *flags
    )
    assert status == 0, err
    doc = json.loads(out)
    assert doc["version"] == 1 and doc["objects_fetched"] > 0


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--connections", "0"], "--connections must be at least 1"),
        (["--concurrency", "0"], "--concurrency must be at least 1"),
        (["--timeout", "0"], "timeout must be positive"),
    ],
)
def test_sync_verb_refuses_options_that_cannot_work(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, flags: list[str], message: str
) -> None:
    store = tmp_path / "s"
    status, out, err = run(capsys, "--store", str(store), "sync", "x", "http://h/", *flags)
    assert status == 1 and out == ""
    assert err.count("\n") == 1 and message in err
    assert not (store / "repos" / "x.json").exists()
