"""``ostree-repo sync`` from our own server (the pytest plugin's, serving the test's store):
a mirror of a repository, then nothing to do; JSON shape, refusals, progress."""

from __future__ import annotations

from ostree_repo.pytest_plugin import OstreeTestServer

from .conftest import Cli, Seeded, check_error
from .test_importing import run_on_a_terminal
from .test_repos import has

SYNC_KEYS = {"repository", "version", "url", "refs", "commits", "objects_fetched"}
SYNC_KEYS |= {"bytes_fetched"}


def test_sync_mirrors_then_changes_nothing(
    cli: Cli, seeded: Seeded, ostree_server: OstreeTestServer
) -> None:
    url = ostree_server.repo_url("os")
    doc = has(cli.json("sync", "mirror", url, "--depth", "-1"), SYNC_KEYS)
    assert doc["repository"] == "mirror" and doc["version"] == 1 and doc["url"] == url
    assert doc["refs"] == 2 and doc["objects_fetched"] == 0  # one store: objects are shared
    assert {(r["name"], r["commit"]) for r in cli.json("refs", "mirror")} == {
        ("main", seeded.c2),
        ("stable", seeded.c1),
    }
    again = cli.json("sync", "mirror", url, "--depth", "-1")
    assert again["repository"] == "mirror" and again["version"] is None
    ran = cli("sync", "mirror", url, "--depth", "-1")
    assert ran.status == 0 and ran.out.startswith("mirror: nothing changed, no new version")
    ran = cli("sync", "one", url, "--include-ref", "stable")
    assert ran.status == 0 and ran.out.startswith("one: version 1 (1 refs, 1 commits")


def test_sync_refusals_change_nothing(cli: Cli, ostree_server: OstreeTestServer) -> None:
    assert "only http" in cli.fails("sync", "x", "file:///srv/repo")
    assert "--concurrency" in cli.fails("sync", "x", "http://127.0.0.1:1/", "--concurrency", "0")
    missing = cli.fails("sync", "x", ostree_server.repo_url("nope"), "--retries", "0")
    assert "has no summary" in missing
    assert "KEY:VALUE" in cli.fails("sync", "x", "http://h/", "--header", "nocolon", status=2)
    assert "repository x does not exist" in cli.fails("versions", "x")  # nothing was made


def test_a_refused_sync_makes_no_repository(cli: Cli, ostree_server: OstreeTestServer) -> None:
    cli.fails("sync", "x", ostree_server.repo_url("nope"), "--retries", "0")
    assert cli.json("list") == []


def test_console_script_and_progress(
    cli: Cli, seeded: Seeded, ostree_server: OstreeTestServer
) -> None:
    url = ostree_server.repo_url("os")
    ran = cli.script("sync", "--json", "mirror", url)
    assert ran.status == 0 and ran.err == ""  # no progress off a terminal
    assert has(ran.json(), SYNC_KEYS)["version"] == 1
    check_error(cli.script("sync", "x", "ftp://example.org/repo"))
    status, out, shown = run_on_a_terminal(["--store", cli.store, "sync", "term", url])
    assert status == 0 and out.startswith("term: version 1 ")
    assert "commits" in shown and "objects" in shown
    assert shown.endswith("\x1b[2K")  # erased at the end
