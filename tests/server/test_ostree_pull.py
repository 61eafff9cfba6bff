"""The real ``ostree`` CLI (libostree 2022.7) pulls from our server."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from oracle.ostree_cli import (
    OstreeCommandError,
    delta_dir,
    fsck,
    list_objects,
    ostree,
    read_refs,
    rev_parse,
)
from repository.walk import reachable_all

from ._servers import LogCapture, ThreadedServer, cli_server
from .conftest import TOKEN, Served


def client(tmp_path: Path, url: str, *, mode: str = "archive", name: str = "client") -> Path:
    """A new client repository with remote ``origin`` at ``url`` (no GPG checks)."""
    repo = tmp_path / name
    ostree("init", f"--mode={mode}", repo=repo)
    ostree("remote", "add", "--no-gpg-verify", "origin", url, repo=repo)
    return repo


def commits_of(repo: Path) -> set[str]:
    """Every commit object in a repository directory."""
    return {c for c, ext, _ in list_objects(repo) if ext == "commit"}


def test_mirror_pull_is_identical_to_the_source(
    server: ThreadedServer, served: Served, access_log: LogCapture, tmp_path: Path
) -> None:
    rich = served.rich
    repo = client(tmp_path, f"{server.url}/rich/")
    ostree("pull", "--mirror", "--depth=-1", "origin", repo=repo)
    fsck(repo)
    assert read_refs(repo) == read_refs(rich.path)
    on_refs = set(rich.commits) - set(rich.orphans)  # a mirror pull follows refs only
    assert commits_of(repo) == on_refs
    if rich.summary_sig is not None:  # the latest version carries the original summary
        assert (repo / "summary").read_bytes() == (rich.path / "summary").read_bytes()
        assert (repo / "summary.sig").read_bytes() == rich.summary_sig.read_bytes()
    # every object the refs reach, byte for byte (filez, dirtrees, commitmeta, ...)
    source = {(c, ext): p for c, ext, p in list_objects(rich.path)}
    pulled = {(c, ext): p for c, ext, p in list_objects(repo)}
    expected = {(c, t.extension) for t, c in reachable_all(rich.path, on_refs)}
    expected |= {(c, "commitmeta") for c in on_refs if (c, "commitmeta") in source}
    assert set(pulled) == expected
    for key, path in pulled.items():
        assert path.read_bytes() == source[key].read_bytes(), key
    if rich.summary_sig is not None:
        # pulling again revalidates the cached summary.sig (If-Modified-Since "... UTC")
        mark = len(access_log.lines)
        ostree("pull", "--mirror", "origin", repo=repo)
        again = [line for line in access_log.since(mark) if '"GET /rich/' in line]
        assert any('GET /rich/summary.sig" 304' in line for line in again), again
        assert not any('GET /rich/summary"' in line for line in again), again


def test_pull_with_static_delta_into_bare_user(
    server: ThreadedServer, served: Served, access_log: LogCapture, tmp_path: Path
) -> None:
    rich = served.rich
    head = rich.refs["main"]
    assert head in rich.deltas  # a from-scratch delta to the head of main
    repo = client(tmp_path, f"{server.url}/rich/", mode="bare-user")
    mark = len(access_log.lines)
    ostree("pull", "--require-static-deltas", "origin", "main", repo=repo)
    fsck(repo)
    assert rev_parse(repo, "main") == head
    requests = [line for line in access_log.since(mark) if '"GET /rich/' in line]
    superblock = delta_dir(Path("/rich"), None, head) / "superblock"
    assert any(f'GET {superblock}" 200 ' in line for line in requests), requests
    assert any("/delta-indexes/" in line for line in requests)
    part = delta_dir(Path("/rich"), None, head) / "0"
    assert any(f'GET {part}" 200 ' in line for line in requests), requests


def test_pull_of_a_pinned_version(server: ThreadedServer, served: Served, tmp_path: Path) -> None:
    main = served.rich.main
    old = client(tmp_path, f"{server.url}/hist/versions/1/", name="old")
    ostree("pull", "--mirror", "--depth=-1", "origin", repo=old)
    fsck(old)
    assert read_refs(old)[0] == {"main": main[2]}
    assert commits_of(old) == set(main[:3])
    new = client(tmp_path, f"{server.url}/hist/", name="new")
    ostree("pull", "origin", "main", repo=new)
    assert rev_parse(new, "main") == main[-1]


def test_signed_commit_and_summary_verify(
    server: ThreadedServer, served: Served, tmp_path: Path
) -> None:
    rich = served.rich
    if rich.gpg is None or rich.summary_sig is None:
        pytest.skip("gpg is not installed: the rich repo is unsigned")
    repo = tmp_path / "signed"
    ostree("init", "--mode=archive", repo=repo)
    for name, url in (("origin", f"{server.url}/rich/"), ("v1", f"{server.url}/rich/versions/1/")):
        ostree(
            "remote",
            "add",
            "--set=gpg-verify=true",
            "--set=gpg-verify-summary=true",
            f"--gpg-import={rich.gpg.public_keyring}",
            name,
            url,
            repo=repo,
        )
    ostree("pull", "origin", "main", repo=repo)
    assert rev_parse(repo, "main") == rich.refs["main"]
    # the signature really is checked: version 1 has our own summary, which no one signed
    with pytest.raises(OstreeCommandError, match=r"(?i)signature|summary\.sig|GPG"):
        ostree("pull", "v1", "main", repo=repo)
    # and an unsigned commit is refused when commit verification is on
    unsigned = rich.refs["exampleos/x86_64/stable"]
    with pytest.raises(OstreeCommandError, match=r"(?i)signature|GPG"):
        ostree("pull", "origin", unsigned, repo=repo)


def test_cli_serve_with_granian_and_a_token(served: Served, tmp_path: Path) -> None:
    with cli_server(served.store, "--token", f"secret={TOKEN}", "--access-log") as running:
        denied = client(tmp_path, f"{running.url}/secret/", name="denied")
        with pytest.raises(OstreeCommandError, match=r"401|403|[Uu]nauthorized|[Ff]orbidden"):
            ostree("pull", "origin", "exampleos/x86_64/stable", repo=denied)
        allowed = client(tmp_path, f"http://user:{TOKEN}@127.0.0.1:{running.port}/secret/")
        ostree("pull", "origin", "exampleos/x86_64/stable", repo=allowed)
        fsck(allowed)
        stable = served.rich.refs["exampleos/x86_64/stable"]
        assert rev_parse(allowed, "exampleos/x86_64/stable") == stable
        bearer = client(tmp_path, f"{running.url}/secret/", name="bearer")
        header = f"--http-header=Authorization=Bearer {TOKEN}"
        ostree("pull", header, "origin", "exampleos/x86_64/stable", repo=bearer)
        assert rev_parse(bearer, "exampleos/x86_64/stable") == stable
        digest = hashlib.sha256(TOKEN.encode()).hexdigest()
        output = running.output()
    assert "GET /secret/config" in output  # the access log is on
    assert TOKEN not in output and digest not in output
