"""Verbs about repositories and versions: create, list, delete, versions, refs, commits,
show, diff, copy, remove, delete-version, fsck, reclaim, export, import-dir.

Each verb: its success path (text and ``--json``), its JSON shape, and its error path.
Shapes other lanes extend (refs gain ``alias_of``, fsck reports more) are checked by the
keys that must be there, not by equality.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from oracle.ostree_cli import fsck as ostree_fsck
from oracle.ostree_cli import read_refs

from .conftest import Cli, Seeded, check_error

WRITE_KEYS = {"repository", "version"}
VERSION_KEYS = {"number", "created", "base", "action", "refs", "commits", "deltas"}
COMMIT_KEYS = {"checksum", "parent", "timestamp", "subject", "version", "size", "signed"}


def has(doc: dict[str, Any], keys: set[str]) -> dict[str, Any]:
    assert isinstance(doc, dict), doc
    assert keys <= doc.keys(), f"missing {keys - doc.keys()} in {doc}"
    return doc


# -- repositories ----------------------------------------------------------------------------


def test_create_list_delete(cli: Cli) -> None:
    assert cli("list").out == "(no repositories)\n"
    assert cli.json("list") == []
    assert cli.json("create", "a") == {"repository": "a", "version": 0}
    assert cli("create", "b").out == "created repository b\n"
    rows = cli.json("list")
    assert [r["name"] for r in rows] == ["a", "b"]
    assert has(rows[0], {"name", "latest_version", "refs"})["latest_version"] == 0
    assert cli("list").out == "a  (version 0)\nb  (version 0)\n"
    doc = cli.json("delete", "a")
    assert has(doc, WRITE_KEYS | {"deleted"}) == {**doc, "repository": "a", "version": None}
    assert doc["deleted"] is True
    assert cli("delete", "b").out == "deleted repository b\n"
    assert cli.json("list") == []


def test_create_and_delete_errors(cli: Cli) -> None:
    cli("create", "a")
    assert "already exists" in cli.fails("create", "a")
    assert "does not exist" in cli.fails("delete", "nope")
    assert "invalid" in cli.fails("create", "bad/name").lower()
    assert [r["name"] for r in cli.json("list")] == ["a"]  # the failures changed nothing


# -- reading versions ------------------------------------------------------------------------


def test_versions(cli: Cli, seeded: Seeded) -> None:
    rows = cli.json("versions", "os")
    assert [r["number"] for r in rows] == [0, 1, 2, 3]
    assert all(has(r, VERSION_KEYS) for r in rows)
    assert [r["refs"] for r in rows] == [0, 1, 1, 2]
    assert rows[2]["base"] == 1 and rows[3]["action"] == {"kind": "test"}
    lines = cli("versions", "os").out.splitlines()
    assert len(lines) == 4 and lines[3].split()[0] == "3" and "2 refs" in lines[3]


def test_refs(cli: Cli, seeded: Seeded) -> None:
    rows = cli.json("refs", "os")
    assert sorted((r["name"], r["commit"]) for r in rows) == [
        ("main", seeded.c2),
        ("stable", seeded.c1),
    ]
    assert all(has(r, {"name", "commit"}) for r in rows)
    assert [(r["name"], r["commit"]) for r in cli.json("refs", "os", "--version", "1")] == [
        ("main", seeded.c1)
    ]
    assert f"{seeded.c2}  main" in cli("refs", "os").out.splitlines()
    assert cli("refs", "os", "--version", "0").out == "(no refs)\n"


def test_commits(cli: Cli, seeded: Seeded) -> None:
    rows = cli.json("commits", "os")
    assert [r["checksum"] for r in rows] == [seeded.c1, seeded.c2]  # oldest first
    assert all(has(r, COMMIT_KEYS) for r in rows)
    assert rows[1]["parent"] == seeded.c1 and rows[0]["parent"] is None
    assert rows[1]["subject"] == "second" and rows[1]["timestamp"] == 1_700_000_100
    assert rows[0]["signed"] is False and rows[0]["size"] > 0
    assert cli("commits", "os").out.splitlines()[1] == (
        f"{seeded.c2}  2023-11-14T22:15:00Z  second"
    )
    assert [r["checksum"] for r in cli.json("commits", "os", "--version", "1")] == [seeded.c1]


def test_show(cli: Cli, seeded: Seeded) -> None:
    doc = has(
        cli.json("show", "os"),
        VERSION_KEYS | {"repository", "size", "summary", "signed_summary"},
    )
    assert doc["repository"] == "os" and doc["number"] == 3 and doc["size"] > 0
    assert {r["name"] for r in doc["refs"]} == {"main", "stable"}
    assert [c["checksum"] for c in doc["commits"]] == [seeded.c1, seeded.c2]
    assert doc["deltas"] == [] and doc["signed_summary"] is False
    text = cli("show", "os", "--version", "1").out
    assert text.startswith("os version 1\n") and f"ref main -> {seeded.c1}" in text


def test_diff(cli: Cli, seeded: Seeded) -> None:
    doc = has(
        cli.json("diff", "os", "1", "3"),
        {"repository", "old", "new", "refs_added", "refs_removed", "refs_moved"}
        | {"commits_added", "commits_removed"},
    )
    assert (doc["old"], doc["new"]) == (1, 3)
    assert doc["refs_added"] == {"stable": seeded.c1}
    assert doc["refs_moved"] == {"main": {"from": seeded.c1, "to": seeded.c2}}
    assert doc["commits_added"] == [seeded.c2] and doc["refs_removed"] == {}
    text = cli("diff", "os", "1", "3").out
    assert f"+ ref stable -> {seeded.c1}" in text and f"+ commit {seeded.c2}" in text
    assert cli("diff", "os", "2", "2").out == "(no differences)\n"


def test_read_verbs_refuse_a_missing_repository_or_version(cli: Cli, seeded: Seeded) -> None:
    for argv in (
        ["versions", "nope"],
        ["refs", "nope"],
        ["commits", "nope"],
        ["show", "nope"],
        ["diff", "nope", "0", "1"],
        ["fsck", "nope"],
    ):
        assert "repository nope does not exist" in cli.fails(*argv), argv
        assert "repository nope does not exist" in cli.fails(argv[0], "--json", *argv[1:])
    for argv in (["refs", "os", "--version", "9"], ["show", "os", "--version", "9"]):
        assert "os has no version 9" in cli.fails(*argv)
    assert "no version 9" in cli.fails("diff", "os", "1", "9")


# -- writing versions ------------------------------------------------------------------------


def test_copy(cli: Cli, seeded: Seeded) -> None:
    doc = cli.json("copy", "os", "prod", "--ref", "main", "--depth", "1")
    assert has(doc, WRITE_KEYS) == {"repository": "prod", "version": 1}
    assert [r["checksum"] for r in cli.json("commits", "prod")] == [seeded.c1, seeded.c2]
    again = cli.json("copy", "os", "prod", "--ref", "main", "--depth", "1")
    assert again == {"repository": "prod", "version": None}  # nothing changed
    assert cli("copy", "os", "prod", "--ref", "main").out == (
        "prod: nothing changed, no new version\n"
    )
    assert cli("copy", "os", "whole", "--all", "--version", "3").out == (
        "whole: version 1 (2 refs, 2 commits)\n"
    )
    assert cli.json("copy", "os", "one", "--commit", seeded.c1)["version"] == 1
    assert cli.json("refs", "one") == []  # a commit without a ref


def test_copy_errors_change_nothing(cli: Cli, seeded: Seeded) -> None:
    assert "--ref, --commit or --all" in cli.fails("copy", "os", "prod")
    assert "no ref nope" in cli.fails("copy", "os", "prod", "--ref", "nope")
    assert "repository nope does not exist" in cli.fails("copy", "nope", "prod", "--all")
    assert "os has no version 7" in cli.fails("copy", "os", "prod", "--all", "--version", "7")
    assert [r["name"] for r in cli.json("list")] == ["os"]  # no destination was made


def test_remove(cli: Cli, seeded: Seeded) -> None:
    doc = cli.json("remove", "os", "--ref", "stable")
    assert has(doc, WRITE_KEYS) == {"repository": "os", "version": 4}
    assert [r["name"] for r in cli.json("refs", "os")] == ["main"]
    # a commit goes on its own; the ref on its child stays
    assert cli("remove", "os", "--commit", seeded.c1).out == "os: version 5 (1 refs, 1 commits)\n"
    assert [r["checksum"] for r in cli.json("commits", "os")] == [seeded.c2]
    assert "say what to remove" in cli.fails("remove", "os")
    assert "no ref stable" in cli.fails("remove", "os", "--ref", "stable")
    assert "repository nope does not exist" in cli.fails("remove", "nope", "--ref", "x")
    assert cli.json("show", "os")["number"] == 5  # the failures made no version


def test_delete_version(cli: Cli, seeded: Seeded) -> None:
    doc = cli.json("delete-version", "os", "2")
    assert has(doc, WRITE_KEYS | {"deleted_version"}) == {
        **doc,
        "repository": "os",
        "version": None,
        "deleted_version": 2,
    }
    assert [r["number"] for r in cli.json("versions", "os")] == [0, 1, 3]
    assert cli("delete-version", "os", "1").out == "os: deleted version 1\n"
    assert "version 2 of os was deleted" in cli.fails("delete-version", "os", "2")
    assert "os has no version 9" in cli.fails("delete-version", "os", "9")
    assert "cannot be deleted" in cli.fails("delete-version", "os", "0")
    assert "repository nope does not exist" in cli.fails("delete-version", "nope", "1")
    assert "was deleted" in cli.fails("refs", "os", "--version", "2")


def test_fsck(cli: Cli, seeded: Seeded, ostree_store_url: str) -> None:
    doc = has(cli.json("fsck", "os"), {"repository", "version", "objects", "missing", "corrupt"})
    assert doc["repository"] == "os" and doc["version"] == 3 and doc["objects"] > 5
    assert doc["missing"] == [] and doc["corrupt"] == []
    assert cli("fsck", "os", "--version", "1").out.startswith("os version 1: ")
    # damage one object: fsck fails (the exact status and report belong to the fsck verb)
    victim = next(p for p in Path(ostree_store_url, "objects").rglob("*.filez"))
    victim.write_bytes(b"garbage")
    ran = cli("fsck", "os")
    assert ran.status != 0
    assert ran.err.count("\n") == 1 and "error: " in ran.err


def test_reclaim(cli: Cli, seeded: Seeded) -> None:
    keys = {"objects", "object_bytes", "files", "file_bytes", "dry_run"}
    assert has(cli.json("reclaim", "--dry-run"), keys)["dry_run"] is True
    cli("delete", "os")
    would = cli.json("reclaim", "--dry-run", "--grace", "0")
    assert would["objects"] > 0 and would["dry_run"] is True
    assert cli("reclaim", "--dry-run", "--grace", "0").out.startswith("would free ")
    freed = cli.json("reclaim", "--grace", "0")
    assert freed["objects"] == would["objects"] and freed["dry_run"] is False
    assert cli.json("reclaim", "--grace", "0")["objects"] == 0
    assert cli("reclaim", "--grace", "x").status == 2  # a usage error


def test_export_and_import_dir(cli: Cli, seeded: Seeded, tmp_path: Path) -> None:
    out = tmp_path / "exported"
    doc = cli.json("export", "os", str(out), "--version", "2")
    assert has(doc, WRITE_KEYS) == {**doc, "repository": "os", "version": 2}
    assert doc["directory"] == str(out)
    ostree_fsck(out)
    assert read_refs(out) == ({"main": seeded.c2}, {})  # (refs, collection refs)
    tar = tmp_path / "os.tar"
    assert cli("export", "os", "--tar", str(tar)).out == f"exported os version 3 to {tar}\n"
    assert tar.stat().st_size > 0
    assert "DIRECTORY or --tar" in cli.fails("export", "os")
    assert "repository nope does not exist" in cli.fails("export", "nope", str(tmp_path / "n"))
    assert cli("export", "os", str(out)).status == 1  # it exists: never overwritten

    doc = cli.json("import-dir", "copy", str(out))
    assert has(doc, WRITE_KEYS) == {"repository": "copy", "version": 1}
    assert [(r["name"], r["commit"]) for r in cli.json("refs", "copy")] == [("main", seeded.c2)]
    assert cli.json("import-dir", "copy", str(out)) == {"repository": "copy", "version": None}
    assert cli("import-dir", "copy", str(out)).out == "copy: nothing changed, no new version\n"
    assert "not an OSTree repo" in cli.fails("import-dir", "other", str(tmp_path))
    assert "other" not in {r["name"] for r in cli.json("list")}


def test_console_script_runs_every_verb(cli: Cli, seeded: Seeded, tmp_path: Path) -> None:
    """Each verb once through the installed ``ostree-repo`` script, as users run it."""
    out = tmp_path / "exported"
    steps: list[tuple[list[str], Any]] = [
        (["create", "--json", "scratch"], {"repository": "scratch", "version": 0}),
        (["list", "--json"], lambda d: [r["name"] for r in d] == ["os", "scratch"]),
        (["versions", "--json", "os"], lambda d: len(d) == 4),
        (["refs", "--json", "os"], lambda d: {r["name"] for r in d} == {"main", "stable"}),
        (["commits", "--json", "os"], lambda d: len(d) == 2),
        (["show", "--json", "os"], lambda d: d["number"] == 3),
        (["diff", "--json", "os", "1", "2"], lambda d: d["commits_added"] == [seeded.c2]),
        (["copy", "--json", "os", "prod", "--ref", "main"], {"repository": "prod", "version": 1}),
        (["remove", "--json", "os", "--ref", "stable"], {"repository": "os", "version": 4}),
        (["delete-version", "--json", "os", "1"], lambda d: d["deleted_version"] == 1),
        (["fsck", "--json", "prod"], lambda d: d["missing"] == [] and d["corrupt"] == []),
        (["export", "--json", "prod", str(out)], lambda d: d["version"] == 1),
        (["import-dir", "--json", "back", str(out)], {"repository": "back", "version": 1}),
        (["delete", "--json", "scratch"], lambda d: d["deleted"] is True),
        (["reclaim", "--json", "--dry-run"], lambda d: d["dry_run"] is True),
    ]
    for argv, expected in steps:
        ran = cli.script(*argv)
        assert ran.status == 0 and ran.err == "", (argv, ran)
        doc = ran.json()
        assert expected(doc) if callable(expected) else doc == expected, (argv, doc)
    check_error(cli.script("refs", "nope"))
