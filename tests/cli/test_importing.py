"""``ostree-repo import``: commit archives and update archives, from a file or standard
input; its JSON; refusals; and its progress display, shown only on a terminal."""

from __future__ import annotations

import json
import os
import pty
import subprocess
import sys
import tarfile
from pathlib import Path
from typing import Any

import pytest

from ostree_repo.builder import CommitArchive
from ostree_repo.pytest_plugin import ArchiveFactory

from .conftest import Cli, console_script

IMPORT_KEYS = {"repository", "version", "format", "bytes_read", "objects", "objects_new"}
TREE = {"usr/bin/tool": b"#!/bin/sh\necho 1\n", "etc/tool.conf": b"level=1\n"}
UPDATE = {"usr/bin/tool": b"#!/bin/sh\necho 2\n", "etc/tool.conf": b"level=1\n"}


@pytest.fixture
def archives(ostree_archive: ArchiveFactory) -> tuple[CommitArchive, CommitArchive]:
    """A commit archive (zstd) and an update archive on top of it (gzip)."""
    first = ostree_archive(TREE, subject="first", timestamp=1_700_000_000, compression="tar.zst")
    update = ostree_archive(UPDATE, parent=first, timestamp=1_700_000_100, compression="tar.gz")
    return first, update


def test_commit_archive_then_update_archive(
    cli: Cli, archives: tuple[CommitArchive, CommitArchive]
) -> None:
    first, update = archives
    doc = cli.json("import", "os", str(first.path))
    assert doc.keys() >= IMPORT_KEYS
    assert doc["repository"] == "os" and doc["version"] == 1 and doc["format"] == "tar.zst"
    assert doc["objects"] == doc["objects_new"] > 3
    assert doc["bytes_read"] == first.path.stat().st_size
    again = cli.json("import", "os", str(first.path))
    assert again["version"] is None and again["objects_new"] == 0  # nothing changed
    ran = cli("import", "os", str(update.path), "--ref", "main")
    assert ran.status == 0 and ran.out == "os: version 2 (1 refs, 2 commits)\n"
    assert ran.err == ""
    assert [(r["name"], r["commit"]) for r in cli.json("refs", "os")] == [("main", update.commit)]
    ran = cli("import", "os", str(update.path), "--ref", "main")
    assert ran.out == "os: nothing changed, no new version\n"


def test_refusals_change_nothing(
    cli: Cli, archives: tuple[CommitArchive, CommitArchive], tmp_path: Path
) -> None:
    first, update = archives
    # an update archive without its parent: refused, and no repository is made
    assert "parent" in cli.fails("import", "os", str(update.path))
    assert cli.json("list") == []
    cli("import", "os", str(first.path))
    garbage = tmp_path / "garbage.tar"
    garbage.write_bytes(b"this is no tar archive" * 100)
    assert "not a tar" in cli.fails("import", "os", str(garbage)).lower()
    truncated = tmp_path / "truncated.tar"
    truncated.write_bytes(first.path.read_bytes()[: first.path.stat().st_size // 2])
    assert "error: " in cli.fails("import", "os", str(truncated))
    assert "No such file or directory" in cli.fails("import", "os", str(tmp_path / "nope.tar"))
    assert "no ref other" in cli.fails("import", "os", str(update.path), "--ref", "other")
    assert "no OSTree repository at elsewhere" in cli.fails(
        "import", "os", str(first.path), "--repository-name", "elsewhere"
    )
    assert [v["number"] for v in cli.json("versions", "os")] == [0, 1]


def test_repository_at_the_top_of_the_archive(
    cli: Cli, archives: tuple[CommitArchive, CommitArchive], tmp_path: Path
) -> None:
    first, _ = archives
    cli("import", "os", str(first.path))
    exported = tmp_path / "exported"
    cli("export", "os", str(exported))
    top = tmp_path / "top.tar"
    with tarfile.open(top, "w") as tar:
        tar.add(exported, arcname=".")
    assert cli.json("import", "top", str(top), "--repository-name", ".")["version"] == 1
    assert "no OSTree repository at repo" in cli.fails("import", "other", str(top))


def test_console_script_reads_standard_input_and_shows_no_progress_off_a_terminal(
    cli: Cli, archives: tuple[CommitArchive, CommitArchive]
) -> None:
    first, _ = archives
    with open(first.path, "rb") as stdin:
        ran = cli.script("import", "--json", "os", "-", stdin=stdin)
    assert ran.status == 0 and ran.err == ""  # stderr is a pipe: no progress
    doc = ran.json()
    assert doc["version"] == 1 and doc["format"] == "tar.zst"
    assert doc["bytes_read"] == first.path.stat().st_size
    ran = cli.script("import", "os", str(first.path) + ".missing")
    assert ran.status == 1 and ran.out == "" and ran.err.count("\n") == 1


def run_on_a_terminal(argv: list[str], stdin: Any = None) -> tuple[int, str, str]:
    """Run the console script with stderr on a pseudo-terminal: (status, stdout, what the
    terminal showed)."""
    leader, follower = pty.openpty()
    try:
        done = subprocess.run(
            [console_script(), *argv],
            stdin=subprocess.DEVNULL if stdin is None else stdin,
            stdout=subprocess.PIPE,
            stderr=follower,
            text=True,
            check=False,
            timeout=120,
        )
        os.close(follower)
        follower = -1
        shown = b""
        while True:
            try:
                chunk = os.read(leader, 65536)
            except OSError:  # EIO: the terminal's other end is closed
                break
            if not chunk:
                break
            shown += chunk
    finally:
        if follower >= 0:
            os.close(follower)
        os.close(leader)
    return done.returncode, done.stdout, shown.decode(errors="replace")


def test_progress_on_a_terminal(cli: Cli, archives: tuple[CommitArchive, CommitArchive]) -> None:
    first, _ = archives
    status, out, shown = run_on_a_terminal(["--store", cli.store, "import", "os", str(first.path)])
    assert status == 0
    assert out == "os: version 1 (1 refs, 1 commits)\n"  # stdout stays clean
    assert "importing" in shown and "objects" in shown and "100%" in shown
    assert shown.endswith("\x1b[2K")  # the line is erased at the end
    with open(first.path, "rb") as stdin:  # a stream: its size is unknown
        argv = ["--store", cli.store, "import", "--json", "os", "-"]
        status, out, shown = run_on_a_terminal(argv, stdin)
    assert status == 0 and json.loads(out)["version"] is None
    assert "importing" in shown and shown.endswith("\x1b[2K")


def test_no_progress_library_is_imported_off_a_terminal(
    cli: Cli, archives: tuple[CommitArchive, CommitArchive]
) -> None:
    """rich is imported only when a terminal shows progress: not for a pipe or a file."""
    first, _ = archives
    code = (
        "import sys\n"
        "from ostree_repo.cli import main\n"
        f"status = main(['--store', {cli.store!r}, 'import', 'os', {str(first.path)!r}])\n"
        "print(status, 'rich' in sys.modules, 'shtab' in sys.modules)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120
    )
    assert done.stdout.splitlines()[-1] == "0 False False"
    assert done.stderr == ""


def test_workers_option(
    cli: Cli,
    archives: tuple[CommitArchive, CommitArchive],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from ostree_repo.cli import build_parser
    from ostree_repo.cli._verb import store_options

    first, _ = archives
    assert cli.json("import", "os", str(first.path))["version"] == 1
    ran = cli("--workers", "0", "import", "--json", "other", str(first.path))
    assert ran.status == 0 and json.loads(ran.out)["version"] == 1
    parse = build_parser().parse_args
    store = cli.store
    assert store_options(parse(["--store", store, "--workers", "2", "refs", "os"])) == {
        "workers": 2
    }
    assert store_options(parse(["--store", "file:///srv/r", "refs", "os"])) == {}
    monkeypatch.setenv("OSTREE_REPO_WORKERS", "0")  # read when the parser is made
    assert store_options(build_parser().parse_args(["--store", store, "refs", "os"])) == {
        "workers": 0
    }
    assert store_options(parse(["--store", "s3://bucket/r", "--workers", "2", "refs", "os"])) == {}
    assert "not a number of processes" in cli.fails("--workers", "-1", "refs", "os", status=2)
