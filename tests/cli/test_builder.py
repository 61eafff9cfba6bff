"""``ostree-repo commit`` and ``archive``: commits from a directory or a tarball, their
options, and commit archives (full and update) of them; JSON shapes and refusals."""

from __future__ import annotations

import io
import json
import tarfile
from pathlib import Path

from oracle.ostree_cli import fsck as ostree_fsck

from .conftest import Cli, Seeded

COMMIT_KEYS = {"repository", "version", "commit", "ref"}
ARCHIVE_KEYS = {"archive", "commit", "ref", "parent", "objects", "update"}


def make_tree(root: Path) -> Path:
    (root / "usr/bin").mkdir(parents=True)
    (root / "usr/bin/tool").write_text("#!/bin/sh\necho tool\n")
    (root / "usr/bin/tool").chmod(0o755)
    (root / "etc").mkdir()
    (root / "etc/tool.conf").write_text("level=1\n")
    return root


def test_commit_a_directory(cli: Cli, tmp_path: Path) -> None:
    tree = make_tree(tmp_path / "tree")
    argv = ["commit", "os", "--tree", str(tree), "--ref", "main", "-s", "first"]
    stamp = ["--timestamp", "2024-01-02 03:04:05", "--add-metadata", "version=1.0"]
    doc = cli.json(*argv, *stamp)
    assert doc.keys() >= COMMIT_KEYS
    assert doc["repository"] == "os" and doc["version"] == 1 and doc["ref"] == "main"
    (row,) = cli.json("commits", "os")
    assert row["checksum"] == doc["commit"] and row["subject"] == "first"
    assert row["timestamp"] == 1704164645 and row["version"] == "1.0"
    # the same commit again (same tree, time, parent): nothing changed
    again = cli.json(*argv, *stamp, "--parent", doc["commit"])
    assert again["version"] == 2  # a child commit is new content
    same = cli.json(*argv, *stamp, "--parent", doc["commit"])
    assert same["commit"] == again["commit"] and same["version"] is None
    ran = cli("commit", "os", "--tree", str(tree), "--ref", "other", "--orphan")
    lines = ran.out.splitlines()
    assert ran.status == 0 and len(lines) == 2 and len(lines[0]) == 64
    assert lines[1] == "os: version 3 (2 refs, 3 commits)"


def test_commit_a_tarball_matches_the_directory(cli: Cli, tmp_path: Path) -> None:
    tree = make_tree(tmp_path / "tree")
    tar_path = tmp_path / "tree.tar"
    with tarfile.open(tar_path, "w") as tar:
        for path in sorted(tree.rglob("*")):
            info = tar.gettarinfo(str(path), arcname=str(path.relative_to(tree)))
            info.uid = info.gid = 0
            info.uname = info.gname = ""
            with open(path, "rb") if path.is_file() else io.BytesIO() as f:
                tar.addfile(info, f if path.is_file() else None)
    stamp = ["--timestamp", "1704164645", "--orphan"]
    from_dir = cli.json(
        "commit", "a", "--tree", str(tree), "--owner-uid", "0", "--owner-gid", "0", *stamp
    )
    from_tar = cli.json("commit", "b", "--tree", str(tar_path), *stamp)
    assert from_tar["commit"] == from_dir["commit"]


def test_commit_refusals(cli: Cli, tmp_path: Path) -> None:
    tree = make_tree(tmp_path / "tree")
    assert "invalid --timestamp" in cli.fails(
        "commit", "os", "--tree", str(tree), "--timestamp", "x"
    )
    assert "KEY=VALUE" in cli.fails("commit", "os", "--tree", str(tree), "--add-metadata", "nokey")
    assert "error: " in cli.fails("commit", "os", "--tree", str(tmp_path / "missing"))
    assert "required: --tree" in cli.fails("commit", "os", status=2)
    assert cli.json("list") == []  # nothing was made


def test_archive_full_and_update(cli: Cli, seeded: Seeded, tmp_path: Path) -> None:
    full = tmp_path / "full.tar.gz"
    doc = cli.json("archive", "os", str(full), "--ref", "main", "--version", "1")
    assert doc.keys() >= ARCHIVE_KEYS
    assert doc == {**doc, "archive": str(full), "commit": seeded.c1, "ref": "main"}
    assert doc["update"] is False and doc["parent"] is None and doc["objects"] > 3
    update = tmp_path / "update.tar"
    doc = cli.json("archive", "os", str(update), "--ref", "main", "--update")
    assert doc["commit"] == seeded.c2 and doc["parent"] == seeded.c1 and doc["update"] is True
    text = cli("archive", "os", str(tmp_path / "again.tar"), "--ref", "stable").out
    assert text.startswith(f"{tmp_path / 'again.tar'}: commit archive of stable at {seeded.c1}")
    # an archive is what `import` takes: full first, then the update on top
    assert cli.json("import", "copy", str(full))["version"] == 1
    assert cli.json("import", "copy", str(update), "--ref", "main")["version"] == 2
    with tarfile.open(full) as tar:
        compose = tar.extractfile("compose.json")
        assert compose is not None and isinstance(json.load(compose), dict)
        tar.extractall(tmp_path / "x", filter="tar")
    ostree_fsck(tmp_path / "x" / "repo")


def test_archive_refusals(cli: Cli, seeded: Seeded, tmp_path: Path) -> None:
    assert "name the one to archive" in cli.fails("archive", "os", str(tmp_path / "a.tar"))
    assert "repository nope does not exist" in cli.fails("archive", "nope", str(tmp_path / "b"))
    assert "error: " in cli.fails("archive", "os", str(tmp_path / "c.tar"), "--ref", "nope")
    assert not list(tmp_path.glob("*.tar"))


def test_console_script(cli: Cli, tmp_path: Path) -> None:
    tree = make_tree(tmp_path / "tree")
    ran = cli.script("commit", "--json", "os", "--tree", str(tree), "--ref", "main")
    assert ran.status == 0 and ran.err == "" and ran.json()["version"] == 1
    ran = cli.script("archive", "--json", "os", str(tmp_path / "os.tar.gz"))
    assert ran.status == 0 and ran.err == "" and ran.json()["ref"] == "main"
    ran = cli.script("archive", "os", str(tmp_path / "os.tar.gz"))  # exists: refused
    assert ran.status == 1 and ran.out == "" and ran.err.count("\n") == 1
